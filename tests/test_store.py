import json
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from crawler import store
from crawler.errors import StoreError
from crawler.extraction import Article
from crawler.fetches import CrawledPage, FetchResult
from crawler.recording import record_pages


def test_new_store_is_migrated_and_in_wal_mode(tmp_path):
    db = store.open_store(tmp_path / "sub" / "crawl.db")
    assert store.schema_version(db) == store.SCHEMA_VERSION
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {"articles", "version_rows", "paragraphs", "events", "fetches", "article_urls"}
    assert tables | {"versions_fts"} <= set(db.table_names())
    assert "versions" in db.view_names()


def test_reopening_does_not_migrate_again(tmp_path):
    path = tmp_path / "crawl.db"
    store.open_store(path).close()
    db = store.open_store(path)
    assert store.schema_version(db) == store.SCHEMA_VERSION


def test_a_newer_store_is_refused(tmp_path):
    path = tmp_path / "crawl.db"
    store.open_store(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {store.SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer than this program"):
        store.open_store(path)


def test_a_file_that_is_not_sqlite_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "crawl.db"
    path.write_text("not a database, just notes\n" * 100)
    before = path.read_bytes()
    with pytest.raises(StoreError, match="cannot open the store"):
        store.open_store(path)
    assert path.read_bytes() == before


def test_missing_store_without_create(tmp_path):
    with pytest.raises(StoreError, match="no store at"):
        store.open_store(tmp_path / "absent.db", create=False)
    with pytest.raises(StoreError, match="no store at"):
        store.open_store_readonly(tmp_path / "absent.db")


def _article(db, url="https://a.example/x"):
    return store.insert_article(
        db,
        url=url,
        canonical_url=url,
        status="live",
        first_seen="t",
        last_checked="t",
        last_changed="t",
        fingerprint="f",
        version_count=0,
        text_file="001_x.txt",
    )


def test_write_transaction_rolls_back_on_error(tmp_path):
    db = store.open_store(tmp_path / "crawl.db")
    with pytest.raises(RuntimeError), store.write_transaction(db):
        _article(db)
        raise RuntimeError("boom")
    assert store.count_rows(db, "articles") == 0
    with store.write_transaction(db):
        _article(db)
    assert store.count_rows(db, "articles") == 1


def test_readonly_store_refuses_writes(tmp_path):
    path = tmp_path / "crawl.db"
    store.open_store(path).close()
    db = store.open_store_readonly(path)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        db.execute("INSERT INTO fetches (url, at, outcome) VALUES ('u', 't', 'x')")


def test_versions_are_searchable_through_fts(tmp_path):
    db = store.open_store(tmp_path / "crawl.db")
    with store.write_transaction(db):
        article_id = _article(db)
        store.insert_version(
            db,
            article_id=article_id,
            number=1,
            fetched_at="t",
            url="u",
            title="Nato-Chef trifft Trump",
            text="Nato-Chef trifft Trump\nGespräch in Florida über Sicherheit",
            words=5,
            fingerprint="f",
            tags=["Politik"],
        )
    hits = db.execute(
        "SELECT v.title FROM versions_fts JOIN versions v ON v.id = versions_fts.rowid "
        "WHERE versions_fts MATCH ?",
        ["gesprach"],
    ).fetchall()
    assert hits == [("Nato-Chef trifft Trump",)]
    assert store.latest_version(db, article_id).tags == ("Politik",)


def test_unknown_event_kind_is_refused(tmp_path):
    db = store.open_store(tmp_path / "crawl.db")
    with pytest.raises(ValueError, match="unknown event kind"):
        store.insert_event(db, 1, "deleted", "t", "s")


T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def _old_insert_version(db, **fields):
    # insert_version of schema 4: the whole text in the versions row.
    for key in ("tags", "categories"):
        fields[key] = json.dumps(list(fields.get(key) or ()), ensure_ascii=False)
    if fields.get("diff") is not None:
        fields["diff"] = json.dumps(fields["diff"], ensure_ascii=False)
    return store._insert(db, "versions", fields)


def _schema_4_store(tmp_path, monkeypatch):
    """A store of schema 4 filled through the real recording path of that schema."""
    monkeypatch.setattr(store, "MIGRATIONS", store.MIGRATIONS[:4])
    monkeypatch.setattr(store, "SCHEMA_VERSION", 4)
    monkeypatch.setattr(store, "insert_version", _old_insert_version)
    path, texts = tmp_path / "crawl.db", tmp_path / "articles"
    bodies = [
        "Der Nato-Chef trifft Trump.\n\nStraße gesperrt.",
        "Der Nato-Chef trifft Trump.\n\nStraße wieder offen.\nNeu: ein Absatz.",
        "Straße wieder offen.\nDer Nato-Chef trifft Trump.",
    ]
    db = store.open_store(path)
    for number, body in enumerate(bodies):
        for url in ("https://news.example/a", "https://news.example/b"):
            article = Article(url=url, canonical_url=url, title=f"Titel {url[-1]}", body=body)
            fetch = FetchResult(url=url, final_url=url, status=200, body=body.encode())
            record_pages(
                db, [CrawledPage(fetch, article)], text_dir=texts, now=T0 + timedelta(hours=number)
            )
    old = db.execute("SELECT * FROM versions ORDER BY id").fetchall()
    assert len(old) == 6 and store.schema_version(db) == 4
    db.close()
    monkeypatch.undo()
    return path, texts, old


def test_migration_to_paragraph_storage_keeps_every_text_and_the_search(tmp_path, monkeypatch):
    path, texts, old = _schema_4_store(tmp_path, monkeypatch)
    now = T0
    db = store.open_store(path)
    assert store.schema_version(db) == store.SCHEMA_VERSION
    assert db.execute("SELECT * FROM versions ORDER BY id").fetchall() == old
    # Each distinct line of an article once: 2 × (title, 4 body lines incl. the empty one, +1)
    assert store.count_rows(db, "paragraphs") == 2 * 6
    hits = db.execute(
        "SELECT rowid, snippet(versions_fts, 1, '[', ']', '…', 8) FROM versions_fts "
        "WHERE versions_fts MATCH 'absatz' ORDER BY rowid"
    ).fetchall()
    assert [rowid for rowid, _ in hits] == [3, 4]  # the second versions; the third lost it
    assert "[Absatz]" in hits[0][1]
    # The next version goes through the new path and is found too.
    url = "https://news.example/a"
    article = Article(url=url, canonical_url=url, title="Titel a", body="Ganz neu: Strauß.")
    fetch = FetchResult(url=url, final_url=url, status=200, body=b"x")
    record_pages(db, [CrawledPage(fetch, article)], text_dir=texts, now=now + timedelta(days=1))
    latest = store.latest_version(db, 1)
    assert latest is not None and latest.text == "Titel a\nGanz neu: Strauß."
    found = db.execute("SELECT rowid FROM versions_fts WHERE versions_fts MATCH 'strauß'")
    assert found.fetchall() == [(latest.id,)]
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert not db.execute("PRAGMA foreign_key_check").fetchall()
    db.execute("INSERT INTO versions_fts (versions_fts) VALUES ('integrity-check')")


def test_a_failed_migration_to_paragraph_storage_leaves_schema_4_as_it_was(tmp_path, monkeypatch):
    path, _, old = _schema_4_store(tmp_path, monkeypatch)
    calls = []

    def fail_on_the_third(*args):
        calls.append(args)
        if len(calls) == 3:
            raise sqlite3.OperationalError("disk I/O error (simulated)")
        return real(*args)

    real = store._paragraph_ids
    monkeypatch.setattr(store, "_paragraph_ids", fail_on_the_third)
    with pytest.raises(StoreError, match="simulated"):
        store.open_store(path)
    monkeypatch.undo()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 4
        assert conn.execute("SELECT * FROM versions ORDER BY id").fetchall() == old
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        assert "paragraphs" not in names and "version_rows" not in names
    db = store.open_store(path)  # and the next open converts it
    assert db.execute("SELECT * FROM versions ORDER BY id").fetchall() == old
