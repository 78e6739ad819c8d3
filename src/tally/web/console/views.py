"""What the console pages show, read in one transaction from the domain services."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from tally.flows import family_spend as family_spends
from tally.kit.pagination import decode_cursor, encode_cursor
from tally.ledger import releases as ledger_releases
from tally.ledger import repository as ledger_repository
from tally.ledger import service as ledger
from tally.ledger.models import Lot
from tally.members import service as members
from tally.members.domain import PHONE_NAMESPACE, mask_phone
from tally.members.models import MemberStatus
from tally.web import queries

HISTORY_PAGE = 20
SEARCH_LIMIT = 20


@dataclass(frozen=True, slots=True)
class MemberSummary:
    """One search result."""

    id: int
    status: str
    name: str | None
    phone: str | None
    identities: list[str]
    available: int


@dataclass(frozen=True, slots=True)
class IdentityRow:
    namespace: str
    external_id: str


@dataclass(frozen=True, slots=True)
class LotRow:
    id: int
    points: int
    remaining: int
    expires_at: datetime
    created_at: datetime
    state: str


@dataclass(frozen=True, slots=True)
class HoldRow:
    id: str
    points: int
    captured_points: int
    status: str
    reference: str
    partner: str | None
    expires_at: datetime
    created_at: datetime


@dataclass(frozen=True, slots=True)
class HistoryRow:
    kind: str
    points: int
    held: int
    partner: str | None
    staff: str | None
    reference: str | None
    memo: str | None
    created_at: datetime
    family: family_spends.SpendNote | None = None  # set on a family spend and its reversal


@dataclass(frozen=True, slots=True)
class HistoryPage:
    rows: list[HistoryRow]
    next_cursor: str | None
    is_first: bool


@dataclass(frozen=True, slots=True)
class MergeRow:
    id: int
    survivor_id: int
    merged_id: int
    reason: str
    staff: str | None
    created_at: datetime
    reversed_at: datetime | None


@dataclass(frozen=True, slots=True)
class ExpiringRow:
    date: date
    points: int


@dataclass(frozen=True, slots=True)
class MemberDetail:
    """Everything the console's member page shows."""

    id: int
    status: str
    merged_into_id: int | None
    frozen_reason: str | None
    created_at: datetime
    identities: list[IdentityRow]
    profile: dict[str, Any]
    available: int
    held: int
    expiring: list[ExpiringRow]
    lots: list[LotRow]
    holds: list[HoldRow]
    history: HistoryPage
    merges: list[MergeRow] = field(default_factory=list)

    @property
    def live_lots(self) -> list[LotRow]:
        return [lot for lot in self.lots if lot.state == "live"]

    @property
    def past_lots(self) -> list[LotRow]:
        return [lot for lot in self.lots if lot.state != "live"]

    @property
    def is_active(self) -> bool:
        return self.status == MemberStatus.ACTIVE

    @property
    def is_frozen(self) -> bool:
        return self.status == MemberStatus.FROZEN

    @property
    def is_merged(self) -> bool:
        return self.status == MemberStatus.MERGED


def _phone(value: str | None, reveal: bool) -> str | None:
    return value if reveal else mask_phone(value)


def _identity(namespace: str, external_id: str, reveal: bool) -> IdentityRow:
    if namespace == PHONE_NAMESPACE and not reveal:
        return IdentityRow(namespace, mask_phone(external_id) or "")
    return IdentityRow(namespace, external_id)


def search(
    session: Session, text: str, *, reveal_phone: bool, now: datetime, zone: ZoneInfo
) -> list[MemberSummary]:
    """Members matching any identity, phone, name or Tally id."""
    results = []
    for member_id in queries.search_members(session, text, SEARCH_LIMIT):
        view = members.view(session, member_id)
        phone = _phone(view.profile.get("phone"), reveal_phone)
        identities = [
            _identity(item.namespace, item.external_id, reveal_phone) for item in view.identities
        ]
        results.append(
            MemberSummary(
                id=view.id,
                status=view.status.value,
                name=view.profile.get("name"),
                phone=phone,
                identities=[
                    f"{item.namespace}:{item.external_id}"
                    for item in identities
                    if not (item.namespace == PHONE_NAMESPACE and item.external_id == phone)
                ],
                available=ledger.balance(session, member_id, now, zone).available,
            )
        )
    return results


