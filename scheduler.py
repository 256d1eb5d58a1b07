"""The scheduler: crawls every enabled source of sources.toml on its schedule, unattended.

Run it as ``crawler schedule`` or ``python scheduler.py``. The one home of APScheduler.

- Per source two jobs: the crawl (``schedule`` in sources.toml, else by type: feeds
  every 15 minutes, sitemaps hourly, sites daily, URL lists hourly) and a revisit job
  (every 5 minutes: only known articles whose adaptive next check has come).
- Each run is its own ``crawler crawl`` process with a time limit, so one bad page or a
  hung server cannot take the scheduler down. A run is never started twice at once
  (``max_instances=1``); the crawl itself locks the source in the store, and a lock
  whose process died is taken over.
- Runs missed while the scheduler was down are coalesced into one; on start each
  source's first run is due at its last run's start plus its interval (at once if that
  run did not complete; at most one interval away if the clock was set back).
- A crawl killed by a signal (the OOM killer, SIGKILL) has its run marked ``crashed``;
  the next run comes on schedule. A scheduler killed mid-run leaves its crawls' pids in
  ``logs/crawls/``: the next scheduler stops those orphans (SIGTERM, then SIGKILL) and
  marks every run whose process is gone ``crashed`` before it schedules anything.
- Crawls read ``sources.active.toml`` beside the store: a copy of the last good
  sources file, so an edit with a mistake never reaches them.
- SIGTERM/SIGINT stop it: running crawls get SIGTERM (Scrapy finishes what is in
  flight, the writer commits), then SIGKILL after a grace period. SIGHUP, or a change
  of sources.toml, reloads the sources; a bad file keeps the last good one.
- Logs go to stderr and ``logs/scheduler.log`` beside the store; each crawl's output
  to ``logs/<source>.log``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from crawler.errors import ConfigError, CrawlerError
from crawler.processes import process_is_dead
from crawler.revisits import parse_stamp
from crawler.sources import Source, read_sources_file
from crawler.store import RUN_NOT_COMPLETED, last_run, mark_crashed_runs, open_store
from crawler.textfiles import write_text_file

log = logging.getLogger("scheduler")
REVISIT_EVERY = timedelta(minutes=5)
TERMINATE_GRACE = 20.0


@dataclass
class SchedulerSettings:
    """What the scheduler runs and how."""

    sources_file: Path
    store: Path
    time_limit: float = 1800.0
    revisit_every: timedelta = REVISIT_EVERY
    check_config_every: float = 5.0
    crawl_command: Sequence[str] = field(default_factory=lambda: [sys.executable, "-m", "crawler"])
    crawl_options: Sequence[str] = ()  # passed on to every crawl (--allow-private-addresses)


class CrawlLauncher:
    """Starts ``crawler crawl`` processes and stops them on shutdown."""

    def __init__(self, settings: SchedulerSettings) -> None:
        self.settings = settings
        self.logs = settings.store.parent / "logs"
        self.sources_file = settings.store.parent / "sources.active.toml"
        self.children = self.logs / "crawls"
        self._running: dict[int, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()
        self.stopping = threading.Event()

    def run(self, source: str, revisit_only: bool = False) -> int | None:
        """Run one crawl of ``source`` to its end or its time limit; return the exit code."""
        if self.stopping.is_set():
            return None
        command = [
            *self.settings.crawl_command,
            "crawl",
            source,
            "--sources",
            str(self.sources_file),
            "--store",
            str(self.settings.store),
        ]
        if revisit_only:
            command.append("--revisit-only")
        command += self.settings.crawl_options
        self.logs.mkdir(parents=True, exist_ok=True)
        self.children.mkdir(parents=True, exist_ok=True)
        kind = "revisit" if revisit_only else "crawl"
        with open(self.logs / f"{source}.log", "ab") as output:
            process = subprocess.Popen(
                command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )
            # Noted on disk, so a scheduler restarted after a SIGKILL can stop the orphan.
            child = self.children / str(process.pid)
            child.write_text(source, encoding="utf-8")
            with self._lock:
                self._running[process.pid] = process
            log.info("%s of %s started (pid %s)", kind, source, process.pid)
            try:
                code = process.wait(timeout=self.settings.time_limit)
            except subprocess.TimeoutExpired:
                log.warning("%s of %s hit the time limit; stopping it", kind, source)
                code = self._stop(process)
            finally:
                with self._lock:
                    self._running.pop(process.pid, None)
                child.unlink(missing_ok=True)
        if code < 0:
            _signal_group(process, signal.SIGKILL)  # its extraction workers, if any are left
            self._mark_crashed(f"the crawl process was killed by signal {-code}")
            log.error(
                "%s of %s was killed by signal %s; its run is marked crashed", kind, source, -code
            )
        else:
            log.info("%s of %s ended with exit code %s", kind, source, code)
        return code

    def stop_orphans(self) -> int:
        """Stop the crawls a previous scheduler started and left running when it died
        (SIGTERM to each process group, SIGKILL after the grace period); return how many."""
        try:
            pids = [int(path.name) for path in self.children.iterdir() if path.name.isdigit()]
        except FileNotFoundError:
            return 0
        stopped = 0
        for pid in pids:
            if _is_our_crawl(pid):
                log.warning("stopping crawl pid %s left running by a previous scheduler", pid)
                _stop_group(pid)
                stopped += 1
            (self.children / str(pid)).unlink(missing_ok=True)
        return stopped

    def _mark_crashed(self, reason: str) -> None:
        try:
            db = open_store(self.settings.store)
            try:
                mark_crashed_runs(db, _stamp(datetime.now(UTC)), process_is_dead, reason)
            finally:
                db.close()
        except CrawlerError as error:
            log.error("could not mark the run crashed: %s", error)

    def stop_all(self) -> None:
        """Ask every running crawl to stop (SIGTERM), then kill what is left."""
        self.stopping.set()
        with self._lock:
            running = list(self._running.values())
        for process in running:
            self._stop(process)

    def _stop(self, process: subprocess.Popen[bytes]) -> int:
        # SIGTERM to the crawl alone: Scrapy stops gracefully and shuts its extraction
        # pool down itself. Whatever is left after the grace period dies with its group.
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=TERMINATE_GRACE)
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            return process.wait()


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


def _stamp(now: datetime) -> str:
    from crawler.recording import timestamp  # the store's format; imported late: it is heavy

    return timestamp(now)


def _is_our_crawl(pid: int) -> bool:
    """Whether ``pid`` is alive and still a ``crawler crawl`` process (not a reused pid)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as stream:
            argv = stream.read().split(b"\0")
    except OSError:
        return False
    return b"crawl" in argv and not process_is_dead(socket.gethostname(), pid)


