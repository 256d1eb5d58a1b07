"""When a known article is due for another look. Pure: the time is passed in."""

from __future__ import annotations

from datetime import datetime

from crawler.sources import RevisitPolicy


def parse_stamp(stamp: str) -> datetime:
    """A store timestamp (ISO 8601, ``Z`` for UTC) as an aware datetime."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def is_due(
    *, first_seen: str, last_checked: str, status: str, policy: RevisitPolicy, now: datetime
) -> bool:
    """Whether an article should be fetched again at ``now``.

    Live articles are checked every ``policy.interval`` until they are older than
    ``policy.stop_after``; removed articles are not revisited (a feed listing them again
    brings them back).
    """
    if status != "live":
        return False
    if now - parse_stamp(first_seen) > policy.stop_after:
        return False
    return now - parse_stamp(last_checked) >= policy.interval
