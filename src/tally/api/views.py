"""Turn service results into API response models."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from tally.adjustments import service as adjustment_requests
from tally.adjustments.models import AdjustmentRequest
from tally.api import schemas
from tally.flows import family_spend as family_spends
from tally.kit.clock import utcnow
from tally.kit.pagination import encode_cursor
from tally.ledger import posting as ledger_posting
from tally.ledger import releases as ledger_releases
from tally.ledger import service as ledger
from tally.ledger.domain import Balance, HoldState
from tally.ledger.models import Hold, JournalEntry
from tally.partners import service as partners
from tally.privacy import service as privacy
from tally.privacy.domain import Viewer
from tally.programme import runtime
from tally.programme.domain import Programme
from tally.tiers import service as tiers


def member(
    session: Session, member_id: int, caller: Viewer, programme: Programme
) -> schemas.Member:
    """The member resource as ``caller`` may see it: the profile and the identities in shared
    namespaces only when it collected the profile or the member consented (docs/security.md);
    the Tally id, status, tier and available points always."""
    seen = privacy.seen_member(session, member_id, caller, programme)
    view = seen.member
    return schemas.Member(
        id=view.id,
        status=view.status.value,
        merged_into_id=view.merged_into_id,
        created_at=view.created_at,
        tier=tiers.current_tier(session, member_id, programme).code,
        balance=schemas.MemberBalance(
            available=ledger.balance(session, member_id, utcnow(), programme.zone).available
        ),
        identities=[
            schemas.ExternalIdentity(namespace=item.namespace, id=item.external_id)
            for item in view.identities
        ],
        profile=None if seen.profile is None else profile(seen.profile),
    )


def profile(values: dict[str, Any]) -> schemas.MemberProfile:
    """A member's personal data as the API shows it (every field, ``null`` when unknown)."""
    return schemas.MemberProfile.model_validate(
        {name: values.get(name) for name in schemas.MemberProfile.model_fields}
    )


def balance(session: Session, member_id: int, now: datetime, zone: object) -> schemas.Balance:
    return balance_model(ledger.balance(session, member_id, now, zone))  # type: ignore[arg-type]


def balance_model(result: Balance) -> schemas.Balance:
    return schemas.Balance(
        available=result.available,
        held=result.held,
        expiring=[schemas.Expiring(date=item.date, points=item.points) for item in result.expiring],
    )


def posted(
    session: Session, result: ledger_posting.Posted, now: datetime, zone: object
) -> schemas.Posted:
    return schemas.Posted(**_posted_fields(session, result, now, zone))


def hold_posted(
    session: Session, result: ledger_posting.Posted, now: datetime, zone: object, *, made: bool
) -> schemas.HoldPosted:
    """The answer to a write on a hold: the hold (whose id is the answer's when ``made``) and
    the transaction."""
    assert result.hold is not None
    fields = _posted_fields(session, result, now, zone)
    if made:
        fields["id"] = str(result.hold.id)
    return schemas.HoldPosted(**fields, hold=hold(result.hold, now))


def _posted_fields(
    session: Session, result: ledger_posting.Posted, now: datetime, zone: object
) -> dict[str, Any]:
    return {
        "id": str(result.entry_id) if result.entry_id else None,
        "transaction_id": str(result.entry_id) if result.entry_id else None,
        "member_id": result.member_id,
        "balance": balance_model(result.balance)
        if result.balance is not None
        else balance(session, result.member_id, now, zone),
        "details": result.details,
        # The version the write's transaction ran under (its stamp: no query).
        "programme_version": None
        if result.entry_id is None
        else runtime.pricing(session, now).version,
    }


def hold(found: Hold | HoldState, now: datetime) -> schemas.Hold:
    """A hold as the API shows it: past its timeout it has lapsed, recorded by the job or not."""
    return schemas.Hold(
        id=str(found.id),
        member_id=found.member_id,
        points=found.points,
        captured_points=found.captured_points,
        status=ledger_releases.effective_status(found, now).value,
        reference=found.reference,
        expires_at=found.expires_at,
        created_at=found.created_at,
    )


def transactions(
    session: Session, member_id: int, before: int | None, limit: int, *, partner_id: int | None
) -> schemas.TransactionPage:
    """A member's history (including members merged into it), newest first: the entries made
    by ``partner_id`` (every entry when ``None``)."""
    items, position = ledger.history(session, member_id, before, limit, partner_id=partner_id)
    notes = family_spends.notes_of(session, [item.entry for item in items])
    return schemas.TransactionPage(
        items=[
            transaction(
                item.entry, points=item.points, held=item.held, family=notes.get(item.entry.id)
            )
            for item in items
        ],
        next_cursor=encode_cursor(position) if position is not None else None,
    )


def transaction(
    entry: JournalEntry, *, points: int, held: int, family: family_spends.SpendNote | None
) -> schemas.Transaction:
    """One history item; ``family``: the family spend it is or reverses."""
    return schemas.Transaction(
        id=str(entry.id),
        kind=entry.kind.value,
        points=points,
        held=held,
        reference=entry.reference,
        partner_id=entry.partner_id,
        staff_id=entry.staff_id,
        memo=entry.memo,
        reverses_id=str(entry.reverses_id) if entry.reverses_id else None,
        details=entry.details,
        programme_version=entry.programme_version,
        family_spend=family_spend(family),
        created_at=entry.created_at,
    )


def family_spend(note: family_spends.SpendNote | None) -> schemas.FamilySpend | None:
    """A family spend as the API shows it."""
    if note is None:
        return None
    return schemas.FamilySpend(
        family_id=note.family_id,
        mode=note.mode,
        owner_id=note.owner_id,
        spent_by=note.spent_by,
        partner_id=note.partner_id,
        points=note.points,
    )


def parse_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def adjustment_request(
    session: Session, found: AdjustmentRequest, now: datetime
) -> schemas.AdjustmentRequest:
    """An adjustment request filed through the API, as it stands at ``now``."""
    assert found.requested_by_key_id is not None
    prefix, partner = partners.key_owners(session, {found.requested_by_key_id})[
        found.requested_by_key_id
    ]
    status = adjustment_requests.status_of(found, now)
    expired_unrecorded = found.decided_at is None and status.value == "expired"
    return schemas.AdjustmentRequest(
        id=found.id,
        member_id=found.member_id,
        points=found.points,
        reason=found.reason,
        points_expire_at=found.expires_at,
        status=status.value,
        requested_by=schemas.AdjustmentRequester(partner=partner, key=prefix),
        requested_at=found.requested_at,
        expires_at=found.deadline,
        limit=found.role_limit,
        decided_at=found.deadline if expired_unrecorded else found.decided_at,
        transaction_id=None if found.entry_id is None else str(found.entry_id),
        note=found.decision_note,
    )
