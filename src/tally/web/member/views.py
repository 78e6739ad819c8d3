"""What the member pages show: points, what expires when, and a friendly history."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from tally.events import repository as events
from tally.flows import family_spend as family_spends
from tally.kit.clock import local_date
from tally.kit.pagination import decode_cursor, encode_cursor
from tally.ledger import service as ledger
from tally.ledger.models import JournalEntry
from tally.members import service as members
from tally.members.models import MemberStatus
from tally.programme.domain import Programme
from tally.programme.shapes import Names
from tally.web import queries

#: Points expiring within this many days get a warning.
WARNING_DAYS = 30
HISTORY_PAGE = 20
RECENT = 5


@dataclass(frozen=True, slots=True)
class ExpiringRow:
    date: date
    points: int
    days_left: int


@dataclass(frozen=True, slots=True)
class FamilyLine:
    """A family spend in a member's history: the family's points (``mode`` pool or share),
    spent by the member itself, by the owner, or by another member (``name`` if it has one)."""

    mode: str
    spent_by_me: bool
    spent_by_owner: bool
    name: str | None


@dataclass(frozen=True, slots=True)
class EarnedLine:
    """A rule's part of an entry: "how I earned this" (``names``: its campaign's, by locale)."""

    names: Names | str  # the campaign's names, or its code when the programme no longer has it
    points: int


@dataclass(frozen=True, slots=True)
class ActivityRow:
    kind: str
    points: int
    held: int
    source: str | None
    created_at: datetime
    family: FamilyLine | None = None
    earned_by: tuple[EarnedLine, ...] = ()


@dataclass(frozen=True, slots=True)
class ActivityPage:
    rows: list[ActivityRow]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class MyPoints:
    """The "my points" page."""

    member_id: int
    is_frozen: bool
    available: int
    held: int
    schedule: list[ExpiringRow]
    expiring_soon: list[ExpiringRow]
    recent: list[ActivityRow]

    @property
    def expiring_soon_total(self) -> int:
        return sum(row.points for row in self.expiring_soon)


def activity(
    session: Session,
    member_id: int,
    cursor: str | None,
    limit: int,
    programme: Programme | None = None,
) -> ActivityPage:
    """A page of the member's history, newest first, named the way a member would; an entry
    an event earned (or a refund took back) says which campaigns' rules gave what."""
    before = decode_cursor(cursor) if cursor else None
    items, position = ledger.history(session, member_id, before, limit)
    partners = queries.partner_names(session, (item.entry.partner_id for item in items))
    notes = family_spends.notes_of(session, [item.entry for item in items])
    names = queries.member_names(session, (note.spent_by for note in notes.values()))
    earned = _earned_by(session, [item.entry for item in items], programme)
    rows = [
        ActivityRow(
            kind=item.entry.kind.value,
            points=item.points,
            held=item.held,
            source=partners.get(item.entry.partner_id) if item.entry.partner_id else None,
            created_at=item.entry.created_at,
            family=_family_line(notes.get(item.entry.id), member_id, names),
            earned_by=earned.get(item.entry.id, ()),
        )
        for item in items
    ]
    return ActivityPage(rows, encode_cursor(position) if position is not None else None)


def _earned_by(
    session: Session, entries: Sequence[JournalEntry], programme: Programme | None
) -> dict[uuid.UUID, tuple[EarnedLine, ...]]:
    """The rules behind the entries events posted, by entry id, read in one statement."""
    campaigns = (
        {campaign.code: campaign.names for campaign in programme.campaigns} if programme else {}
    )
    stored = events.of_transactions(
        session, [(entry.id, entry.partner_id, entry.reference) for entry in entries]
    )
    found: dict[uuid.UUID, tuple[EarnedLine, ...]] = {}
    for entry_id, event in stored.items():
        found[entry_id] = tuple(
            EarnedLine(campaigns.get(rule["campaign"], rule["campaign"]), rule["points"])
            for rule in event.outcome.get("rules", [])
            if rule["points"]
        )
    return found


def _family_line(
    note: family_spends.SpendNote | None, member_id: int, names: dict[int, str]
) -> FamilyLine | None:
    if note is None:
        return None
    return FamilyLine(
        mode=note.mode,
        spent_by_me=note.spent_by == member_id,
        spent_by_owner=note.spent_by == note.owner_id,
        name=names.get(note.spent_by),
    )


def my_points(
    session: Session,
    member_id: int,
    now: datetime,
    zone: ZoneInfo,
    reminder_days: list[int] | None = None,
    programme: Programme | None = None,
) -> MyPoints:
    """Available and held points, the expiry schedule and the latest activity; points that
    expire within the programme's first expiry reminder (else :data:`WARNING_DAYS`) are warned
    of, as the ``points.expiring`` reminders tell them."""
    status = members.get(session, member_id).status
    balance = ledger.balance(session, member_id, now, zone)
    today = local_date(now, zone)
    schedule = [
        ExpiringRow(item.date, item.points, (item.date - today).days) for item in balance.expiring
    ]
    horizon = today + timedelta(days=max(reminder_days or [WARNING_DAYS]))
    return MyPoints(
        member_id=member_id,
        is_frozen=status is MemberStatus.FROZEN,
        available=balance.available,
        held=balance.held,
        schedule=schedule,
        expiring_soon=[row for row in schedule if row.date <= horizon],
        recent=activity(session, member_id, None, RECENT, programme).rows,
    )
