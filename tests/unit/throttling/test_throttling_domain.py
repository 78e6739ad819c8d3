"""The pure rules of sign-in throttling: free failures, a doubling delay, a lock, forgetting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tally.throttling.domain import (
    Count,
    Refusal,
    ThrottleRule,
    after_failure,
    delay_after,
    effective_failures,
    refusal,
)

T0 = datetime(2026, 12, 3, 1, 0, tzinfo=UTC)
RULE = ThrottleRule(free=3, lock_after=10, lock_for=timedelta(minutes=15))


def fail(times: int, rule: ThrottleRule = RULE, start: Count | None = None) -> Count:
    """``times`` failures, each as soon as the rule allows."""
    count, now = start or Count(), T0
    for _ in range(times):
        waiting = refusal(rule, count, now)
        if waiting is not None:
            now = waiting.retry_at
        count = after_failure(rule, count, now)
    return count


def test_the_first_failures_are_free() -> None:
    count = fail(2)
    assert refusal(RULE, count, count.last_failure_at or T0) is None


def test_each_failure_past_the_free_ones_doubles_the_wait() -> None:
    waits = []
    for failures in range(3, 10):
        count = fail(failures)
        assert count.last_failure_at is not None
        found = refusal(RULE, count, count.last_failure_at)
        assert found is not None
        assert not found.locked
        waits.append((found.retry_at - count.last_failure_at).total_seconds())
    assert waits == [1, 2, 4, 8, 16, 32, 64]


def test_the_lock_after_failures_lock_for_the_lock_time() -> None:
    count = fail(10)
    assert count.last_failure_at is not None
    assert count.locked_until == count.last_failure_at + timedelta(minutes=15)
    found = refusal(RULE, count, count.last_failure_at + timedelta(minutes=14, seconds=59))
    assert found == Refusal(count.locked_until, locked=True)
    assert found.retry_after(count.last_failure_at) == 900


def test_a_lock_that_ran_out_starts_afresh() -> None:
    count = fail(10)
    assert count.locked_until is not None
    assert effective_failures(RULE, count, count.locked_until) == 0
    assert refusal(RULE, count, count.locked_until) is None
    assert after_failure(RULE, count, count.locked_until).failures == 1


def test_failures_are_forgotten_an_hour_after_the_last() -> None:
    count = fail(8)
    assert count.last_failure_at is not None
    later = count.last_failure_at + timedelta(hours=1)
    assert effective_failures(RULE, count, later - timedelta(seconds=1)) == 8
    assert effective_failures(RULE, count, later) == 0


def test_retry_after_rounds_up_to_whole_seconds() -> None:
    found = Refusal(T0 + timedelta(milliseconds=1500), locked=False)
    assert found.retry_after(T0) == 2
    assert found.retry_after(T0 + timedelta(seconds=5)) == 1


def test_a_rule_whose_free_failures_would_lock_is_refused() -> None:
    with pytest.raises(ValueError, match="fewer"):
        ThrottleRule(free=5, lock_after=5, lock_for=timedelta(minutes=1))


@given(
    free=st.integers(0, 20),
    extra=st.integers(1, 40),
    failures=st.integers(0, 80),
)
def test_the_wait_never_shrinks_and_never_passes_the_lock(
    free: int, extra: int, failures: int
) -> None:
    rule = ThrottleRule(free=free, lock_after=free + extra, lock_for=timedelta(minutes=15))
    assert delay_after(rule, failures) <= delay_after(rule, failures + 1) <= rule.lock_for
    assert (delay_after(rule, failures) == timedelta(0)) == (failures < free)


@given(attempts=st.lists(st.integers(0, 4000), min_size=1, max_size=40))
def test_no_attempt_goes_ahead_while_refused_and_the_count_stays_below_the_lock(
    attempts: list[int],
) -> None:
    """Attempts at any times (seconds apart): each either waits or counts; locks come on time."""
    count, now = Count(), T0
    for gap in attempts:
        now += timedelta(seconds=gap)
        if refusal(RULE, count, now) is not None:
            continue
        count = after_failure(RULE, count, now)
        assert 1 <= count.failures <= RULE.lock_after
        assert (count.locked_until is not None) == (count.failures == RULE.lock_after)
