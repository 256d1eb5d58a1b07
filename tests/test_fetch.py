"""``crawler fetch`` end to end: the console script in a subprocess against the loopback site.

Every run passes ``--store`` under tmp_path; nothing leaves 127.0.0.1. Page edits between
runs simulate an article's life (crawl, template churn, edit, retitle) without sleeping.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from servers import DISALLOW_PRIVATE, TESTS_DIR, Reply, SiteServer, html_reply, run_cli

from crawler.extraction import extract

Cli = Callable[..., subprocess.CompletedProcess[str]]

ARTICLE = "/articles/hochwasserschutz-donau.html"
SECOND = "/articles/strompreise-jahreswechsel.html"
TITLE = "Hochwasserschutz: Regensburg plant neue Deiche an der Donau"
PAGES_DIR = TESTS_DIR / "pages"
TEXT_FILE_NAME = re.compile(r"^\d{3}_[0-9a-f]{16}\.txt$")

# Page furniture that must never reach the article text.
CLUTTER = (
    "Anzeige",
    "Mehr zum Thema",
    "Girokonto",
    "Wärmepumpe",
    "Das könnte Sie auch interessieren",
    "Traditionsbrauerei",
    "Eisbären",
    "08.01.2026",
    "Cookies",
    "Alle akzeptieren",
    "Eilmeldung",
    "Impressum",
    "Seite generiert",
    "Artikel teilen",
    "Pegel der Donau erreicht Rekordstand",
)
BODY_SNIPPETS = (
    "Die Stadt will bis 2029 rund 80 Millionen Euro in den Hochwasserschutz investieren.",
    "Streit über die Trasse im Stadtosten",
    '"Wir haben aus der Zeitung erfahren, dass unser Grundstück künftig im '
    'Überschwemmungsgebiet liegen soll"',
    "Der Kämmerer warnte allerdings vor zu großen Erwartungen",
    "die Bauzeiten an die Brutzeiten der Vögel anzupassen.",
)
OLD_SENTENCE = (
    "Der erste Abschnitt am Osthafen soll bereits im Herbst 2027 fertig sein, "
    "der gesamte Deich bis 2029."
)
NEW_SENTENCE = (
    "Der erste Abschnitt am Osthafen soll nach neuer Planung erst im Sommer 2028 fertig "
    "sein, der gesamte Deich bis 2031."
)
NEW_TITLE = "Hochwasserschutz: Regensburg baut höhere Deiche an der Donau"


# -- helpers ----------------------------------------------------------------------------------


def replace_once(text: str, old: str, new: str, count: int = 1) -> str:
    """``text`` with ``old`` replaced; fails loudly if the fixture no longer holds ``old``."""
    assert text.count(old) == count, f"expected {count}x {old!r} in the page"
    return text.replace(old, new)


def churn(html: str) -> str:
    """The same article in a new template state: other ads, teasers, ticker and render time."""
    html = replace_once(
        html,
        "Jetzt Girokonto eröffnen und 100 Euro Startguthaben sichern!",
        "Neu: Kreditkarte ohne Jahresgebühr, nur heute!",
    )
    html = replace_once(
        html,
        "Wärmepumpe zum Aktionspreis: Jetzt beraten lassen!",
        "Urlaub an der Adria: Frühbucher sparen 30 Prozent",
    )
    html = replace_once(
        html,
        "Eilmeldung: Sperrung der Steinernen Brücke aufgehoben",
        "Eilmeldung: Stromausfall in der Altstadt behoben",
    )
    html = replace_once(
        html,
        "Seite generiert am 24.11.2024 um 14:41:07 Uhr (Server fe-03)",
        "Seite generiert am 09.01.2026 um 06:02:51 Uhr (Server fe-07)",
    )
    teasers = re.search(r'<section class="related-teasers">.*?</section>', html, re.S)
    assert teasers is not None
    new_teasers = """<section class="related-teasers">
      <h2>Das könnte Sie auch interessieren</h2>
      <div class="teaser"><span class="teaser-category">Politik</span>
        <a href="/politik/landtag-haushalt.html"><h3>Streit um den Doppelhaushalt</h3></a>
        <time>09.01.2026</time><p>Die Opposition wirft der Regierung vor, die...</p></div>
      <div class="teaser"><span class="teaser-category">Wirtschaft</span>
        <a href="/wirtschaft/brauerei-uebernahme.html"><h3>Traditionsbrauerei übernommen</h3></a>
        <time>08.01.2026</time><p>Die Familienbrauerei aus dem Landkreis geht an einen...</p></div>
    </section>"""
    return html.replace(teasers.group(0), new_teasers)


def expected_text(site: SiteServer, path: str) -> str:
    """The library's extraction of the served file: what the CLI must print for it."""
    return extract((site.root / path.lstrip("/")).read_bytes(), site.url(path)).text


