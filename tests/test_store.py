import sqlite3

import pytest

from crawler import store
from crawler.errors import StoreError


def test_new_store_is_migrated_and_in_wal_mode(tmp_path):
    db = store.open_store(tmp_path / "sub" / "crawl.db")
    assert store.schema_version(db) == store.SCHEMA_VERSION
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert {"articles", "versions", "events", "fetches", "article_urls", "versions_fts"} <= set(
        db.table_names()
    )


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
