"""The SQL behind alerts: events with their article and version, and delivery rows.

An event is due for a target until a ``deliveries`` row says ``delivered`` or ``filtered``;
``pending`` (not reached yet) and ``failed`` (rejected) rows stay due. Each write here is
one short transaction of its own, so a caller never holds the write lock across HTTP.
Removed events carry no version; they get the article's newest version at the event's time.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from crawler.store import write_transaction

DELIVERY_STATUSES = ("pending", "delivered", "failed", "filtered")

# The text is needed only for new articles (keyword filters, feed excerpts): not for others.
_EVENT_COLUMNS = """
    e.id AS event_id, e.kind, e.at, e.summary, e.article_id, a.source, a.canonical_url,
    v.title, CASE WHEN e.kind = 'new' THEN v.text END AS text, v.number AS version,
    v.change_class, coalesce(v.words_added, 0) AS words_added,
    coalesce(v.words_removed, 0) AS words_removed, v.diff
"""
_EVENT_JOINS = """
    JOIN articles a ON a.id = e.article_id
    LEFT JOIN versions v ON v.id = coalesce(
        e.version_id,
        (SELECT id FROM versions WHERE article_id = e.article_id AND fetched_at <= e.at
         ORDER BY number DESC LIMIT 1))
"""


@dataclass(frozen=True)
class AlertEvent:
    """An event with what an alert tells about it; ``text`` is set for ``new`` events only.

    ``delivery_status`` and ``attempts`` describe the target's delivery row (None, 0: none yet).
    """

    event_id: int
    kind: str
    at: str
    summary: str
    article_id: int
    source: str | None
    canonical_url: str
    title: str | None
    text: str | None
    version: int | None
    change_class: str | None
    words_added: int
    words_removed: int
    diff: dict[str, Any] | None
    delivery_status: str | None = None
    attempts: int = 0


def due_events(db: sqlite_utils.Database, target: str, limit: int) -> list[AlertEvent]:
    """Up to ``limit`` events not yet delivered to (or filtered for) ``target``, oldest first.

    Events never tried and ``pending`` ones come before ``failed`` ones, so a few rejected
    events cannot block the queue.
    """
    # Pick the due ids first (events x the deliveries index), then join the few chosen.
    sql = f"""WITH due AS (
            SELECT e.id, d.status, coalesce(d.attempts, 0) AS attempts
            FROM events e
            LEFT JOIN deliveries d ON d.event_id = e.id AND d.target = :target
            WHERE d.status IS NULL OR d.status IN ('pending', 'failed')
            ORDER BY d.status IS 'failed', e.id
            LIMIT :limit)
        SELECT {_EVENT_COLUMNS}, due.status AS delivery_status, due.attempts
        FROM due JOIN events e ON e.id = due.id {_EVENT_JOINS}
        ORDER BY due.status IS 'failed', e.id"""
    return _events(db.execute(sql, {"target": target, "limit": limit}))


def recent_events(
    db: sqlite_utils.Database, limit: int, before: tuple[str, int] | None = None
) -> list[AlertEvent]:
    """Up to ``limit`` events, newest first; ``before`` (at, event id) continues a listing."""
    where = "WHERE (e.at, e.id) < (:at, :id)" if before else ""
    sql = f"""SELECT {_EVENT_COLUMNS} FROM events e {_EVENT_JOINS}
        {where} ORDER BY e.at DESC, e.id DESC LIMIT :limit"""
    at, event_id = before or ("", 0)
    return _events(db.execute(sql, {"limit": limit, "at": at, "id": event_id}))


def record_delivery(
    db: sqlite_utils.Database,
    event_id: int,
    target: str,
    *,
    status: str,
    attempts: int,
    error: str | None,
    at: str,
) -> None:
    """Set the delivery row of an event for ``target``, adding ``attempts`` to its count."""
    if status not in DELIVERY_STATUSES:
        raise ValueError(f"unknown delivery status {status!r}")
    with write_transaction(db):
        db.execute(
            """INSERT INTO deliveries (event_id, target, status, attempts, last_error, updated_at)
            VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT (event_id, target) DO UPDATE SET
                status = excluded.status,
                attempts = deliveries.attempts + excluded.attempts,
                last_error = excluded.last_error,
                updated_at = excluded.updated_at""",
            [event_id, target, status, attempts, error, at],
        )


def record_filtered(
    db: sqlite_utils.Database, event_ids: Iterable[int], target: str, at: str
) -> None:
    """Mark events as ``filtered`` for ``target`` (in one transaction): never sent there."""
    rows = [(event_id, target, at) for event_id in event_ids]
    if not rows:
        return
    with write_transaction(db):
        db.conn.executemany(
            """INSERT INTO deliveries (event_id, target, status, attempts, updated_at)
            VALUES (?, ?, 'filtered', 0, ?)
            ON CONFLICT (event_id, target) DO UPDATE SET
                status = 'filtered', last_error = NULL, updated_at = excluded.updated_at""",
            rows,
        )


@dataclass(frozen=True)
class Delivery:
    """A ``deliveries`` row."""

    event_id: int
    target: str
    status: str
    attempts: int
    last_error: str | None
    updated_at: str


def deliveries(db: sqlite_utils.Database, target: str) -> list[Delivery]:
    """Every delivery row of ``target``, by event."""
    cursor = db.execute(
        "SELECT event_id, target, status, attempts, last_error, updated_at FROM deliveries "
        "WHERE target = ? ORDER BY event_id",
        [target],
    )
    return [Delivery(*row) for row in cursor.fetchall()]


def _events(cursor: sqlite3.Cursor) -> list[AlertEvent]:
    names = [column[0] for column in cursor.description]
    events = []
    for row in cursor.fetchall():  # fetch all: no read snapshot stays open during HTTP
        values = dict(zip(names, row, strict=True))
        values["diff"] = json.loads(values["diff"]) if values["diff"] else None
        events.append(AlertEvent(**values))
    return events
