"""Growth value and tier use cases: credit, reverse, adjust, standing, history. Never commits.

Every change of growth goes through the member's ``member_tiers`` row (created on first need):
its ``lifetime_growth`` moves by an UPDATE that locks the row until commit, so concurrent credits
to one member take turns, and the immediate upgrade that follows reads every committed credit
and moves the tier by a conditional update on ``version`` (one history row per change).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from tally.errors import InsufficientGrowth, ValidationFailed
from tally.members import service as members
from tally.programme.domain import Programme, Tier
from tally.tiers import domain, repository
from tally.tiers.models import GrowthEntry, GrowthKind, TierChange

MAX_GROWTH = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Standing:
    tier: Tier  # tally.programme.domain.Tier
    tier_index: int  # 0 = first tier
    growth: int  # qualifying growth value now
    lifetime_growth: int
    since: datetime | None
    next_tier: Tier | None
    to_next: int | None  # growth still needed for next_tier
    to_keep: int  # growth still needed to keep `tier` at the next evaluation (0 if safe)
    downgrade_at: datetime | None
    window_start: datetime | None


def qualifying_now(
    session: Session, member_id: int, now: datetime, programme: Programme
) -> tuple[domain.Qualifying, domain.Windows]:
    """The member's qualifying growth at ``now`` and the windows it was counted in."""
    found = domain.windows(programme.tier_model, now, programme.zone)
    current, previous = repository.sums(session, member_id, found)
    return domain.qualifying(current, previous), found


def qualifying_of(
    session: Session, member_ids: Sequence[int], now: datetime, programme: Programme
) -> dict[int, domain.Qualifying]:
    """:func:`qualifying_now` of many members, in one query."""
    found = domain.windows(programme.tier_model, now, programme.zone)
    return {
        member_id: domain.qualifying(current, previous)
        for member_id, (current, previous) in repository.sums_of(session, member_ids, found).items()
    }


def standing(session: Session, member_id: int, now: datetime, programme: Programme) -> Standing:
    """Where the member stands: tier, qualifying and lifetime growth, the next tier and what it
    takes, what it takes to keep the tier, a pending downgrade and the window counted."""
    members.get(session, member_id)
    row = repository.state(session, member_id)
    value, found = qualifying_now(session, member_id, now, programme)
    code = row.tier_code if row is not None else None
    progress = domain.progress(programme, code, value)
    tier = programme.tiers[progress.tier_index]
    return Standing(
        tier=tier,
        tier_index=progress.tier_index,
        growth=value.up,
        lifetime_growth=row.lifetime_growth if row is not None else 0,
        since=row.since if row is not None and row.tier_code == tier.code else None,
        next_tier=programme.tiers[progress.next_index] if progress.next_index is not None else None,
        to_next=progress.to_next,
        to_keep=progress.to_keep,
        downgrade_at=row.downgrade_at if row is not None else None,
        window_start=found.current.start,
    )


def current_tier(session: Session, member_id: int, programme: Programme) -> Tier:
    """The member's tier now (the first without a row; a removed tier reads as the first)."""
    return current_tiers(session, [member_id], programme)[member_id]


def current_tiers(
    session: Session, member_ids: Sequence[int], programme: Programme
) -> dict[int, Tier]:
    """:func:`current_tier` of many members, in one query."""
    rows = repository.state_rows(session, member_ids)
    first = programme.tiers[0]
    return {
        member_id: (programme.tier(rows[member_id].tier_code) or first)
        if member_id in rows
        else first
        for member_id in member_ids
    }


@dataclass(frozen=True, slots=True)
class Credited:
    """A growth entry written and the tier move it caused, if any."""

    growth_entry_id: int
    points: int
    tier_code: str
    upgraded_from: str | None


def credit(
    session: Session,
    member_id: int,
    points: int,
    kind: GrowthKind,
    now: datetime,
    programme: Programme,
    *,
    journal_entry_id: uuid.UUID | None = None,
    partner_id: int | None = None,
    staff_id: int | None = None,
    reason: str | None = None,
    floor: bool = False,
    upgrade_reason: str = domain.UPGRADE,
) -> Credited:
    """Add signed growth counted now and upgrade the member at once if it now qualifies.

    With ``floor`` the member's lifetime growth may not go below zero (``insufficient_growth``).
    """
    first = programme.tiers[0].code
    if floor:
        repository.ensure_state(session, member_id, first)
        row = repository.add_lifetime(session, member_id, points, floor=True)
    else:
        row = repository.credit_lifetime(session, member_id, points, first)
    if row is None:
        raise InsufficientGrowth(
            f"Member {member_id} does not have {-points} growth value to take away.",
            member_id=member_id,
        )
    entry_id = repository.insert_growth(
        session,
        member_id=member_id,
        origin_member_id=member_id,
        points=points,
        kind=kind,
        counted_at=now,
        journal_entry_id=journal_entry_id,
        partner_id=partner_id,
        staff_id=staff_id,
        reason=reason,
        created_at=now,
    )
    code, before = _upgrade(session, row, now, programme, upgrade_reason)
    return Credited(entry_id, points, code, before)