def _stop_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + TERMINATE_GRACE
    while time.monotonic() < deadline and not process_is_dead(socket.gethostname(), pid):
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def first_run(
    last_started: str | None,
    every: timedelta | None,
    now: datetime,
    completed: bool = True,
) -> datetime:
    """When a source's first run after a (re)start is due: its last start plus its
    interval, or now if that has passed (missed runs coalesce into this one) or if the
    last run did not complete (``completed`` False: it crashed or was interrupted).

    A last start in the future means the clock was set back: the run is due at most one
    interval from now, never an hour of clock jump later.
    """
    if last_started is None or every is None or not completed:
        return now
    return max(now, min(parse_stamp(last_started) + every, now + every))


class Monitor:
    """The scheduler proper: jobs per source, reloads, and a graceful stop."""

    def __init__(self, settings: SchedulerSettings, clock: Callable[[], datetime] | None = None):
        self.settings = settings
        self.clock = clock or (lambda: datetime.now(UTC))
        self.launcher = CrawlLauncher(settings)
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=8)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone=UTC,
        )
        self.sources: list[Source] = []
        self._mtime: float | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        """Load the sources (raises ConfigError if the file is bad), clean up after a
        scheduler that died (its crawls stopped, their runs marked crashed), start the jobs."""
        self.sources = self._load()
        self.launcher.stop_orphans()
        db = open_store(self.settings.store, check=True)
        try:
            crashed = mark_crashed_runs(db, _stamp(self.clock()), process_is_dead)
        finally:
            db.close()
        if crashed:
            log.warning("runs %s had no process left: marked crashed", crashed)
        self.scheduler.start()
        self._schedule(self.sources)
        self.scheduler.add_job(
            self.reload_if_changed,
            IntervalTrigger(seconds=self.settings.check_config_every),
            id="config-watch",
        )

    def run_until_stopped(self, duration: float | None = None) -> None:
        """Block until a stop is requested (a signal, or ``duration`` seconds passed)."""
        self._stop.wait(duration)
        self.shutdown()

    def request_stop(self, *_: Any) -> None:
        """Signal handler: stop soon, from the main thread."""
        log.info("stop requested")
        self._stop.set()

    def shutdown(self) -> None:
        """Stop starting runs, stop the running crawls cleanly, wait for the jobs."""
        self.launcher.stop_all()
        self.scheduler.shutdown(wait=True)
        log.info("scheduler stopped")

    def reload(self, *_: Any) -> None:
        """Re-read sources.toml and replace the jobs; keep the old ones if it is bad."""
        try:
            sources = self._load()
        except CrawlerError as error:
            log.error("sources not reloaded, keeping the last good ones: %s", error)
            return
        for job in self.scheduler.get_jobs():
            if job.id != "config-watch":
                job.remove()
        self.sources = sources
        self._schedule(sources)
        log.info("sources reloaded: %s", ", ".join(s.name for s in sources) or "none")

    def reload_if_changed(self) -> None:
        """Reload when sources.toml's modification time changed."""
        try:
            mtime = self.settings.sources_file.stat().st_mtime
        except OSError:
            return
        if self._mtime is not None and mtime != self._mtime:
            self.reload()

    def _load(self) -> list[Source]:
        """Validate sources.toml; when good, make it the file the crawls read."""
        path = self.settings.sources_file
        self._mtime = path.stat().st_mtime if path.exists() else None
        sources = [s for s in read_sources_file(path).sources if s.enabled]
        # Crawls read a copy of the last good file, so a bad edit cannot break them.
        active = self.launcher.sources_file
        write_text_file(active.parent, active.name, path.read_text(encoding="utf-8"))
        return sources

    def _schedule(self, sources: list[Source]) -> None:
        now = self.clock()
        db = open_store(self.settings.store)
        try:
            last = {s.name: last_run(db, s.name) for s in sources}
        finally:
            db.close()
        for source in sources:
            started, outcome = last[source.name] or (None, None)
            due = first_run(started, source.every, now, outcome not in RUN_NOT_COMPLETED)
            trigger = _trigger(source, due)
            first: dict[str, Any] = {}
            if not source.schedule.cron:
                first["next_run_time"] = trigger.start_date
            self.scheduler.add_job(
                self.launcher.run, trigger, args=[source.name], id=f"crawl:{source.name}", **first
            )
            revisit = IntervalTrigger(
                seconds=self.settings.revisit_every.total_seconds(),
                start_date=now + self.settings.revisit_every,
            )
            self.scheduler.add_job(
                self.launcher.run, revisit, args=[source.name, True], id=f"revisit:{source.name}"
            )
        log.info("scheduled: %s", ", ".join(_describe(s) for s in sources) or "nothing")


