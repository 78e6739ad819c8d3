"""Every query of profile collections, consents and member-code presentations."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from tally.privacy.domain import Collection, CollectionMethod, ConsentAct, Purpose
from tally.privacy.models import Consent, Presentation, ProfileCollection


def record_collection(
    session: Session,
    member_id: int,
    partner_id: int,
    method: CollectionMethod,
    namespace: str,
    now: datetime,
) -> None:
    """Record that a partner collected a member's data (kept once: the first time)."""
    dialect = sqlite if session.get_bind().dialect.name == "sqlite" else postgresql
    session.execute(
        dialect.insert(ProfileCollection)
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
    return [
        ConsentAct(
            row.partner_id, row.purpose, row.version, row.is_granted, row.channel, row.created_at
        )
        for row in session.scalars(query.order_by(Consent.id))
    ]


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
    if row is None:
        return None
    return ConsentAct(
        row.partner_id, row.purpose, row.version, row.is_granted, row.channel, row.created_at
    )


def insert_act(session: Session, member_id: int, act: ConsentAct) -> None:
    """Append an act; a concurrent act with the same version fails on the unique constraint."""
    session.add(
        Consent(
            member_id=member_id,
            partner_id=act.partner_id,
            purpose=act.purpose,
            version=act.version,
            is_granted=act.is_granted,
            channel=act.channel,
            created_at=act.created_at,
        )
    )
    session.flush()


def record_presentation(
    session: Session, member_id: int, partner_id: int, now: datetime, window: timedelta
) -> None:
    """Record that the member showed its code to the partner at ``now``: the pair's row now
    reads ``(now, now + window)`` (a later presentation replaces an earlier one)."""
    dialect = sqlite if session.get_bind().dialect.name == "sqlite" else postgresql
    values = {"presented_at": now, "valid_until": now + window}
    session.execute(
        dialect.insert(Presentation)
        .values(member_id=member_id, partner_id=partner_id, **values)
        .on_conflict_do_update(index_elements=["member_id", "partner_id"], set_=values)
    )
