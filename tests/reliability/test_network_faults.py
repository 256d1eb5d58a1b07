"""Catalogue group F: timeouts (F1), resets and short bodies (F2), 5xx storms and the
per-host circuit breaker (F3), 429 with Retry-After (F4). Real crawls on loopback."""

from __future__ import annotations

import time
from email.utils import formatdate
from pathlib import Path

from faults import (
    drip,
    news_page,
    publish_article,
    query,
    reset_after,
    run_crawl,
    sequence,
    slow_headers,
    stall_after_headers,
    status,
    urls_source,
    write_sources,
)
from servers import html_reply


def outcomes(store: Path) -> dict[str, str]:
    """The outcome of each URL's last check, by path."""
    rows = query(store, "SELECT url, outcome FROM fetches ORDER BY id")
    return {url.split("/", 3)[-1]: outcome for url, outcome in rows}


def test_f1_timeouts_are_failed_checks_and_the_crawl_goes_on(fault_server, tmp_path):
    fault_server.set_route("/no-answer", slow_headers(0.5))
    fault_server.set_route("/stalled", stall_after_headers())
    fault_server.set_route("/drip", drip(html_reply(news_page(1)), interval=0.5))
    fault_server.write("/good.html", news_page(2))
    paths = ["/no-answer", "/stalled", "/drip", "/good.html"]
    sources = write_sources(
        tmp_path / "s.toml", urls_source("f1", [fault_server.url(p) for p in paths])
    )
    store = tmp_path / "crawl.db"
    run = run_crawl(store, sources, settings={"CRAWLER_TIMEOUT": "1", "CRAWLER_RETRIES": "1"})
    assert run.totals.get("new") == 1 and run.totals.get("errors") == 3, run
    assert outcomes(store) == {
        "no-answer": "timeout",
        "stalled": "timeout",
        "drip": "timeout",
        "good.html": "new",
    }
    # Retried once each (RETRY_TIMES=1), then given up: no partial body is stored.
    assert [fault_server.hits[p] for p in paths[:3]] == [2, 2, 2]
    assert query(store, "SELECT count(*) FROM versions") == [(1,)]
    assert run.elapsed < 60


def test_f2_reset_and_short_body_are_retried_then_recorded(fault_server, tmp_path):
    fault_server.set_route("/rst", reset_after(5_000, 100_000, rst=True))
    fault_server.set_route("/fin", reset_after(5_000, 100_000, rst=False))
    # A reset on the first try and the page on the retry: the page is recorded once.
    fault_server.set_route("/flaky", sequence(reset_after(5_000), html_reply(news_page(3))))
    paths = ["/rst", "/fin", "/flaky"]
    sources = write_sources(
        tmp_path / "s.toml", urls_source("f2", [fault_server.url(p) for p in paths])
    )
    store = tmp_path / "crawl.db"
    run = run_crawl(store, sources)
    assert outcomes(store) == {"rst": "data_loss", "fin": "data_loss", "flaky": "new"}, run
    assert fault_server.hits["/rst"] == 2 and fault_server.hits["/fin"] == 2
    assert query(store, "SELECT count(*) FROM versions") == [(1,)]


def test_f3_a_5xx_storm_trips_the_circuit_breaker(fault_server, tmp_path):
    paths = [f"/artikel/{number}.html" for number in range(100)]
    for path in paths:
        fault_server.set_route(path, status(503))
    sources = write_sources(
        tmp_path / "s.toml",
        urls_source("storm", [fault_server.url(p) for p in paths], "concurrency = 2"),
    )
    store = tmp_path / "crawl.db"
    run = run_crawl(store, sources, settings={"CRAWLER_RETRIES": "2"})
    total = sum(fault_server.hits[p] for p in paths)
    # 5 consecutive failed attempts open the circuit; requests already past the middleware
    # into the downloader's queue (CONCURRENT_REQUESTS, 16) still go out, with their
    # retries. Without the breaker: 300 requests.
    assert total <= (5 + 16) * 3, total
    (source,) = run.summary["sources"]
    assert any(f"stopped requesting 127.0.0.1:{fault_server.port}" in n for n in source["notes"])
    assert source["counts"]["host_down"] >= 50
    # The host is down, not the source: the run is not failed, the articles stay due.
    assert run.returncode == 0
    # Articles not requested are not failed checks: nothing recorded for them.
    assert query(store, "SELECT count(*) FROM fetches") == [(source["counts"].get("errors", 0),)], (
        run
    )
    assert query(store, "SELECT count(*) FROM events") == [(0,)]


