"""When a known article is next checked, and why. Pure: every time is passed in.

News articles change most in their first hours (corrections, updates, new paragraphs),
then rarely. So the gap between checks follows the article's age (``tiers``: by default
every 15 minutes in the first 6 hours, every 2 hours up to 2 days, twice a day up to a
week, weekly up to 30 days, then never), and its history: an article that changed at
its last check is checked twice as often, one that has stayed the same for a long time
backs off up to four times the tier's gap, though never beyond the next tier's.
A fixed ``interval`` in the source's policy overrides all of this.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from crawler.sources import RevisitPolicy


@dataclass(frozen=True)
class NextCheck:
    """When to check an article next (None: never again) and the reason, in words."""

    at: datetime | None
    reason: str


def parse_stamp(stamp: str) -> datetime:
    """A store timestamp (ISO 8601, ``Z`` for UTC) as an aware datetime."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def next_check(
    *,
    first_seen: datetime,
    last_checked: datetime,
    last_changed: datetime,
    status: str,
    policy: RevisitPolicy,
) -> NextCheck:
    """The next check of an article after the check at ``last_checked``."""
    if status != "live":
        return NextCheck(None, "removed: not revisited unless a feed or sitemap lists it again")
    age = last_checked - first_seen
    if age >= policy.stop_after:
        return NextCheck(None, f"older than {_words(policy.stop_after)}: no more checks")
    if policy.interval is not None:
        return NextCheck(
            last_checked + policy.interval, f"fixed interval {_words(policy.interval)}"
        )
    gap, ceiling, tier = _tier(age, policy)
    stable_for = last_checked - last_changed
    if stable_for <= timedelta(0) and last_changed > first_seen:
        gap, why = gap / 2, "it changed at the last check, so sooner"
    elif stable_for >= 8 * gap:
        gap, why = min(4 * gap, ceiling), f"unchanged for {_words(stable_for)}, backing off"
    elif stable_for >= 3 * gap:
        gap, why = min(2 * gap, ceiling), f"unchanged for {_words(stable_for)}, backing off"
    else:
        why = "as its age tier says"
    reason = f"{_words(age)} old ({tier}): every {_words(gap)}; {why}"
    return NextCheck(last_checked + gap, reason)


def is_due(check_at: str | None, now: datetime) -> bool:
    """Whether a stored ``next_check_at`` has come (None: never)."""
    return check_at is not None and parse_stamp(check_at) <= now


def _tier(age: timedelta, policy: RevisitPolicy) -> tuple[timedelta, timedelta, str]:
    """(gap, ceiling, description) of the tier an article of ``age`` is in."""
    tiers = policy.tiers
    for index, (limit, gap) in enumerate(tiers):
        if age < limit:
            ceiling = tiers[index + 1][1] if index + 1 < len(tiers) else gap
            return gap, max(ceiling, gap), f"tier up to {_words(limit)}"
    last_limit, last_gap = tiers[-1]
    return last_gap, last_gap, f"beyond {_words(last_limit)}"


def _words(span: timedelta) -> str:
    """A short human duration: 45s, 15m, 2h, 3d, 2h30m."""
    seconds = int(span.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            whole, rest = divmod(seconds, size)
            smaller = {"d": ("h", 3600), "h": ("m", 60), "m": ("s", 1)}[unit]
            tail = rest // smaller[1]
            return f"{whole}{unit}{tail}{smaller[0]}" if tail and whole < 10 else f"{whole}{unit}"
    return f"{seconds}s"
