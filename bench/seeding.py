"""Members for a benchmark, seeded set-based: one insert per table, in the caller's transaction."""

from __future__ import annotations

import datetime as dt
from typing import Any


def seed_members(session: Any, count: int, enrolled: dt.datetime) -> list[int]:
    """``count`` active members enrolled at ``enrolled``, each with a phone identity, an empty
    wallet at the start of its chain and its accounts, as enrolment makes them; their ids."""
    from sqlalchemy import insert

    from tally.accounts import service as accounts
    from tally.kit.crypto import GENESIS_HASH
    from tally.ledger.models import Wallet
    from tally.members.models import Member, MemberIdentity, MemberStatus

    ids = list(
        session.scalars(
            insert(Member).returning(Member.id, sort_by_parameter_order=True),
            [
                {"status": MemberStatus.ACTIVE, "created_at": enrolled, "updated_at": enrolled}
                for _ in range(count)
            ],
        )
    )
    session.execute(
        insert(MemberIdentity),
        [
            {
                "member_id": m,
                "namespace": "phone",
                "external_id": f"139{m:08d}",
                "created_at": enrolled,
            }
            for m in ids
        ],
    )
    session.execute(
        insert(Wallet),
        [
            {"member_id": m, "available": 0, "held": 0, "seq": 0, "head_hash": GENESIS_HASH}
            for m in ids
        ],
    )
    accounts.open_for_members(session, ids)
    return ids