def lot_state(lot: Lot, expired_points: int, now: datetime) -> str:
    """``live`` (spendable), ``spent`` (used up) or ``expired`` (lost points to expiry)."""
    if lot.expires_at <= now:
        return "expired" if lot.remaining > 0 or expired_points > 0 else "spent"
    return "live" if lot.remaining > 0 else "spent"


def history(session: Session, member_id: int, cursor: str | None) -> HistoryPage:
    """One page of a member's history, newest first."""
    before = decode_cursor(cursor) if cursor else None
    items, position = ledger.history(session, member_id, before, HISTORY_PAGE)
    partners = queries.partner_names(session, (item.entry.partner_id for item in items))
    staff = queries.staff_names(session, (item.entry.staff_id for item in items))
    notes = family_spends.notes_of(session, [item.entry for item in items])
    rows = [
        HistoryRow(
            kind=item.entry.kind.value,
            points=item.points,
            held=item.held,
            partner=partners.get(item.entry.partner_id) if item.entry.partner_id else None,
            staff=staff.get(item.entry.staff_id) if item.entry.staff_id else None,
            reference=item.entry.reference,
            memo=item.entry.memo,
            created_at=item.entry.created_at,
            family=notes.get(item.entry.id),
        )
        for item in items
    ]
    return HistoryPage(
        rows=rows,
        next_cursor=encode_cursor(position) if position is not None else None,
        is_first=before is None,
    )


def member_detail(
    session: Session,
    member_id: int,
    *,
    reveal_phone: bool,
    cursor: str | None,
    now: datetime,
    zone: ZoneInfo,
) -> MemberDetail:
    """The member page: status, identities, profile, balance, lots, holds, history, merges."""
    view = members.view(session, member_id)
    member = members.get(session, member_id)
    balance = ledger.balance(session, member_id, now, zone)
    lots = ledger_repository.lots_of(session, member_id)
    expired = queries.expired_points_by_lot(session, (lot.id for lot in lots))
    holds = ledger_repository.holds_of(session, member_id, active_only=False)
    partners = queries.partner_names(session, (hold.partner_id for hold in holds))
    merges = queries.merges_of(session, member_id)
    merge_staff = queries.staff_names(session, (merge.staff_id for merge in merges))
    profile = dict(view.profile)
    profile["phone"] = _phone(profile.get("phone"), reveal_phone)
    return MemberDetail(
        id=view.id,
        status=view.status.value,
        merged_into_id=view.merged_into_id,
        frozen_reason=member.frozen_reason,
        created_at=view.created_at,
        identities=[
            _identity(item.namespace, item.external_id, reveal_phone) for item in view.identities
        ],
        profile=profile,
        available=balance.available,
        held=balance.held,
        expiring=[ExpiringRow(item.date, item.points) for item in balance.expiring],
        lots=[
            LotRow(
                lot.id,
                lot.points,
                lot.remaining,
                lot.expires_at,
                lot.created_at,
                lot_state(lot, expired.get(lot.id, 0), now),
            )
            for lot in lots
        ],
        holds=[
            HoldRow(
                str(hold.id),
                hold.points,
                hold.captured_points,
                ledger_releases.effective_status(hold, now).value,
                hold.reference,
                partners.get(hold.partner_id) if hold.partner_id else None,
                hold.expires_at,
                hold.created_at,
            )
            for hold in holds
        ],
        history=history(session, member_id, cursor),
        merges=[
            MergeRow(
                merge.id,
                merge.survivor_id,
                merge.merged_id,
                merge.reason,
                merge_staff.get(merge.staff_id) if merge.staff_id else None,
                merge.created_at,
                merge.reversed_at,
            )
            for merge in merges
        ],
    )
