"""Scheduler faults (catalogue group E): overlapping runs, the scheduler killed mid-run and
restarted, missed runs, clock jumps, a crawl killed by the OOM killer.

The scheduler and crawls run as real processes against a loopback news site; intervals
are short and every wait is a generous "does not hang" bound, never a timing assertion.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import proc
import pytest
from dbcheck import assert_db_healthy
from relsite import publish_articles, write_feed_sources
from servers import html_reply

from scheduler import first_run

ARTICLES = 4


def _rows(store: Path, sql: str, params: tuple = ()) -> list[tuple]:
    if not store.exists():
        return []
    try:
        conn = sqlite3.connect(store, timeout=30)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()
    except sqlite3.OperationalError as error:
        if "no such" in str(error):  # the store is still being created
            return []
        raise


def _slow(server, entries, seconds: float) -> None:
    for entry in entries:
        page = server.read(entry.path)

        def reply(_request: object, page: str = page) -> object:
            time.sleep(seconds)  # the server is slow: a run stays in progress
            return html_reply(page)

        server.set_route(entry.path, reply)


def _fast(server, entries) -> None:
    for entry in entries:
        server.clear_route(entry.path)


def _schedule(tmp_path: Path, sources: Path, store: Path) -> proc.Proc:
    return proc.start(
        proc.crawler("schedule", "--sources", sources, "--revisit-every", "1h", store=store),
        tmp_path / "home",
    )


def _running_pid(store: Path) -> int | None:
    found = _rows(store, "SELECT pid FROM runs WHERE outcome = 'running' ORDER BY id")
    return found[-1][0] if found else None


def _stop(scheduler: proc.Proc) -> proc.ProcResult:
    scheduler.signal(signal.SIGTERM)
    result = scheduler.finish(timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat", "rb") as stat:
        return stat.read().rpartition(b")")[2].split()[0] != b"Z"


@pytest.fixture
def site(newsroom, tmp_path):
    entries = publish_articles(newsroom, ARTICLES)
    return newsroom, entries


def test_e1_a_manual_crawl_during_a_scheduled_run_says_already_running(site, tmp_path, store):
    server, entries = site
    sources = write_feed_sources(tmp_path / "sources.toml", server, every="1h")
    _slow(server, entries, 3.0)
    scheduler = _schedule(tmp_path, sources, store)
    proc.wait_for(lambda: _running_pid(store) is not None, timeout=120)
    manual = proc.run(
        proc.crawler("crawl", "feed", "--sources", sources, store=store), tmp_path / "home"
    )
    assert manual.returncode == 0, manual.stderr
    assert "already running" in manual.stderr
    proc.wait_for(lambda: _rows(store, "SELECT outcome FROM runs") == [("ok",)], timeout=120)
    _stop(scheduler)
    assert _rows(store, "SELECT outcome FROM runs") == [("ok",)]  # the skip made no run
    assert_db_healthy(store)


def test_e2_a_scheduler_killed_mid_run_restarts_stops_the_orphan_and_catches_up_once(
    site, tmp_path, store
):
    server, entries = site
    sources = write_feed_sources(tmp_path / "sources.toml", server, every="1h")
    _slow(server, entries, 30.0)  # the orphan cannot finish before the restart stops it
    first = _schedule(tmp_path, sources, store)
    proc.wait_for(lambda: _running_pid(store) is not None, timeout=120)
    orphan = _running_pid(store)
    first.process.kill()  # SIGKILL of the scheduler alone: its crawl lives on, orphaned
    first.finish()
    assert _alive(orphan)

    again = _schedule(tmp_path, sources, store)
    proc.wait_for(lambda: not _alive(orphan), timeout=90)  # stopped by the new scheduler
    _fast(server, entries)
    proc.wait_for(
        lambda: _rows(store, "SELECT count(*) FROM runs WHERE outcome = 'ok'") == [(1,)], 120
    )
    # The catch-up run happened once; the next is an hour away.
    time.sleep(3)  # a window in which a duplicate catch-up would show up
    result = _stop(again)
    outcomes = [row[0] for row in _rows(store, "SELECT outcome FROM runs ORDER BY id")]
    assert outcomes[0] in ("interrupted", "crashed") and outcomes[1:] == ["ok"], outcomes
    assert "left running by a previous scheduler" in result.stderr
    assert _rows(store, "SELECT count(*) FROM locks") == [(0,)]
    assert assert_db_healthy(store).articles == ARTICLES


def test_e3_runs_missed_while_down_coalesce_into_one(site, tmp_path, store):
    server, _ = site
    sources = write_feed_sources(tmp_path / "sources.toml", server, every="1h")
    done = proc.run(proc.crawler("crawl", "--sources", sources, store=store), tmp_path / "home")
    assert done.returncode == 0, done.stderr
    # The host was down for five intervals since that run.
    five_hours_ago = (datetime.now(UTC) - timedelta(hours=5)).isoformat()
    conn = sqlite3.connect(store)
    with conn:
        conn.execute("UPDATE runs SET started_at = ?", [five_hours_ago.replace("+00:00", "Z")])
    conn.close()
    scheduler = _schedule(tmp_path, sources, store)
    proc.wait_for(lambda: _rows(store, "SELECT count(*) FROM runs") == [(2,)], timeout=120)
    proc.wait_for(lambda: _running_pid(store) is None, timeout=120)
    time.sleep(3)  # a window in which a second catch-up run would show up
    _stop(scheduler)
    assert _rows(store, "SELECT outcome FROM runs ORDER BY id") == [("ok",), ("ok",)]


def test_e4_after_the_clock_was_set_back_runs_come_on_time_and_status_orders_by_id(
    site, tmp_path, store
):
    server, _ = site
    sources = write_feed_sources(tmp_path / "sources.toml", server, every="2s")
    home = tmp_path / "home"
    assert proc.run(proc.crawler("crawl", "--sources", sources, store=store), home).returncode == 0
    # The last run started an hour "in the future": the clock has since been set back.
    ahead = (datetime.now(UTC) + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    conn = sqlite3.connect(store)
    with conn:
        conn.execute("UPDATE runs SET started_at = ?, finished_at = ?", [ahead, ahead])
    conn.close()
    scheduler = _schedule(tmp_path, sources, store)
    # Due one interval from now, not an hour later.
    proc.wait_for(
        lambda: _rows(store, "SELECT count(*) FROM runs WHERE outcome = 'ok'") >= [(2,)], 120
    )
    _stop(scheduler)
    status = proc.run(proc.crawler("status", "--sources", sources, "--json", store=store), home)
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    report = report[0] if isinstance(report, list) else report
    newest = _rows(store, "SELECT started_at FROM runs ORDER BY id DESC LIMIT 1")[0][0]
    assert newest < ahead  # the newest run has the older time stamp...
    assert json.dumps(report).count(newest) >= 1  # ...and status shows it as the last run
    assert_db_healthy(store)


NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("last", "completed", "expected"),
    [
        ("2026-11-24T11:50:00.000Z", True, NOW + timedelta(minutes=5)),
        # The last run crashed or was interrupted: catch up at once.
        ("2026-11-24T11:50:00.000Z", False, NOW),
        # Down for hours: the missed runs coalesce into one, now.
        ("2026-11-24T02:00:00.000Z", True, NOW),
        # The clock was set back an hour: at most one interval from now.
        ("2026-11-24T13:00:00.000Z", True, NOW + timedelta(minutes=15)),
    ],
)
def test_e3_e4_first_run_after_a_restart(last, completed, expected):
    assert first_run(last, timedelta(minutes=15), NOW, completed) == expected


def test_e5_a_crawl_killed_like_by_the_oom_killer_is_marked_crashed_and_the_next_run_comes(
    site, tmp_path, store
):
    server, entries = site
    sources = write_feed_sources(tmp_path / "sources.toml", server, every="2s")
    _slow(server, entries, 5.0)
    scheduler = _schedule(tmp_path, sources, store)
    proc.wait_for(lambda: _running_pid(store) is not None, timeout=120)
    victim = _running_pid(store)
    os.killpg(victim, signal.SIGKILL)  # what the OOM killer does, to the whole crawl
    proc.wait_for(
        lambda: _rows(store, "SELECT outcome FROM runs WHERE pid = ?", (victim,)) == [("crashed",)],
        timeout=60,
    )
    _fast(server, entries)
    proc.wait_for(
        lambda: _rows(store, "SELECT count(*) FROM runs WHERE outcome = 'ok'") >= [(1,)], 120
    )
    result = _stop(scheduler)
    assert "killed by signal 9" in result.stderr
    outcomes = [row[0] for row in _rows(store, "SELECT outcome FROM runs ORDER BY id")]
    assert outcomes[0] == "crashed" and "ok" in outcomes[1:]
    assert assert_db_healthy(store).articles == ARTICLES
