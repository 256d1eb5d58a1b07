"""Catalogue group G: a failed fetch is never content (G1), no flip-flop versions (G2),
conditional GET (G3), extraction noise and extractor upgrades (G4), extraction failure on
a known article (G5). Real crawls through the CLI against a loopback FaultServer."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from faults import (
    ARTICLE_PATH,
    FaultServer,
    Raw,
    binary,
    bomb,
    challenge,
    publish_article,
    query,
    reset_after,
    run_crawl,
    seed_two_versions,
    sequence,
    slow_headers,
    soft_404,
    stall_after_headers,
    status,
    urls_source,
    write_sources,
)
from servers import Reply, html_reply, large_page

# A colspan no table should have, over enough rows that lxml and trafilatura take many
# seconds (catalogue A7, trafilatura#657): the extraction time limit must stop it.
PATHOLOGICAL_TABLE = (
    "<html><head><title>Tabelle</title></head><body><article><p>Ein Absatz.</p><table>"
    "<tr><td colspan='9007199254740991'>x</td></tr>"
    + "<tr><td>a</td><td>b</td></tr>" * 3000
    + "</table></article></body></html>"
)
COLLAPSED = (
    "<html><head><title>Bahn: Pünktlichkeit</title></head><body><article>"
    "<h1>Bahn: Pünktlichkeit</h1><p>"
    + " ".join(["Die Bahn war im Oktober unpünktlich, sagt ein Sprecher."] * 5)
    + "</p></article></body></html>"
)

# (id, reply at the article's address, expected outcome in the fetches log, settings)
FAILURES: list[tuple[str, Reply, str, dict[str, str]]] = [
    ("no-answer", slow_headers(0.5), "timeout", {}),
    ("stall-after-headers", stall_after_headers(), "timeout", {}),
    ("reset-rst", reset_after(5_000, rst=True), "data_loss", {}),
    ("short-body-fin", reset_after(5_000, rst=False), "data_loss", {}),
    ("http-403", status(403), "client_error", {}),
    ("http-500", status(500), "server_error", {}),
    ("http-503", status(503), "server_error", {}),
    ("http-429-absurd-retry-after", status(429, "99999999"), "rate_limited", {}),
    ("cloudflare-200", challenge("cloudflare"), "blocked", {}),
    ("consent-200", challenge("consent"), "blocked", {}),
    ("paywall-200", challenge("paywall"), "paywall", {}),
    ("empty-body", html_reply(b""), "empty", {}),
    ("markup-only", html_reply("<html><body></body></html>"), "empty", {}),
    ("too-large", html_reply(large_page(300_000)), "too_large", {"CRAWLER_MAX_SIZE": "100000"}),
    ("gzip-bomb", bomb("gzip", 4 * 1024 * 1024), "too_large", {"CRAWLER_MAX_SIZE": "1000000"}),
    ("pdf-as-html", binary("pdf"), "unsupported_type", {}),
    ("jpeg-as-html", binary("jpeg"), "unsupported_type", {}),
    ("soft-404-redirect-home", Reply(302, b"", {"Location": "/"}), "gone_suspect", {}),
    ("http-404-first-sight", status(404), "gone_suspect", {}),
    ("collapsed-text", html_reply(COLLAPSED), "collapsed", {}),
    ("extract-timeout", html_reply(PATHOLOGICAL_TABLE), "extract_timeout", {}),
]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FaultServer, Path]]:
    """A server with the known article and a store holding 2 versions of it (a template
    to copy: each test crawls its own copy)."""
    root = tmp_path_factory.mktemp("g-site")
    template = tmp_path_factory.mktemp("g-store")
    with FaultServer(root) as server:
        server.write("/index.html", "<html><body><h1>Startseite</h1></body></html>")
        sources = sources_for(server, template)
        seed_two_versions(server, template / "crawl.db", sources)
        yield server, template


def sources_for(server: FaultServer, where: Path) -> Path:
    return write_sources(
        where / "sources.toml",
        urls_source("known", [server.url(ARTICLE_PATH)]),
        alerts=f'webhook = "{server.url("/hook")}"',
    )


@pytest.fixture
def known(seeded: tuple[FaultServer, Path], tmp_path: Path) -> Iterator[tuple[FaultServer, Path]]:
    """This test's copy of the seeded store (and sources), and the shared server."""
    server, template = seeded
    shutil.copytree(template, tmp_path / "store")
    store = tmp_path / "store" / "crawl.db"
    publish_article(server, edits=1)
    server.posts.clear()
    yield server, store
    server.clear_route(ARTICLE_PATH)
    publish_article(server, edits=1)


