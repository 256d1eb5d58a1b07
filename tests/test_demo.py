"""The README's main job: ``crawler demo`` end to end, in a subprocess."""

import sqlite3

import feedparser
from servers import run_cli

from crawler.demo import sources_toml
from crawler.demo.site import EXPECTED
from crawler.sources import parse_sources


def test_the_demo_sources_file_is_valid():
    import tomllib

    text = sources_toml("http://127.0.0.1:1/feed.xml", "http://127.0.0.1:1/news-sitemap.xml", 2)
    sources = parse_sources(tomllib.loads(text))
    assert [s.type for s in sources] == ["feed", "sitemap"]


def test_demo_detects_exactly_the_real_changes(tmp_path):
    workdir = tmp_path / "demo"
    done = run_cli("demo", "--dir", workdir, home=tmp_path / "home", timeout=240)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "✓ detected 24 new articles" in done.stderr
    for cycle in range(5):
        assert f"cycle {cycle}:" in done.stderr
    with sqlite3.connect(workdir / "crawl.db") as conn:
        kinds = dict(conn.execute("SELECT kind, count(*) FROM events GROUP BY kind"))
        assert kinds == {"new": EXPECTED.new, "changed": 1, "removed": 1}
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        outage = conn.execute("SELECT count(*) FROM runs WHERE outcome = 'failed'").fetchone()[0]
        assert outage >= 2  # both sources failed in the 503 cycle, and nothing changed then
        assert conn.execute("SELECT count(*) FROM locks").fetchone() == (0,)
    assert len(list((workdir / "articles").glob("*.txt"))) == EXPECTED.new
    feed = feedparser.parse((workdir / "changes.atom").read_bytes())
    assert not feed.bozo
    titles = [entry.title for entry in feed.entries]
    assert any(title.startswith("Changed:") for title in titles)
    assert any(title.startswith("Removed:") for title in titles)


def test_the_served_demo_site_can_be_crawled(tmp_path):
    import subprocess
    import time

    from servers import cli_command, cli_env

    workdir = tmp_path / "demo"
    server = subprocess.Popen(
        cli_command("demo", "--serve", "--dir", str(workdir)),
        env=cli_env(tmp_path / "home"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not (workdir / "sources.toml").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        done = run_cli(
            "crawl",
            "--sources",
            workdir / "sources.toml",
            "--json",
            store=workdir / "crawl.db",
            home=tmp_path / "home",
        )
        assert done.returncode == 0, done.stderr
        assert '"new": 20' in done.stdout
    finally:
        server.terminate()
        server.wait(timeout=30)
