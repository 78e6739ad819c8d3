"""Every query of members, identities and profiles."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from tally.db.raw import Raw
from tally.members.models import Member, MemberIdentity, MemberMerge, MemberProfile, MemberStatus

_STATUSES = Raw("SELECT id, status FROM members WHERE id = ANY(:ms)")
_BY_IDENTITY = Raw(
    "SELECT member_id FROM member_identities WHERE namespace = :ns AND external_id = :xid"
)


def insert_member(session: Session, now: datetime) -> int:
    """A new active member; returns its id."""
    member_id = session.execute(
        insert(Member)
        .values(status=MemberStatus.ACTIVE, created_at=now, updated_at=now)
        .returning(Member.id)
    ).scalar_one()
    return int(member_id)


def member(session: Session, member_id: int) -> Member | None:
    return session.get(Member, member_id)


# Every writer of a member locks its wallet row (tally.ledger: balances, holds, lots) and reads
# the member's status under that lock; so do the acts that change who the member is (status,
# identities, merges), which is what makes the status read there the status at commit.
_LOCK_STATUS = Raw(
    "SELECT m.status FROM wallets w JOIN members m ON m.id = w.member_id WHERE w.member_id = :m",
    lock="w",
)
_LOCK_STATUS.pg_sql += " FOR SHARE OF m"  # the status at the lock (tally.ledger.repository)
_MERGED_INTO = Raw("SELECT merged_into_id FROM members WHERE id = :m")


def lock(session: Session, member_id: int) -> MemberStatus | None:
    """Lock the member (its wallet row) until commit and read its status under the lock;
    ``None`` when there is no such member."""
    row = _LOCK_STATUS.one(session, {"m": member_id})
    return None if row is None else MemberStatus(row[0])


def merged_into_id(session: Session, member_id: int) -> int | None:
    """The member ``member_id`` was merged into, read from the database (not the session)."""
    row = _MERGED_INTO.one(session, {"m": member_id})
    return None if row is None or row[0] is None else int(row[0])


def status_of(session: Session, member_id: int) -> MemberStatus | None:
    """A member's status, or ``None`` when there is no such member."""
    return statuses(session, [member_id]).get(member_id)


def statuses(session: Session, member_ids: Sequence[int]) -> dict[int, MemberStatus]:
    """The members' statuses; members that do not exist are missing."""
    rows = _STATUSES.all(session, {"ms": sorted(set(member_ids))})
    return {int(member_id): MemberStatus(status) for member_id, status in rows}


def find_by_identity(session: Session, namespace: str, external_id: str) -> int | None:
    """The member an identity belongs to."""
    row = _BY_IDENTITY.one(session, {"ns": namespace, "xid": external_id})
    return None if row is None else int(row[0])


def insert_identity(
    session: Session, member_id: int, namespace: str, external_id: str, now: datetime
) -> None:
    session.execute(
        insert(MemberIdentity).values(
            member_id=member_id, namespace=namespace, external_id=external_id, created_at=now
        )
    )


def delete_identity(session: Session, member_id: int, namespace: str, external_id: str) -> bool:
    result = session.execute(
        delete(MemberIdentity).where(
            MemberIdentity.member_id == member_id,
            MemberIdentity.namespace == namespace,
            MemberIdentity.external_id == external_id,
        )
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def identities(session: Session, member_ids: Sequence[int]) -> list[MemberIdentity]:
    return list(
        session.scalars(
            select(MemberIdentity)
            .where(MemberIdentity.member_id.in_(member_ids))
            .order_by(MemberIdentity.id)
        )
    )


def move_identities(session: Session, identity_ids: Sequence[int], member_id: int) -> None:
    if identity_ids:
        session.execute(
            update(MemberIdentity)
            .where(MemberIdentity.id.in_(identity_ids))
            .values(member_id=member_id)
        )


def profile(session: Session, member_id: int) -> MemberProfile | None:
    return session.get(MemberProfile, member_id)


def save_profile(session: Session, member_id: int, values: dict[str, Any], now: datetime) -> None:
    """Create or update the profile with the given fields."""
    existing = session.get(MemberProfile, member_id)
    if existing is None:
        session.add(MemberProfile(member_id=member_id, updated_at=now, **values))
    else:
        for name, value in values.items():
            setattr(existing, name, value)
        existing.updated_at = now
    session.flush()


def set_status(
    session: Session,
    member_id: int,
    *,
    expected: Sequence[MemberStatus],
    status: MemberStatus,
    now: datetime,
    **values: Any,
) -> bool:
    """Change a member's status only from one of ``expected`` (a conditional update)."""
    result = session.execute(
        update(Member)
        .where(Member.id == member_id, Member.status.in_(list(expected)))
        .values(status=status, updated_at=now, **values)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def merged_into(session: Session, member_id: int) -> list[int]:
    """Members (transitively) merged into ``member_id``, itself first."""
    found = [member_id]
    frontier = [member_id]
    while frontier:
        frontier = list(
            session.scalars(select(Member.id).where(Member.merged_into_id.in_(frontier)))
        )
        found.extend(frontier)
    return found


def search(session: Session, text: str, limit: int = 20) -> list[int]:
    """Members whose id, any identity, or profile phone or name matches ``text``."""
    text = text.strip()
    if not text:
        return []
    ids: list[int] = []
    if text.isdigit():
        ids.extend(session.scalars(select(Member.id).where(Member.id == int(text))))
    ids.extend(
        session.scalars(
            select(MemberIdentity.member_id)
            .where(
                or_(
                    MemberIdentity.external_id == text,
                    MemberIdentity.external_id.like(f"{_escape(text)}%", escape="\\"),
                )
            )
            .limit(limit)
        )
    )
    ids.extend(
        session.scalars(
            select(MemberProfile.member_id)
            .where(
                or_(
                    MemberProfile.phone == text,
                    MemberProfile.name.like(f"%{_escape(text)}%", escape="\\"),
                )
            )
            .limit(limit)
        )
    )
    return list(dict.fromkeys(ids))[:limit]


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def insert_merge(session: Session, merge: MemberMerge) -> None:
    session.add(merge)
    session.flush()


def merge_record(session: Session, merge_id: int) -> MemberMerge | None:
    return session.get(MemberMerge, merge_id)


def merges_of(session: Session, member_id: int) -> list[MemberMerge]:
    return list(
        session.scalars(
            select(MemberMerge)
            .where(or_(MemberMerge.survivor_id == member_id, MemberMerge.merged_id == member_id))
            .order_by(MemberMerge.id.desc())
        )
    )


def identity_counts(session: Session, namespaces: Sequence[str]) -> dict[str, int]:
    """How many identities each of ``namespaces`` holds (namespaces with none are missing)."""
    rows = session.execute(
        select(MemberIdentity.namespace, func.count())
        .where(MemberIdentity.namespace.in_(list(namespaces)))
        .group_by(MemberIdentity.namespace)
    ).all()
    return {str(namespace): int(count) for namespace, count in rows}
