"""Demo family accounts: one pooling household, one sharing household, a few spends."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from tally.db.raw import savepoint
from tally.errors import TallyError
from tally.families import repository as family_repository
from tally.families import service as families
from tally.families.domain import FamilyMode
from tally.flows import family_spend
from tally.ledger.domain import Origin, Policy
from tally.programme.domain import Programme


def seed(
    session: Session,
    programme: Programme,
    member_ids: list[int],
    partner_id: int,
    now: datetime,
    policy: Policy,
) -> list[int]:
    """Two families among the first demo members (the sample member owns the sharing one).

    Returns the families' ids (none when there are too few members).
    """
    if len(member_ids) < 6:
        return []
    rules = programme.family
    founded = now - timedelta(days=20)
    created = []
    for owner, joined, mode in (
        (member_ids[0], member_ids[1:3], FamilyMode.SHARE),
        (member_ids[3], member_ids[4:6], FamilyMode.POOL),
    ):
        family_id = families.create(session, owner, mode, founded)
        for member_id in joined:
            families.invite(session, family_id, owner, member_id, founded, rules)
            families.accept(session, family_id, member_id, member_id, founded)
        created.append(family_id)
    share, pool = created
    # The sharing owner lets the first member spend less than the default.
    families.change_settings(session, share, member_ids[0], None, {member_ids[1]: 800}, founded)
    origin = Origin(partner_id=partner_id)
    owner_points = family_repository.spendable(session, [member_ids[0]], now)[member_ids[0]]
    pooled = sum(
        family_repository.spendable(session, [member_ids[3], *member_ids[4:6]], now).values()
    )
    spends = [
        (share, member_ids[1], min(300, owner_points // 4), "demo-family-share-1"),
        (share, member_ids[2], min(500, owner_points // 4), "demo-family-share-2"),
        (pool, member_ids[3], min(pooled, 1200), "demo-family-pool-1"),
    ]
    for family_id, spender, points, reference in spends:
        if points <= 0:
            continue
        try:
            with savepoint(session):
                family_spend.spend(
                    session, origin, family_id, spender, points, reference, now, policy, programme
                )
        except TallyError:
            continue  # a demo member short of points simply does not spend
    return created
