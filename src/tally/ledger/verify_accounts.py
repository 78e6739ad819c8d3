"""The accounts part of ``tally ledger verify``: each partner and system account's balance (the
sum of its stripes) against its postings, and rows that belong to nothing. Every check is one
grouped query that returns only what is wrong, so memory stays bounded however large the
ledger (a member account's balance is its wallet, which ``verify`` checks beside its lots)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import String, and_, case, cast, func, literal, select
from sqlalchemy.orm import Session

from tally.accounts.domain import SYSTEM_ACCOUNTS, AccountKind, OwnerType
from tally.accounts.models import Account, AccountStripe
from tally.ledger.models import Posting, Wallet
from tally.members.models import Member
from tally.partners.models import Partner

if TYPE_CHECKING:
    from tally.ledger.verify import Report

LIMIT = 50


def check_accounts(session: Session, report: Report) -> None:
    """Balances against postings; postings, accounts and stripes that belong to nothing."""
    report.accounts = int(session.scalar(select(func.count()).select_from(Account)) or 0)
    _check_balances(session, report)
    _check_orphan_postings(session, report)
    _check_owners(session, report)
    _check_codes(session, report)
    _check_stripes(session, report)


def _check_balances(session: Session, report: Report) -> None:
    posted = (
        select(Posting.account, func.sum(Posting.amount).label("total"))
        .where(~Posting.account.like("member:%"))
        .group_by(Posting.account)
        .subquery()
    )
    striped = (
        select(AccountStripe.account_id, func.sum(AccountStripe.balance).label("balance"))
        .group_by(AccountStripe.account_id)
        .subquery()
    )
    kept = func.coalesce(striped.c.balance, 0)
    total = func.coalesce(posted.c.total, 0)
    for code, balance, postings in session.execute(
        select(Account.code, kept, total)
        .outerjoin(striped, striped.c.account_id == Account.id)
        .outerjoin(posted, posted.c.account == Account.code)
        .where(Account.owner_type != OwnerType.MEMBER, kept != total)
        .order_by(Account.code)
        .limit(LIMIT)
    ):
        report.add(f"account {code}'s balance {balance} differs from its postings {postings}")


def _check_orphan_postings(session: Session, report: Report) -> None:
    for code, count in session.execute(
        select(Posting.account, func.count())
        .outerjoin(Account, Account.code == Posting.account)
        .where(Account.id.is_(None))
        .group_by(Posting.account)
        .order_by(Posting.account)
        .limit(LIMIT)
    ):
        report.add(f"{count} postings name account {code}, which has no row")


def _check_owners(session: Session, report: Report) -> None:
    """Accounts owned by no member (or whose member has no wallet, its balance) or partner;
    wallets, partners and system without their accounts."""
    member_accounts = (
        select(Account.code, Member.id, Wallet.member_id)
        .outerjoin(Member, Member.id == Account.owner_id)
        .outerjoin(Wallet, Wallet.member_id == Account.owner_id)
        .where(Account.owner_type == OwnerType.MEMBER)
        .where(Member.id.is_(None) | Wallet.member_id.is_(None))
        .order_by(Account.code)
        .limit(LIMIT)
    )
    for code, member, _wallet in session.execute(member_accounts):
        owner = (
            "is owned by no member" if member is None else "belongs to a member without a wallet"
        )
        report.add(f"account {code} {owner}")
    for (code,) in session.execute(
        select(Account.code)
        .outerjoin(Partner, Partner.id == Account.owner_id)
        .where(Account.owner_type == OwnerType.PARTNER, Partner.id.is_(None))
        .order_by(Account.code)
        .limit(LIMIT)
    ):
        report.add(f"account {code} is owned by no partner")
    for label, owner_type, owner_ids in (
        ("member", OwnerType.MEMBER, Wallet.member_id),
        ("partner", OwnerType.PARTNER, Partner.id),
    ):
        for owner_id, count in session.execute(
            select(owner_ids, func.count(Account.id))
            .outerjoin(
                Account, and_(Account.owner_type == owner_type, Account.owner_id == owner_ids)
            )
            .group_by(owner_ids)
            .having(func.count(Account.id) != 2)
            .order_by(owner_ids)
            .limit(LIMIT)
        ):
            report.add(f"{label} {owner_id} has {count} accounts, not 2")
    present = set(
        session.scalars(select(Account.code).where(Account.owner_type == OwnerType.SYSTEM))
    )
    for account in SYSTEM_ACCOUNTS:
        if account.code not in present:
            report.add(f"the system account {account.code} has no row")


def _check_codes(session: Session, report: Report) -> None:
    """Every account's code is the one its owner and kind spell (an edited owner shows)."""
    suffix = case(
        (Account.kind == AccountKind.ACCEPTED, literal("redeemed")),
        else_=cast(Account.kind, String),
    )
    spelled = case(
        (Account.owner_type == OwnerType.SYSTEM, literal("system:") + suffix),
        else_=cast(Account.owner_type, String)
        + literal(":")
        + cast(Account.owner_id, String)
        + literal(":")
        + suffix,
    )
    for code, owner_type, owner_id, kind in session.execute(
        select(Account.code, Account.owner_type, Account.owner_id, Account.kind)
        .where(Account.code != spelled)
        .order_by(Account.code)
        .limit(LIMIT)
    ):
        owner = owner_type.value if owner_id is None else f"{owner_type.value} {owner_id}"
        report.add(f"account {code} is recorded as the {kind.value} account of {owner}")


def _check_stripes(session: Session, report: Report) -> None:
    count = session.scalar(
        select(func.count())
        .select_from(AccountStripe)
        .join(Account, Account.id == AccountStripe.account_id)
        .where(Account.owner_type == OwnerType.MEMBER)
    )
    if count:
        report.add(f"{count} balance stripes belong to member accounts (their wallet is theirs)")
