"""Runs Scrapy in this process: the one place that starts a crawler engine.

``fetch_article`` downloads one page (``crawler fetch``); ``crawl_sources`` crawls
sources with their spiders, a process pool for extraction and one batched writer.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import sqlite_utils
from scrapy import signals
from scrapy.crawler import Crawler, CrawlerProcess
from scrapy.settings import Settings

from crawler.errors import CrawlerError, ExtractionError, FetchError, StoreError
from crawler.extraction import Article
from crawler.fetches import FetchResult, article_from_fetch
from crawler.pipelines import SourceCrawler
from crawler.processes import process_is_dead
from crawler.recording import (
    BatchRecorder,
    Policy,
    Recorded,
    record_article,
    record_failure,
    timestamp,
)
from crawler.revisits import is_due
from crawler.settings import Config, process_settings, scrapy_settings, source_settings
from crawler.sources import Source
from crawler.store import (
    StoredArticle,
    acquire_lock,
    finish_run,
    mark_crashed_runs,
    open_store,
    release_lock,
    source_articles,
    start_run,
)
from crawler.urls import validate_url
from crawler.workers import ExtractionPool
from spiders import spider_for
from spiders.base import KnownArticle
from spiders.page import PageSpider


def fetch_pages(urls: list[str], config: Config, *, verbose: bool = False) -> list[FetchResult]:
    """Download ``urls`` with the crawl settings and return one FetchResult per URL, in order.

    Blocks until done. Starts a Twisted reactor, so call it at most once per process.
    """
    settings = scrapy_settings(config)
    settings["LOG_LEVEL"] = "INFO" if verbose else "CRITICAL"
    settings["LOG_INSTALL_ROOT_HANDLER"] = verbose
    results: dict[str, FetchResult] = {}

    def collect(item: Any, **_: Any) -> None:
        if isinstance(item, FetchResult):
            results.setdefault(item.url, item)

    process = CrawlerProcess(settings=settings)
    crawler = process.create_crawler(PageSpider)
    crawler.signals.connect(collect, signal=signals.item_scraped)
    process.crawl(crawler, urls=urls)
    process.start()
    return [
        results.get(url)
        or FetchResult(url=url, final_url=url, failure="error", reason="no response was received")
        for url in urls
    ]


def fetch_article(
    url: str, config: Config, *, save: bool = True, verbose: bool = False
) -> tuple[Article, Recorded | None]:
    """Fetch one URL, extract its article and (with ``save``) record it in the store.

    Raises :class:`InvalidURL`, :class:`FetchError`, :class:`ExtractionError` or
    :class:`StoreError`; a failure is logged in the store's ``fetches`` table first.
    """
    url = validate_url(url)
    db = open_store(config.store, check=True) if save else None
    result = fetch_pages([url], config, verbose=verbose)[0]
    now = datetime.now(UTC)
    try:
        article = article_from_fetch(result)
    except (FetchError, ExtractionError) as error:
        if db is not None:
            outcome = error.outcome if isinstance(error, FetchError) else error.reason
            record_failure(db, result, now=now, outcome=outcome, reason=str(error))
        raise
    if db is None:
        return article, None
    text_dir = Path(config.store).parent / "articles"
    recorded = record_article(db, article, result, text_dir=text_dir, now=now)
    if recorded.kind not in ("new", "changed", "unchanged"):
        raise ExtractionError(f"{result.final_url}: {recorded.summary}", reason=recorded.kind)
    return article, recorded


@dataclass(frozen=True)
class SourceRun:
    """One source's part of a crawl: its outcome, counts and discovery errors."""

    source: str
    outcome: str
    counts: dict[str, int]
    errors: tuple[str, ...]
    started_at: str
    finished_at: str
    # Not failures of the run: hosts the circuit breaker stopped (their articles stay due).
    notes: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "source": self.source,
            "outcome": self.outcome,
            "counts": self.counts,
            "errors": list(self.errors),
            "notes": list(self.notes),
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }


@dataclass(frozen=True)
class CrawlSummary:
    """What ``crawler crawl`` did, per source, and how fast."""

    runs: tuple[SourceRun, ...]
    elapsed: float

    @property
    def ok(self) -> bool:
        """True when no source failed (skipped ones, locked by another run, did not)."""
        return all(run.outcome in ("ok", "skipped") for run in self.runs)

    @property
    def totals(self) -> Counter[str]:
        """Counts added up over all sources."""
        return sum((Counter(run.counts) for run in self.runs), Counter())

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        fetched = self.totals["fetched"]
        return {
            "ok": self.ok,
            "elapsed_seconds": round(self.elapsed, 3),
            "pages_per_second": round(fetched / self.elapsed, 2) if self.elapsed else 0.0,
            "totals": dict(self.totals),
            "sources": [run.as_dict() for run in self.runs],
        }