def query(store: Path, sql: str, *params: Any) -> list[sqlite3.Row]:
    """Rows of ``sql`` on the store, read-only."""
    connection = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    connection.row_factory = sqlite3.Row
    try:
        return connection.execute(sql, params).fetchall()
    finally:
        connection.close()


def count(store: Path, table: str) -> int:
    return int(query(store, f"SELECT count(*) FROM {table}")[0][0])


def snapshot_store(store: Path) -> dict[str, Any]:
    """Everything a failed fetch must leave alone: articles, versions, events and text files."""
    tables = {
        table: [tuple(row) for row in query(store, f"SELECT * FROM {table} ORDER BY id")]
        for table in ("articles", "versions", "events")
    }
    text_dir = store.parent / "articles"
    files = {path.name: path.read_bytes() for path in sorted(text_dir.iterdir())}
    return {**tables, "files": files}


def status_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one line a successful fetch writes on stderr."""
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def assert_error(result: subprocess.CompletedProcess[str], exit_code: int) -> str:
    """Check a failed run: the exit code, no output, one ``error:`` line; return that line."""
    assert result.returncode == exit_code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "store" / "crawl.db"


@pytest.fixture(scope="module")
def seeded_store_template(server: SiteServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding one article (fetched once per module); copy it before use."""
    template = tmp_path_factory.mktemp("seeded") / "crawl.db"
    result = run_cli("fetch", server.url(SECOND), store=template)
    assert status_line(result).startswith("new:")
    return template


@pytest.fixture
def seeded_store(seeded_store_template: Path, tmp_path: Path) -> Path:
    """A private copy of a store that already holds one article."""
    target = tmp_path / "seeded"
    shutil.copytree(seeded_store_template.parent, target, ignore=shutil.ignore_patterns("home"))
    return target / "crawl.db"


# -- 1. a new article -----------------------------------------------------------------------------


def test_fetch_prints_clean_text_and_records_a_new_article(
    site: SiteServer, cli: Cli, store: Path
) -> None:
    result = cli("fetch", site.url(ARTICLE), store=store)

    assert status_line(result).startswith("new:")
    text = result.stdout
    assert text.endswith("\n") and not text.endswith("\n\n")
    lines = text.splitlines()
    assert lines[0] == TITLE
    assert "" not in lines, "blank lines in the text"
    assert all(line == line.strip() for line in lines)
    for snippet in BODY_SNIPPETS:
        assert snippet in text
    for clutter in CLUTTER:
        assert clutter not in text
    assert text == expected_text(site, ARTICLE) + "\n"

    assert [count(store, table) for table in ("articles", "versions", "events")] == [1, 1, 1]
    (article,) = query(store, "SELECT * FROM articles")
    assert (article["status"], article["version_count"]) == ("live", 1)
    assert article["canonical_url"] == site.url(ARTICLE)
    (version,) = query(store, "SELECT * FROM versions")
    assert (version["number"], version["title"], version["text"]) == (1, TITLE, text.rstrip("\n"))
    assert [row["kind"] for row in query(store, "SELECT kind FROM events")] == ["new"]

    text_files = sorted((store.parent / "articles").iterdir())
    assert [path.name for path in text_files] == [article["text_file"]]
    assert TEXT_FILE_NAME.match(article["text_file"]) and article["text_file"].startswith("001_")
    assert text_files[0].read_text(encoding="utf-8") == text


def test_fetch_json_has_the_article_fields_and_the_outcome(
    site: SiteServer, cli: Cli, store: Path
) -> None:
    first = cli("fetch", "--json", site.url(SECOND), store=store)
    assert status_line(first).startswith("new:")
    document = json.loads(first.stdout)
    for name in (
        "url", "canonical_url", "title", "author", "date", "site_name", "language",
        "description", "tags", "categories", "body", "text", "outcome",
    ):  # fmt: skip
        assert name in document, name
    assert document["title"].startswith("Energie: Stromtarife sinken zum Jahreswechsel")
    assert document["text"] == f"{document['title']}\n{document['body']}"
    assert document["author"] == "Jörg Häußler"
    assert document["date"] == "2024-12-02"
    assert document["canonical_url"] == site.url(SECOND)
    assert isinstance(document["tags"], list) and isinstance(document["categories"], list)
    assert document["outcome"]["kind"] == "new"
    assert document["outcome"]["version"] == 1

    again = json.loads(cli("fetch", "--json", site.url(SECOND), store=store).stdout)
    assert (again["outcome"]["kind"], again["outcome"]["version"]) == ("unchanged", 1)