def snapshot(store: Path) -> tuple[list[tuple], list[tuple], list[tuple]]:
    """Versions, events and the article row's content state: what a failure must not touch."""
    return (
        query(store, "SELECT id, number, fingerprint FROM versions ORDER BY id"),
        query(store, "SELECT id, kind FROM events ORDER BY id"),
        query(store, "SELECT status, fingerprint, version_count, etag, body_hash FROM articles"),
    )


@pytest.mark.parametrize(
    ("reply", "outcome", "settings"),
    [case[1:] for case in FAILURES],
    ids=[case[0] for case in FAILURES],
)
def test_g1_a_failed_fetch_is_never_content(known, reply, outcome, settings):
    server, store = known
    before = snapshot(store)
    server.set_route(ARTICLE_PATH, reply)
    extra = (
        {"CRAWLER_EXTRACT_TIMEOUT": "1", **settings} if outcome == "extract_timeout" else settings
    )
    run = run_crawl(store, store.parent / "sources.toml", settings=extra)
    assert snapshot(store) == before  # 0 new versions, 0 events, the validators kept
    assert server.webhooks() == []
    assert run.totals.get("errors") == 1, run
    assert not {"new", "changed", "removed"} & set(run.totals)
    last = query(store, "SELECT outcome, reason FROM fetches ORDER BY id DESC LIMIT 1")
    assert last[0][0] == outcome, last
    if outcome == "extract_timeout":
        assert run.elapsed < 60  # the 3000-row table alone takes minutes to extract


def test_g2_no_flip_flop_versions(known):
    """OK(A) -> 503 -> OK(A) -> challenge -> OK(A): one version more than seeded, never an
    event: the baseline is the last successful extraction, not the last fetch."""
    server, store = known
    sources = store.parent / "sources.toml"
    before = snapshot(store)
    for fault in (status(503), None, challenge("cloudflare"), None, soft_404(), None):
        if fault is None:
            server.clear_route(ARTICLE_PATH)
        else:
            server.set_route(ARTICLE_PATH, fault)
        run = run_crawl(store, sources)
        assert not {"new", "changed", "removed"} & set(run.totals), run
    assert snapshot(store)[:2] == before[:2]
    assert server.webhooks() == []


def test_g3_validators_only_from_good_answers(known):
    """A 200 challenge page with its own ETag must not replace the stored ETag; the next
    revisit still sends the article's validator, and a 304 is a check, not a change."""
    server, store = known
    sources = store.parent / "sources.toml"
    (etag,) = query(store, "SELECT etag FROM articles")[0]
    assert etag and etag.startswith('"')
    page = challenge("cloudflare")
    server.set_route(ARTICLE_PATH, Reply(200, page.body, dict(page.headers, ETag='"challenge"')))
    run_crawl(store, sources)
    assert query(store, "SELECT etag FROM articles") == [(etag,)]
    server.clear_route(ARTICLE_PATH)
    server.reset_counts()
    run = run_crawl(store, sources)
    assert server.headers_seen[ARTICLE_PATH][-1].get("If-None-Match") == etag
    assert run.totals.get("not_modified") == 1, run


