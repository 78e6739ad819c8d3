"""A member's status in one read: tier and growth, paid memberships, family, stacked benefits.

The API's ``/status``, the console's member page and the member's own pages all show this.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from tally.families import service as families
from tally.families.service import FamilyView
from tally.memberships import service as memberships
from tally.programme.domain import AnyBenefit, Plan, Programme, stack_benefits
from tally.tiers import service as tiers
from tally.tiers.service import Standing


@dataclass(frozen=True, slots=True)
class PlanStatus:
    """A paid membership in force; ``plan`` is ``None`` if the programme no longer lists it."""

    membership_id: uuid.UUID
    plan_code: str
    plan: Plan | None
    period_end: datetime
    cancel_at_period_end: bool


@dataclass(frozen=True, slots=True)
class MemberStatus:
    member_id: int
    standing: Standing
    memberships: list[PlanStatus]
    family: FamilyView | None
    benefits: list[AnyBenefit]

    @property
    def earn_multiplier_bp(self) -> int:
        """The tier's earn multiplier in basis points (15000 = 1.5x)."""
        return self.standing.tier.earn_multiplier_bp

    @property
    def theme(self) -> str:
        """The look the member's pages take (the tier's ``flags.theme``)."""
        return self.standing.tier.flags.theme


def member_status(
    session: Session, member_id: int, now: datetime, programme: Programme
) -> MemberStatus:
    """Everything a member's status page shows, as of ``now`` under ``programme``."""
    standing = tiers.standing(session, member_id, now, programme)
    in_force = [
        PlanStatus(
            membership_id=active.id,
            plan_code=active.plan_code,
            plan=programme.plan(active.plan_code),
            period_end=active.period_end,
            cancel_at_period_end=active.cancel_at_period_end,
        )
        for active in memberships.active_memberships(session, member_id, now)
    ]
    plan_benefits = [status.plan.benefits for status in in_force if status.plan is not None]
    return MemberStatus(
        member_id=member_id,
        standing=standing,
        memberships=in_force,
        family=families.family_of(session, member_id, now, programme=programme),
        benefits=stack_benefits(standing.tier.benefits, *plan_benefits),
    )
