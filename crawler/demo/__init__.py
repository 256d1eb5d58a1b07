"""``crawler demo``: the scheduler monitoring a bundled German news site that changes.

The site (:mod:`crawler.demo.site`) runs on 127.0.0.1 and moves through five cycles:
20 articles published; two more and template churn everywhere; a 503 outage; an edited
sentence, a removed article, two more articles; churn again (confirming the removal).
The real scheduler (``scheduler.Monitor``) crawls its feed and news sitemap every few
seconds, each run a ``crawler crawl`` process, while the demo moves the site on once
both sources have crawled the current cycle. At the end the store is compared with
what a correct monitor must have found (:data:`crawler.demo.site.EXPECTED`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from crawler.demo.site import EXPECTED, Expected, serve_site
from crawler.errors import CrawlerError
from crawler.recording import timestamp
from crawler.store import open_store, open_store_readonly

CYCLES = (
    "20 articles are published",
    "2 new articles; ads, related teasers and render times churn on every page",
    "the whole site answers 503 (maintenance)",
    "a sentence is edited, an article is removed, 2 new articles, churn",
    "churn again; the removed article is still gone",
)
SOURCES = ("demo-feed", "demo-sitemap")


class DemoError(CrawlerError):
    """The demo could not run to its end."""


@dataclass(frozen=True)
class CycleReport:
    """What the monitor found in one cycle of the site."""

    cycle: int
    description: str
    counts: dict[str, int]
    outcomes: dict[str, str]


@dataclass(frozen=True)
class DemoResult:
    """The demo's cycles, what the store holds in the end, and what it should hold."""

    cycles: tuple[CycleReport, ...]
    events: dict[str, int]
    changed: tuple[str, ...]
    removed: tuple[str, ...]
    expected: Expected
    store: Path
    seconds: float

    @property
    def exact(self) -> bool:
        """True when exactly the real changes were detected, nothing more or less."""
        return (
            self.events.get("new", 0) == self.expected.new
            and _slugs(self.changed) == set(self.expected.changed)
            and _slugs(self.removed) == set(self.expected.removed)
            and self.events.get("changed", 0) + self.events.get("title_changed", 0)
            == len(self.expected.changed)
        )


def _slugs(urls: tuple[str, ...]) -> set[str]:
    return {url.rstrip("/").rsplit("/", 1)[-1].removesuffix("-100.html") for url in urls}


def sources_toml(feed_url: str, sitemap_url: str, every: float) -> str:
    """The demo's sources file: the site's feed and news sitemap on a short schedule."""
    common = (
        f'schedule = {{ every = "{every:g}s" }}\n'
        'revisit = { interval = "0s", confirm_removal_after = "0s" }\n'
        "concurrency = 8\n"
    )
    return (
        "# The demo site runs on 127.0.0.1, which the crawler refuses unless allowed.\n"
        '[crawler]\nallow_private_addresses = ["127.0.0.0/8"]\n\n'
        f'[[source]]\nname = "demo-feed"\ntype = "feed"\nurl = "{feed_url}"\n{common}\n'
        f'[[source]]\nname = "demo-sitemap"\ntype = "sitemap"\nurl = "{sitemap_url}"\n{common}'
    )


def reset(workdir: Path) -> Path:
    """Remove a previous demo's store, text files and feed; return the store path."""
    store = workdir / "crawl.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{store}{suffix}").unlink(missing_ok=True)
    for text_file in (workdir / "articles").glob("*.txt"):
        text_file.unlink()
    (workdir / "changes.atom").unlink(missing_ok=True)
    return store


