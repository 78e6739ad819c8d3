"""The one query behind the spending relationship: which of many (member, partner) pairs are
tied, and which of the members exist — a single statement for a whole batch."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    String,
    bindparam,
    cast,
    literal_column,
    null,
    select,
    tuple_,
    union_all,
)
from sqlalchemy.orm import Session

from tally.access.domain import Tie
from tally.kit.clock import as_utc
from tally.members.models import Member, MemberIdentity
from tally.privacy.models import Presentation, ProfileCollection

_EXISTS = "member"


def _tag(text: str) -> Any:
    return cast(literal_column(f"'{text}'"), String).label("tie")


def _none(kind: Any) -> Any:
    return cast(null(), kind)


# Built once: each call only binds its lists (expanding parameters), so the statement is
# neither rebuilt nor compiled again. Columns: member, partner, namespace, what the row says.
_TIES = union_all(
    select(Member.id, _none(BigInteger), _none(String), _tag(_EXISTS)).where(
        Member.id.in_(bindparam("members", expanding=True))
    ),
    select(
        ProfileCollection.member_id,
        ProfileCollection.partner_id,
        _none(String),
        _tag(Tie.COLLECTED),
    ).where(
        tuple_(ProfileCollection.member_id, ProfileCollection.partner_id).in_(
            bindparam("pairs", expanding=True)
        )
    ),
    select(
        Presentation.member_id, Presentation.partner_id, _none(String), _tag(Tie.PRESENTED)
    ).where(
        tuple_(Presentation.member_id, Presentation.partner_id).in_(
            bindparam("pairs", expanding=True)
        ),
        Presentation.valid_until > bindparam("now"),
    ),
    select(
        MemberIdentity.member_id,
        _none(BigInteger),
        MemberIdentity.namespace,
        _tag(Tie.OWNED_NAMESPACE),
    ).where(
        tuple_(MemberIdentity.member_id, MemberIdentity.namespace).in_(
            bindparam("owned", expanding=True)
        )
    ),
)


def ties(
    session: Session,
    pairs: Collection[tuple[int, int]],
    owned: Mapping[int, Collection[str]],
    now: datetime,
) -> tuple[set[int], dict[tuple[int, int], set[Tie]]]:
    """For ``(member_id, partner_id)`` pairs: the members that exist, and each pair's ties —
    the partner collected the member, the member has an identity in a namespace the partner
    owns (``owned``: partner id → namespaces; a namespace has one owner), or showed it its code
    and the window is open at ``now``. One statement, whatever the number of pairs."""
    if not pairs:
        return set(), {}
    asked = sorted(set(pairs))
    owner_of = {
        namespace: partner_id
        for partner_id, namespaces in owned.items()
        for namespace in namespaces
    }
    in_owned = sorted(
        {(member, namespace) for member, partner in asked for namespace in owned.get(partner, ())}
    )
    rows = session.execute(
        _TIES,
        {
            "members": sorted({member for member, _partner in asked}),
            "pairs": asked,
            "owned": in_owned,
            "now": as_utc(now),
        },
    )
    existing: set[int] = set()
    found: dict[tuple[int, int], set[Tie]] = {}
    for member_id, partner_id, namespace, tie in rows:
        if tie == _EXISTS:
            existing.add(int(member_id))
            continue
        partner = owner_of.get(namespace) if tie == Tie.OWNED_NAMESPACE else partner_id
        if partner is not None:
            found.setdefault((int(member_id), int(partner)), set()).add(Tie(tie))
    return existing, found
