"""Recording against a real SQLite file: the change cycle and concurrent writers."""

import multiprocessing
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from crawler import store
from crawler.extraction import Article
from crawler.fetches import CrawledPage, FetchResult
from crawler.recording import Policy, identity_url, record_article, record_failure, record_pages
from crawler.sources import RevisitPolicy

T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
URL = "https://www.dwn.example/politik/nato-treffen"
BODY = (
    "Nato-Generalsekretär Mark Rutte hat in Florida den designierten US-Präsidenten getroffen.\n"
    "Zu Details machte die Sprecherin keine Angaben.\n"
    "Alliierte sorgen sich vor zweiter Amtszeit\n"
    "In der Nato hätten die meisten Mitgliedstaaten einen anderen Wahlausgang bevorzugt.\n"
    "Bereits in seiner ersten Amtszeit wetterte Trump immer wieder über die seiner Ansicht nach "
    "zu niedrigen Verteidigungsausgaben europäischer Alliierter und drohte zeitweise sogar mit "
    "einem Austritt der USA aus dem Bündnis, was in vielen Hauptstädten Sorgen auslöste."
)


def article(title="Nato-Chef trifft Trump", body=BODY, url=URL, canonical=URL):
    return Article(url=url, canonical_url=canonical, title=title, body=body, date="2024-11-24")


def fetched(url=URL, body=b"<html>...</html>", **kwargs):
    return FetchResult(url=url, final_url=url, status=200, body=body, **kwargs)


def rows(db, sql):
    return db.execute(sql).fetchall()


def test_change_cycle(tmp_path):
    db = store.open_store(tmp_path / "crawl.db")
    texts = tmp_path / "articles"

    first = record_article(db, article(), fetched(etag='"v1"'), text_dir=texts, now=T0)
    assert (first.kind, first.version) == ("new", 1)
    assert first.text_file.name.startswith("001_")
    assert first.text_file.read_text(encoding="utf-8") == article().text + "\n"

    again = record_article(db, article(), fetched(), text_dir=texts, now=T0 + timedelta(hours=1))
    assert (again.kind, again.version) == ("unchanged", 1)
    assert store.count_rows(db, "versions") == 1
    assert rows(db, "SELECT last_checked, last_changed FROM articles") == [
        ("2026-11-24T09:00:00.000Z", "2026-11-24T08:00:00.000Z")
    ]

    edited = article(body=BODY.replace("keine Angaben", "keinerlei Angaben"))
    changed = record_article(db, edited, fetched(), text_dir=texts, now=T0 + timedelta(hours=2))
    assert (changed.kind, changed.version, changed.change_class) == ("changed", 2, "minor")
    diff = store.latest_version(db, changed.article_id).diff
    assert diff["changes"][0]["old"] == "Zu Details machte die Sprecherin keine Angaben."
    assert diff["changes"][0]["new"] == "Zu Details machte die Sprecherin keinerlei Angaben."
    assert changed.text_file.read_text(encoding="utf-8") == edited.text + "\n"

    retitled = Article(**{**edited.__dict__, "title": "Rutte trifft Trump in Florida"})
    titled = record_article(db, retitled, fetched(), text_dir=texts, now=T0 + timedelta(hours=3))
    assert (titled.kind, titled.version, titled.change_class) == ("changed", 3, "title")
    assert [kind for (kind,) in rows(db, "SELECT kind FROM events ORDER BY id")] == [
        "new",
        "changed",
        "title_changed",
    ]
    assert rows(db, "SELECT version_count, status FROM articles") == [(3, "live")]
    assert [p.name for p in texts.iterdir()] == [first.text_file.name]


def test_ignore_patterns_hide_volatile_lines(tmp_path):
    db = store.open_store(tmp_path / "crawl.db")
    texts = tmp_path / "articles"
    stamped = article(body=BODY + "\nAktualisiert am 24.11.2024, 15:02 Uhr")
    record_article(
        db, stamped, fetched(), text_dir=texts, now=T0, ignore_patterns=(r"^Aktualisiert am",)
    )
    restamped = article(body=BODY + "\nAktualisiert am 25.11.2024, 09:40 Uhr")
    result = record_article(
        db, restamped, fetched(), text_dir=texts, now=T0, ignore_patterns=(r"^Aktualisiert am",)
    )
    assert result.kind == "unchanged"


def test_same_article_under_tracking_urls_is_stored_once(tmp_path):
    db = store.open_store(tmp_path / "crawl.db")
    texts = tmp_path / "articles"
    record_article(db, article(), fetched(), text_dir=texts, now=T0)
    tracked = URL + "?utm_source=newsletter&fbclid=abc"
    again = record_article(
        db, article(url=tracked, canonical=None), fetched(url=tracked), text_dir=texts, now=T0
    )
    assert again.kind == "unchanged"
    assert store.count_rows(db, "articles") == 1


def test_front_page_canonical_is_not_trusted():
    page = article(canonical="https://www.dwn.example/")
    assert identity_url(page, URL + "?utm_medium=x") == URL


def test_a_failure_is_logged_and_changes_nothing(tmp_path):
    db = store.open_store(tmp_path / "crawl.db")
    texts = tmp_path / "articles"
    record_article(db, article(), fetched(), text_dir=texts, now=T0)
    before = rows(db, "SELECT * FROM articles") + rows(db, "SELECT * FROM versions")
    failure = FetchResult(
        url=URL, final_url=URL, status=503, failure="http_error", reason="HTTP 503"
    )
    record_failure(
        db, failure, now=T0 + timedelta(hours=1), outcome="http_error", reason="HTTP 503"
    )
    assert rows(db, "SELECT * FROM articles") + rows(db, "SELECT * FROM versions") == before
    assert rows(db, "SELECT article_id, outcome FROM fetches ORDER BY id DESC LIMIT 1") == [
        (1, "http_error")
    ]


