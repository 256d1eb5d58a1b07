"""Catalogue group B: malformed feeds and sitemaps (B1), gzip sitemaps and a sitemap bomb
(B3), huge sitemaps (B4). Real crawls through the CLI against a loopback FaultServer."""

from __future__ import annotations

import gzip

import pytest
from faults import FaultServer, bomb, news_page, query, run_crawl, write_sources
from servers import Reply

URLSET = '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'


def urlset(fault_server: FaultServer, numbers: range, between: str = "") -> str:
    entries = between.join(
        f"<url><loc>{fault_server.url(f'/a/{n}.html')}</loc></url>" for n in numbers
    )
    return f'<?xml version="1.0" encoding="UTF-8"?>{URLSET}{entries}</urlset>'


def rss(fault_server: FaultServer, numbers: range) -> str:
    items = "".join(
        f"<item><title>T{n}</title><link>{fault_server.url(f'/a/{n}.html')}</link></item>"
        for n in numbers
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>x</title>{items}</channel></rss>'
    )


def publish_pages(fault_server: FaultServer, numbers: range) -> None:
    for n in numbers:
        fault_server.write(f"/a/{n}.html", news_page(n))


def source(name: str, kind: str, url: str) -> str:
    return f'name = "{name}"\ntype = "{kind}"\nurl = "{url}"'


def sources_by_name(run) -> dict[str, dict]:
    return {entry["source"]: entry for entry in run.summary["sources"]}


def test_b1_malformed_feeds_and_sitemaps_never_stop_the_crawl(fault_server, tmp_path):
    publish_pages(fault_server, range(20))
    xml = {"Content-Type": "application/xml"}
    routes = {
        "/blank-line.xml": Reply(200, b"\n\n" + urlset(fault_server, range(0, 2)).encode(), xml),
        "/comments.xml": Reply(200, urlset(fault_server, range(2, 4), "<!-- ad -->").encode(), xml),
        "/truncated.xml": Reply(200, urlset(fault_server, range(4, 6)).encode()[:-40], xml),
        "/html.xml": Reply(200, b"<html><body><h1>Wartung</h1></body></html>", xml),
        "/blank.xml": Reply(200, b"", xml),
        "/feed-truncated.xml": Reply(200, rss(fault_server, range(6, 8)).encode()[:-30], xml),
        "/feed-html.xml": Reply(
            200, b"<html><body>Nope</body></html>", {"Content-Type": "text/html"}
        ),
        "/feed-blank.xml": Reply(200, b"   ", xml),
        "/good-feed.xml": Reply(200, rss(fault_server, range(10, 13)).encode(), xml),
    }
    tables = []
    for path, reply in routes.items():
        fault_server.set_route(path, reply)
        kind = "feed" if "feed" in path else "sitemap"
        tables.append(source(path.strip("/").removesuffix(".xml"), kind, fault_server.url(path)))
    sources = write_sources(tmp_path / "s.toml", *tables)
    store = tmp_path / "crawl.db"
    run = run_crawl(store, sources)
    runs = sources_by_name(run)
    assert len(runs) == len(routes)
    # Recovered: every URL found (a blank line before <?xml, comments in <urlset>).
    assert runs["blank-line"]["counts"].get("new") == 2, runs["blank-line"]
    assert runs["comments"]["counts"].get("new") == 2, runs["comments"]
    # Unreadable ones are failed runs with a reason, not crashes; the good one is fine.
    for name in ("html", "blank", "feed-html", "feed-blank"):
        assert runs[name]["outcome"] == "failed" and runs[name]["errors"], runs[name]
    assert runs["good-feed"]["outcome"] == "ok"
    assert runs["good-feed"]["counts"].get("new") == 3
    assert run.returncode == 1
    errors = dict(query(store, "SELECT source, error FROM runs WHERE outcome = 'failed'"))
    assert {"html", "blank", "feed-html", "feed-blank"} <= set(errors)


def test_b3_gzip_sitemaps_are_decoded_once(fault_server, tmp_path):
    publish_pages(fault_server, range(4))
    plain = urlset(fault_server, range(0, 2)).encode()
    double = urlset(fault_server, range(2, 4)).encode()
    # A .gz file served as such, and a .gz file with Content-Encoding: gzip on top.
    fault_server.set_route(
        "/map.xml.gz", Reply(200, gzip.compress(plain), {"Content-Type": "application/gzip"})
    )
    fault_server.set_route(
        "/double.xml.gz",
        Reply(
            200,
            gzip.compress(gzip.compress(double)),
            {"Content-Type": "application/gzip", "Content-Encoding": "gzip"},
        ),
    )
    sources = write_sources(
        tmp_path / "s.toml",
        source("gz", "sitemap", fault_server.url("/map.xml.gz")),
        source("double", "sitemap", fault_server.url("/double.xml.gz")),
    )
    run = run_crawl(tmp_path / "crawl.db", sources)
    runs = sources_by_name(run)
    assert runs["gz"]["counts"].get("new") == 2, runs["gz"]
    assert runs["double"]["counts"].get("new") == 2, runs["double"]


@pytest.mark.slow
def test_b3_a_gzip_sitemap_bomb_is_a_recorded_error(fault_server, tmp_path):
    # 100 MiB once decompressed, past the 64 MiB sitemap limit, in both forms.
    fault_server.set_route("/bomb.xml", bomb("gzip", 100 * 1024 * 1024))
    body = bomb("gzip", 100 * 1024 * 1024).body
    fault_server.set_route("/bomb.xml.gz", Reply(200, body, {"Content-Type": "application/gzip"}))
    sources = write_sources(
        tmp_path / "s.toml",
        source("encoded", "sitemap", fault_server.url("/bomb.xml")),
        source("file", "sitemap", fault_server.url("/bomb.xml.gz")),
    )
    store = tmp_path / "crawl.db"
    run = run_crawl(store, sources)
    runs = sources_by_name(run)
    for name in ("encoded", "file"):
        assert runs[name]["outcome"] == "failed" and runs[name]["errors"], runs[name]
    assert query(store, "SELECT count(*) FROM articles") == [(0,)]


@pytest.mark.slow
def test_b4_a_huge_sitemap_is_capped_per_run(fault_server, tmp_path):
    # 50 000 URLs in one sitemap; the source takes max_pages of them per run.
    publish_pages(fault_server, range(30))
    entries = "".join(
        f"<url><loc>{fault_server.url(f'/a/{n}.html')}</loc></url>" for n in range(50_000)
    )
    fault_server.set_route(
        "/huge.xml",
        Reply(200, f"{URLSET}{entries}</urlset>".encode(), {"Content-Type": "application/xml"}),
    )
    sources = write_sources(
        tmp_path / "s.toml",
        source("huge", "sitemap", fault_server.url("/huge.xml")) + "\nmax_pages = 30",
    )
    run = run_crawl(tmp_path / "crawl.db", sources, timeout=300)
    (entry,) = run.summary["sources"]
    assert entry["counts"].get("new") == 30, entry
    assert sum(fault_server.hits[f"/a/{n}.html"] for n in range(50_000)) == 30
