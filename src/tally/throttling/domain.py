"""Pure rules of sign-in throttling: after a few failures a growing delay, then a lock.

Failures are counted per key. The first ``free`` failures cost nothing; each further one makes
the next attempt wait twice as long as the one before (``base_delay``, ``2 × base_delay`` …), and
the ``lock_after``-th locks the key for ``lock_for``. Counts are forgotten ``forget_after`` past
the last failure, or when a lock runs out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

#: Failures are forgotten this long after the last one.
FORGET_AFTER = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class ThrottleRule:
    """The thresholds for one kind of key."""

    free: int
    lock_after: int
    lock_for: timedelta
    base_delay: timedelta = timedelta(seconds=1)
    forget_after: timedelta = FORGET_AFTER

    def __post_init__(self) -> None:
        if not 0 <= self.free < self.lock_after:
            raise ValueError("free failures must be fewer than the failures that lock")


@dataclass(frozen=True, slots=True)
class Count:
    """What is known of a key's recent failures."""

    failures: int = 0
    last_failure_at: datetime | None = None
    locked_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class Refusal:
    """An attempt refused until ``retry_at``; ``locked`` when the key is locked, not just slowed."""

    retry_at: datetime
    locked: bool

    def retry_after(self, now: datetime) -> int:
        """Whole seconds until the retry (at least 1), for ``Retry-After``."""
        return max(1, math.ceil((self.retry_at - now).total_seconds()))


def effective_failures(rule: ThrottleRule, count: Count, now: datetime) -> int:
    """The failures that still count at ``now``."""
    if count.locked_until is not None and count.locked_until <= now:
        return 0
    if count.last_failure_at is None or now - count.last_failure_at >= rule.forget_after:
        return 0
    return count.failures


def delay_after(rule: ThrottleRule, failures: int) -> timedelta:
    """How long the next attempt must wait after the last of ``failures`` failures."""
    if failures < rule.free:
        return timedelta(0)
    doublings = min(failures - rule.free, 40)
    delay: timedelta = rule.base_delay * (2**doublings)
    return min(delay, rule.lock_for)


def refusal(rule: ThrottleRule, count: Count, now: datetime) -> Refusal | None:
    """Why an attempt at ``now`` must wait, or ``None`` when it may go ahead."""
    if count.locked_until is not None and count.locked_until > now:
        return Refusal(count.locked_until, locked=True)
    failures = effective_failures(rule, count, now)
    if failures == 0 or count.last_failure_at is None:
        return None
    retry_at = count.last_failure_at + delay_after(rule, failures)
    return Refusal(retry_at, locked=False) if retry_at > now else None


def after_failure(rule: ThrottleRule, count: Count, now: datetime) -> Count:
    """The count once an attempt at ``now`` failed (locked when it reaches ``lock_after``)."""
    failures = effective_failures(rule, count, now) + 1
    locked_until = now + rule.lock_for if failures >= rule.lock_after else None
    return Count(failures, now, locked_until)