@dataclass(frozen=True, slots=True)
class EarnedGrowth:
    """Growth value an earn carries to its member."""

    member_id: int
    points: int
    journal_entry_id: uuid.UUID | None  # None: growth without points (an event's growth only)
    partner_id: int | None


def credit_earns(
    session: Session, earned: Sequence[EarnedGrowth], now: datetime, programme: Programme
) -> list[tuple[str, str | None]]:
    """:func:`credit` of earns' growth to distinct members, each row kind in one statement;
    per credit, the member's tier code and the code it was upgraded from (``None``: none)."""
    if len({item.member_id for item in earned}) != len(earned):
        raise ValueError("credit_earns takes one credit per member")
    rows = repository.credit_lifetimes(
        session, {item.member_id: item.points for item in earned}, programme.tiers[0].code
    )
    repository.insert_growths(
        session,
        [
            {
                "member_id": item.member_id,
                "origin_member_id": item.member_id,
                "points": item.points,
                "kind": GrowthKind.EARN,
                "counted_at": now,
                "journal_entry_id": item.journal_entry_id,
                "reverses_id": None,
                "partner_id": item.partner_id,
                "staff_id": None,
                "reason": None,
                "created_at": now,
            }
            for item in earned
        ],
    )
    top = programme.tiers[-1].code
    values = qualifying_of(
        session, [m for m, row in rows.items() if row.tier_code != top], now, programme
    )
    return [
        _move_up(
            session,
            rows[item.member_id],
            values.get(item.member_id),
            now,
            programme,
            domain.UPGRADE,
        )
        for item in earned
    ]


def recheck(
    session: Session, member_id: int, now: datetime, programme: Programme, reason: str
) -> tuple[str, str | None]:
    """Upgrade the member now if its growth qualifies for a higher tier.

    Returns its tier code and the code it was upgraded from (``None``: no change).
    """
    row = repository.state_row(session, member_id)
    if row is None:
        return programme.tiers[0].code, None
    return _upgrade(session, row, now, programme, reason)


def _upgrade(
    session: Session,
    row: repository.StateRow,
    now: datetime,
    programme: Programme,
    reason: str,
) -> tuple[str, str | None]:
    if row.tier_code == programme.tiers[-1].code:
        return row.tier_code, None  # nothing above the top tier: no need to sum the window
    value, _found = qualifying_now(session, row.member_id, now, programme)
    return _move_up(session, row, value, now, programme, reason)


def _move_up(
    session: Session,
    row: repository.StateRow,
    value: domain.Qualifying | None,
    now: datetime,
    programme: Programme,
    reason: str,
) -> tuple[str, str | None]:
    """Upgrade the member of ``row`` if ``value`` (``None``: on the top tier) qualifies it."""
    member_id = row.member_id
    if value is None:
        return row.tier_code, None
    state = domain.State(row.tier_code, row.downgrade_at, row.evaluated_at)
    decision = domain.upgrade(programme, state, value)
    if decision is None:
        return row.tier_code, None
    if not repository.change_state(
        session,
        member_id,
        row.version,
        tier_code=decision.tier_code,
        downgrade_at=decision.downgrade_at,
        since=now,
    ):
        # Only possible where row locks are ignored: the other writer did the upgrade.
        return row.tier_code, None
    version = repository.programme_version(session, now)
    repository.insert_changes(
        session,
        [
            history_row(member_id, change, value.up, now, version, reason)
            for change in decision.changes
        ],
    )
    return decision.tier_code, row.tier_code


def history_row(
    member_id: int,
    change: domain.Change,
    growth: int,
    now: datetime,
    programme_version: int | None,
    reason: str | None = None,
) -> dict[str, object]:
    """A ``tier_changes`` row; ``reason`` overrides an upgrade's (``adjustment``, ``merge``)."""
    why = reason if reason is not None and change.reason == domain.UPGRADE else change.reason
    return {
        "member_id": member_id,
        "from_code": change.from_code,
        "to_code": change.to_code,
        "reason": why,
        "growth": growth,
        "downgrade_at": change.downgrade_at,
        "programme_version": programme_version,
        "changed_at": now,
    }