ProgressCallback = Callable[[Counter[str], float], None]
DEFAULT_LOCK_TTL = timedelta(hours=6)


@dataclass(frozen=True)
class _CrawlPlan:
    """What one crawl process does: the settings every stage of it shares."""

    config: Config
    now: datetime
    max_pages: int | None
    revisit_only: bool
    on_progress: ProgressCallback | None
    verbose: bool


def crawl_sources(
    sources: list[Source],
    config: Config,
    *,
    max_pages: int | None = None,
    revisit_only: bool = False,
    lock_ttl: timedelta = DEFAULT_LOCK_TTL,
    on_progress: ProgressCallback | None = None,
    verbose: bool = False,
) -> CrawlSummary:
    """Crawl ``sources`` once, in parallel: discovery (unless ``revisit_only``), new
    articles and due revisits.

    Each source is locked in the store for the run, so two runs of one source never
    overlap; a source whose lock is held elsewhere is skipped. Extraction runs in a
    process pool, recording in one batched writer thread. Writes a ``runs`` row per
    source crawled. Blocks; starts a Twisted reactor (once per process).
    """
    # Until Scrapy installs its graceful handlers, SIGTERM must still unwind through the
    # finally blocks below (locks released, runs marked), not kill the process outright.
    signal.signal(signal.SIGTERM, _interrupt)
    plan = _CrawlPlan(config, datetime.now(UTC), max_pages, revisit_only, on_progress, verbose)
    db = open_store(config.store, check=True)
    started = timestamp(plan.now)
    mark_crashed_runs(db, started, process_is_dead)
    owner = f"{socket.gethostname()}:{os.getpid()}"
    expires = timestamp(plan.now + lock_ttl)
    locked = [
        source
        for source in sources
        if acquire_lock(db, f"source:{source.name}", owner, started, expires)
    ]
    busy = ("already running: another crawl of this source holds its lock",)
    skipped = [
        SourceRun(source.name, "skipped", {}, busy, started, started)
        for source in sources
        if source not in locked
    ]
    try:
        runs, elapsed = _crawl_locked(locked, plan, db) if locked else ([], 0.0)
    finally:
        for source in locked:
            release_lock(db, f"source:{source.name}", owner)
        db.close()
    return CrawlSummary(tuple(runs + skipped), elapsed)


def _crawl_locked(
    sources: list[Source], plan: _CrawlPlan, db: sqlite_utils.Database
) -> tuple[list[SourceRun], float]:
    """Crawl the sources this process holds the locks of; their runs end interrupted
    if anything goes wrong on the way."""
    started = timestamp(plan.now)
    host, pid = socket.gethostname(), os.getpid()
    run_ids = {
        source.name: start_run(db, source.name, started, host=host, pid=pid) for source in sources
    }
    try:
        return _crawl_started(sources, plan, db, run_ids)
    except BaseException as error:
        finished = timestamp(datetime.now(UTC))
        outcome = "failed" if isinstance(error, (StoreError, sqlite3.Error, OSError)) else None
        for run_id in run_ids.values():
            # Best effort: with the disk full this fails too, and the next run marks the
            # row crashed (its process is gone by then).
            with contextlib.suppress(StoreError, sqlite3.Error, OSError):
                finish_run(
                    db, run_id, finished, outcome or "interrupted", {}, _describe(error, outcome)
                )
        raise


def _crawl_started(
    sources: list[Source], plan: _CrawlPlan, db: sqlite_utils.Database, run_ids: dict[str, int]
) -> tuple[list[SourceRun], float]:
    started = timestamp(plan.now)
    recorder = BatchRecorder(
        Path(plan.config.store),
        policies={source.name: Policy(source.ignore, source.revisit) for source in sources},
    )
    clock = time.monotonic()
    with _extraction_pool(plan.config) as pool:
        crawlers = _run_reactor(sources, plan, db, pool, recorder)
        storage_error = _close(recorder)
    elapsed = time.monotonic() - clock
    finished = timestamp(datetime.now(UTC))
    runs = []
    for source, crawler in zip(sources, crawlers, strict=True):
        run = _source_run(source, crawler, recorder, started, finished, storage_error)
        message = "; ".join(run.errors + run.notes)
        finish_run(db, run_ids[source.name], finished, run.outcome, run.counts, message)
        runs.append(run)
    return runs, elapsed


class CrawlInterrupted(CrawlerError):
    """SIGTERM arrived before the crawl could stop gracefully."""

    exit_code = 143


def _interrupt(signum: int, _frame: object) -> None:
    raise CrawlInterrupted(f"stopped by signal {signum} before the crawl started")


