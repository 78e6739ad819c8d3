"""Who may do what, where the answer needs a read: the partner behind a transaction, a hold
or a membership's plan (the rules themselves are in :mod:`tally.access.domain`)."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from tally.access import domain
from tally.access.domain import Caller
from tally.errors import NotFound
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
