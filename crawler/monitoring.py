"""What ``crawler status`` reports: per source health, and one article's checks."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from crawler.errors import CrawlerError
from crawler.health import degradation
from crawler.recording import timestamp
from crawler.revisits import parse_stamp
from crawler.sources import Source
from crawler.store import open_store_readonly
from crawler.store.queries import resolve_article
from crawler.store.status import article_status, source_health


def source_reports(store: Path, sources: list[Source], now: datetime) -> list[dict[str, Any]]:
    """One report per source named in sources.toml or found in the store."""
    db = open_store_readonly(store)
    try:
        names = [s.name for s in sources]
        stored = [row[0] for row in db.execute("SELECT DISTINCT source FROM runs ORDER BY 1")]
        by_name = {s.name: s for s in sources}
        reports = []
        for name in dict.fromkeys([*names, *stored]):
            health = source_health(
                db,
                name,
                day_ago=timestamp(now - timedelta(days=1)),
                week_ago=timestamp(now - timedelta(days=7)),
            )
            reports.append(_report(asdict(health), by_name.get(name), now))
        return reports
    finally:
        db.close()


def _report(health: dict[str, Any], source: Source | None, now: datetime) -> dict[str, Any]:
    warnings = []
    degraded = degradation(
        health.pop("extraction_failed_recent"),
        health.pop("pages_recent"),
        health.pop("extraction_failed_before"),
        health.pop("pages_before"),
    )
    if degraded:
        warnings.append(degraded)
    if health["last_outcome"] == "failed":
        warnings.append(f"the last run failed: {health['last_error'] or 'see the logs'}")
    health["failures"] = dict(health["failures"])
    health["next_run"] = _next_run(health["last_started"], source, now)
    health["warnings"] = warnings
    return health


def _next_run(last_started: str | None, source: Source | None, now: datetime) -> str | None:
    if source is None or not source.enabled:
        return None
    if source.schedule.cron:
        return f"cron {source.schedule.cron}"
    every = source.every
    if last_started is None or every is None:
        return "at the scheduler's start"
    return timestamp(max(now, parse_stamp(last_started) + every))


def article_report(store: Path, reference: str) -> dict[str, Any]:
    """When an article is checked next and why, with its latest checks."""
    db = open_store_readonly(store)
    try:
        article = resolve_article(db, reference)
        status = article_status(db, article.id)
    except LookupError as error:
        raise CrawlerError(str(error)) from None
    finally:
        db.close()
    report = asdict(status)
    report["fetches"] = [
        dict(zip(("at", "outcome", "http_status", "reason"), row, strict=True))
        for row in status.fetches
    ]
    return report
