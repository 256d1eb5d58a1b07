from datetime import UTC, datetime, timedelta

import pytest

from crawler.revisits import is_due, next_check
from crawler.sources import RevisitPolicy

T0 = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
H = timedelta(hours=1)
M = timedelta(minutes=1)
D = timedelta(days=1)


def check(age, since_change=None, policy=None, status="live"):
    last_checked = T0 + age
    last_changed = T0 if since_change is None else last_checked - since_change
    return next_check(
        first_seen=T0,
        last_checked=last_checked,
        last_changed=last_changed,
        status=status,
        policy=policy or RevisitPolicy(),
    )


@pytest.mark.parametrize(
    ("age", "since_change", "gap", "why"),
    [
        (30 * M, None, 15 * M, "as its age tier says"),  # fresh: every 15 minutes
        (5 * H, 0 * M, 7.5 * M, "changed at the last check"),  # just changed: sooner
        (12 * H, 1 * H, 2 * H, "as its age tier says"),  # day one: every 2 hours
        (12 * H, None, 4 * H, "backing off"),  # ...unchanged since publication: x2
        (3 * D, 3 * D, 24 * H, "backing off"),  # stable for days: x2
        (20 * D, 1 * D, 7 * D, "as its age tier says"),  # weekly up to 30 days
        (25 * D, 25 * D, 7 * D, "backing off"),  # capped at the last tier
        (1 * D, 7 * H, 4 * H, "backing off"),  # 3 gaps unchanged: x2
    ],
)
def test_gaps_follow_age_and_history(age, since_change, gap, why):
    result = check(age, since_change)
    assert result.at - (T0 + age) == gap
    assert why in result.reason


def test_old_and_removed_articles_are_not_checked():
    assert check(31 * D).at is None and "no more checks" in check(31 * D).reason
    removed = check(1 * H, status="removed")
    assert removed.at is None and "removed" in removed.reason


def test_a_fixed_interval_overrides_the_tiers():
    result = check(10 * M, policy=RevisitPolicy(interval=timedelta(0)))
    assert result.at == T0 + 10 * M and "fixed interval" in result.reason


def test_custom_tiers():
    policy = RevisitPolicy(tiers=((H, 5 * M), (D, H)), stop_after=2 * D)
    assert check(30 * M, since_change=2 * M, policy=policy).at == T0 + 35 * M
    assert check(25 * H, since_change=1 * H, policy=policy).at == T0 + 26 * H


@pytest.mark.parametrize(
    ("stamp", "due"),
    [
        ("2026-11-24T05:59:59.000Z", True),
        ("2026-11-24T06:00:00.000Z", True),
        ("2026-11-24T06:00:01.000Z", False),
        (None, False),
    ],
)
def test_is_due(stamp, due):
    assert is_due(stamp, T0) is due
