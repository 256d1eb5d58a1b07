"""The scheduler and crawl processes under stop signals, overlaps and kills (subprocesses)."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from newssite import GERMAN, Entry, publish, sources_toml
from servers import SiteServer, cli_command, cli_env, html_reply

from scheduler import first_run

ENTRIES = [Entry(slug) for slug in GERMAN[:4]]


@pytest.fixture
def news(tmp_path: Path) -> Iterator[SiteServer]:
    root = tmp_path / "site"
    root.mkdir()
    with SiteServer(root) as server:
        publish(server, ENTRIES)
        yield server


def slow_pages(news: SiteServer, seconds: float) -> None:
    """Make every article answer only after ``seconds``."""
    for entry in ENTRIES:
        page = news.read(entry.path)

        def reply(_request: object, page: str = page) -> object:
            time.sleep(seconds)
            return html_reply(page)

        news.set_route(entry.path, reply)


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def rows(store: Path, sql: str) -> list[tuple]:
    if not store.exists():
        return []
    try:
        with sqlite3.connect(store, timeout=30) as conn:
            return conn.execute(sql).fetchall()
    except sqlite3.OperationalError as error:
        if "no such table" in str(error):  # the scheduler is still creating the store
            return []
        raise


_STARTED: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def _stop_leftovers() -> Iterator[None]:
    """A failed assertion must not leave a scheduler or crawl running."""
    yield
    while _STARTED:
        process = _STARTED.pop()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # the crawl and its extraction workers
        process.communicate(timeout=30)


def start(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    process = subprocess.Popen(
        cli_command(*args, store=tmp_path / "crawl.db"),
        env=cli_env(home),
        cwd=home,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    _STARTED.append(process)
    return process


def schedule_sources(tmp_path: Path, news: SiteServer, every: str = "1s") -> Path:
    return sources_toml(
        tmp_path / "sources.toml",
        f'name = "feed"\ntype = "feed"\nurl = "{news.url("/feed.xml")}"\n'
        f'schedule = {{ every = "{every}" }}\nrevisit = {{ interval = "0s" }}',
    )


def assert_healthy(store: Path) -> None:
    assert rows(store, "PRAGMA integrity_check") == [("ok",)]
    assert rows(store, "PRAGMA foreign_key_check") == []
    texts = store.parent / "articles"
    for name, count, text in rows(
        store,
        "SELECT a.text_file, a.version_count, v.text FROM articles a "
        "JOIN versions v ON v.article_id = a.id AND v.number = a.version_count",
    ):
        assert count >= 1 and text
        assert (texts / name).read_text(encoding="utf-8") == text + "\n"


def runs_do_not_overlap(store: Path) -> None:
    spans = rows(
        store, "SELECT started_at, finished_at FROM runs WHERE source = 'feed' ORDER BY started_at"
    )
    for (_, end), (begin, _) in zip(spans, spans[1:], strict=False):
        assert end is not None and end <= begin, spans


def test_runs_happen_on_schedule_and_never_overlap(news, tmp_path):
    sources = schedule_sources(tmp_path, news, every="1s")
    slow_pages(news, 1.5)  # a run takes longer than the interval
    store = tmp_path / "crawl.db"
    process = start(tmp_path, "schedule", "--sources", str(sources), "--revisit-every", "1h")
    wait_for(lambda: rows(store, "SELECT count(*) FROM runs WHERE outcome = 'ok'") >= [(2,)], 120)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    runs = rows(store, "SELECT outcome FROM runs WHERE source = 'feed'")
    assert all(outcome == "ok" for (outcome,) in runs[:-1])
    runs_do_not_overlap(store)
    log = (tmp_path / "logs" / "scheduler.log").read_text()
    assert "skipped: maximum number of running instances reached" in log
    assert rows(store, "SELECT count(*) FROM articles") == [(len(ENTRIES),)]
    assert_healthy(store)


def test_sigterm_during_a_run_leaves_an_intact_store_and_a_restart_continues(news, tmp_path):
    sources = schedule_sources(tmp_path, news, every="1s")
    slow_pages(news, 2.0)
    store = tmp_path / "crawl.db"
    process = start(tmp_path, "schedule", "--sources", str(sources), "--revisit-every", "1h")
    wait_for(lambda: rows(store, "SELECT count(*) FROM runs WHERE outcome = 'running'") == [(1,)])
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=90)
    assert process.returncode == 0, stderr
    assert "scheduler stopped" in stderr
    assert_healthy(store)
    assert rows(store, "SELECT count(*) FROM locks") == [(0,)]
    before = rows(store, "SELECT count(*) FROM runs")[0][0]

    for entry in ENTRIES:
        news.clear_route(entry.path)
    again = start(tmp_path, "schedule", "--sources", str(sources), "--revisit-every", "1h")
    wait_for(lambda: rows(store, "SELECT count(*) FROM runs")[0][0] > before + 1, 120)
    again.send_signal(signal.SIGTERM)
    _, stderr = again.communicate(timeout=90)
    assert again.returncode == 0, stderr
    assert rows(store, "SELECT count(*) FROM runs")[0][0] > before
    assert rows(store, "SELECT count(*) FROM runs WHERE outcome = 'running'") == [(0,)]
    assert rows(store, "SELECT count(*) FROM articles") == [(len(ENTRIES),)]
    assert_healthy(store)


def test_sigkill_of_a_crawl_mid_run_leaves_no_partial_version_and_no_stuck_lock(news, tmp_path):
    sources = schedule_sources(tmp_path, news)
    store = tmp_path / "crawl.db"
    fast = ENTRIES[0].path
    slow_pages(news, 15.0)
    news.clear_route(fast)  # one article arrives at once, the others hang
    crawl = start(tmp_path, "crawl", "--sources", str(sources))
    wait_for(lambda: rows(store, "SELECT count(*) FROM versions") >= [(1,)])
    os.killpg(crawl.pid, signal.SIGKILL)  # as the scheduler does after its grace period
    crawl.communicate(timeout=30)
    assert_healthy(store)
    assert rows(store, "SELECT count(*) FROM locks") == [(1,)]  # left behind by the dead process

    for entry in ENTRIES:
        news.clear_route(entry.path)
    again = start(tmp_path, "crawl", "--sources", str(sources), "--json")
    stdout, stderr = again.communicate(timeout=120)
    assert again.returncode == 0, stderr
    assert '"outcome": "ok"' in stdout  # the dead owner's lock was taken over
    assert rows(store, "SELECT outcome FROM runs ORDER BY id") == [("crashed",), ("ok",)]
    assert rows(store, "SELECT count(*) FROM locks") == [(0,)]
    assert rows(store, "SELECT count(*) FROM articles") == [(len(ENTRIES),)]
    assert_healthy(store)


def test_a_source_locked_by_a_live_run_is_skipped(news, tmp_path):
    sources = schedule_sources(tmp_path, news)
    store = tmp_path / "crawl.db"
    slow_pages(news, 3.0)
    first = start(tmp_path, "crawl", "--sources", str(sources))
    wait_for(lambda: rows(store, "SELECT count(*) FROM runs WHERE outcome = 'running'") == [(1,)])
    second = start(tmp_path, "crawl", "--sources", str(sources), "--json")
    stdout, _ = second.communicate(timeout=60)
    assert second.returncode == 0
    assert '"outcome": "skipped"' in stdout
    first.communicate(timeout=120)
    assert rows(store, "SELECT outcome FROM runs") == [("ok",)]


def test_a_bad_sources_file_on_reload_keeps_the_last_good_one(news, tmp_path):
    sources = schedule_sources(tmp_path, news, every="1s")
    process = start(tmp_path, "schedule", "--sources", str(sources), "--revisit-every", "1h")
    store = tmp_path / "crawl.db"
    wait_for(lambda: rows(store, "SELECT count(*) FROM runs WHERE outcome = 'ok'") >= [(1,)])
    sources.write_text(sources.read_text() + "\nbroken = [", encoding="utf-8")
    process.send_signal(signal.SIGHUP)
    log = tmp_path / "logs" / "scheduler.log"
    wait_for(lambda: "sources not reloaded" in log.read_text())
    count = rows(store, "SELECT count(*) FROM runs")[0][0]
    wait_for(lambda: rows(store, "SELECT count(*) FROM runs")[0][0] > count)  # still crawling
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=90)
    assert process.returncode == 0, stderr


def test_a_bad_sources_file_at_start_is_one_error_line(tmp_path):
    (tmp_path / "sources.toml").write_text("[[source]]\nname = 1\n", encoding="utf-8")
    done = subprocess.run(
        cli_command(
            "schedule", "--sources", str(tmp_path / "sources.toml"), store=tmp_path / "crawl.db"
        ),
        env=cli_env(tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: ")


NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("last", "every", "expected"),
    [
        (None, timedelta(minutes=15), NOW),  # never ran: now
        ("2026-11-24T11:50:00.000Z", timedelta(minutes=15), NOW + timedelta(minutes=5)),
        # Down for hours: the missed runs coalesce into one, now.
        ("2026-11-24T02:00:00.000Z", timedelta(minutes=15), NOW),
        ("2026-11-24T11:59:00.000Z", None, NOW),  # cron sources: the trigger decides
    ],
)
def test_first_run_after_a_restart(last, every, expected):
    assert first_run(last, every, NOW) == expected
