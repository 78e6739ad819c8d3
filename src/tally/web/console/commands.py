"""The console's changes, each one transaction: adjust, freeze, unfreeze, merge, unmerge.

An adjustment form carries a one-time nonce, remembered with the idempotency records (principal
``staff:<id>``) in the same transaction as the adjustment: a second submit of the same form (a
double click, a refresh, a replayed cookie) changes nothing, even when both arrive at once.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from tally.db.session import Database
from tally.errors import IdempotencyConflict, NotFound
from tally.flows import enrolment
from tally.idempotency import service as idempotency
from tally.ledger import service as ledger
from tally.ledger.domain import Origin, Policy
from tally.members import service as members
from tally.members.models import MemberMerge
from tally.programme.runtime import ProgrammeCache
from tally.web import queries


def _principal(staff_id: int) -> str:
    return f"staff:{staff_id}"


def adjust(
    db: Database,
    *,
    staff_id: int,
    member_id: int,
    points: int,
    reason: str,
    nonce: str,
    now: datetime,
    policy: Policy,
) -> bool:
    """Credit or debit a member once per form; ``False`` when this form was already applied."""
    key = f"console-adjust:{nonce}"
    body = json.dumps({"member": member_id, "points": points, "reason": reason}).encode()
    fingerprint = idempotency.request_hash("POST", f"/console/members/{member_id}/adjust", body)
    try:
        with db.write() as session:
            if idempotency.replay(session, _principal(staff_id), key, fingerprint) is not None:
                return False
            ledger.adjust(
                session, Origin(staff_id=staff_id), member_id, points, reason, now, policy
            )
            idempotency.remember(
                session, _principal(staff_id), key, fingerprint, 201, body.decode()
            )
    except IdempotencyConflict:
        return False  # the same form, resubmitted with edited values: still only once
    except IntegrityError:
        return False  # a concurrent submit of the same form won the race
    return True


def freeze(db: Database, member_id: int, reason: str, now: datetime) -> None:
    """Stop a member from earning and spending."""
    with db.write() as session:
        members.freeze(session, member_id, reason, now)


def unfreeze(db: Database, member_id: int, now: datetime) -> None:
    """Let a frozen member earn and spend again."""
    with db.write() as session:
        members.unfreeze(session, member_id, now)


def merge(
    db: Database,
    programme: ProgrammeCache,
    *,
    survivor_id: int,
    merged_id: int,
    staff_id: int,
    reason: str,
    now: datetime,
) -> MemberMerge:
    """Fold another member into this one."""
    with db.write() as session:
        return enrolment.merge(
            session, survivor_id, merged_id, staff_id, reason, now, programme.get(session)
        )


def unmerge(
    db: Database,
    programme: ProgrammeCache,
    *,
    member_id: int,
    merge_id: int,
    staff_id: int,
    now: datetime,
) -> None:
    """Reverse a merge this member took part in."""
    with db.write() as session:
        involved = {record.id for record in queries.merges_of(session, member_id)}
        if merge_id not in involved:
            raise NotFound(f"Member {member_id} took part in no merge {merge_id}.")
        enrolment.unmerge(session, merge_id, staff_id, now, programme.get(session))
