"""The one query behind the spending relationship: which of many (member, partner) pairs are
tied, and which of the members exist — a single statement for a whole batch."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, String, cast, literal, null, select, tuple_, union_all
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from tally.access.domain import Tie
from tally.members.models import Member, MemberIdentity
from tally.privacy.models import Presentation, ProfileCollection

_EXISTS = "member"


def _tag(text: str) -> Any:
    return cast(literal(text), String).label("tie")


def ties(
    session: Session,
    pairs: Collection[tuple[int, int]],
    owned: Mapping[int, Collection[str]],
    now: datetime,
) -> tuple[set[int], dict[tuple[int, int], set[Tie]]]:
    """For ``(member_id, partner_id)`` pairs: the members that exist, and each pair's ties —
    the partner collected the member, the member has an identity in a namespace the partner
    owns (``owned``: partner id → namespaces), or showed it its code and the window is open at
    ``now``. One statement, whatever the number of pairs."""
    if not pairs:
        return set(), {}
    asked = sorted(set(pairs))
    members = sorted({member_id for member_id, _partner_id in asked})
    parts: list[Select[Any]] = [
        select(Member.id, cast(null(), BigInteger), _tag(_EXISTS)).where(Member.id.in_(members)),
        select(
            ProfileCollection.member_id, ProfileCollection.partner_id, _tag(Tie.COLLECTED)
        ).where(tuple_(ProfileCollection.member_id, ProfileCollection.partner_id).in_(asked)),
        select(Presentation.member_id, Presentation.partner_id, _tag(Tie.PRESENTED)).where(
            tuple_(Presentation.member_id, Presentation.partner_id).in_(asked),
            Presentation.valid_until > now,
        ),
    ]
    for partner_id, namespaces in sorted(owned.items()):
        its_members = [member for member, partner in asked if partner == partner_id]
        if namespaces and its_members:
            parts.append(
                select(
                    MemberIdentity.member_id,
                    cast(literal(partner_id), BigInteger),
                    _tag(Tie.OWNED_NAMESPACE),
                ).where(
                    MemberIdentity.member_id.in_(its_members),
                    MemberIdentity.namespace.in_(sorted(namespaces)),
                )
            )
    existing: set[int] = set()
    found: dict[tuple[int, int], set[Tie]] = {}
    for member_id, partner_id, tie in session.execute(union_all(*parts)):
        if tie == _EXISTS:
            existing.add(int(member_id))
        elif partner_id is not None:
            found.setdefault((int(member_id), int(partner_id)), set()).add(Tie(tie))
    return existing, found