def test_f3_not_requested_known_articles_stay_due(fault_server, tmp_path):
    paths = [f"/artikel/{number}.html" for number in range(30)]
    for path in paths:
        fault_server.write(path, news_page(10 + paths.index(path)))
    sources = write_sources(
        tmp_path / "s.toml",
        urls_source("due", [fault_server.url(p) for p in paths], "concurrency = 1"),
    )
    store = tmp_path / "crawl.db"
    assert run_crawl(store, sources).totals.get("new") == 30
    due_before = dict(query(store, "SELECT url, next_check_at FROM articles"))
    for path in paths:
        fault_server.set_route(path, status(500))
    run = run_crawl(store, sources, settings={"CRAWLER_RETRIES": "0"})
    checked = {
        url
        for (url,) in query(
            store, "SELECT DISTINCT url FROM fetches WHERE outcome = 'server_error'"
        )
    }
    # The breaker opened after 5 consecutive failures; what was already queued in the
    # downloader (up to CONCURRENT_REQUESTS, 16) still went out.
    assert 5 <= len(checked) <= 5 + 16, run
    after = dict(query(store, "SELECT url, next_check_at FROM articles"))
    skipped = [url for url in after if url not in checked]
    assert skipped and all(after[url] == due_before[url] for url in skipped)


def test_f4_retry_after_seconds_is_honoured(fault_server, tmp_path):
    fault_server.set_route("/limited.html", sequence(status(429, "2"), html_reply(news_page(4))))
    sources = write_sources(
        tmp_path / "s.toml", urls_source("f4", [fault_server.url("/limited.html")])
    )
    store = tmp_path / "crawl.db"
    run = run_crawl(store, sources)
    assert run.totals.get("new") == 1, run
    first, second = fault_server.times["/limited.html"]
    assert second - first >= 1.9


def test_f4_retry_after_http_date_is_honoured(fault_server, tmp_path):
    def later(_request):  # a date 3 s after the request arrives
        return status(503, formatdate(time.time() + 3, usegmt=True))

    fault_server.set_route("/dated.html", sequence(later, html_reply(news_page(5))))
    sources = write_sources(
        tmp_path / "s.toml", urls_source("f4", [fault_server.url("/dated.html")])
    )
    store = tmp_path / "crawl.db"
    run = run_crawl(store, sources)
    assert run.totals.get("new") == 1, run
    first, second = fault_server.times["/dated.html"]
    assert second - first >= 1.0  # an HTTP date has whole seconds


def test_f4_absurd_retry_after_defers_the_host_to_the_next_run(fault_server, tmp_path):
    fault_server.set_route("/a.html", status(429, "99999999"))
    fault_server.write("/b.html", news_page(6))
    sources = write_sources(
        tmp_path / "s.toml",
        urls_source(
            "f4", [fault_server.url("/a.html"), fault_server.url("/b.html")], "concurrency = 1"
        ),
    )
    store = tmp_path / "crawl.db"
    run = run_crawl(store, sources)
    assert fault_server.hits["/a.html"] == 1  # not retried: the wait is beyond any run
    assert outcomes(store)["a.html"] == "rate_limited"
    (source,) = run.summary["sources"]
    assert any("retry after" in note for note in source["notes"]), source
    assert run.elapsed < 60


def test_known_article_survives_a_network_fault_storm(fault_server, tmp_path):
    """An article seen once, then every network fault in turn: never a change or removal."""
    publish_article(fault_server)
    from faults import ARTICLE_PATH

    sources = write_sources(tmp_path / "s.toml", urls_source("k", [fault_server.url(ARTICLE_PATH)]))
    store = tmp_path / "crawl.db"
    assert run_crawl(store, sources).totals.get("new") == 1
    for fault in (slow_headers(0.5), reset_after(), status(502), status(429, "99999999")):
        fault_server.set_route(ARTICLE_PATH, fault)
        run = run_crawl(store, sources, settings={"CRAWLER_TIMEOUT": "1"})
        assert run.totals.get("errors") == 1, run
    assert query(store, "SELECT kind FROM events") == [("new",)]
    assert query(store, "SELECT status, version_count FROM articles") == [("live", 1)]
