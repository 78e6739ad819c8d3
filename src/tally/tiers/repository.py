"""Every query of growth value and tiers. Tier state changes only by conditional updates."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from tally.db.base import table_of
from tally.programme.models import ProgrammeVersion
from tally.tiers.domain import Window
from tally.tiers.models import GrowthEntry, MemberTier, TierChange


def ensure_state(session: Session, member_id: int, first_code: str) -> None:
    """Create the member's tier row at the first tier unless it exists (race-free)."""
    values = {
        "member_id": member_id,
        "tier_code": first_code,
        "lifetime_growth": 0,
        "version": 0,
    }
    table = table_of(MemberTier)
    dialect = session.get_bind().dialect.name
    statement: Any
    if dialect == "postgresql":
        statement = postgresql.insert(table).values(**values).on_conflict_do_nothing()
    else:
        statement = sqlite.insert(table).values(**values).on_conflict_do_nothing()
    session.execute(statement)


def add_lifetime(session: Session, member_id: int, points: int, *, floor: bool) -> bool:
    """Add ``points`` to the member's lifetime growth (locking its row until commit); with
    ``floor`` only if the result stays at or above zero. Returns whether the row changed."""
    statement = (
        update(MemberTier)
        .where(MemberTier.member_id == member_id)
        .values(lifetime_growth=MemberTier.lifetime_growth + points)
    )
    if floor:
        statement = statement.where(MemberTier.lifetime_growth + points >= 0)
    result = session.execute(statement.execution_options(synchronize_session=False))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def state(session: Session, member_id: int) -> MemberTier | None:
    """The member's tier row, read afresh."""
    return session.scalar(
        select(MemberTier)
        .where(MemberTier.member_id == member_id)
        .execution_options(populate_existing=True)
    )


def insert_growth(session: Session, **values: Any) -> int:
    """Write one growth entry; returns its id."""
    statement = insert(GrowthEntry).values(**values).returning(GrowthEntry.id)
    return int(session.execute(statement).scalar_one())


def programme_version(session: Session) -> int | None:
    """The version of the programme file in force (``None``: the built-in default)."""
    return session.scalar(select(func.max(ProgrammeVersion.version)))


def growth_entry(session: Session, entry_id: int) -> GrowthEntry | None:
    return session.get(GrowthEntry, entry_id, populate_existing=True)


def growth_of_journal_entry(session: Session, entry_id: uuid.UUID) -> GrowthEntry | None:
    return session.scalar(select(GrowthEntry).where(GrowthEntry.journal_entry_id == entry_id))


def window_sum(session: Session, member_id: int, window: Window) -> int:
    """The member's growth counted in ``window``."""
    statement = select(func.coalesce(func.sum(GrowthEntry.points), 0)).where(
        GrowthEntry.member_id == member_id
    )
    if window.start is not None:
        statement = statement.where(GrowthEntry.counted_at >= window.start)
    if window.end is not None:
        statement = statement.where(GrowthEntry.counted_at < window.end)
    return int(session.scalar(statement) or 0)


def lifetime_sum(session: Session, member_id: int) -> int:
    return window_sum(session, member_id, Window(None, None))


