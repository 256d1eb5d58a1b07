"""Read-side queries on real SQLite files built through the recording path."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crawler import store
from crawler.errors import ConfigError, CrawlerError, StoreError
from crawler.extraction import Article
from crawler.fetches import FetchResult
from crawler.recording import record_article
from crawler.store import queries as q

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
NATO = "https://www.dwn.example/politik/nato-treffen"
NETZ = "https://www.faz.example/wirtschaft/stromnetz"
ALT = "https://www.faz.example/sport/fussball"
NATO_BODY = (
    "Nato-Chef Mark Rutte hat in Florida den designierten US-Präsidenten getroffen.\n"
    "Zu Details machte die Sprecherin keine Angaben.\n"
    "Alliierte sorgen sich vor zweiter Amtszeit\n"
    "Bereits in seiner ersten Amtszeit wetterte Trump über zu niedrige "
    "Verteidigungsausgaben europäischer Alliierter.\n"
    "Die Gespräche in Florida sollen nach Angaben aus Bündniskreisen mehrere Stunden gedauert "
    "haben, ein gemeinsames Statement gab es anschließend nicht."
)
NETZ_BODY = (
    "Die Übertragungsnetzbetreiber bauen die Stromtrasse nach Süddeutschland aus.\n"
    "An der Großbaustelle bei München sperrt die Stadt eine Straße für drei Monate.\n"
    "Die Bundesnetzagentur rechnet mit höheren Netzentgelten.\n"
    "Anwohner kritisieren den Lärm der Bauarbeiten, die Betreiber versprechen einen "
    "Ausgleich und wollen die Trasse bis zum Ende des kommenden Jahres fertigstellen."
)
ALT_BODY = (
    "Der Verein gewann das Derby vor ausverkauftem Stadion mit zwei zu eins.\n"
    "Nach einem frühen Rückstand drehte die Mannschaft die Partie in der zweiten Halbzeit, "
    "als der eingewechselte Stürmer zweimal traf und die Fans bis zum Abpfiff feierten, "
    "während der Trainer der Gäste die Schiedsrichterleistung kritisierte."
)


def page(url: str, title: str, body: str) -> tuple[Article, FetchResult]:
    article = Article(url=url, canonical_url=url, title=title, body=body, date="2026-11-20")
    return article, FetchResult(url=url, final_url=url, status=200, body=b"<html></html>")


def build_store(path: Path, now: datetime = NOW) -> Path:
    """Three articles: Nato (dwn, 3 versions), Stromnetz (faz, 1) and an old Fußball (faz)."""
    db = store.open_store(path)
    texts = path.parent / "articles"

    def record(url, title, body, at, source):
        record_article(db, *page(url, title, body), text_dir=texts, now=at, source=source)

    record(ALT, "Derbysieg für den Verein", ALT_BODY, now - timedelta(days=10), "faz")
    record(NATO, "Nato-Chef trifft Trump", NATO_BODY, now - timedelta(hours=30), "dwn")
    record(NETZ, "Stromnetz-Ausbau in Süddeutschland", NETZ_BODY, now - timedelta(hours=20), "faz")
    edited = NATO_BODY.replace("keine Angaben", "keinerlei Angaben")
    record(NATO, "Nato-Chef trifft Trump", edited, now - timedelta(hours=5), "dwn")
    record(NATO, "Rutte trifft Trump in Florida", edited, now - timedelta(hours=2), "dwn")
    record(NATO, "Rutte trifft Trump in Florida", edited, now - timedelta(hours=1), "dwn")
    db.conn.close()
    return path


@pytest.fixture
def db(tmp_path):
    return store.open_store_readonly(build_store(tmp_path / "crawl.db"))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("30m", "2026-11-24T11:30:00.000Z"),
        ("24h", "2026-11-23T12:00:00.000Z"),
        ("7d", "2026-11-17T12:00:00.000Z"),
        ("2w", "2026-11-10T12:00:00.000Z"),
        (" 1d ", "2026-11-23T12:00:00.000Z"),
        ("2026-11-20", "2026-11-20T00:00:00.000Z"),
        ("2026-11-20T08:15", "2026-11-20T08:15:00.000Z"),
        ("2026-11-20T08:15:00Z", "2026-11-20T08:15:00.000Z"),
        ("2026-11-20T09:15:00+01:00", "2026-11-20T08:15:00.000Z"),
        ("2026-11-20 08:15", "2026-11-20T08:15:00.000Z"),
    ],
)
def test_parse_time(value, expected):
    assert q.parse_time(value, NOW) == expected


@pytest.mark.parametrize("value", ["", "yesterday", "7x", "-3d", "2026-13-01", "d7"])
def test_parse_time_refuses_nonsense(value):
    with pytest.raises(ConfigError, match="cannot read the time"):
        q.parse_time(value, NOW)


@pytest.mark.parametrize(
    ("typed", "fts"),
    [
        ("Nato-Chef", '"Nato-Chef"'),
        ("Nato Trump", '"Nato" AND "Trump"'),
        ('"keinerlei Angaben"', '"keinerlei Angaben"'),
        ("Verteidigungs*", '"Verteidigungs"*'),
        ("Nato-Ch*", '"Nato-Ch"*'),
        ("Rutte OR Stoltenberg", '"Rutte" OR "Stoltenberg"'),
        ("Nato NOT Trump", '"Nato" NOT "Trump"'),
        ("(Rutte OR Trump) Florida", '( "Rutte" OR "Trump" ) AND "Florida"'),
        ("Florida Straße", '"Florida" AND ("Straße" OR "strasse")'),
        ("title:Rutte", 'title : "Rutte"'),
        ("Straße", '("Straße" OR "strasse")'),
        ("Strasse", '("Strasse" OR "straße")'),
        ("and or", '"and" AND "or"'),
        ('Say "Hi"*', '"Say" AND "Hi"*'),
        ("NEAR(Rutte Trump, 5)", "NEAR(Rutte Trump, 5)"),
    ],
)
def test_fts_query_quotes_user_input(typed, fts):
    assert q.fts_query(typed) == fts


@pytest.mark.parametrize("typed", ['"open', "", "   ", "*"])
def test_fts_query_refuses_what_cannot_be_a_query(typed):
    with pytest.raises(ConfigError):
        q.fts_query(typed)


@pytest.mark.parametrize(
    ("query", "titles"),
    [
        ("Nato-Chef", ["Rutte trifft Trump in Florida"]),
        ("nato chef", ["Rutte trifft Trump in Florida"]),
        ("Präsidenten", ["Rutte trifft Trump in Florida"]),
        ("Prasidenten", ["Rutte trifft Trump in Florida"]),
        ("Süddeutschland", ["Stromnetz-Ausbau in Süddeutschland"]),
        ("Suddeutschland", ["Stromnetz-Ausbau in Süddeutschland"]),
        ("Straße", ["Stromnetz-Ausbau in Süddeutschland"]),
        ("Strasse", ["Stromnetz-Ausbau in Süddeutschland"]),
        ("Großbaustelle", ["Stromnetz-Ausbau in Süddeutschland"]),
        ("grossbaustelle", ["Stromnetz-Ausbau in Süddeutschland"]),
        ('"keinerlei Angaben"', ["Rutte trifft Trump in Florida"]),
        ('"Angaben keinerlei"', []),
        ("Verteidigungs*", ["Rutte trifft Trump in Florida"]),
        ("Übertragungsnetz*", ["Stromnetz-Ausbau in Süddeutschland"]),
        ("Trump OR Derby", ["Derbysieg für den Verein", "Rutte trifft Trump in Florida"]),
        ("Trump Derby", []),
        ("Stadt Straße", ["Stromnetz-Ausbau in Süddeutschland"]),
        ("(Derby OR Stadion) Verein", ["Derbysieg für den Verein"]),
    ],
)
def test_search_german_text(db, query, titles):
    assert sorted(hit.title for hit in q.search(db, query)) == titles


def test_search_ranks_titles_higher_and_marks_snippets(db):
    hits = q.search(db, "Süddeutschland OR Trump")
    assert hits[0].title == "Stromnetz-Ausbau in Süddeutschland" or "Trump" in hits[0].title
    nato = next(hit for hit in hits if hit.article_id == 2)
    assert "**Trump**" in nato.snippet
    assert [hit.score for hit in hits] == sorted(hit.score for hit in hits)


def test_search_latest_version_by_default_history_on_request(db):
    assert q.search(db, '"keine Angaben"') == []
    older = q.search(db, '"keine Angaben"', all_versions=True)
    assert [(hit.version, hit.latest) for hit in older] == [(1, False)]
    titles = q.search(db, "title:Chef", all_versions=True)
    assert sorted(hit.version for hit in titles) == [1, 2]


def test_search_filters(db):
    assert [h.source for h in q.search(db, "Trump OR Derby", q.Filters(source="faz"))] == ["faz"]
    since = q.parse_time("3d", NOW)
    assert q.search(db, "Derby", q.Filters(since=since)) == []
    assert len(q.search(db, "Derby", q.Filters(until=since))) == 1


@pytest.mark.parametrize("query", ["Trump AND", "NOT Trump", "(Trump", "NEAR(Trump"])
def test_malformed_search_is_a_config_error(db, query):
    with pytest.raises(ConfigError, match="malformed search query"):
        q.search(db, query)


def test_changes_newest_first_with_kinds_and_filters(db):
    events = q.list_changes(db)
    assert [e.kind for e in events] == ["title_changed", "changed", "new", "new", "new"]
    assert events[1].summary == "minor edit: 1 paragraph modified (+1/-1 words)"
    assert (events[1].version, events[1].words_added, events[1].words_removed) == (2, 1, 1)
    assert [e.kind for e in q.list_changes(db, kinds=("new",), limit=2)] == ["new", "new"]
    day = q.Filters(since=q.parse_time("1d", NOW))
    assert [e.kind for e in q.list_changes(db, day)] == ["title_changed", "changed", "new"]
    assert {e.source for e in q.list_changes(db, q.Filters(source="faz"))} == {"faz"}
    with pytest.raises(ConfigError, match="unknown event kind"):
        q.list_changes(db, kinds=("edited",))


def test_articles_with_latest_titles(db):
    found = q.list_articles(db)
    assert [(a.id, a.versions, a.title) for a in found] == [
        (2, 3, "Rutte trifft Trump in Florida"),
        (3, 1, "Stromnetz-Ausbau in Süddeutschland"),
        (1, 1, "Derbysieg für den Verein"),
    ]
    assert [a.id for a in q.list_articles(db, q.Filters(source="faz"), limit=1)] == [3]


def test_history_marks_title_changes(db):
    entries = q.article_history(db, 2)
    assert [(e.number, e.change_class, e.title_changed) for e in entries] == [
        (1, None, False),
        (2, "minor", False),
        (3, "title", True),
    ]


@pytest.mark.parametrize(
    "ref",
    [
        "2",
        NATO,
        NATO + "?utm_source=newsletter",
        "HTTPS://WWW.DWN.EXAMPLE/politik/nato-treffen#top",
    ],
)
def test_resolve_article_by_id_or_url(db, ref):
    assert q.resolve_article(db, ref).id == 2


@pytest.mark.parametrize("ref", ["99", "https://nowhere.example/x", "nato", ""])
def test_resolve_unknown_article(db, ref):
    with pytest.raises(CrawlerError, match="no article for"):
        q.resolve_article(db, ref)


def test_get_version(db):
    article = q.resolve_article(db, "2")
    assert q.get_version(db, article, -1).number == 3
    first = q.get_version(db, article, 1)
    assert first.text.startswith("Nato-Chef trifft Trump\nNato-Chef Mark Rutte")
    assert first.tags == ()
    with pytest.raises(CrawlerError, match="has no version 4"):
        q.get_version(db, article, 4)


def test_export_streams_latest_or_every_version(db):
    latest = list(q.iter_export(db))
    assert [(r.article_id, r.version, r.latest) for r in latest] == [
        (1, 1, True),
        (2, 3, True),
        (3, 1, True),
    ]
    every = list(q.iter_export(db, all_versions=True))
    assert len(every) == q.count_export(db, all_versions=True) == 5
    recent = q.Filters(since=q.parse_time("3h", NOW), source="dwn")
    assert [r.version for r in q.iter_export(db, recent, all_versions=True)] == [3]


def test_stats(db, tmp_path):
    stats = q.store_stats(db, tmp_path / "crawl.db", NOW)
    assert (stats.articles, stats.versions, stats.events) == (3, 5, 5)
    assert stats.by_source == (("dwn", 1, 3), ("faz", 2, 2))
    assert dict(stats.changes_per_day) == {"2026-11-24": 2}
    assert sum(dict(stats.new_per_day).values()) == 3
    assert stats.size_bytes > 0


def test_sql_is_read_only(db):
    result = q.run_sql(db, "SELECT id, canonical_url FROM articles ORDER BY id LIMIT 1")
    assert result.as_dicts() == [{"id": 1, "canonical_url": ALT}]
    with pytest.raises(StoreError, match="opened read-only: attempt to write a readonly"):
        q.run_sql(db, "DELETE FROM articles")
    with pytest.raises(StoreError, match="sql: no such table"):
        q.run_sql(db, "SELECT * FROM missing")


def test_empty_store(tmp_path):
    path = tmp_path / "empty.db"
    store.open_store(path).conn.close()
    db = store.open_store_readonly(path)
    assert q.search(db, "Nato") == []
    assert q.list_changes(db) == q.list_articles(db) == []
    assert list(q.iter_export(db)) == []
    assert q.store_stats(db, path, NOW).articles == 0


def test_search_ranks_only_the_newest_candidates(db):
    hits = q.search(db, "Trump OR Derby OR Süddeutschland", candidates=1)
    assert [(hit.article_id, hit.version) for hit in hits] == [(2, 3)]
    assert len(q.search(db, "Trump OR Derby OR Süddeutschland")) == 3


def test_every_ranked_hit_gets_its_snippet_with_other_matches_between(tmp_path):
    # Snippets come from one pass over the ranked rows' rowid range: matches in between
    # that are not among the hits (older versions here) must neither be shown nor drop one.
    db = store.open_store(tmp_path / "crawl.db")
    texts = tmp_path / "articles"
    for number in range(6):
        url = f"https://www.dwn.example/politik/verkehr-{number}"
        for edit in range(2):  # version 1 and 2 of each article: prefix matches all
            body = f"Verkehrsminister Nummer {number} spricht.\nFassung {edit} des Berichts."
            at = NOW - timedelta(hours=10 - edit - number)
            record_article(db, *page(url, f"Verkehr {number}", body), text_dir=texts, now=at)
    hits = q.search(db, "verkehrsmin*", limit=3)
    assert len(hits) == 3 and all(hit.latest for hit in hits)
    assert all("**Verkehrsminister**" in hit.snippet for hit in hits)
    everything = q.search(db, "verkehrsmin*", all_versions=True, limit=50)
    assert len(everything) == 12
    assert all("**Verkehrsminister**" in hit.snippet for hit in everything)