def reverse(
    session: Session,
    earn_entry_id: uuid.UUID,
    reversal_entry_id: uuid.UUID | None,
    now: datetime,
    *,
    partner_id: int | None = None,
    staff_id: int | None = None,
) -> GrowthEntry | None:
    """Take back the growth an earn credited: a negative entry counted when the original was,
    so every window it fell in loses exactly it. ``None`` when the earn carried no growth."""
    original = repository.growth_of_journal_entry(session, earn_entry_id)
    if original is None:
        return None
    repository.add_lifetime(session, original.member_id, -original.points, floor=False)
    entry_id = repository.insert_growth(
        session,
        member_id=original.member_id,
        origin_member_id=original.origin_member_id,
        points=-original.points,
        kind=GrowthKind.REVERSAL,
        counted_at=original.counted_at,
        journal_entry_id=reversal_entry_id,
        reverses_id=original.id,
        partner_id=partner_id,
        staff_id=staff_id,
        reason=None,
        created_at=now,
    )
    return repository.growth_entry(session, entry_id)


def take_back(
    session: Session,
    member_id: int,
    growth: int,
    counted_at: datetime,
    now: datetime,
    *,
    journal_entry_id: uuid.UUID | None,
    partner_id: int | None,
) -> None:
    """Take back ``growth`` of what an event credited at ``counted_at`` (part of its money was
    refunded): a negative entry counted when the original was, so every window it fell in loses
    exactly it. Tiers move down only at evaluation."""
    repository.add_lifetime(session, member_id, -growth, floor=False)
    repository.insert_growth(
        session,
        member_id=member_id,
        origin_member_id=member_id,
        points=-growth,
        kind=GrowthKind.REVERSAL,
        counted_at=counted_at,
        journal_entry_id=journal_entry_id,
        reverses_id=None,
        partner_id=partner_id,
        staff_id=None,
        reason="refund",
        created_at=now,
    )


def adjust(
    session: Session,
    member_id: int,
    points: int,
    reason: str,
    now: datetime,
    programme: Programme,
    *,
    partner_id: int | None = None,
    staff_id: int | None = None,
) -> Credited:
    """An operator's signed correction of growth value with a reason; lifetime growth may not
    go below zero. A positive one may upgrade the member at once (history reason
    ``adjustment``)."""
    if points == 0 or abs(points) > MAX_GROWTH:
        raise ValidationFailed(
            f"points must be a non-zero whole number from -{MAX_GROWTH} to {MAX_GROWTH}.",
            field="points",
        )
    if not reason.strip():
        raise ValidationFailed("A growth adjustment needs a reason.", field="reason")
    members.lock(session, member_id, allow_frozen=True)  # a merge moving growth waits
    return credit(
        session,
        member_id,
        points,
        GrowthKind.ADJUST,
        now,
        programme,
        partner_id=partner_id,
        staff_id=staff_id,
        reason=reason.strip(),
        floor=True,
        upgrade_reason="adjustment",
    )


def merge(
    session: Session, survivor_id: int, merged_id: int, now: datetime, programme: Programme
) -> int:
    """Move the merged member's growth entries to the survivor (they keep their origin member)
    and, given the programme, upgrade the survivor at once if it now qualifies. Returns the
    growth moved."""
    moved = repository.move_growth(session, merged_id, survivor_id)
    if moved:
        repository.ensure_state(session, survivor_id, programme.tiers[0].code)
        repository.add_lifetime(session, survivor_id, moved, floor=False)
        repository.add_lifetime(session, merged_id, -moved, floor=False)
    recheck(session, survivor_id, now, programme, "merge")
    return moved


def unmerge(
    session: Session, survivor_id: int, merged_id: int, now: datetime, programme: Programme
) -> int:
    """Give the merged member back the growth entries credited to it; returns their sum."""
    moved = repository.move_growth_back(session, survivor_id, merged_id)
    if moved:
        repository.add_lifetime(session, survivor_id, -moved, floor=False)
        repository.add_lifetime(session, merged_id, moved, floor=False)
    recheck(session, merged_id, now, programme, "merge")
    return moved


def growth_history(
    session: Session, member_id: int, before: int | None, limit: int
) -> tuple[Sequence[GrowthEntry], int | None]:
    """The member's growth entries, newest first; the position to continue before, if any."""
    members.get(session, member_id)
    rows = repository.growth_history(session, member_id, before, limit + 1)
    page = rows[:limit]
    return page, (page[-1].id if len(rows) > limit else None)


def tier_history(
    session: Session, member_id: int, before: int | None, limit: int
) -> tuple[Sequence[TierChange], int | None]:
    """The member's tier changes, newest first; the position to continue before, if any."""
    members.get(session, member_id)
    rows = repository.tier_history(session, member_id, before, limit + 1)
    page = rows[:limit]
    return page, (page[-1].id if len(rows) > limit else None)
