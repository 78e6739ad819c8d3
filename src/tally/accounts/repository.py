"""Every query of accounts. Striped balances change only by adding to them, in one statement
per group commit."""

from __future__ import annotations

import random
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tally.accounts.domain import STRIPES, Account, AccountKind, Balance, OwnerType
from tally.accounts.models import Account as AccountRow
from tally.accounts.models import AccountStripe
from tally.db.raw import Bulk

_OPEN = Bulk.insert(
    "accounts",
    {"code": "text", "owner_type": "text", "owner_id": "bigint", "kind": "text", "unit": "text"},
    "ON CONFLICT (code) DO NOTHING",
)
# A group commit's net change per account, added to one stripe of each (created at its first
# change). The accounts are taken in id order, so two transactions on the same stripe lock
# its rows in one order. An account without a row changes nothing, which the row count shows.
_ADD = Bulk(
    "INSERT INTO account_stripes (account_id, stripe, balance)"
    " SELECT id, :stripe, :delta FROM accounts WHERE code = :code"
    " ON CONFLICT (account_id, stripe) DO UPDATE SET balance = balance + excluded.balance",
    "INSERT INTO account_stripes (account_id, stripe, balance)"
    " SELECT a.id, v.stripe, v.delta"
    " FROM unnest(:code::text[], :delta::bigint[], :stripe::integer[]) AS v(code, delta, stripe)"
    " JOIN accounts a ON a.code = v.code ORDER BY a.id"
    " ON CONFLICT (account_id, stripe)"
    " DO UPDATE SET balance = account_stripes.balance + excluded.balance",
)
_STRIPE = "tally.accounts.stripe"


class UnknownAccount(LookupError):
    """A posting names an account that has no row (a programming error, never user input)."""


def open_accounts(session: Session, accounts: Sequence[Account]) -> None:
    """Give ``accounts`` their rows, in one statement (an account that has one keeps it)."""
    _OPEN.execute(
        session,
        [
            {
                "code": account.code,
                "owner_type": account.owner_type,
                "owner_id": account.owner_id,
                "kind": account.kind,
                "unit": account.unit,
            }
            for account in accounts
        ],
    )


def add_to_balances(session: Session, deltas: Sequence[tuple[str, int]]) -> None:
    """Add each ``(code, delta)`` to one stripe of the account, in one statement; raise
    :class:`UnknownAccount` (the caller's transaction must not commit) when one has no row."""
    if not deltas:
        return
    stripe = _stripe(session)
    rows = [{"code": code, "delta": delta, "stripe": stripe} for code, delta in deltas]
    if _ADD.execute(session, rows) != len(rows):
        known = set(
            session.scalars(
                select(AccountRow.code).where(
                    AccountRow.code.in_([code for code, _delta in deltas])
                )
            )
        )
        missing = sorted(code for code, _delta in deltas if code not in known)
        raise UnknownAccount(f"postings name accounts that have no row: {missing}")


def _stripe(session: Session) -> int:
    """The stripe this transaction adds to: one chosen at random when it first adds (on
    SQLite, one writer at a time, always the first). One per transaction, so a transaction
    never holds two stripes of an account."""
    if session.get_bind().dialect.name == "sqlite":
        return 0
    transaction = session.get_transaction()
    chosen = session.info.get(_STRIPE)
    if chosen is None or chosen[0] is not transaction:
        chosen = (transaction, random.randrange(STRIPES))
        session.info[_STRIPE] = chosen
    return int(chosen[1])


def _balances(session: Session, *conditions: object) -> list[Balance]:
    rows = session.execute(
        select(
            AccountRow.code,
            AccountRow.owner_type,
            AccountRow.owner_id,
            AccountRow.kind,
            AccountRow.unit,
            func.coalesce(func.sum(AccountStripe.balance), 0),
        )
        .outerjoin(AccountStripe, AccountStripe.account_id == AccountRow.id)
        .where(AccountRow.owner_type != OwnerType.MEMBER, *conditions)  # type: ignore[arg-type]
        .group_by(AccountRow.id)
        .order_by(AccountRow.owner_type, AccountRow.owner_id, AccountRow.id)
    )
    return [
        Balance(Account(code, OwnerType(owner), owner_id, AccountKind(kind), unit), int(total))
        for code, owner, owner_id, kind, unit, total in rows
    ]


def partner_balances(session: Session, partner_ids: Sequence[int] | None = None) -> list[Balance]:
    """The partners' accounts (every partner's when ``None``) with their balances."""
    conditions = [AccountRow.owner_type == OwnerType.PARTNER]
    if partner_ids is not None:
        conditions.append(AccountRow.owner_id.in_(partner_ids))
    return _balances(session, *conditions)


def system_balances(session: Session) -> list[Balance]:
    """The system's accounts with their balances."""
    return _balances(session, AccountRow.owner_type == OwnerType.SYSTEM)
