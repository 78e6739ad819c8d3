"""Earning with growth value: the ledger earn, the growth it carries and the immediate upgrade,
and the reversal that takes both back. All in the caller's one transaction."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.orm import Session

from tally.errors import ValidationFailed
from tally.ledger import repository as ledger_repository
from tally.ledger import reversals
from tally.ledger import service as ledger
from tally.ledger.domain import Origin, Policy
from tally.ledger.models import EntryKind
from tally.ledger.posting import Posted
from tally.programme.domain import Programme
from tally.tiers import service as tiers
from tally.tiers.models import GrowthKind

BASIS_POINTS = 10_000


def earn(
    session: Session,
    origin: Origin,
    member_id: int,
    points: int,
    reference: str,
    now: datetime,
    policy: Policy,
    programme: Programme,
    *,
    expires_at: datetime | None = None,
    growth: int | None = None,
    apply_tier_multiplier: bool = False,
) -> Posted:
    """Credit ``points`` (times the member's tier multiplier when asked) and ``growth`` growth
    value (default: the base ``points``; ``0`` for points that do not qualify), upgrading the
    member at once if the growth lifts it to a higher tier.

    The answer's details are the ledger's, plus ``growth`` when it was given or a multiplier
    applied (with ``base_points`` and ``multiplier_bp``), and ``tier`` and ``upgraded_from``
    when the member was upgraded.
    """
    if growth is not None and not 0 <= growth <= tiers.MAX_GROWTH:
        raise ValidationFailed(
            f"growth must be a whole number from 0 to {tiers.MAX_GROWTH}.", field="growth"
        )
    credited = points
    multiplier_bp: int | None = None
    if apply_tier_multiplier:
        tier = tiers.current_tier(session, member_id, programme)
        multiplier_bp = tier.earn_multiplier_bp
        credited = points * multiplier_bp // BASIS_POINTS
    posted = ledger.earn(session, origin, member_id, credited, reference, now, policy, expires_at)
    value = points if growth is None else growth
    details = dict(posted.details)
    if multiplier_bp is not None:
        details.update({"base_points": points, "multiplier_bp": multiplier_bp})
    if growth is not None or multiplier_bp is not None:
        details["growth"] = value
    if value:
        result = tiers.credit(
            session,
            member_id,
            value,
            GrowthKind.EARN,
            now,
            programme,
            journal_entry_id=posted.entry_id,
            partner_id=origin.partner_id,
            staff_id=origin.staff_id,
        )
        if result.upgraded_from is not None:
            details.update({"tier": result.tier_code, "upgraded_from": result.upgraded_from})
    return Posted(posted.entry_id, posted.member_id, details)


def reverse(
    session: Session, origin: Origin, entry_id: uuid.UUID, now: datetime, policy: Policy
) -> Posted:
    """Reverse a transaction; an earn's growth value goes with it (counted when it was), so
    every window it counted in loses exactly it (see the member's growth history). Tiers move
    down only at evaluation."""
    original = ledger_repository.entry(session, entry_id)
    posted = reversals.reverse(session, origin, entry_id, now, policy)
    if original is None or original.kind is not EntryKind.EARN:
        return posted
    tiers.reverse(
        session,
        entry_id,
        posted.entry_id,
        now,
        partner_id=origin.partner_id,
        staff_id=origin.staff_id,
    )
    return posted
