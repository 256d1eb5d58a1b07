"""Read-side SQL for ``crawler status``: the health of each source and of one article."""

from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

# Fetch outcomes that mean "the page came, but held no usable article text".
EXTRACTION_FAILURES = ("no_text", "empty", "too_short", "collapsed", "blocked", "paywall")


@dataclass(frozen=True)
class SourceHealth:
    """One source's state: last run, articles, recent changes and failing checks."""

    source: str
    last_started: str | None
    last_finished: str | None
    last_outcome: str | None
    last_error: str | None
    articles: int
    removed: int
    changes_day: int
    changes_week: int
    failures: tuple[tuple[str, int], ...]
    extraction_failed_recent: int
    pages_recent: int
    extraction_failed_before: int
    pages_before: int


@dataclass(frozen=True)
class ArticleStatus:
    """One article's checks: when it is next due and why, and its latest fetches."""

    id: int
    canonical_url: str
    source: str | None
    status: str
    first_seen: str
    last_checked: str
    last_changed: str
    version_count: int
    next_check_at: str | None
    next_check_reason: str | None
    gone_since: str | None
    fetches: tuple[tuple[str, str, int | None, str | None], ...]


def source_health(
    db: sqlite_utils.Database, source: str, *, day_ago: str, week_ago: str
) -> SourceHealth:
    """The health of ``source``; ``day_ago`` and ``week_ago`` are store timestamps."""
    last = db.execute(
        "SELECT started_at, finished_at, outcome, error FROM runs WHERE source = ? "
        "ORDER BY id DESC LIMIT 1",  # by id: the clock may have been set back
        [source],
    ).fetchone() or (None, None, None, None)
    articles, removed = db.execute(
        "SELECT count(*), coalesce(sum(status = 'removed'), 0) FROM articles WHERE source = ?",
        [source],
    ).fetchone()
    changes_day, changes_week = db.execute(
        "SELECT coalesce(sum(e.at >= ?), 0), count(*) FROM events e "
        "JOIN articles a ON a.id = e.article_id "
        "WHERE a.source = ? AND e.kind != 'new' AND e.at >= ?",
        [day_ago, source, week_ago],
    ).fetchone()
    failures = tuple(
        db.execute(
            "SELECT f.outcome, count(*) FROM fetches f "
            "WHERE f.source = ? AND f.at >= ? AND f.outcome NOT IN "
            "('new', 'changed', 'unchanged', 'not_modified', 'removed') "
            "GROUP BY f.outcome ORDER BY count(*) DESC",
            [source, day_ago],
        ).fetchall()
    )
    recent = _extraction_share(db, source, since=day_ago, until=None)
    before = _extraction_share(db, source, since=week_ago, until=day_ago)
    return SourceHealth(
        source=source,
        last_started=last[0],
        last_finished=last[1],
        last_outcome=last[2],
        last_error=last[3],
        articles=int(articles),
        removed=int(removed),
        changes_day=int(changes_day),
        changes_week=int(changes_week),
        failures=failures,
        extraction_failed_recent=recent[0],
        pages_recent=recent[1],
        extraction_failed_before=before[0],
        pages_before=before[1],
    )


def _extraction_share(
    db: sqlite_utils.Database, source: str, *, since: str, until: str | None
) -> tuple[int, int]:
    """(pages without usable text, pages that arrived) of a source in a period."""
    marks = ", ".join("?" for _ in EXTRACTION_FAILURES)
    row = db.execute(
        f"SELECT coalesce(sum(f.outcome IN ({marks})), 0), count(*) FROM fetches f "
        "WHERE f.source = ? AND f.at >= ? "
        "AND (? IS NULL OR f.at < ?) AND f.http_status BETWEEN 200 AND 299",
        [*EXTRACTION_FAILURES, source, since, until, until],
    ).fetchone()
    return int(row[0]), int(row[1])


def article_status(db: sqlite_utils.Database, article_id: int, limit: int = 10) -> ArticleStatus:
    """The checks of one article, its latest ``limit`` fetches first."""
    cursor = db.execute(
        "SELECT id, canonical_url, source, status, first_seen, last_checked, last_changed, "
        "version_count, next_check_at, next_check_reason, gone_since FROM articles WHERE id = ?",
        [article_id],
    )
    row = cursor.fetchone()
    if row is None:
        raise LookupError(f"no article {article_id}")
    fetches = tuple(
        db.execute(
            "SELECT at, outcome, http_status, reason FROM fetches WHERE article_id = ? "
            "ORDER BY id DESC LIMIT ?",  # by id: the clock may have been set back
            [article_id, limit],
        ).fetchall()
    )
    names = [column[0] for column in cursor.description]
    return ArticleStatus(**dict(zip(names, row, strict=True)), fetches=fetches)