def _writer(path: str, worker: int, count: int) -> None:
    db = store.open_store(path)
    texts = Path(path).parent / "articles"
    for n in range(count):
        url = f"https://www.example.test/w{worker}/artikel-{n}"
        record_article(
            db, article(url=url, canonical=url), fetched(url=url), text_dir=texts, now=T0
        )
        edited = article(
            url=url,
            canonical=url,
            body=BODY + f"\nNachtrag {worker}-{n}: neue Angaben der Sprecherin.",
        )
        record_article(db, edited, fetched(url=url), text_dir=texts, now=T0)
        # Both workers also update one shared article, racing on the same rows.
        shared = "https://www.example.test/shared"
        record_article(
            db,
            article(url=shared, canonical=shared, body=BODY + f"\nStand {worker}-{n}"),
            fetched(url=shared),
            text_dir=texts,
            now=T0,
        )
    db.close()


def test_two_processes_write_at_once_without_losing_rows(tmp_path):
    path = str(tmp_path / "crawl.db")
    store.open_store(path).close()
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_writer, args=(path, w, 25)) for w in range(2)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(120)
        assert process.exitcode == 0
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT count(*) FROM articles").fetchone() == (51,)
        # 2 workers x 25 articles x 2 versions, plus one version per write of the shared one.
        shared_versions = conn.execute(
            "SELECT count(*), max(number) FROM versions v JOIN articles a ON a.id = v.article_id "
            "WHERE a.canonical_url LIKE '%/shared'"
        ).fetchone()
        assert shared_versions[0] == shared_versions[1] >= 2
        assert (
            conn.execute("SELECT count(*) FROM versions").fetchone()[0] == 100 + shared_versions[0]
        )
        numbers = conn.execute(
            "SELECT count(*) FROM (SELECT article_id, number FROM versions"
            " GROUP BY 1, 2 HAVING count(*) > 1)"
        ).fetchone()
        assert numbers == (0,)


def page(url=URL, **kwargs):
    return CrawledPage(fetched(url=url, **kwargs), article(url=url, canonical=url))


def outcomes(db, texts, pages, now, **policy):
    policies = {None: Policy(revisit=RevisitPolicy(**policy))} if policy else None
    return [r.kind for r in record_pages(db, pages, text_dir=texts, now=now, policies=policies)]


def test_a_batch_records_every_kind_of_outcome(tmp_path):
    db = store.open_store(tmp_path / "crawl.db")
    texts = tmp_path / "articles"
    body_hash = fetched().body_hash
    first = outcomes(db, texts, [page(etag='"a"'), page(url=URL + "-zwei")], T0)
    assert first == ["new", "new"]
    later = T0 + timedelta(hours=1)
    kinds = outcomes(
        db,
        texts,
        [
            CrawledPage(FetchResult(url=URL, final_url=URL, status=304)),
            CrawledPage(fetched(previous_body_hash=body_hash)),
            CrawledPage(FetchResult(url=URL, final_url=URL, failure="timeout", reason="slow")),
            CrawledPage(fetched(), problem="no_text", message="consent wall"),
        ],
        later,
    )
    assert kinds == ["not_modified", "unchanged", "timeout", "no_text"]
    assert store.count_rows(db, "versions") == 2
    assert rows(db, "SELECT count(*) FROM events") == [(2,)]


def test_removal_needs_a_second_404_after_the_confirmation_time(tmp_path):
    db = store.open_store(tmp_path / "crawl.db")
    texts = tmp_path / "articles"
    outcomes(db, texts, [page()], T0)
    gone = CrawledPage(FetchResult(url=URL, final_url=URL, status=404, failure="http_error"))
    confirm = {"confirm_removal_after": timedelta(hours=1)}
    assert outcomes(db, texts, [gone], T0 + timedelta(minutes=1), **confirm) == ["gone_suspect"]
    assert outcomes(db, texts, [gone], T0 + timedelta(minutes=30), **confirm) == ["gone_suspect"]
    assert rows(db, "SELECT status FROM articles") == [("live",)]
    assert outcomes(db, texts, [gone], T0 + timedelta(minutes=62), **confirm) == ["removed"]
    assert rows(db, "SELECT status FROM articles") == [("removed",)]
    assert rows(db, "SELECT kind FROM events ORDER BY id") == [("new",), ("removed",)]
    # A 404 that is followed by a good answer resets the suspicion; a return is a restore.
    back = outcomes(db, texts, [page()], T0 + timedelta(hours=2))
    assert back == ["unchanged"] or back == ["changed"]


def test_a_server_error_storm_never_removes_or_changes(tmp_path):
    db = store.open_store(tmp_path / "crawl.db")
    texts = tmp_path / "articles"
    outcomes(db, texts, [page()], T0)
    before = rows(db, "SELECT * FROM articles") + rows(db, "SELECT * FROM versions")
    storm = [
        CrawledPage(FetchResult(url=URL, final_url=URL, status=code, failure="http_error"))
        for code in (500, 502, 503, 429, 403)
    ]
    for hour in range(1, 5):
        outcomes(db, texts, storm, T0 + timedelta(hours=hour), confirm_removal_after=timedelta(0))
    assert rows(db, "SELECT * FROM articles") + rows(db, "SELECT * FROM versions") == before
    assert rows(db, "SELECT count(*) FROM events") == [(1,)]
