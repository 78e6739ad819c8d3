"""The console's changes, each one transaction: adjust, freeze, unfreeze, merge, unmerge.

An adjustment above the staff member's limit becomes a request (see
:mod:`tally.flows.staff_adjustments`).

An adjustment form carries a one-time token bound to the session (:mod:`tally.web.console.once`),
claimed in the same transaction as the adjustment: a second submit of the same form (a double
click, a refresh, the back button) changes nothing, even when both arrive at once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from tally.db.session import Database
from tally.errors import NotFound
from tally.flows import enrolment, staff_adjustments
from tally.ledger.domain import Policy
from tally.members import service as members
from tally.members.models import MemberMerge
from tally.programme.runtime import ProgrammeCache
from tally.web import queries
from tally.web.console import once

#: Writes the audit entry of a change, in the change's transaction.
Audit = Callable[[Session], None]


def adjust(
    db: Database,
    programme: ProgrammeCache,
    *,
    actor: staff_adjustments.Actor,
    member_id: int,
    points: int,
    reason: str,
    form: once.Form,
    now: datetime,
    policy: Policy,
    expires_at: datetime | None = None,
) -> staff_adjustments.Adjusted | None:
    """Adjust a member within the staff member's limit, or file a request above it, once per
    form; ``None`` when this form was already applied."""

    def work(session: Session) -> tuple[staff_adjustments.Adjusted, dict[str, Any]]:
        outcome = staff_adjustments.adjust(
            session,
            actor,
            member_id,
            points,
            reason,
            programme=programme.get(session),
            version=programme.version,
            policy=policy,
            now=now,
            expires_at=expires_at,
        )
        if outcome.request is not None:
            return outcome, {"member": member_id, "request": outcome.request.id}
        return outcome, {"member": member_id, "entry": str(outcome.entry_id)}

    done = once.run(db, form, work)
    return None if isinstance(done, once.Done) else done


def freeze(db: Database, member_id: int, reason: str, now: datetime, audit: Audit) -> None:
    """Stop a member from earning and spending."""
    with db.write() as session:
        members.freeze(session, member_id, reason, now)
        audit(session)


def unfreeze(db: Database, member_id: int, now: datetime, audit: Audit) -> None:
    """Let a frozen member earn and spend again."""
    with db.write() as session:
        members.unfreeze(session, member_id, now)
        audit(session)


def merge(
    db: Database,
    programme: ProgrammeCache,
    *,
    survivor_id: int,
    merged_id: int,
    staff_id: int,
    reason: str,
    now: datetime,
    audit: Audit,
) -> MemberMerge:
    """Fold another member into this one."""
    with db.write() as session:
        merged = enrolment.merge(
            session, survivor_id, merged_id, staff_id, reason, now, programme.get(session)
        )
        audit(session)
        return merged


def unmerge(
    db: Database,
    programme: ProgrammeCache,
    *,
    member_id: int,
    merge_id: int,
    staff_id: int,
    now: datetime,
    audit: Audit,
) -> None:
    """Reverse a merge this member took part in."""
    with db.write() as session:
        involved = {record.id for record in queries.merges_of(session, member_id)}
        if merge_id not in involved:
            raise NotFound(f"Member {member_id} took part in no merge {merge_id}.")
        enrolment.unmerge(session, merge_id, staff_id, now, programme.get(session))
        audit(session)
