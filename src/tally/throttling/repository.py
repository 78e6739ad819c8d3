"""Every query of sign-in throttling counts (changed only by compare-and-set updates)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, and_, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from tally.throttling.domain import Count
from tally.throttling.models import SignInThrottle


def ensure(session: Session, key: str) -> None:
    """Make sure ``key`` has a row (a harmless no-op when another request made it first)."""
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(
        insert(SignInThrottle)
        .values(key=key, failures=0, last_failure_at=None, locked_until=None)
        .on_conflict_do_nothing(index_elements=["key"])
    )


def count_of(session: Session, key: str) -> Count:
    """The stored count of ``key`` (zero when it has none)."""
    row = session.execute(
        select(
            SignInThrottle.failures, SignInThrottle.last_failure_at, SignInThrottle.locked_until
        ).where(SignInThrottle.key == key)
    ).one_or_none()
    return Count() if row is None else Count(int(row[0]), row[1], row[2])


def replace(session: Session, key: str, seen: Count, new: Count) -> bool:
    """Store ``new`` if the row still holds ``seen`` (compare and set); whether it did."""
    result = session.execute(
        update(SignInThrottle)
        .where(
            SignInThrottle.key == key,
            SignInThrottle.failures == seen.failures,
            SignInThrottle.last_failure_at.is_not_distinct_from(seen.last_failure_at),
        )
        .values(
            failures=new.failures,
            last_failure_at=new.last_failure_at,
            locked_until=new.locked_until,
        )
    )
    return int(result.rowcount) == 1  # type: ignore[attr-defined]


def reset(session: Session, key: str) -> None:
    """Forget every failure of ``key``."""
    session.execute(
        update(SignInThrottle)
        .where(SignInThrottle.key == key)
        .values(failures=0, last_failure_at=None, locked_until=None)
    )


def forgive_one(session: Session, key: str) -> None:
    """Take back one counted failure of ``key`` (an attempt that turned out to succeed)."""
    session.execute(
        update(SignInThrottle)
        .where(SignInThrottle.key == key, SignInThrottle.failures > 0)
        .values(failures=SignInThrottle.failures - 1)
    )


def delete_stale(session: Session, last_failure_before: datetime, now: datetime) -> int:
    """Delete counts whose last failure is older than ``last_failure_before`` and not locked."""
    result = session.execute(delete(SignInThrottle).where(_stale(last_failure_before, now)))
    return int(result.rowcount)  # type: ignore[attr-defined]


def _stale(last_failure_before: datetime, now: datetime) -> ColumnElement[bool]:
    return and_(
        or_(
            SignInThrottle.last_failure_at.is_(None),
            SignInThrottle.last_failure_at < last_failure_before,
        ),
        or_(SignInThrottle.locked_until.is_(None), SignInThrottle.locked_until <= now),
    )


def count_stale(session: Session, last_failure_before: datetime, now: datetime) -> int:
    """How many counts :func:`delete_stale` would delete (for a dry run)."""
    query = select(func.count()).select_from(SignInThrottle)
    return int(session.scalar(query.where(_stale(last_failure_before, now))) or 0)
