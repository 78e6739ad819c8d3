"""Use cases of accounts: opening them with their owner, and reading their balances."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy.orm import Session

from tally.accounts import repository
from tally.accounts.domain import (
    SYSTEM_ACCOUNTS,
    Balance,
    PartnerTotals,
    member_accounts,
    partner_accounts,
    partner_totals,
)


def open_for_members(session: Session, member_ids: Sequence[int]) -> None:
    """Open the accounts of new members (with their wallets), in one statement."""
    repository.open_accounts(
        session, [account for member_id in member_ids for account in member_accounts(member_id)]
    )


def open_for_partner(session: Session, partner_id: int) -> None:
    """Open a new partner's accounts."""
    repository.open_accounts(session, partner_accounts(partner_id))


def open_system(session: Session) -> None:
    """Open the system's accounts (those it has keep their rows)."""
    repository.open_accounts(session, SYSTEM_ACCOUNTS)


def of_partner(session: Session, partner_id: int) -> PartnerTotals:
    """A partner's accounts and totals."""
    return partner_totals(repository.partner_balances(session, [partner_id]))


def of_partners(session: Session) -> dict[int, PartnerTotals]:
    """Every partner's accounts and totals, by partner id."""
    found: dict[int, list[Balance]] = defaultdict(list)
    for balance in repository.partner_balances(session):
        assert balance.account.owner_id is not None
        found[balance.account.owner_id].append(balance)
    return {partner_id: partner_totals(items) for partner_id, items in found.items()}


def of_system(session: Session) -> list[Balance]:
    """The system's accounts with their balances."""
    return repository.system_balances(session)