def run_demo(
    workdir: Path,
    *,
    every: float = 2.0,
    cycle_timeout: float = 60.0,
    on_cycle: Callable[[CycleReport], None] | None = None,
) -> DemoResult:
    """Run the scheduler against the demo site through its cycles; return what it found.

    Raises :class:`DemoError` when a cycle is not crawled within ``cycle_timeout``.
    """
    import scheduler

    logging.getLogger("apscheduler").setLevel(logging.ERROR)  # overlaps are expected here
    workdir.mkdir(parents=True, exist_ok=True)
    store = reset(workdir)
    open_store(store).close()
    started = time.monotonic()
    reports = []
    with serve_site() as site:
        sources_file = workdir / "sources.toml"
        sources_file.write_text(
            sources_toml(site.url("/feed.xml"), site.url("/news-sitemap.xml"), every), "utf-8"
        )
        settings = scheduler.SchedulerSettings(
            sources_file=sources_file,
            store=store,
            time_limit=cycle_timeout,
            revisit_every=timedelta(hours=1),
        )
        monitor = scheduler.Monitor(settings)
        monitor.start()
        try:
            for cycle, description in enumerate(CYCLES):
                site.set_cycle(cycle)
                report = _crawl_cycle(store, cycle, description, cycle_timeout)
                reports.append(report)
                if on_cycle is not None:
                    on_cycle(report)
        finally:
            monitor.shutdown()
    return _result(store, tuple(reports), time.monotonic() - started)


def serve_demo_site(workdir: Path, cycle: int, every: float, say: Callable[[str], None]) -> None:
    """Serve the demo site in ``cycle`` until Ctrl-C, with a sources file for crawling it."""
    workdir.mkdir(parents=True, exist_ok=True)
    with serve_site() as site:
        site.set_cycle(cycle)
        sources = workdir / "sources.toml"
        sources.write_text(
            sources_toml(site.url("/feed.xml"), site.url("/news-sitemap.xml"), every), "utf-8"
        )
        say(
            f"The demo site (cycle {cycle}) is at {site.url('/')}; stop with Ctrl-C.\n"
            f"In another terminal:  crawler crawl --sources {sources} "
            f"--store {workdir / 'crawl.db'}"
        )
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            say("stopped")


def _crawl_cycle(store: Path, cycle: int, description: str, timeout: float) -> CycleReport:
    """Wait until every source has run entirely within this cycle; report those runs."""
    since = timestamp(datetime.now(UTC))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = _finished_runs(store, since)
        if set(runs) >= set(SOURCES):
            counts: Counter[str] = Counter()
            for row in runs.values():
                counts.update(row[1])
            return CycleReport(cycle, description, dict(counts), {s: r[0] for s, r in runs.items()})
        time.sleep(0.2)  # polling the store: the runs are other processes
    raise DemoError(f"cycle {cycle} was not crawled within {timeout:g} s")


def _finished_runs(store: Path, since: str) -> dict[str, tuple[str, dict[str, int]]]:
    db = open_store_readonly(store)
    try:
        rows = db.execute(
            "SELECT source, outcome, new, changed, unchanged, not_modified, removed, errors "
            "FROM runs WHERE started_at >= ? AND finished_at IS NOT NULL ORDER BY started_at",
            [since],
        ).fetchall()
    finally:
        db.close()
    names = ("new", "changed", "unchanged", "not_modified", "removed", "errors")
    return {row[0]: (row[1], dict(zip(names, row[2:], strict=True))) for row in rows}


def _result(store: Path, reports: tuple[CycleReport, ...], seconds: float) -> DemoResult:
    db = open_store_readonly(store)
    try:
        events = dict(db.execute("SELECT kind, count(*) FROM events GROUP BY kind").fetchall())
        urls = {
            kind: tuple(
                url
                for (url,) in db.execute(
                    "SELECT a.canonical_url FROM events e JOIN articles a ON a.id = e.article_id "
                    "WHERE e.kind IN (" + ",".join("?" * len(kinds)) + ") ORDER BY e.id",
                    list(kinds),
                )
            )
            for kind, kinds in (
                ("changed", ("changed", "title_changed")),
                ("removed", ("removed",)),
            )
        }
    finally:
        db.close()
    return DemoResult(reports, events, urls["changed"], urls["removed"], EXPECTED, store, seconds)