def _describe(error: BaseException, outcome: str | None) -> str:
    if outcome is None:
        return "the crawl was interrupted"
    return f"storage failed: {' '.join(str(error).split())}"


def _extraction_pool(config: Config) -> ExtractionPool:
    return ExtractionPool(
        os.cpu_count() or 2, timeout=config.extract_timeout, max_tasks=config.extract_max_tasks
    )


def _known_articles(
    db: sqlite_utils.Database, source: Source, now: datetime
) -> dict[str, KnownArticle]:
    """The source's stored articles by every URL they were reached under, with ``due``
    set for those whose next check has come, within the per-host budget."""
    rows = list(source_articles(db, source.name))
    due_ids = _due_within_budget([article for article, _ in rows], source, now)
    known = {}
    for article, alias in rows:
        value = KnownArticle(
            url=article.url,
            etag=article.etag,
            last_modified=article.last_modified,
            body_hash=article.body_hash,
            last_checked=article.last_checked,
            due=article.id in due_ids,
        )
        known[alias] = value
        known.setdefault(article.canonical_url, value)
    return known


def _due_within_budget(articles: list[StoredArticle], source: Source, now: datetime) -> set[int]:
    """Ids of the articles due at ``now``, most overdue first, at most the budget per host."""
    unique = {article.id: article for article in articles}.values()
    due = sorted(
        (a for a in unique if a.next_check_at and is_due(a.next_check_at, now)),
        key=lambda a: a.next_check_at or "",
    )
    per_host: Counter[str] = Counter()
    chosen = set()
    for article in due:
        host = urlsplit(article.url).hostname or ""
        if per_host[host] < source.revisit.budget:
            per_host[host] += 1
            chosen.add(article.id)
    return chosen


def _run_reactor(
    sources: list[Source],
    plan: _CrawlPlan,
    db: sqlite_utils.Database,
    pool: ExtractionPool,
    recorder: BatchRecorder,
) -> list[Crawler]:
    base = process_settings(plan.config)
    base.update(
        LOG_LEVEL="INFO" if plan.verbose else "CRITICAL", LOG_INSTALL_ROOT_HANDLER=plan.verbose
    )
    process = CrawlerProcess(settings=base)
    crawlers: list[Crawler] = []
    for source in sources:
        settings = source_settings(plan.config, source)
        settings["LOG_LEVEL"] = base["LOG_LEVEL"]
        crawler = SourceCrawler(
            spider_for(source.type),
            Settings(settings),
            extractor=pool,
            recorder=recorder,
            init_reactor=not crawlers,  # the first crawler installs the reactor
        )
        process.crawl(
            crawler,
            source=source,
            known=_known_articles(db, source, plan.now),
            max_pages=plan.max_pages,
            now=plan.now,
            discover=not plan.revisit_only,
        )
        crawlers.append(crawler)
    if plan.on_progress is not None:
        from twisted.internet import task

        report, clock = plan.on_progress, time.monotonic()
        ticker = task.LoopingCall(lambda: report(recorder.counts(), time.monotonic() - clock))
        ticker.start(0.25)
    process.start()
    return crawlers


def _close(recorder: BatchRecorder) -> str | None:
    try:
        recorder.close()
    except (StoreError, OSError, sqlite3.Error) as error:
        return f"storage failed: {error}"
    return None


def _source_run(
    source: Source,
    crawler: Crawler,
    recorder: BatchRecorder,
    started: str,
    finished: str,
    storage_error: str | None,
) -> SourceRun:
    spider = crawler.spider
    errors = list(getattr(spider, "discovery_errors", []))
    if storage_error:
        errors.append(storage_error)
    stopped_hosts = crawler.stats.get_value("circuit_breaker/hosts", {}) if crawler.stats else {}
    notes = tuple(
        f"stopped requesting {host} for this run: {why}"
        for host, why in sorted(stopped_hosts.items())
    )
    reason = crawler.stats.get_value("finish_reason") if crawler.stats else None
    outcome = "failed" if errors else "ok"
    if reason == "shutdown":
        outcome = "interrupted"
    elif reason is None:  # the spider never ran to its end (a SIGTERM while starting up)
        outcome = "interrupted"
        errors.append("the crawl stopped before its spider finished")
    counts = dict(recorder.counts(source.name))
    for name, attribute in (
        ("too_old", "skipped_old"),
        ("robots", "skipped_robots"),
        ("broken_links", "broken_links"),
        ("over_cap", "skipped_over_cap"),  # feed entries, sitemap URLs past the caps
        ("bad_links", "skipped_bad_links"),  # javascript:, data:, file: links in feeds
        ("host_down", "host_down_skipped"),
    ):
        if getattr(spider, attribute, 0):
            counts[name] = getattr(spider, attribute)
    return SourceRun(source.name, outcome, counts, tuple(errors), started, finished, notes)
