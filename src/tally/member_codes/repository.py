"""Every query of member codes and of failed code lookups."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tally.db.raw import savepoint
from tally.member_codes.models import MemberCode, MemberCodeMisses
from tally.members.models import Member, MemberStatus


def forget_expired(session: Session, now: datetime) -> None:
    """Delete every code that has expired (they can never resolve again)."""
    session.execute(delete(MemberCode).where(MemberCode.expires_at <= now))


def keep_latest_two(session: Session, member_id: int) -> None:
    """Delete the member's codes but the newest two: the one just issued and the one before,
    which a checkout may be scanning still."""
    second = (
        select(MemberCode.created_at)
        .where(MemberCode.member_id == member_id)
        .order_by(MemberCode.created_at.desc())
        .offset(1)
        .limit(1)
        .scalar_subquery()
    )
    session.execute(
        delete(MemberCode).where(MemberCode.member_id == member_id, MemberCode.created_at < second)
    )


def insert_code(
    session: Session, digest: str, member_id: int, expires_at: datetime, now: datetime
) -> bool:
    """Store a code's digest; ``False`` (nothing written) when a valid code has that digest."""
    try:
        with savepoint(session):
            session.execute(
                insert(MemberCode).values(
                    digest=digest, member_id=member_id, expires_at=expires_at, created_at=now
                )
            )
    except IntegrityError:
        return False
    return True


def active_member_of(session: Session, digest: str, now: datetime) -> int | None:
    """The active member whose code has ``digest`` and is valid at ``now``."""
    found = session.scalar(
        select(MemberCode.member_id)
        .join(Member, Member.id == MemberCode.member_id)
        .where(
            MemberCode.digest == digest,
            MemberCode.expires_at > now,
            Member.status == MemberStatus.ACTIVE,
        )
    )
    return None if found is None else int(found)


def misses(session: Session, partner_id: int, window: datetime) -> int:
    """A partner's failed code lookups in the window starting at ``window``."""
    found = session.scalar(
        select(MemberCodeMisses.misses).where(
            MemberCodeMisses.partner_id == partner_id, MemberCodeMisses.window == window
        )
    )
    return int(found or 0)


def count_miss(session: Session, partner_id: int, window: datetime) -> None:
    """Count one failed lookup of a partner in a window; older windows are forgotten."""
    session.execute(
        delete(MemberCodeMisses).where(
            MemberCodeMisses.partner_id == partner_id, MemberCodeMisses.window < window
        )
    )
    counted = session.execute(
        update(MemberCodeMisses)
        .where(MemberCodeMisses.partner_id == partner_id, MemberCodeMisses.window == window)
        .values(misses=MemberCodeMisses.misses + 1)
    )
    if counted.rowcount:  # type: ignore[attr-defined]
        return
    try:
        with savepoint(session):
            session.execute(
                insert(MemberCodeMisses).values(partner_id=partner_id, window=window, misses=1)
            )
    except IntegrityError:  # counted meanwhile by another request: add to that
        session.execute(
            update(MemberCodeMisses)
            .where(MemberCodeMisses.partner_id == partner_id, MemberCodeMisses.window == window)
            .values(misses=MemberCodeMisses.misses + 1)
        )
