"""Sign-in throttling counted in the database, on both: refusals write nothing, successes reset
the account, and concurrent attempts cannot share one free slot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from support.race import race
from tally.db.session import Database
from tally.errors import SignInThrottled
from tally.throttling import service as throttling
from tally.throttling.domain import ThrottleRule
from tally.throttling.models import SignInThrottle

T0 = datetime(2026, 12, 3, 1, 0, tzinfo=UTC)
LOCK = timedelta(minutes=15)
THROTTLES = throttling.Throttles(
    account=ThrottleRule(free=2, lock_after=4, lock_for=LOCK),
    address=ThrottleRule(free=5, lock_after=8, lock_for=LOCK),
)


def attempt(db: Database, username: str, address: str | None, now: datetime) -> int | None:
    """An attempt: ``None`` when counted, else the ``Retry-After`` seconds it was refused with."""
    try:
        with db.write() as session:
            throttling.admit(session, THROTTLES.keys(username, address), now)
    except SignInThrottled as refused:
        return int(refused.extra["retry_after"])
    return None


def counts(db: Database) -> dict[str, int]:
    with db.read() as session:
        query = select(SignInThrottle.key, SignInThrottle.failures)
        return {str(row.key): int(row.failures) for row in session.execute(query)}


def test_failures_slow_then_lock_an_account_and_refusals_count_nothing(database: Database) -> None:
    assert [attempt(database, "ada", "192.0.2.1", T0) for _ in range(3)] == [None, None, 1]
    assert counts(database) == {"account:ada": 2, "address:192.0.2.1": 2}
    assert attempt(database, "ada", "192.0.2.1", T0 + timedelta(seconds=1)) is None
    assert attempt(database, "ADA ", "192.0.2.1", T0 + timedelta(seconds=2)) == 1  # same account
    assert attempt(database, "ada", "192.0.2.1", T0 + timedelta(seconds=3)) is None  # 4th: locked
    assert attempt(database, "ada", "192.0.2.1", T0 + timedelta(minutes=10)) == 5 * 60 + 3
    assert counts(database) == {"account:ada": 4, "address:192.0.2.1": 4}
    unlocked = T0 + timedelta(seconds=3) + LOCK
    assert attempt(database, "ada", "192.0.2.1", unlocked) is None
    assert counts(database)["account:ada"] == 1


def test_a_success_resets_the_account_and_gives_the_address_its_attempt_back(
    database: Database,
) -> None:
    for second in range(2):
        assert attempt(database, "ada", "192.0.2.1", T0 + timedelta(seconds=second)) is None
    with database.write() as session:
        throttling.succeeded(session, "ada", "192.0.2.1")
    assert counts(database) == {"account:ada": 0, "address:192.0.2.1": 1}


def test_an_address_is_throttled_whatever_the_accounts(database: Database) -> None:
    for number in range(5):
        assert attempt(database, f"user{number}", "192.0.2.9", T0) is None
    assert attempt(database, "someone-else", "192.0.2.9", T0) == 1
    assert attempt(database, "someone-else", "198.51.100.1", T0) is None
    assert "account:someone-else" in counts(database)


def test_concurrent_attempts_cannot_share_a_free_slot(database: Database) -> None:
    rule = ThrottleRule(free=0, lock_after=3, lock_for=LOCK)
    throttles = throttling.Throttles(account=rule, address=rule)

    def work(_index: int) -> bool:
        try:
            with database.write() as session:
                throttling.admit(session, throttles.keys("ada", None), T0)
        except SignInThrottled:
            return False
        return True

    outcomes = race(8, work)
    assert outcomes.count(True) == 1, outcomes
    assert counts(database) == {"account:ada": 1}


def test_stale_counts_are_swept_and_locks_are_kept(database: Database) -> None:
    for number in range(4):
        attempt(database, "locked", None, T0 + timedelta(seconds=2 * number))
    attempt(database, "stale", None, T0)
    with database.write() as session:
        swept = throttling.sweep(session, T0 + timedelta(minutes=10), timedelta(minutes=5))
    assert swept == 1
    assert set(counts(database)) == {"account:locked"}


@pytest.mark.parametrize("address", [None, ""])
def test_an_attempt_without_an_address_counts_against_the_account_only(
    database: Database, address: str | None
) -> None:
    assert attempt(database, "ada", address, T0) is None
    assert counts(database) == {"account:ada": 1}
