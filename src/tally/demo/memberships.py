"""Demo paid memberships: a few members hold the programme's VIP88 plan, bought at the mall."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from tally.memberships import service as memberships
from tally.programme.domain import Programme
from tally.tiers import service as tiers

PLAN = "VIP88"
HOLDERS = 8
SEED = 88


def seed(
    session: Session,
    programme: Programme,
    member_ids: list[int],
    partner_id: int,
    now: datetime,
) -> list[int]:
    """Give ``HOLDERS`` members an active VIP88 membership paid through ``partner_id`` at some
    time in the last ten months; one of them has cancelled at period end. A holder short of the
    plan's growth value gets a demo adjustment up to it first. Returns the holders."""
    plan = programme.plan(PLAN)
    if plan is None or not member_ids:
        return []
    rng = random.Random(SEED)
    actor = memberships.Actor(partner_id=partner_id)
    holders = rng.sample(member_ids, min(HOLDERS, len(member_ids)))
    for number, member_id in enumerate(holders):
        bought = now - timedelta(days=rng.randint(1, 300), minutes=rng.randint(0, 1440))
        short = (
            plan.eligibility.min_growth
            - tiers.standing(session, member_id, bought, programme).growth
        )
        if short > 0:
            tiers.adjust(session, member_id, short, "demo: enough for VIP88", bought, programme)
        row, _created = memberships.subscribe(session, actor, member_id, PLAN, programme, bought)
        memberships.pay(
            session,
            actor,
            row.id,
            f"vip88-{member_id}",
            plan.price.money,
            bought,
            programme,
            bought + timedelta(minutes=1),
        )
        if number == 0:
            memberships.cancel(session, actor, row.id, now - timedelta(hours=1))
    return holders
