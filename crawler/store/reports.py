"""Read-side queries behind the change report: what happened to which articles in a period.

A period is ``since <= t < until`` in store timestamps (ISO 8601 UTC, ``…Z``); ``until``
``None`` means open-ended, ``source`` ``None`` means every source. Every function takes an
open database (read-only is enough), runs parameterised SQL driven by the ``events_at``
index and returns frozen values; nothing here writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlite_utils

LISTED_KINDS = ("new", "removed", "restored")


@dataclass(frozen=True)
class Period:
    """A time window ``since <= t < until`` and an optional source to restrict it to."""

    since: str
    until: str | None = None
    source: str | None = None

    def __post_init__(self) -> None:
        if self.until is not None and self.until <= self.since:
            raise ValueError(f"period ends ({self.until}) before it starts ({self.since})")

    def where(self) -> tuple[str, dict[str, Any]]:
        """SQL conditions on ``e.at`` and ``a.source`` and their named parameters."""
        parts = ["e.at >= :since"]
        if self.until is not None:
            parts.append("e.at < :until")
        if self.source is not None:
            parts.append("a.source = :source")
        params = {"since": self.since, "until": self.until, "source": self.source}
        return " AND ".join(parts), {k: v for k, v in params.items() if v is not None}


@dataclass(frozen=True)
class PeriodCounts:
    """How many distinct articles were new, changed, removed and restored in a period."""

    new: int
    changed: int
    removed: int
    restored: int


@dataclass(frozen=True)
class VersionText:
    """One version's number, fetch time, title and full text (seed format)."""

    number: int
    fetched_at: str
    title: str
    text: str


@dataclass(frozen=True)
class ChangedArticle:
    """An article edited in a period: the version before its first edit there, and its newest.

    ``edits`` counts the versions the period added; ``changed_at`` is the newest one's time.
    """

    article_id: int
    canonical_url: str
    source: str | None
    status: str
    edits: int
    changed_at: str
    before: VersionText
    after: VersionText


@dataclass(frozen=True)
class ListedEvent:
    """A new, removed or restored event with its article and the article's latest title."""

    kind: str
    at: str
    article_id: int
    canonical_url: str
    source: str | None
    title: str | None
    summary: str


def count_period(db: sqlite_utils.Database, period: Period) -> PeriodCounts:
    """Distinct articles per kind of event in the period (title changes count as changed)."""
    return PeriodCounts(*db.execute(*_count_sql(period)).fetchone())


def changed_articles(db: sqlite_utils.Database, period: Period) -> list[ChangedArticle]:
    """Articles with a new version in the period, the most recently changed first."""
    return [_changed(row) for row in db.execute(*_changed_sql(period))]


def listed_events(
    db: sqlite_utils.Database, period: Period, kinds: tuple[str, ...] = ("new", "removed")
) -> list[ListedEvent]:
    """Events of ``kinds`` in the period, newest first, with the article's latest title.

    Raises ``ValueError`` for edit kinds (see :func:`changed_articles`) or unknown ones.
    """
    return [ListedEvent(*row) for row in db.execute(*_listed_sql(period, kinds))]


def explain_report_queries(db: sqlite_utils.Database, period: Period) -> dict[str, list[str]]:
    """``EXPLAIN QUERY PLAN`` details of this module's queries, by function name."""
    queries = {
        "count_period": _count_sql(period),
        "changed_articles": _changed_sql(period),
        "listed_events": _listed_sql(period, LISTED_KINDS),
    }
    return {
        name: [str(row[3]) for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
        for name, (sql, params) in queries.items()
    }


def _count_sql(period: Period) -> tuple[str, dict[str, Any]]:
    where, params = period.where()
    sql = f"""SELECT
            count(DISTINCT CASE WHEN e.kind = 'new' THEN e.article_id END),
            count(DISTINCT CASE WHEN e.kind IN ('changed', 'title_changed')
                  THEN e.article_id END),
            count(DISTINCT CASE WHEN e.kind = 'removed' THEN e.article_id END),
            count(DISTINCT CASE WHEN e.kind = 'restored' THEN e.article_id END)
        FROM events e JOIN articles a ON a.id = e.article_id
        WHERE {where}"""
    return sql, params


def _changed_sql(period: Period) -> tuple[str, dict[str, Any]]:
    where, params = period.where()
    sql = f"""WITH edited AS (
            SELECT e.article_id, min(v.number) AS first_number, max(v.number) AS last_number,
                   count(*) AS edits, max(e.at) AS changed_at
            FROM events e
            JOIN articles a ON a.id = e.article_id
            JOIN versions v ON v.id = e.version_id
            WHERE e.kind IN ('changed', 'title_changed') AND {where}
            GROUP BY e.article_id
        )
        SELECT d.article_id, a.canonical_url, a.source, a.status, d.edits, d.changed_at,
               o.number, o.fetched_at, o.title, o.text,
               n.number, n.fetched_at, n.title, n.text
        FROM edited d
        JOIN articles a ON a.id = d.article_id
        JOIN versions o ON o.article_id = d.article_id AND o.number = d.first_number - 1
        JOIN versions n ON n.article_id = d.article_id AND n.number = d.last_number
        ORDER BY d.changed_at DESC, d.article_id DESC"""
    return sql, params


def _changed(row: tuple[Any, ...]) -> ChangedArticle:
    article_id, url, source, status, edits, changed_at = row[:6]
    return ChangedArticle(
        article_id,
        url,
        source,
        status,
        edits,
        changed_at,
        before=VersionText(*row[6:10]),
        after=VersionText(*row[10:14]),
    )


def _listed_sql(period: Period, kinds: tuple[str, ...]) -> tuple[str, dict[str, Any]]:
    if not kinds or not set(kinds) <= set(LISTED_KINDS):
        raise ValueError(f"listed events are {', '.join(LISTED_KINDS)}, not {kinds!r}")
    where, params = period.where()
    params.update({f"kind{i}": kind for i, kind in enumerate(kinds)})
    marks = ", ".join(f":kind{i}" for i in range(len(kinds)))
    sql = f"""SELECT e.kind, e.at, e.article_id, a.canonical_url, a.source, v.title, e.summary
        FROM events e
        JOIN articles a ON a.id = e.article_id
        LEFT JOIN versions v ON v.article_id = a.id AND v.number = a.version_count
        WHERE e.kind IN ({marks}) AND {where}
        ORDER BY e.at DESC, e.id DESC"""
    return sql, params
