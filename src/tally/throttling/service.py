"""Sign-in throttling per account and per address, counted in the database (so across workers).

An attempt is counted as a failure *before* the password is checked, by a compare-and-set
update: concurrent attempts cannot all slip through one free slot. A success then resets the
account's count and takes the attempt back from the address's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from tally.config import Settings
from tally.errors import SignInThrottled
from tally.throttling import repository
from tally.throttling.domain import Refusal, ThrottleRule, after_failure, refusal

MAX_KEY = 160
ROUNDS = 8


@dataclass(frozen=True, slots=True)
class Throttles:
    """The rules for accounts and for addresses."""

    account: ThrottleRule
    address: ThrottleRule

    def keys(self, username: str, address: str | None) -> list[tuple[str, ThrottleRule]]:
        """The keys an attempt by ``username`` from ``address`` counts against."""
        keys = [(account_key(username), self.account)]
        if address:
            keys.append((address_key(address), self.address))
        return keys


def account_key(username: str) -> str:
    """The key of an account (whether or not it exists: the answer must not tell)."""
    return f"account:{username.strip().lower()}"[:MAX_KEY]


def address_key(address: str) -> str:
    """The key of a client address."""
    return f"address:{address}"[:MAX_KEY]


def _throttled(found: Refusal, now: datetime) -> SignInThrottled:
    return SignInThrottled(
        "Too many failed sign-ins.",
        retry_at=found.retry_at,
        retry_after=found.retry_after(now),
        locked=found.locked,
    )


def admit(session: Session, keys: Sequence[tuple[str, ThrottleRule]], now: datetime) -> None:
    """Count an attempt against every key, or refuse it (``sign_in_throttled``, nothing counted
    once the caller's transaction rolls back) while any key must wait."""
    ordered = sorted(keys)
    for key, _rule in ordered:
        repository.ensure(session, key)
    refusals = []
    for key, rule in ordered:
        for _round in range(ROUNDS):
            seen = repository.count_of(session, key)
            found = refusal(rule, seen, now)
            if found is not None:
                refusals.append(found)
                break
            if repository.replace(session, key, seen, after_failure(rule, seen, now)):
                break
        else:
            refusals.append(Refusal(now + timedelta(seconds=1), locked=False))
    if refusals:
        worst = max(refusals, key=lambda item: (item.locked, item.retry_at))
        raise _throttled(worst, now)


def succeeded(session: Session, username: str, address: str | None) -> None:
    """The attempt was right: the account starts afresh; the address gets the attempt back."""
    repository.reset(session, account_key(username))
    if address:
        repository.forgive_one(session, address_key(address))


def sweep(session: Session, now: datetime, forget_after: timedelta) -> int:
    """Delete counts that no longer matter; how many went."""
    return repository.delete_stale(session, now - forget_after, now)


def stale_count(session: Session, now: datetime, forget_after: timedelta) -> int:
    """How many counts :func:`sweep` would delete at ``now`` (reads only)."""
    return repository.count_stale(session, now - forget_after, now)


def throttles_for(settings: Settings) -> Throttles:
    """The rules the settings ask for (an address gets a third of its lock as free failures)."""
    lock_for = timedelta(seconds=settings.sign_in_lock_seconds)
    account_free = min(settings.sign_in_free_failures, settings.sign_in_lock_failures - 1)
    address_lock = settings.sign_in_address_lock_failures
    return Throttles(
        account=ThrottleRule(account_free, settings.sign_in_lock_failures, lock_for),
        address=ThrottleRule(min(address_lock // 3, address_lock - 1), address_lock, lock_for),
    )
