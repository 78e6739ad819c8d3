"""Accounts (pure): what an account is, the codes postings name it by, and how the balance
changes of a group of entries are gathered into one write per account."""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

#: How many balance rows (stripes) a partner or system account has on PostgreSQL; a writing
#: transaction adds to one of them, so concurrent group commits seldom wait for each other.
STRIPES = 16
#: The unit of every account today (other currencies, growth value: later units).
POINTS = "points"


class OwnerType(enum.StrEnum):
    MEMBER = "member"
    PARTNER = "partner"
    SYSTEM = "system"


class AccountKind(enum.StrEnum):
    """What an account holds (its owner type says whose it is)."""

    AVAILABLE = "available"  # a member's spendable points
    HELD = "held"  # a member's points reserved by holds
    ISSUED = "issued"  # contra account of a partner's issued points (negative)
    ACCEPTED = "accepted"  # points members spent with a partner
    EXPIRED = "expired"  # points that expired
    ADJUSTMENTS = "adjustments"  # operator corrections (contra of the members' side)
    BREAKAGE = "breakage"  # points finance books as never to be redeemed


#: The last part of a code, where it differs from the kind's name (codes predate kinds, and
#: entries' hashes cover their postings' codes, so codes never change).
_SUFFIX = {AccountKind.ACCEPTED: "redeemed"}
_KIND_OF_SUFFIX = {suffix: kind for kind, suffix in _SUFFIX.items()}
_MEMBER_KINDS = (AccountKind.AVAILABLE, AccountKind.HELD)
_PARTNER_KINDS = (AccountKind.ISSUED, AccountKind.ACCEPTED)
_SYSTEM_KINDS = (AccountKind.EXPIRED, AccountKind.ADJUSTMENTS, AccountKind.BREAKAGE)


@dataclass(frozen=True, slots=True)
class Account:
    """An account as postings name it (``code``) and as its row describes it."""

    code: str
    owner_type: OwnerType
    owner_id: int | None
    kind: AccountKind
    unit: str = POINTS

    @property
    def is_member(self) -> bool:
        """Member accounts keep their balance in the member's wallet, not in stripes."""
        return self.owner_type is OwnerType.MEMBER


def code_of(owner_type: OwnerType, owner_id: int | None, kind: AccountKind) -> str:
    """``member:7:available``, ``partner:5:redeemed``, ``system:expired``."""
    suffix = _SUFFIX.get(kind, kind.value)
    if owner_type is OwnerType.SYSTEM:
        return f"system:{suffix}"
    return f"{owner_type.value}:{owner_id}:{suffix}"


def _account(owner_type: OwnerType, owner_id: int | None, kind: AccountKind) -> Account:
    return Account(code_of(owner_type, owner_id, kind), owner_type, owner_id, kind)


def member_accounts(member_id: int) -> list[Account]:
    """The accounts every member has: available and held."""
    return [_account(OwnerType.MEMBER, member_id, kind) for kind in _MEMBER_KINDS]


def partner_accounts(partner_id: int) -> list[Account]:
    """The accounts every partner has: issued and accepted."""
    return [_account(OwnerType.PARTNER, partner_id, kind) for kind in _PARTNER_KINDS]


SYSTEM_ACCOUNTS = tuple(_account(OwnerType.SYSTEM, None, kind) for kind in _SYSTEM_KINDS)


def parse(code: str) -> Account | None:
    """The account a posting's ``code`` names, or ``None`` when it names none Tally knows."""
    parts = code.split(":")
    try:
        if len(parts) == 2 and parts[0] == "system":
            owner_type, owner_id, suffix = OwnerType.SYSTEM, None, parts[1]
        elif len(parts) == 3 and parts[0] in (OwnerType.MEMBER, OwnerType.PARTNER):
            owner_type, owner_id, suffix = OwnerType(parts[0]), int(parts[1]), parts[2]
        else:
            return None
        kind = _KIND_OF_SUFFIX.get(suffix) or AccountKind(suffix)
    except ValueError:
        return None
    found = _account(owner_type, owner_id, kind)
    allowed = {
        OwnerType.MEMBER: _MEMBER_KINDS,
        OwnerType.PARTNER: _PARTNER_KINDS,
        OwnerType.SYSTEM: _SYSTEM_KINDS,
    }[owner_type]
    return found if kind in allowed and found.code == code else None


def striped_deltas(legs: Iterable[tuple[str, int]]) -> list[tuple[str, int]]:
    """The net change per partner or system account of ``(code, amount)`` legs, by code,
    leaving out member accounts (their wallets hold their balance) and changes that net to
    zero: what one group commit adds to the balance rows, one row per account."""
    net: dict[str, int] = defaultdict(int)
    for code, amount in legs:
        if not code.startswith("member:"):
            net[code] += amount
    return sorted((code, amount) for code, amount in net.items() if amount)


@dataclass(frozen=True, slots=True)
class Balance:
    """An account and its balance as the ledger keeps it (sum of its postings)."""

    account: Account
    balance: int


@dataclass(frozen=True, slots=True)
class PartnerTotals:
    """A partner's accounts, and what they mean: ``issued`` points it gave members (positive:
    its issued account is a contra account, negative in the ledger), ``accepted`` points
    members spent with it, ``net`` what it issued beyond what it accepted."""

    issued: int
    accepted: int
    accounts: list[Balance]

    @property
    def net(self) -> int:
        return self.issued - self.accepted


def partner_totals(balances: Iterable[Balance]) -> PartnerTotals:
    """A partner's totals from its account balances (a missing account counts zero)."""
    found = sorted(balances, key=lambda item: _PARTNER_KINDS.index(item.account.kind))
    by_kind = {item.account.kind: item.balance for item in found}
    return PartnerTotals(
        issued=-by_kind.get(AccountKind.ISSUED, 0),
        accepted=by_kind.get(AccountKind.ACCEPTED, 0),
        accounts=found,
    )