def test_g3_weak_etag_and_wrong_304(known):
    """A weak ETag is stored and sent back as it came. A server that wrongly answers 304
    for changed content hides the change until it sends a 200 (documented limit): the 304
    is recorded as not_modified, and the next 200 is compared with the last version."""
    server, store = known
    sources = store.parent / "sources.toml"
    html = publish_article(server, edits=1)
    weak = 'W/"weak-1"'

    def weakly(request):
        if request.headers.get("If-None-Match") == weak:
            return Reply(304, b"", {"ETag": weak})
        return Reply(200, html.encode(), {"Content-Type": "text/html; charset=utf-8", "ETag": weak})

    server.set_route(ARTICLE_PATH, weakly)
    run_crawl(store, sources)  # same text: unchanged, the weak ETag stored
    assert query(store, "SELECT etag FROM articles") == [(weak,)]
    html = publish_article(server, edits=2)  # changed, but the server still says 304
    run = run_crawl(store, sources)
    assert run.totals.get("not_modified") == 1
    assert query(store, "SELECT count(*) FROM versions") == [(2,)]
    server.set_route(
        ARTICLE_PATH,
        Reply(200, html.encode(), {"Content-Type": "text/html; charset=utf-8", "ETag": '"v3"'}),
    )
    run = run_crawl(store, sources)
    assert run.totals.get("changed") == 1
    assert query(store, "SELECT count(*) FROM versions") == [(3,)]


def test_g4_extractor_upgrade_rebaselines_silently(known):
    """Versions carry the extractor that made them; when it differs from the one running
    now, a different text is a new baseline version without an event or webhook."""
    server, store = known
    sources = store.parent / "sources.toml"
    (extractor,) = query(store, "SELECT extractor FROM versions ORDER BY id DESC LIMIT 1")[0]
    assert extractor and "trafilatura" in extractor
    _set_old_extractor(store)
    # The old extractor is simulated by a stored text that differs from today's output.
    publish_article(server, edits=2)
    events_before = query(store, "SELECT count(*) FROM events")
    run = run_crawl(store, sources)
    assert run.totals.get("rebaselined") == 1, run
    assert query(store, "SELECT count(*) FROM events") == events_before
    assert query(store, "SELECT count(*) FROM versions") == [(3,)]
    assert query(store, "SELECT extractor FROM versions ORDER BY id DESC LIMIT 1") == [(extractor,)]
    assert server.webhooks() == []


def _set_old_extractor(store: Path) -> None:
    import sqlite3

    conn = sqlite3.connect(store)
    with conn:
        conn.execute("UPDATE version_rows SET extractor = 'trafilatura 1.0.0; extraction 0'")
    conn.close()


def test_g4_template_noise_is_not_change(known):
    """Rotating ads, "updated N min ago" and whitespace around the article: same text."""
    server, store = known
    sources = store.parent / "sources.toml"
    html = publish_article(server, edits=1)
    noisy = html.replace("<body", "<body data-render='1732446000'", 1).replace(
        "</body>", "<aside class='ad'>Anzeige: Jetzt Kredit sichern!</aside>\n\n</body>"
    )
    server.write(ARTICLE_PATH, noisy)
    run = run_crawl(store, sources)
    assert run.totals.get("unchanged") == 1, run
    assert server.webhooks() == []


@pytest.mark.parametrize(
    ("reply", "outcome"),
    [
        (
            html_reply("<html><head><title>x</title></head><body><nav>Start</nav></body></html>"),
            None,
        ),
        (html_reply(COLLAPSED), "collapsed"),
    ],
    ids=["nothing-extracted", "a-fraction-extracted"],
)
def test_g5_extraction_failure_on_a_known_article(known, reply, outcome):
    server, store = known
    before = snapshot(store)
    server.set_route(ARTICLE_PATH, reply)
    run = run_crawl(store, store.parent / "sources.toml")
    assert snapshot(store) == before
    assert run.totals.get("errors") == 1
    (got,) = query(store, "SELECT outcome FROM fetches ORDER BY id DESC LIMIT 1")[0]
    assert got in ((outcome,) if outcome else ("empty", "no_text", "too_short"))


def test_raw_replies_are_raw():
    """The scaffolding itself: Raw replies are replies (routes may return either)."""
    assert isinstance(reset_after(), Reply) and isinstance(reset_after(), Raw)
    assert sequence(status(500), status(200))