# -- 2. redirects ---------------------------------------------------------------------------------


def test_redirect_chain_is_stored_under_the_final_url(
    site: SiteServer, cli: Cli, store: Path
) -> None:
    result = cli("fetch", site.url(f"/redirect/3?to={ARTICLE}"), store=store)

    line = status_line(result)
    assert line.startswith("new:") and site.url(ARTICLE) in line
    assert result.stdout.splitlines()[0] == TITLE
    assert [site.hits[f"/redirect/{hops}"] for hops in (3, 2, 1)] == [1, 1, 1]
    assert site.hits[ARTICLE] == 1
    (article,) = query(store, "SELECT url, canonical_url FROM articles")
    assert article["canonical_url"] == site.url(ARTICLE)
    assert article["url"] == site.url(ARTICLE)


def test_real_page_is_stored_under_its_declared_canonical_url(
    site: SiteServer, cli: Cli, store: Path
) -> None:
    """The DWN page declares a canonical URL on its own (never fetched) host."""
    meta = json.loads((PAGES_DIR / "dwn-nato-rutte.meta.json").read_text(encoding="utf-8"))
    page = "/politik/nato-generalsekretaer-trifft-sich-in-florida-mit-trump.html"
    site.write(page, (PAGES_DIR / "dwn-nato-rutte.html").read_bytes())

    result = cli("fetch", site.url(f"/redirect/2?to={page}"), store=store)

    assert status_line(result).startswith("new:")
    assert result.stdout.splitlines()[0] == meta["title"]
    assert result.stdout == expected_text(site, page) + "\n"
    for clutter in meta["must_not_contain"]:
        assert clutter not in result.stdout
    (article,) = query(store, "SELECT url, canonical_url FROM articles")
    assert article["canonical_url"] == meta["canonical_url"]
    assert article["url"] == site.url(page)

    # The same page reached directly is the same article, not a second one.
    assert status_line(cli("fetch", site.url(page), store=store)).startswith("unchanged:")
    assert [count(store, table) for table in ("articles", "versions", "events")] == [1, 1, 1]


# -- 3. failures leave the store alone ------------------------------------------------------------

FAILURES = [
    # (id, URL or path on the server, extra flags, exit code, words one of which names the problem)
    ("http-404", "/status/404", [], 1, ("404",)),
    ("http-410", "/status/410", [], 1, ("410",)),
    ("http-500", "/status/500", [], 1, ("500",)),
    ("pdf", "/pdf", [], 1, ("pdf",)),
    ("pdf-as-html", "/pdf-as-html", [], 1, ("pdf",)),
    ("empty-body", "/empty", [], 1, ("empty",)),
    ("too-large", "/large", ["--max-size", "1000000"], 1, ("large", "size", "bytes")),
    (
        "too-large-unannounced",
        "/large?length=none",
        ["--max-size", "1000000"],
        1,
        ("large", "size", "bytes"),
    ),
    ("gzip-bomb", "/gzip-bomb", ["--max-size", "1000000"], 1, ("large", "size")),
    ("truncated-body", "/truncated", [], 1, ("cut short", "truncated", "incomplete", "data")),
    ("too-many-redirects", f"/redirect/7?to={ARTICLE}", [], 1, ("redirect",)),
    ("timeout", "/hang", ["--timeout", "2"], 1, ("timeout", "timed out", "in time")),
    ("file-scheme", "file:///etc/passwd", [], 2, ("scheme", "http")),
    ("ftp-scheme", "ftp://127.0.0.1/x", [], 2, ("scheme", "http")),
    ("no-host", "http://", [], 2, ("host", "url")),
    ("bad-scheme-chars", "ht!tp://x", [], 2, ("scheme", "url")),
    ("space-in-host", "http://exa mple.com", [], 2, ("whitespace", "space", "url")),
]


@pytest.mark.parametrize(
    ("target", "flags", "exit_code", "words"),
    [case[1:] for case in FAILURES],
    ids=[case[0] for case in FAILURES],
)
def test_failed_fetch_is_one_error_line_and_changes_nothing(
    server: SiteServer,
    cli: Cli,
    seeded_store: Path,
    target: str,
    flags: list[str],
    exit_code: int,
    words: tuple[str, ...],
) -> None:
    url = server.url(target) if target.startswith("/") else target
    before = snapshot_store(seeded_store)
    started = time.monotonic()

    result = cli("fetch", url, *flags, store=seeded_store)

    line = assert_error(result, exit_code)
    assert any(word in line.lower() for word in words), line
    assert snapshot_store(seeded_store) == before
    assert time.monotonic() - started < 30


