"""Every query of profile collections, consents and member-code presentations."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from types import ModuleType

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from tally.privacy.domain import Collection, CollectionMethod, ConsentAct, Purpose
from tally.privacy.models import Consent, Presentation, ProfileCollection


def _dialect(session: Session) -> ModuleType:
    return sqlite if session.get_bind().dialect.name == "sqlite" else postgresql


def _act(row: Consent) -> ConsentAct:
    return ConsentAct(
        row.partner_id,
        row.purpose,
        row.version,
        row.is_granted,
        row.channel,
        row.created_at,
        row.recorded_by,
    )


def record_collection(
    session: Session,
    member_id: int,
    partner_id: int,
    method: CollectionMethod,
    namespace: str,
    now: datetime,
) -> None:
    """Record that a partner collected a member's data (kept once: the first time)."""
    session.execute(
        _dialect(session)
        .insert(ProfileCollection)
        .values(
            member_id=member_id,
            partner_id=partner_id,
            method=method,
            namespace=namespace,
            created_at=now,
        )
        .on_conflict_do_nothing()
    )


def collections(
    session: Session, member_id: int, partner_id: int | None = None
) -> list[Collection]:
    """The member's collection records (only ``partner_id``'s when given), oldest first."""
    query = select(ProfileCollection).where(ProfileCollection.member_id == member_id)
    if partner_id is not None:
        query = query.where(ProfileCollection.partner_id == partner_id)
    return [
        Collection(row.partner_id, row.method, row.namespace, row.created_at)
        for row in session.scalars(query.order_by(ProfileCollection.id))
    ]


def acts(
    session: Session,
    member_id: int,
    *,
    partner_id: int | None = None,
    purpose: Purpose | None = None,
) -> list[ConsentAct]:
    """The member's consent acts (narrowed to a partner and a purpose when given), oldest first."""
    query = select(Consent).where(Consent.member_id == member_id)
    if partner_id is not None:
        query = query.where(Consent.partner_id == partner_id)
    if purpose is not None:
        query = query.where(Consent.purpose == purpose)
    return [_act(row) for row in session.scalars(query.order_by(Consent.id))]


def latest_act(
    session: Session, member_id: int, partner_id: int, purpose: Purpose
) -> ConsentAct | None:
    """The standing act of one (member, partner, purpose), if any."""
    row = session.scalar(
        select(Consent)
        .where(
            Consent.member_id == member_id,
            Consent.partner_id == partner_id,
            Consent.purpose == purpose,
        )
        .order_by(Consent.version.desc())
        .limit(1)
    )
    return None if row is None else _act(row)


def insert_act(session: Session, member_id: int, act: ConsentAct) -> int:
    """Append an act, returning its row's id; a concurrent act with the same version fails on
    the unique constraint."""
    row = Consent(
        member_id=member_id,
        partner_id=act.partner_id,
        purpose=act.purpose,
        version=act.version,
        is_granted=act.is_granted,
        channel=act.channel,
        created_at=act.created_at,
        recorded_by=act.recorded_by,
    )
    session.add(row)
    session.flush()
    return row.id


def delete_acts(session: Session, member_id: int, ids: Sequence[int]) -> None:
    """Delete the member's acts with these ids (only an unmerge does: the acts its merge added)."""
    if ids:
        session.execute(delete(Consent).where(Consent.member_id == member_id, Consent.id.in_(ids)))


def copy_collections(session: Session, source_id: int, target_id: int) -> list[int]:
    """Record ``source_id``'s collections as ``target_id``'s too (each keeps when the partner
    collected it); the ids of the rows added, leaving out those ``target_id`` already has."""
    rows = [
        {
            "member_id": target_id,
            "partner_id": item.partner_id,
            "method": item.method,
            "namespace": item.namespace,
            "created_at": item.created_at,
        }
        for item in collections(session, source_id)
    ]
    if not rows:
        return []
    added = session.scalars(
        _dialect(session)
        .insert(ProfileCollection)
        .values(rows)
        .on_conflict_do_nothing()
        .returning(ProfileCollection.id)
    )
    return sorted(added)


def delete_collections(session: Session, member_id: int, ids: Sequence[int]) -> None:
    """Delete the member's collection records with these ids (an unmerge: what its merge added)."""
    if ids:
        session.execute(
            delete(ProfileCollection).where(
                ProfileCollection.member_id == member_id, ProfileCollection.id.in_(ids)
            )
        )


def presentations(session: Session, member_id: int) -> dict[int, tuple[datetime, datetime]]:
    """The member's presentations: partner id → ``(presented_at, valid_until)``."""
    query = select(Presentation).where(Presentation.member_id == member_id)
    return {row.partner_id: (row.presented_at, row.valid_until) for row in session.scalars(query)}


def put_presentation(
    session: Session,
    member_id: int,
    partner_id: int,
    window: tuple[datetime, datetime] | None,
) -> None:
    """Set the (member, partner) presentation to ``window`` (``(presented_at, valid_until)``),
    or delete it when ``None``."""
    if window is None:
        session.execute(
            delete(Presentation).where(
                Presentation.member_id == member_id, Presentation.partner_id == partner_id
            )
        )
        return
    values = {"presented_at": window[0], "valid_until": window[1]}
    session.execute(
        _dialect(session)
        .insert(Presentation)
        .values(member_id=member_id, partner_id=partner_id, **values)
        .on_conflict_do_update(index_elements=["member_id", "partner_id"], set_=values)
    )


def record_presentation(
    session: Session, member_id: int, partner_id: int, now: datetime, window: timedelta
) -> None:
    """Record that the member showed its code to the partner at ``now``: the pair's row now
    reads ``(now, now + window)`` (a later presentation replaces an earlier one)."""
    put_presentation(session, member_id, partner_id, (now, now + window))