def change_state(
    session: Session,
    member_id: int,
    version: int,
    *,
    tier_code: str,
    downgrade_at: datetime | None,
    since: datetime | None = None,
    evaluated_at: datetime | None = None,
) -> bool:
    """Move the member's row from ``version`` on; ``False`` when someone else moved it first."""
    values: dict[str, Any] = {
        "tier_code": tier_code,
        "downgrade_at": downgrade_at,
        "version": MemberTier.version + 1,
    }
    if since is not None:
        values["since"] = since
    if evaluated_at is not None:
        values["evaluated_at"] = evaluated_at
    result = session.execute(
        update(MemberTier)
        .where(MemberTier.member_id == member_id, MemberTier.version == version)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def insert_changes(session: Session, rows: list[dict[str, Any]]) -> None:
    if rows:
        session.execute(table_of(TierChange).insert(), rows)


def growth_history(
    session: Session, member_id: int, before: int | None, limit: int
) -> Sequence[GrowthEntry]:
    statement = select(GrowthEntry).where(GrowthEntry.member_id == member_id)
    if before is not None:
        statement = statement.where(GrowthEntry.id < before)
    return session.scalars(statement.order_by(GrowthEntry.id.desc()).limit(limit)).all()


def tier_history(
    session: Session, member_id: int, before: int | None, limit: int
) -> Sequence[TierChange]:
    statement = select(TierChange).where(TierChange.member_id == member_id)
    if before is not None:
        statement = statement.where(TierChange.id < before)
    return session.scalars(statement.order_by(TierChange.id.desc()).limit(limit)).all()


# --- evaluation job: set-based, one chunk at a time -------------------------------------------


@dataclass(frozen=True, slots=True)
class StateRow:
    member_id: int
    tier_code: str
    downgrade_at: datetime | None
    evaluated_at: datetime | None
    lifetime_growth: int
    version: int


def state_chunk(session: Session, after: int, limit: int) -> list[StateRow]:
    """The next ``limit`` tier rows after member ``after`` (keyset pagination), as plain rows."""
    rows = session.execute(
        select(
            MemberTier.member_id,
            MemberTier.tier_code,
            MemberTier.downgrade_at,
            MemberTier.evaluated_at,
            MemberTier.lifetime_growth,
            MemberTier.version,
        )
        .where(MemberTier.member_id > after)
        .order_by(MemberTier.member_id)
        .limit(limit)
    ).all()
    return [StateRow(*row) for row in rows]


def chunk_sums(
    session: Session, first: int, last: int, current: Window, previous: Window | None
) -> dict[int, tuple[int, int]]:
    """``{member_id: (current window sum, previous window sum)}`` for members ``first..last``,
    in one GROUP BY."""

    def between(window: Window) -> Any:
        conditions = []
        if window.start is not None:
            conditions.append(GrowthEntry.counted_at >= window.start)
        if window.end is not None:
            conditions.append(GrowthEntry.counted_at < window.end)
        return and_(*conditions) if conditions else True

    columns = [
        GrowthEntry.member_id,
        func.sum(case((between(current), GrowthEntry.points), else_=0)),
        func.sum(case((between(previous), GrowthEntry.points), else_=0))
        if previous is not None
        else func.sum(0),
    ]
    statement = select(*columns).where(GrowthEntry.member_id.between(first, last))
    earliest = previous.start if previous is not None else current.start
    if earliest is not None:
        statement = statement.where(GrowthEntry.counted_at >= earliest)
    if current.end is not None:
        statement = statement.where(GrowthEntry.counted_at < current.end)
    rows = session.execute(statement.group_by(GrowthEntry.member_id)).all()
    return {int(member): (int(now or 0), int(before or 0)) for member, now, before in rows}


def move_growth(session: Session, from_member: int, to_member: int) -> int:
    """Give every growth entry ``from_member`` owns to ``to_member``; returns their sum."""
    total = session.scalar(
        select(func.coalesce(func.sum(GrowthEntry.points), 0)).where(
            GrowthEntry.member_id == from_member
        )
    )
    session.execute(
        update(GrowthEntry)
        .where(GrowthEntry.member_id == from_member)
        .values(member_id=to_member)
        .execution_options(synchronize_session=False)
    )
    return int(total or 0)


def move_growth_back(session: Session, holder: int, origin: int) -> int:
    """Give back to ``origin`` the entries credited to it that ``holder`` owns; their sum."""
    condition = and_(GrowthEntry.member_id == holder, GrowthEntry.origin_member_id == origin)
    total = session.scalar(select(func.coalesce(func.sum(GrowthEntry.points), 0)).where(condition))
    session.execute(
        update(GrowthEntry)
        .where(condition)
        .values(member_id=origin)
        .execution_options(synchronize_session=False)
    )
    return int(total or 0)
