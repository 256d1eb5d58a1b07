"""C4, A8: the private-address guard in real crawls and fetches, on loopback only.

Host names (``*.example``) reach the test server only through the crawler's own
``--resolve`` / ``resolve = {...}`` override; nothing here uses real DNS.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from faults import fetch_rows
from newssite import GERMAN, Entry, article_html, publish
from servers import Reply, run_cli

SPELLINGS = (
    "127.0.0.1",
    "127.1",
    "2130706433",
    "0x7f000001",
    "0177.0.0.1",
    "[::ffff:127.0.0.1]",
    "[::1]",
)


def count(store: Path, sql: str) -> int:
    with sqlite3.connect(store) as conn:
        return int(conn.execute(sql).fetchone()[0])


def write_sources(path: Path, body: str) -> Path:
    path.write_text(body, "utf-8")
    return path


def test_fetch_of_a_private_address_is_one_line_naming_how_to_allow_it(tmp_path):
    store = tmp_path / "crawl.db"
    done = run_cli("fetch", "http://10.0.0.5/", store=store)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    assert "10.0.0.5 is a private address" in lines[0]
    assert "--allow-private-addresses" in lines[0]
    assert "CRAWLER_ALLOW_PRIVATE_ADDRESSES" in lines[0]
    assert fetch_rows(store)["http://10.0.0.5/"][0] == "private_address"
    assert count(store, "SELECT count(*) FROM articles") == 0


def test_every_spelling_of_loopback_is_refused_without_connecting(news, tmp_path):
    publish(news, [Entry(GERMAN[0])])
    urls = [f"http://{host}:{news.port}/artikel/{GERMAN[0]}.html" for host in SPELLINGS]
    urls.append(f"http://named.example:{news.port}/artikel/{GERMAN[0]}.html")
    listed = ", ".join(f'"{url}"' for url in urls)
    sources = write_sources(
        tmp_path / "sources.toml",
        '[crawler]\nresolve = { "named.example" = "127.0.0.1" }\n\n'
        f'[[source]]\nname = "list"\ntype = "urls"\nurls = [{listed}]\n',
    )
    store = tmp_path / "crawl.db"
    done = run_cli(
        "crawl", "--sources", sources, "--json", store=store, allow_private_addresses=None
    )
    assert "Traceback" not in done.stderr, done.stderr
    assert sum(news.hits.values()) == 0, news.hits  # not even robots.txt was asked for
    rows = fetch_rows(store)
    assert {outcome for outcome, _ in rows.values()} == {"private_address"}
    assert len(rows) == len(urls)
    assert "named.example resolves to 127.0.0.1, a loopback address" in rows[urls[-1]][1]
    assert count(store, "SELECT count(*) FROM articles") == 0
    assert count(store, "SELECT count(*) FROM events") == 0


def test_allowing_loopback_by_flag_file_or_environment(news, tmp_path):
    publish(news, [Entry(slug) for slug in GERMAN[:3]])
    url = news.url(f"/artikel/{GERMAN[0]}.html")
    home = tmp_path / "home"
    by_flag = run_cli(
        "fetch", url, "--allow-private-addresses", "--no-save", home=home,
        allow_private_addresses=None,
    )  # fmt: skip
    assert by_flag.returncode == 0, by_flag.stderr
    home.mkdir(exist_ok=True)
    (home / "sources.toml").write_text("[crawler]\nallow_private_addresses = true\n", "utf-8")
    by_file = run_cli("fetch", url, "--no-save", home=home, allow_private_addresses=None)
    assert by_file.returncode == 0, by_file.stderr
    (home / "sources.toml").write_text('[crawler]\nallow_private_addresses = ["10.0.0.0/8"]\n')
    narrow = run_cli("fetch", url, "--no-save", home=home, allow_private_addresses=None)
    assert narrow.returncode == 1 and "127.0.0.1 is a loopback address" in narrow.stderr
    by_env = run_cli("fetch", url, "--no-save", home=home, allow_private_addresses="1")
    assert by_env.returncode == 0, by_env.stderr  # the environment beats the file


@pytest.mark.parametrize(
    ("env", "args", "message"),
    [
        ("banana", [], "CRAWLER_ALLOW_PRIVATE_ADDRESSES"),
        ("127.0.0.0/8", ["--resolve", "news.example"], "--resolve"),
        ("127.0.0.0/8", ["--resolve", "news.example:999.1.1.1"], "--resolve"),
    ],
)
def test_bad_address_settings_are_one_error_line(tmp_path, env, args, message):
    done = run_cli(
        "fetch", "http://news.example/", "--no-save", *args, home=tmp_path,
        allow_private_addresses=env,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr


def test_redirect_hops_into_private_space_are_refused(news, tmp_path):
    """A8/C4: every redirect hop passes the guard; the crawl goes on and records each."""
    publish(news, [Entry(GERMAN[0])])
    port = news.port
    target = f"/artikel/{GERMAN[0]}.html"
    hops = {
        "/to-private": f"http://10.0.0.5:{port}/x",
        "/to-metadata": "http://169.254.169.254/latest/meta-data/",
        "/to-decimal": f"http://2130706433:{port}{target}",  # loopback, but not allowed
        "/to-named-private": f"http://internal.example:{port}{target}",
        "/to-named-ok": f"http://news.example:{port}{target}",
        "/to-file": "file:///etc/passwd",
    }
    for path, location in hops.items():
        news.set_route(path, Reply(302, b"", {"Location": location}))
    listed = ", ".join(f'"{news.url(path)}"' for path in hops)
    sources = write_sources(
        tmp_path / "sources.toml",
        '[crawler]\nresolve = { "internal.example" = "10.0.0.5", '
        '"news.example" = "127.0.0.1" }\n\n'
        f'[[source]]\nname = "hops"\ntype = "urls"\nurls = [{listed}]\n',
    )
    store = tmp_path / "crawl.db"
    # Only 127.0.0.1 itself is allowed: 2130706433 is the same address, so it passes too;
    # the point there is that the decimal spelling reaches the same, allowed, decision.
    done = run_cli(
        "crawl", "--sources", sources, "--json", store=store,
        allow_private_addresses="127.0.0.1/32",
    )  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr
    rows = fetch_rows(store)  # by the URL the fetch ended at
    private = rows[f"http://10.0.0.5:{port}/x"]
    assert private[0] == "private_address" and "10.0.0.5 is a private address" in private[1]
    metadata = rows["http://169.254.169.254/latest/meta-data/"]
    assert metadata[0] == "private_address"
    assert "169.254.169.254 is a link-local address" in metadata[1]
    named = rows[f"http://internal.example:{port}{target}"]
    assert named[0] == "private_address"
    assert "internal.example resolves to 10.0.0.5" in named[1]
    assert rows[f"http://news.example:{port}{target}"][0] in ("new", "unchanged")
    assert rows[f"http://2130706433:{port}{target}"][0] in ("new", "unchanged")
    assert rows[news.url("/to-file")] == ("redirect_refused", "HTTP 302")  # file: never fetched
    assert count(store, "SELECT count(*) FROM articles") == 1
    assert count(store, "SELECT count(*) FROM events WHERE kind = 'removed'") == 0


def test_feed_links_to_private_addresses_are_refused_and_the_crawl_goes_on(news, tmp_path):
    entries = [Entry(slug) for slug in GERMAN[:2]]
    publish(news, entries)
    items = [news.url(entry.path) for entry in entries] + [
        "http://169.254.169.254/latest/meta-data/iam",
        "http://[fc00::1]/intern",
        "http://100.64.0.1/cgnat",
        "javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "file:///etc/passwd",
    ]
    rss = "".join(f"<item><title>x</title><link>{link}</link></item>" for link in items)
    news.write(
        "/feed.xml",
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{rss}</channel></rss>',
    )
    sources = write_sources(
        tmp_path / "sources.toml",
        f'[[source]]\nname = "feed"\ntype = "feed"\nurl = "{news.url("/feed.xml")}"\n',
    )
    store = tmp_path / "crawl.db"
    done = run_cli("crawl", "--sources", sources, "--json", store=store)
    assert "Traceback" not in done.stderr, done.stderr
    rows = fetch_rows(store)
    assert [rows[news.url(e.path)][0] for e in entries] == ["new", "new"]
    refused = sorted(url for url, (outcome, _) in rows.items() if outcome == "private_address")
    assert refused == sorted(items[2:5])
    assert not any(url.startswith(("javascript:", "data:", "file:")) for url in rows)
    assert count(store, "SELECT count(*) FROM articles") == 2


def test_a_source_on_loopback_fails_with_the_way_to_allow_it(news, tmp_path):
    publish(news, [Entry(GERMAN[0])])
    news.write("/artikel/extra.html", article_html("extra", news, GERMAN[1]))
    sources = write_sources(
        tmp_path / "sources.toml",
        f'[[source]]\nname = "feed"\ntype = "feed"\nurl = "{news.url("/feed.xml")}"\n',
    )
    done = run_cli(
        "crawl", "--sources", sources, store=tmp_path / "crawl.db", allow_private_addresses=None
    )
    assert done.returncode == 1
    assert "127.0.0.1 is a loopback address" in done.stderr
    assert "--allow-private-addresses" in done.stderr
    assert "Traceback" not in done.stderr
    assert sum(news.hits.values()) == 0


@pytest.mark.slow
def test_the_scheduler_passes_the_flag_and_the_overrides_to_its_crawls(news, tmp_path):
    publish(news, [Entry(slug) for slug in GERMAN[:2]])
    feed = f"http://news.example:{news.port}/feed.xml"  # the feed's links point to 127.0.0.1
    sources = write_sources(
        tmp_path / "sources.toml",
        f'[[source]]\nname = "feed"\ntype = "feed"\nurl = "{feed}"\n'
        'schedule = { every = "1h" }\n',
    )
    store = tmp_path / "crawl.db"
    done = run_cli(
        "schedule", "--sources", sources, "--for", "12", "--allow-private-addresses",
        "--resolve", "news.example:127.0.0.1", store=store, allow_private_addresses=None,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert count(store, "SELECT count(*) FROM articles") == 2, fetch_rows(store)
    assert count(store, "SELECT count(*) FROM fetches WHERE outcome = 'private_address'") == 0
