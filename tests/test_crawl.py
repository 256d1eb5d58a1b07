"""``crawler crawl`` end to end: real Scrapy runs in subprocesses against a loopback site."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from newssite import GERMAN, PAGES, Entry, publish, sources_toml
from servers import DISALLOW_PRIVATE, Reply, SiteServer, html_reply, run_cli


@pytest.fixture
def news(tmp_path: Path) -> Iterator[SiteServer]:
    root = tmp_path / "site"
    root.mkdir()
    with SiteServer(root) as server:
        yield server


def crawl(tmp_path: Path, sources: Path, *names: str) -> tuple[int, dict, str]:
    done = run_cli("crawl", *names, "--sources", sources, "--json", store=tmp_path / "crawl.db")
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, json.loads(done.stdout), done.stderr


def query(tmp_path: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(tmp_path / "crawl.db") as conn:
        return conn.execute(sql).fetchall()


def feed_source(news: SiteServer, extra: str = "") -> str:
    return f'name = "feed"\ntype = "feed"\nurl = "{news.url("/feed.xml")}"\n{extra}'


ENTRIES = [Entry(slug) for slug in GERMAN]


def test_feed_discovery_then_conditional_revisits(news, tmp_path):
    publish(news, ENTRIES)
    sources = sources_toml(
        tmp_path / "sources.toml", feed_source(news, 'revisit = { interval = "0s" }')
    )
    code, summary, _ = crawl(tmp_path, sources)
    assert code == 0
    assert summary["totals"]["new"] == len(ENTRIES)
    assert query(tmp_path, "SELECT count(*) FROM articles WHERE source = 'feed'") == [(6,)]
    assert query(tmp_path, "SELECT outcome, new FROM runs") == [("ok", 6)]
    # The feed links carry ?utm_source=rss; the store keeps the canonical URL.
    assert query(tmp_path, "SELECT count(*) FROM articles WHERE canonical_url LIKE '%utm_%'") == [
        (0,)
    ]

    code, summary, _ = crawl(tmp_path, sources)
    assert code == 0
    assert summary["totals"].get("not_modified") == len(ENTRIES)
    assert "new" not in summary["totals"] and "changed" not in summary["totals"]
    headers = news.headers_seen[ENTRIES[0].path][-1]
    assert headers.get("If-None-Match", "").startswith('"')
    assert query(tmp_path, "SELECT count(*) FROM versions") == [(6,)]


def test_template_churn_is_unchanged_and_a_body_edit_is_a_change(news, tmp_path):
    publish(news, ENTRIES[:2])
    sources = sources_toml(
        tmp_path / "sources.toml", feed_source(news, 'revisit = { interval = "0s" }')
    )
    crawl(tmp_path, sources)
    dwn = news.read(ENTRIES[0].path)
    news.write(
        ENTRIES[0].path, dwn.replace("07.01.2026", "09.01.2026").replace("Anzeige", "Werbung")
    )
    tagesschau = news.read(ENTRIES[1].path)
    golden = (PAGES / f"{ENTRIES[1].slug}.expected.txt").read_text(encoding="utf-8")
    paragraph = golden.splitlines()[3]
    assert paragraph in tagesschau
    news.write(
        ENTRIES[1].path, tagesschau.replace(paragraph, paragraph + " Das bestätigte die Bahn.")
    )
    code, summary, _ = crawl(tmp_path, sources)
    assert code == 0
    assert summary["totals"].get("unchanged") == 1
    assert summary["totals"].get("changed") == 1
    changed = query(
        tmp_path,
        "SELECT a.canonical_url FROM events e JOIN articles a ON a.id = e.article_id WHERE e.kind = 'changed'",
    )
    assert changed == [(news.url(ENTRIES[1].path),)]


def test_sitemap_index_with_gzip_child_and_max_age(news, tmp_path):
    entries = [*ENTRIES[:3], Entry("alte-meldung", date="2020-01-01T08:00:00+00:00")]
    publish(news, entries)
    sources = sources_toml(
        tmp_path / "sources.toml",
        f'name = "map"\ntype = "sitemap"\nurl = "{news.url("/sitemap.xml")}"\nmax_age = "3650d"',
        f'name = "news"\ntype = "sitemap"\nurl = "{news.url("/news-sitemap.xml")}"\nmax_age = "30d"',
    )
    code, summary, _ = crawl(tmp_path, sources, "map")
    assert code == 0 and summary["totals"]["new"] == 4
    code, summary, _ = crawl(tmp_path, sources, "news")
    assert code == 0
    runs = {run["source"]: run for run in summary["sources"]}
    assert runs["news"]["counts"].get("too_old") == 1


def test_robots_txt_sitemap_lines(news, tmp_path):
    publish(news, ENTRIES[:2])
    news.robots_txt = f"User-agent: *\nAllow: /\nSitemap: {news.url('/news-sitemap.xml')}\n"
    sources = sources_toml(
        tmp_path / "sources.toml",
        f'name = "robots"\ntype = "sitemap"\nurl = "{news.url("/robots.txt")}"',
    )
    code, summary, _ = crawl(tmp_path, sources)
    assert code == 0 and summary["totals"]["new"] == 2


def test_site_crawl_follows_sections_within_patterns_and_robots(news, tmp_path):
    publish(news, ENTRIES)
    news.write("/private/intern.html", news.read(ENTRIES[0].path).replace("Nato", "Intern"))
    news.write("/index.html", "<html><body><a href='/politik/'>Politik</a></body></html>")
    news.robots_txt = DISALLOW_PRIVATE
    sources = sources_toml(
        tmp_path / "sources.toml",
        f'name = "site"\ntype = "site"\nurl = "{news.url("/")}"\n'
        'article_pattern = "/artikel/"\ndeny = ["heise"]\ndepth = 2',
    )
    code, summary, _ = crawl(tmp_path, sources)
    assert code == 0, summary
    assert summary["totals"]["new"] == len(ENTRIES) - 1  # heise is denied
    assert news.hits["/private/intern.html"] == 0
    assert news.hits["/artikel/heise-ssd-preise.html"] == 0


def test_retry_after_is_honoured(news, tmp_path):
    publish(news, ENTRIES[:1])
    page = news.read(ENTRIES[0].path)
    answers = iter([Reply(429, b"slow down", {"Retry-After": "1"})])
    news.set_route(ENTRIES[0].path, lambda request: next(answers, None) or html_reply(page))
    sources = sources_toml(tmp_path / "sources.toml", feed_source(news))
    code, summary, _ = crawl(tmp_path, sources)
    assert code == 0 and summary["totals"]["new"] == 1
    assert news.hits[ENTRIES[0].path] == 2


def test_server_errors_on_revisit_are_never_changes_or_removals(news, tmp_path):
    publish(news, ENTRIES[:2])
    sources = sources_toml(
        tmp_path / "sources.toml",
        feed_source(news, 'revisit = { interval = "0s", confirm_removal_after = "0s" }'),
    )
    crawl(tmp_path, sources)
    before = query(tmp_path, "SELECT * FROM versions") + query(
        tmp_path, "SELECT id, status FROM articles"
    )
    for entry in ENTRIES[:2]:
        news.set_route(entry.path, Reply(503, b"maintenance", {"Content-Type": "text/html"}))
    for _ in range(2):
        code, summary, _ = crawl(tmp_path, sources)
        assert code == 0
        assert summary["totals"]["errors"] == 2
    after = query(tmp_path, "SELECT * FROM versions") + query(
        tmp_path, "SELECT id, status FROM articles"
    )
    assert after == before
    assert query(tmp_path, "SELECT kind FROM events WHERE kind != 'new'") == []


def test_a_404_on_a_known_article_is_confirmed_then_removed(news, tmp_path):
    publish(news, ENTRIES[:2])
    sources = sources_toml(
        tmp_path / "sources.toml",
        feed_source(news, 'revisit = { interval = "0s", confirm_removal_after = "0s" }'),
    )
    crawl(tmp_path, sources)
    (Path(news.root) / ENTRIES[0].path.lstrip("/")).unlink()
    code, summary, _ = crawl(tmp_path, sources)
    assert code == 0 and "removed" not in summary["totals"]
    assert query(tmp_path, "SELECT count(*) FROM articles WHERE gone_since IS NOT NULL") == [(1,)]
    code, summary, _ = crawl(tmp_path, sources)
    assert summary["totals"]["removed"] == 1
    assert query(tmp_path, "SELECT status, count(*) FROM articles GROUP BY 1") == [
        ("live", 1),
        ("removed", 1),
    ]
    assert query(tmp_path, "SELECT count(*) FROM events WHERE kind = 'removed'") == [(1,)]


def test_one_article_under_several_urls_is_stored_once(news, tmp_path):
    publish(news, ENTRIES[:1])
    canonical_page = news.read(ENTRIES[0].path)
    news.write("/amp/artikel.html", canonical_page)  # an AMP copy declaring the same canonical
    news.write("/print/artikel.html", canonical_page)
    sources = sources_toml(
        tmp_path / "sources.toml",
        'name = "list"\ntype = "urls"\nurls = ['
        + ", ".join(
            f'"{news.url(path)}"'
            for path in (
                ENTRIES[0].path,
                ENTRIES[0].path + "?utm_medium=social&fbclid=x",
                "/amp/artikel.html",
                "/print/artikel.html",
            )
        )
        + "]",
    )
    code, summary, _ = crawl(tmp_path, sources)
    assert code == 0
    assert query(tmp_path, "SELECT count(*) FROM articles") == [(1,)]
    assert query(tmp_path, "SELECT count(*) FROM versions") == [(1,)]
    assert query(tmp_path, "SELECT count(*) FROM article_urls") >= [(3,)]


def test_malformed_feed_and_sitemap_fail_their_sources_only(news, tmp_path):
    publish(news, ENTRIES[:2])
    news.write("/broken-feed.xml", "<html><body>Wartungsarbeiten</body></html>")
    news.write("/broken-sitemap.xml", "<?xml version='1.0'?><urlset><url><loc>")
    sources = sources_toml(
        tmp_path / "sources.toml",
        f'name = "bad-feed"\ntype = "feed"\nurl = "{news.url("/broken-feed.xml")}"',
        f'name = "bad-map"\ntype = "sitemap"\nurl = "{news.url("/broken-sitemap.xml")}"',
        feed_source(news),
    )
    code, summary, stderr = crawl(tmp_path, sources)
    assert code == 1
    runs = {run["source"]: run for run in summary["sources"]}
    assert runs["feed"]["outcome"] == "ok" and runs["feed"]["counts"]["new"] == 2
    assert (
        runs["bad-feed"]["outcome"] == "failed"
        and "not a usable feed" in runs["bad-feed"]["errors"][0]
    )
    assert runs["bad-map"]["outcome"] == "failed"
    assert stderr.strip().splitlines()[-1].startswith("error: 2 of 3 sources failed")
    assert query(tmp_path, "SELECT source, outcome FROM runs ORDER BY source") == [
        ("bad-feed", "failed"),
        ("bad-map", "failed"),
        ("feed", "ok"),
    ]


def test_entity_tricks_in_feeds_are_not_expanded(news, tmp_path):
    news.write(
        "/evil.xml",
        '<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x SYSTEM "file:///etc/passwd">'
        '<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        f'<rss version="2.0"><channel><item><title>&x;&b;</title><link>{news.url("/artikel/x.html")}'
        "</link></item><item><link>javascript:alert(1)</link></item></channel></rss>",
    )
    sources = sources_toml(
        tmp_path / "sources.toml", f'name = "evil"\ntype = "feed"\nurl = "{news.url("/evil.xml")}"'
    )
    code, summary, _ = crawl(tmp_path, sources)
    assert "root:" not in json.dumps(summary)
    assert news.hits["/artikel/x.html"] <= 1
    assert query(tmp_path, "SELECT count(*) FROM fetches WHERE url LIKE 'javascript:%'") == [(0,)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nope",), "error: unknown source 'nope'"),
        (("--sources", "missing.toml"), "no such sources file"),
    ],
)
def test_bad_invocations_are_one_line(news, tmp_path, args, message):
    sources_toml(tmp_path / "sources.toml", feed_source(news))
    if args[0] != "--sources":
        args = (*args, "--sources", str(tmp_path / "sources.toml"))
    done = run_cli("crawl", *args, store=tmp_path / "crawl.db")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr


CHALLENGE = "<html><head><title>Just a moment...</title></head><body><p>Checking your browser before accessing the site.</p><script>window._cf_chl_opt={}</script></body></html>"
CONSENT = "<html><head><title>Zustimmung zu Cookies | Testzeitung</title></head><body><div id='sp_message_container_1'><p>Wir und unsere 143 Partner verwenden Cookies. Bitte stimmen Sie zu, um fortzufahren.</p><button>Alle akzeptieren</button></div></body></html>"
PAYWALL = "<html><head><title>Artikel</title></head><body><article><h1>Stromnetz</h1><p>Der Ausbau stockt.</p><p>Jetzt weiterlesen mit Z+ für nur 1 Euro im ersten Monat.</p></article></body></html>"


def test_challenge_consent_and_paywall_pages_are_failed_checks(news, tmp_path):
    publish(news, ENTRIES[:3])
    sources = sources_toml(
        tmp_path / "sources.toml",
        feed_source(news, 'revisit = { interval = "0s", confirm_removal_after = "0s" }'),
    )
    crawl(tmp_path, sources)
    before = query(tmp_path, "SELECT * FROM versions") + query(
        tmp_path, "SELECT id, status, fingerprint FROM articles"
    )
    for entry, page in zip(ENTRIES[:3], (CHALLENGE, CONSENT, PAYWALL), strict=True):
        news.set_route(entry.path, html_reply(page))
    for _ in range(2):
        code, summary, _ = crawl(tmp_path, sources)
        assert code == 0 and summary["totals"]["errors"] == 3
    after = query(tmp_path, "SELECT * FROM versions") + query(
        tmp_path, "SELECT id, status, fingerprint FROM articles"
    )
    assert after == before
    assert query(tmp_path, "SELECT kind FROM events WHERE kind != 'new'") == []
    outcomes = query(
        tmp_path, "SELECT DISTINCT outcome FROM fetches WHERE outcome NOT IN ('new') ORDER BY 1"
    )
    assert outcomes == [("blocked",), ("paywall",)]


class _Receiver:
    """A webhook receiver on 127.0.0.1 that records the JSON bodies it is sent."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", 0))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_crawl_sends_alerts_and_writes_the_atom_feed(news, tmp_path):
    import feedparser

    receiver = _Receiver()
    try:
        publish(news, ENTRIES[:2])
        sources = tmp_path / "sources.toml"
        sources.write_text(
            f'[alerts]\nwebhook = "{receiver.url}"\n\n[[source]]\n'
            + feed_source(news, 'alert = { kinds = ["new", "changed"] }'),
            encoding="utf-8",
        )
        code, summary, _ = crawl(tmp_path, sources)
        assert code == 0 and summary["alerts"].startswith("alerts: 2 delivered")
        assert sorted(payload["kind"] for payload in receiver.received) == ["new", "new"]
        assert {payload["source"] for payload in receiver.received} == {"feed"}
        code, summary, _ = crawl(tmp_path, sources)
        assert len(receiver.received) == 2  # nothing is sent twice
    finally:
        receiver.close()
    feed = feedparser.parse((tmp_path / "changes.atom").read_bytes())
    assert not feed.bozo and len(feed.entries) == 2