def _trigger(source: Source, start: datetime) -> Any:
    if source.schedule.cron:
        try:
            return CronTrigger.from_crontab(source.schedule.cron, timezone=UTC)
        except ValueError as error:
            raise ConfigError(f'source "{source.name}": schedule.cron: {error}') from None
    every = source.every or timedelta(hours=1)
    return IntervalTrigger(seconds=every.total_seconds(), start_date=start)


def _describe(source: Source) -> str:
    when = f"cron {source.schedule.cron}" if source.schedule.cron else f"every {source.every}"
    return f"{source.name} ({when})"


def configure_logging(store: Path) -> None:
    """Log to stderr and to logs/scheduler.log beside the store."""
    logs = store.parent / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    for handler in (logging.StreamHandler(sys.stderr), logging.FileHandler(logs / "scheduler.log")):
        handler.setFormatter(formatter)
        root.addHandler(handler)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


def run_scheduler(settings: SchedulerSettings, duration: float | None = None) -> None:
    """Start the monitor, install the signal handlers, block until stopped."""
    monitor = Monitor(settings)
    monitor.start()
    signal.signal(signal.SIGTERM, monitor.request_stop)
    signal.signal(signal.SIGINT, monitor.request_stop)
    signal.signal(signal.SIGHUP, monitor.reload)
    log.info("scheduler running (pid %s); stop with SIGTERM or Ctrl-C", os.getpid())
    monitor.run_until_stopped(duration)


def main(argv: Sequence[str] | None = None) -> int:
    """``python scheduler.py``: the same as ``crawler schedule``."""
    from crawler.cli import main as cli_main

    return cli_main(["schedule", *(argv if argv is not None else sys.argv[1:])])


if __name__ == "__main__":
    sys.exit(main())