def test_failure_on_a_known_article_is_not_a_change(
    site: SiteServer, cli: Cli, store: Path
) -> None:
    """A known article answering with an error, nothing or a PDF keeps its text (G1)."""
    assert status_line(cli("fetch", site.url(ARTICLE), store=store)).startswith("new:")
    before = snapshot_store(store)
    failures = {
        "404": html_reply("<html><body><h1>Seite nicht gefunden</h1></body></html>", 404),
        "500": html_reply("<html><body><h1>Interner Fehler</h1></body></html>", 500),
        "empty": Reply(200, b"", {"Content-Type": "text/html; charset=utf-8"}),
        "pdf": Reply(200, b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", {"Content-Type": "text/html"}),
    }
    for name, reply in failures.items():
        site.set_route(ARTICLE, reply)
        result = cli("fetch", site.url(ARTICLE), store=store)
        assert_error(result, 1)
        assert snapshot_store(store) == before, name

    site.clear_route(ARTICLE)
    assert status_line(cli("fetch", site.url(ARTICLE), store=store)).startswith("unchanged:")
    assert count(store, "versions") == 1 and count(store, "events") == 1


def test_missing_store_directory_is_created(site: SiteServer, cli: Cli, tmp_path: Path) -> None:
    store = tmp_path / "does" / "not" / "exist" / "crawl.db"
    assert status_line(cli("fetch", site.url(ARTICLE), store=store)).startswith("new:")
    assert count(store, "articles") == 1


# -- 4. encodings -------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ["/gzip", "/latin1"])
def test_encoded_pages_give_the_same_text_with_umlauts(
    server: SiteServer, cli: Cli, store: Path, route: str
) -> None:
    result = cli("fetch", server.url(route + ARTICLE), store=store)

    assert status_line(result).startswith("new:")
    assert result.stdout == expected_text(server, ARTICLE) + "\n"
    for word in ("Überschwemmungsgebiet", "Förderbescheide", "Kämmerer", "begrüßte", "Gärten"):
        assert word in result.stdout
    assert "Ã" not in result.stdout and "\ufffd" not in result.stdout


# -- 5. robots.txt ----------------------------------------------------------------------------


def test_robots_txt_disallow_is_obeyed_unless_ignored(
    site: SiteServer, cli: Cli, store: Path
) -> None:
    site.robots_txt = DISALLOW_PRIVATE
    private = "/private/hochwasserschutz-donau.html"
    site.write(private, site.read(ARTICLE))

    refused = cli("fetch", site.url(private), store=store)

    assert "robots" in assert_error(refused, 1).lower()
    assert site.hits["/robots.txt"] >= 1
    assert site.hits[private] == 0
    assert not store.exists() or count(store, "articles") == 0

    allowed = cli("fetch", "--ignore-robots", site.url(private), store=store)
    assert status_line(allowed).startswith("new:")
    assert allowed.stdout.splitlines()[0] == TITLE


# -- 6. the life of one article -------------------------------------------------------------


def test_change_cycle_new_unchanged_churn_edit_retitle(
    site: SiteServer, cli: Cli, store: Path
) -> None:
    url = site.url(ARTICLE)
    original = site.read(ARTICLE)

    first = cli("fetch", url, store=store)
    assert status_line(first).startswith("new:")
    text_file = store.parent / "articles" / query(store, "SELECT text_file FROM articles")[0][0]

    # The same page again: nothing new.
    assert status_line(cli("fetch", url, store=store)).startswith("unchanged:")
    assert (count(store, "versions"), count(store, "events")) == (1, 1)

    # Only the template churns: ads, related teasers, ticker, render time.
    site.write(ARTICLE, churn(original))
    churned = cli("fetch", url, store=store)
    assert status_line(churned).startswith("unchanged:")
    assert churned.stdout == first.stdout
    assert (count(store, "versions"), count(store, "events")) == (1, 1)

    # One sentence of the body is edited.
    site.write(ARTICLE, replace_once(churn(original), OLD_SENTENCE, NEW_SENTENCE))
    edited = cli("fetch", "--json", url, store=store)
    line = status_line(edited)
    assert line.startswith("changed:"), line
    assert re.search(r"\b(minor|major)\b", line), line
    outcome = json.loads(edited.stdout)["outcome"]
    assert outcome["kind"] == "changed" and outcome["version"] == 2
    assert outcome["change_class"] in ("minor", "major")
    assert outcome["summary"]
    v1, v2 = query(store, "SELECT * FROM versions ORDER BY number")
    assert OLD_SENTENCE in v1["text"] and NEW_SENTENCE not in v1["text"]
    assert NEW_SENTENCE in v2["text"] and OLD_SENTENCE not in v2["text"]
    assert v2["change_class"] == outcome["change_class"]
    assert v2["words_added"] > 0 and v2["words_removed"] > 0
    assert "Sommer 2028" in (v2["diff"] or ""), "the stored diff names the edited sentence"
    (event,) = query(store, "SELECT * FROM events WHERE kind = 'changed'")
    assert event["summary"].strip()
    assert text_file.read_text(encoding="utf-8") == v2["text"] + "\n"
    assert query(store, "SELECT version_count FROM articles")[0][0] == 2

    # Only the title changes.
    site.write(
        ARTICLE,
        replace_once(replace_once(original, OLD_SENTENCE, NEW_SENTENCE), TITLE, NEW_TITLE, count=3),
    )
    retitled = cli("fetch", "--json", url, store=store)
    line = status_line(retitled)
    assert line.startswith("changed:") and "title" in line, line
    outcome = json.loads(retitled.stdout)["outcome"]
    assert (outcome["kind"], outcome["version"], outcome["change_class"]) == ("changed", 3, "title")
    assert count(store, "versions") == 3
    kinds = [row["kind"] for row in query(store, "SELECT kind FROM events ORDER BY id")]
    assert kinds == ["new", "changed", "title_changed"]
    v3 = query(store, "SELECT * FROM versions WHERE number = 3")[0]
    assert (v3["title"], v3["change_class"]) == (NEW_TITLE, "title")
    assert text_file.read_text(encoding="utf-8").splitlines()[0] == NEW_TITLE
    assert sorted(p.name for p in text_file.parent.iterdir()) == [text_file.name]


# -- 7. --no-save ---------------------------------------------------------------------------------


def test_no_save_prints_and_leaves_no_store(site: SiteServer, cli: Cli, store: Path) -> None:
    result = cli("fetch", "--no-save", site.url(ARTICLE), store=store)

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout.splitlines()[0] == TITLE
    assert not store.parent.exists()

    as_json = json.loads(cli("fetch", "--no-save", "--json", site.url(ARTICLE), store=store).stdout)
    assert as_json["outcome"] is None and as_json["title"] == TITLE
    assert not store.parent.exists()


# -- 8. two writers ----------------------------------------------------------------------------


def numbered_article(template: str, number: int, path: str) -> str:
    """A distinct article at ``path``, built on the fixture page's template."""
    html = replace_once(template, TITLE, f"Meldung Nummer {number}: {TITLE}", count=3)
    html = replace_once(
        html, f'<link rel="canonical" href="{ARTICLE}">', f'<link rel="canonical" href="{path}">'
    )
    return replace_once(
        html,
        "Nach dem Hochwasser im Juni hat",
        f"Nach dem Hochwasser im Juni, so Meldung Nummer {number}, hat",
    )


def test_two_processes_record_into_one_store_at_once(
    site: SiteServer, store: Path, tmp_path: Path
) -> None:
    template = site.read(ARTICLE)
    paths = [f"/serie/meldung-{number}.html" for number in range(10)]
    for number, path in enumerate(paths):
        site.write(path, numbered_article(template, number, path))
    chains = [paths[0::2], paths[1::2]]

    def run_chain(chain: list[str], home: Path) -> tuple[float, float, list[Any]]:
        started = time.monotonic()
        results = [run_cli("fetch", site.url(path), store=store, home=home) for path in chain]
        return started, time.monotonic(), results

    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [
            pool.submit(run_chain, chain, tmp_path / f"home-{index}")
            for index, chain in enumerate(chains)
        ]
        (start_a, end_a, results_a), (start_b, end_b, results_b) = (
            future.result(timeout=120) for future in futures
        )

    assert start_a < end_b and start_b < end_a, "the two chains did not overlap"
    results = results_a + results_b

    for result in results:
        assert "locked" not in result.stderr.lower(), result.stderr
        assert status_line(result).startswith("new:")
    assert [count(store, table) for table in ("articles", "versions", "events")] == [10, 10, 10]
    stored = {row[0] for row in query(store, "SELECT canonical_url FROM articles")}
    assert stored == {site.url(path) for path in paths}
    assert query(store, "PRAGMA integrity_check")[0][0] == "ok"
    names = {row[0] for row in query(store, "SELECT text_file FROM articles")}
    assert names == {path.name for path in (store.parent / "articles").iterdir()}
    assert len(names) == 10
