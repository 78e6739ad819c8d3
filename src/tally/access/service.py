"""Who may do what, where the answer needs a read: the partner behind a transaction, a hold
or a membership's plan, the partner's ties to a member whose points it spends (the rules
themselves are in :mod:`tally.access.domain`)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from tally.access import domain, repository
from tally.access.domain import Caller
from tally.errors import Forbidden, NotFound
from tally.ledger import repository as ledger_repository
from tally.ledger.models import Hold, JournalEntry
from tally.memberships import repository as membership_repository
from tally.programme.domain import Programme


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def transaction_to_reverse(session: Session, caller: Caller, transaction_id: str) -> JournalEntry:
    """The caller's own transaction ``transaction_id``, which its key may reverse: another
    partner's is ``not_found`` (``forbidden`` for an operator channel, which can see it), and
    the key needs the scope of the operation reversed."""
    domain.require_any_reversing_scope(caller)
    entry_id = _uuid(transaction_id)
    entry = ledger_repository.entry(session, entry_id) if entry_id is not None else None
    what = f"Transaction {transaction_id}"
    if entry is None:
        raise NotFound(f"{what} does not exist.")
    domain.require_own(caller, entry.partner_id, what)
    domain.require_reversal_scope(caller, entry.kind.value)
    return entry


def hold_of(session: Session, caller: Caller, hold_id: str, *, acting: bool) -> Hold:
    """Hold ``hold_id`` as the caller may see it (``acting``: capture or void it, which only
    the partner that made it may do)."""
    parsed = _uuid(hold_id)
    found = ledger_repository.hold(session, parsed) if parsed is not None else None
    what = f"Hold {hold_id}"
    if found is None:
        raise NotFound(f"{what} does not exist.")
    if acting:
        domain.require_own(caller, found.partner_id, what)
    else:
        domain.require_visible(caller, found.partner_id, what)
    return found


def require_membership_seller(
    session: Session, caller: Caller, programme: Programme, membership_id: uuid.UUID
) -> None:
    """Managing or reading membership ``membership_id``: only a seller of its plan or an
    operator channel (an unknown membership is ``not_found``)."""
    found = membership_repository.membership(session, membership_id)
    if found is None:
        raise NotFound(f"Membership {membership_id} does not exist.")
    domain.require_seller(caller, programme, found.plan_code)


def spend_refusals(
    session: Session,
    asks: Sequence[tuple[Caller, int]],
    programme: Programme,
    now: datetime,
    act: str = "spend the points of",
) -> list[Forbidden | None]:
    """For each ``(caller, member_id)``: the ``no_relationship`` refusal when the caller may
    not spend that member's points, else ``None`` (an operator channel, a partner tied to the
    member, or a member that does not exist — the write itself says ``not_found``). The ties
    of all the asks are read with one statement; operator channels need none."""
    partners = [(caller, member_id) for caller, member_id in asks if not caller.is_operator_channel]
    owned = {
        caller.partner_id: domain.owned_namespaces(caller, programme)
        for caller, _member in partners
    }
    existing, ties = repository.ties(
        session, [(member_id, caller.partner_id) for caller, member_id in partners], owned, now
    )
    return [
        domain.no_relationship(caller, member_id, act)
        if member_id in existing
        and not domain.may_spend(caller, ties.get((member_id, caller.partner_id), set()))
        else None
        for caller, member_id in asks
    ]


def require_relationship(
    session: Session, caller: Caller, member_id: int, programme: Programme, now: datetime, act: str
) -> None:
    """``forbidden`` (``no_relationship``) unless the caller may spend the points of (or link
    an identity to) member ``member_id``; ``act`` says what was asked (see
    :func:`spend_refusals`)."""
    refusal = spend_refusals(session, [(caller, member_id)], programme, now, act)[0]
    if refusal is not None:
        raise refusal
