"""A8, B2, B5, B6, F5, F6 and C6: loops, hostile feeds and sitemaps, DNS and robots.txt
failures, and the Scrapy settings baseline, in real crawls on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from faults import fetch_rows, query
from newssite import GERMAN, Entry, publish
from scrapy.settings import Settings
from servers import Reply, cli_command, cli_env, html_reply, run_cli

from crawler.addresses import NOTHING
from crawler.settings import load_config, scrapy_settings, source_settings
from crawler.sources import Source
from spiders import spider_for
from spiders.page import PageSpider
from spiders.sitemap import plausible_date


def crawl(tmp_path: Path, body: str, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    sources = tmp_path / "sources.toml"
    sources.write_text(body, "utf-8")
    done = run_cli("crawl", "--sources", sources, "--json", *args, store=tmp_path / "crawl.db")
    assert "Traceback" not in done.stderr, done.stderr
    return done, json.loads(done.stdout) if done.stdout.strip() else {}


def urls_source(*urls: str, extra: str = "") -> str:
    listed = ", ".join(f'"{url}"' for url in urls)
    return f'[[source]]\nname = "list"\ntype = "urls"\nurls = [{listed}]\n{extra}'


# --- A8: redirect loops and meta refresh loops ----------------------------------------


def test_redirect_and_meta_refresh_loops_end_as_redirect_loop(news, tmp_path):
    news.set_route("/loop-a", Reply(302, b"", {"Location": "/loop-b"}))
    news.set_route("/loop-b", Reply(302, b"", {"Location": "/loop-a"}))
    news.set_route("/self", Reply(301, b"", {"Location": "/self"}))
    refresh = '<html><head><meta http-equiv="refresh" content="0; url=/refresh"></head></html>'
    news.set_route("/refresh", html_reply(refresh))
    chain = news.url("/redirect/30?to=/x")
    done, _ = crawl(
        tmp_path, urls_source(news.url("/loop-a"), news.url("/self"), news.url("/refresh"), chain)
    )
    outcomes = {outcome for outcome, _ in fetch_rows(tmp_path / "crawl.db").values()}
    assert outcomes == {"redirect_loop"}, fetch_rows(tmp_path / "crawl.db")
    assert len(fetch_rows(tmp_path / "crawl.db")) == 4  # every start URL is accounted for
    assert news.hits["/loop-a"] + news.hits["/loop-b"] <= 7  # 1 + REDIRECT_MAX_TIMES (+1)
    assert news.hits["/refresh"] <= 6
    assert query(tmp_path / "crawl.db", "SELECT count(*) FROM articles") == [(0,)]


# --- B2, B5, B6: hostile feeds and sitemaps ----------------------------------------------


def test_sitemap_index_loops_and_self_references_fetch_each_sitemap_once(news, tmp_path):
    publish(news, [Entry(slug) for slug in GERMAN[:2]])

    def index(*children: str) -> str:
        maps = "".join(f"<sitemap><loc>{news.url(c)}</loc></sitemap>" for c in children)
        return f'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{maps}</sitemapindex>'

    news.write("/index-a.xml", index("/index-a.xml", "/index-b.xml", "/news-sitemap.xml"))
    news.write("/index-b.xml", index("/index-a.xml", "/index-b.xml", "/news-sitemap.xml"))
    news.robots_txt = (
        "User-agent: *\nAllow: /\n"
        f"Sitemap: {news.url('/index-a.xml')}\n"
        "Sitemap: http://offsite.example/sitemap.xml\n"
        "Sitemap: file:///etc/passwd\n"
    )
    done, summary = crawl(
        tmp_path,
        f'[[source]]\nname = "maps"\ntype = "sitemap"\nurl = "{news.url("/robots.txt")}"\n',
    )
    assert done.returncode == 0, done.stderr
    assert summary["totals"]["new"] == 2
    for path in ("/index-a.xml", "/index-b.xml", "/news-sitemap.xml"):
        assert news.hits[path] == 1, (path, news.hits)
    assert "offsite.example" not in json.dumps(fetch_rows(tmp_path / "crawl.db"))


def test_hostile_feed_entries(news, tmp_path):
    """B2/B6: an external entity and an entity bomb, javascript:/data:/file: links, a
    year-9999 date; none reaches the store or the network."""
    publish(news, [Entry(GERMAN[0])])
    canary = news.url("/canary.dtd")
    good = news.url(Entry(GERMAN[0]).path)
    lol = '<!ENTITY a "lollollollollollollollollol">' + "".join(
        f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(8)
    )
    feed = (
        '<?xml version="1.0"?>\n'
        f'<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">'
        f'<!ENTITY ext SYSTEM "{canary}">{lol}]>\n'
        '<rss version="2.0"><channel><title>&i; &ext;</title>'
        f"<item><title>ok</title><link>{good}</link>"
        "<pubDate>Fri, 31 Dec 9999 23:59:59 GMT</pubDate></item>"
        "<item><title>&xxe;</title><link>javascript:alert(1)</link></item>"
        "<item><title>d</title><link>data:text/html,&lt;script&gt;x&lt;/script&gt;</link></item>"
        "<item><title>f</title><link>file:///etc/passwd</link></item>"
        "<item><title>&i;</title><link>http://news.example/&xxe;</link></item>"
        "</channel></rss>"
    )
    news.write("/feed.xml", feed)
    done, summary = crawl(
        tmp_path,
        f'[[source]]\nname = "feed"\ntype = "feed"\nurl = "{news.url("/feed.xml")}"\n',
        "--resolve",
        "news.example:",  # never a real DNS lookup
    )
    store = tmp_path / "crawl.db"
    assert news.hits["/canary.dtd"] == 0
    assert summary["totals"]["new"] == 1
    assert summary["sources"][0]["counts"].get("bad_links") == 3
    stored = json.dumps(
        query(store, "SELECT * FROM fetches") + query(store, "SELECT * FROM articles")
    )
    assert "root:" not in stored and "javascript:" not in stored and "data:text" not in stored
    assert "9999" not in stored  # the absurd date was dropped, not kept as a listing date


def test_sitemap_entities_are_never_expanded_or_fetched(news, tmp_path):
    """B2: XXE (file and network) and an entity bomb in a sitemap, plain and gzipped."""
    import gzip

    publish(news, [Entry(GERMAN[0])])
    good = news.url(Entry(GERMAN[0]).path)
    bomb = '<!ENTITY a "lollollollol">' + "".join(
        f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(8)
    )
    xml = (
        '<?xml version="1.0"?>\n'
        '<!DOCTYPE urlset [<!ENTITY xxe SYSTEM "file:///etc/passwd">'
        f'<!ENTITY ext SYSTEM "{news.url("/canary.dtd")}">{bomb}]>\n'
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<url><loc>{good}</loc></url>"
        "<url><loc>http://news.example/&xxe;</loc></url>"
        "<url><loc>http://news.example/&ext;&i;</loc></url></urlset>"
    )
    news.write("/evil.xml", xml)
    news.write("/evil.xml.gz", gzip.compress(xml.encode()))
    for name in ("evil.xml", "evil.xml.gz"):
        done, summary = crawl(
            tmp_path / name,
            f'[[source]]\nname = "s"\ntype = "sitemap"\nurl = "{news.url(name)}"\n',
            "--resolve",
            "news.example:",  # never a real DNS lookup
        )
        stored = json.dumps(query(tmp_path / name / "crawl.db", "SELECT * FROM fetches"))
        assert "root:" not in stored and "lollol" not in stored, name
        assert summary["totals"]["new"] == 1, (name, done.stderr)
    assert news.hits["/canary.dtd"] == 0


def test_plausible_dates():
    now = datetime(2026, 11, 24, tzinfo=UTC)
    assert plausible_date(datetime(9999, 12, 31, tzinfo=UTC), now) is None
    assert plausible_date(datetime(2026, 11, 25, tzinfo=UTC), now) is not None
    assert plausible_date(None, now) is None


def test_a_huge_feed_is_capped_and_the_rest_counted(news, tmp_path):
    from spiders.feed import MAX_FEED_ENTRIES

    publish(news, [Entry(GERMAN[0])])
    link = news.url(Entry(GERMAN[0]).path)
    items = "".join(
        f"<item><link>{link}?n={n}</link></item>" for n in range(MAX_FEED_ENTRIES + 250)
    )
    news.write("/big.xml", f'<rss version="2.0"><channel><title>t</title>{items}</channel></rss>')
    done, summary = crawl(
        tmp_path,
        f'[[source]]\nname = "big"\ntype = "feed"\nurl = "{news.url("/big.xml")}"\nmax_pages = 3\n',
    )
    assert summary["sources"][0]["counts"]["over_cap"] == 250


# --- F5: DNS failures ------------------------------------------------------------------


def test_a_name_that_stops_resolving_is_dns_error_never_removal(news, tmp_path):
    publish(news, [Entry(GERMAN[0])])
    url = f"http://news.example:{news.port}{Entry(GERMAN[0]).path}"
    body = urls_source(url, extra='revisit = { interval = "0s", confirm_removal_after = "0s" }\n')
    done, summary = crawl(tmp_path, body, "--resolve", "news.example:127.0.0.1")
    assert summary["totals"]["new"] == 1, done.stderr
    for _ in range(2):  # twice: a removal needs two confirmations, none may happen
        done, summary = crawl(tmp_path, body, "--resolve", "news.example:")
    store = tmp_path / "crawl.db"
    outcomes = [row[0] for row in query(store, "SELECT outcome FROM fetches ORDER BY id")]
    assert outcomes == ["new", "dns_error", "dns_error"]
    assert query(store, "SELECT status, version_count FROM articles") == [("live", 1)]
    assert query(store, "SELECT kind FROM events") == [("new",)]


# --- F6: robots.txt faults -------------------------------------------------------------


@pytest.mark.parametrize(
    ("robots", "expected"),
    [
        (Reply(503, b"down", {"Content-Type": "text/plain"}), "robots_unreachable"),
        (Reply(429, b"slow down", {"Content-Type": "text/plain"}), "robots_unreachable"),
        (Reply(404, b"Disallow: /", {"Content-Type": "text/html"}), "new"),
        (Reply(200, b"User-agent: *\nDisallow: /artikel/\n", {}), "robots_denied"),
        (
            # Rules past the first 500 KiB are never read: the Disallow does not apply.
            Reply(
                200, b"User-agent: *\nAllow: /\n" + b"#x\n" * 700_000 + b"Disallow: /artikel/\n", {}
            ),
            "new",
        ),
    ],
    ids=["503", "429", "404", "disallow", "2MiB"],
)
def test_robots_txt_faults(news, tmp_path, robots, expected):
    publish(news, [Entry(GERMAN[0])])
    news.set_route("/robots.txt", robots)
    url = news.url(Entry(GERMAN[0]).path)
    done, summary = crawl(tmp_path, urls_source(url))
    store = tmp_path / "crawl.db"
    assert fetch_rows(store)[url][0] == expected, fetch_rows(store)
    if expected != "new":
        assert news.hits[Entry(GERMAN[0]).path] == 0
        assert query(store, "SELECT count(*) FROM articles") == [(0,)]


def test_robots_txt_that_hangs_defers_the_host(news, tmp_path):
    publish(news, [Entry(GERMAN[0])])
    news.set_route("/robots.txt", lambda request: (news.stopping.wait(30), Reply())[1])
    url = news.url(Entry(GERMAN[0]).path)
    sources = tmp_path / "sources.toml"
    sources.write_text(urls_source(url), "utf-8")
    env = cli_env(tmp_path / "home")
    env.update(CRAWLER_TIMEOUT="2", CRAWLER_RETRIES="0")
    done = subprocess.run(
        cli_command("crawl", "--sources", sources, store=tmp_path / "crawl.db"),
        env=env,
        cwd=tmp_path / "home",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in done.stderr
    assert fetch_rows(tmp_path / "crawl.db")[url][0] == "robots_unreachable"
    assert news.hits[Entry(GERMAN[0]).path] == 0


# --- C6: the settings baseline of every spider, and no listening sockets -------------------


@pytest.mark.parametrize("kind", ["feed", "sitemap", "site", "urls", "page"])
def test_every_spider_runs_on_the_hardened_baseline(kind):
    config = load_config(environ={})
    if kind == "page":
        raw, spider = scrapy_settings(config), PageSpider
    else:
        source = Source(name="s", type=kind, urls=("https://news.example/",))
        raw, spider = source_settings(config, source), spider_for(kind)
    settings = Settings(raw)
    spider.update_settings(settings)
    assert settings.getbool("TELNETCONSOLE_ENABLED") is False
    assert settings.getbool("REMOTE_CONTROL_ENABLED") is False
    handlers = settings.getwithbase("DOWNLOAD_HANDLERS")
    assert all(handlers[scheme] is None for scheme in ("file", "data", "s3", "ftp"))
    assert settings.getint("DOWNLOAD_MAXSIZE") == 16 * 1024 * 1024
    assert settings.getint("DOWNLOAD_WARNSIZE") <= 4 * 1024 * 1024
    assert settings.getbool("ROBOTSTXT_OBEY") is True
    assert settings.getint("REDIRECT_MAX_TIMES") == 5
    assert settings.getfloat("DOWNLOAD_TIMEOUT") == 30
    assert settings.getfloat("DNS_TIMEOUT") == 10
    assert settings.getint("URLLENGTH_LIMIT") == 2083
    assert settings["ADDRESS_POLICY"] == NOTHING
    assert settings["TWISTED_DNS_RESOLVER"] == "crawler.resolver.GuardedResolver"
    middlewares = settings.getwithbase("DOWNLOADER_MIDDLEWARES")
    assert middlewares["crawler.middlewares.AddressGuardMiddleware"] == 960
    assert middlewares["scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware"] is None
    assert middlewares["crawler.middlewares.RobotsTxtMiddleware"] == 100


def _listening_tcp_ports(pids: list[int]) -> set[int]:
    """TCP ports in LISTEN state whose socket belongs to one of ``pids`` (from /proc)."""
    inodes = set()
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def _family(pid: int) -> list[int]:
    pids = [pid]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[1]) in pids:
                        pids.append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    return pids


def test_a_real_crawl_listens_on_no_port_and_leaves_no_job_files(news, tmp_path):
    publish(news, [Entry(GERMAN[0])])
    news.set_route("/slow.html", lambda request: (news.stopping.wait(6), Reply())[1])
    sources = tmp_path / "sources.toml"
    sources.write_text(urls_source(news.url(Entry(GERMAN[0]).path), news.url("/slow.html")))
    home = tmp_path / "home"
    home.mkdir()
    crawl_process = subprocess.Popen(
        cli_command("crawl", "--sources", sources, store=tmp_path / "crawl.db"),
        env=cli_env(home),
        cwd=home,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert news.wait_for_hits("/slow.html", timeout=60)
        time.sleep(0.5)  # the crawl is mid-run: engine, downloader and pool are up
        assert _listening_tcp_ports(_family(crawl_process.pid)) == set()
    finally:
        crawl_process.wait(timeout=60)
    assert not list(home.rglob("job_files/*"))  # Scrapy's remote-control credentials
    assert not (home / ".local/state/scrapy").exists() or not list(
        (home / ".local/state/scrapy").rglob("*.json")
    )
