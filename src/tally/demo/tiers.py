"""The demo's growth value: every replayed earn carries as much growth value as points (growth
follows spend, as the programme's earns do by default), so members spread over the ladder by how
much they spend (bronze to black diamond), with the tier history a year of activity would leave."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from tally.ledger.models import EntryKind, JournalEntry, Lot
from tally.programme.domain import Programme
from tally.tiers import jobs
from tally.tiers import service as tiers
from tally.tiers.models import GrowthKind


def seed(
    session: Session, programme: Programme, member_ids: list[int], now: datetime
) -> dict[str, int]:
    """Credit every demo earn's growth value (and take back a reversed earn's) in the order they
    happened, upgrading as it goes, then evaluate the tiers as of ``now``. Returns how many
    members stand at each tier."""
    earned = dict(
        session.execute(
            select(Lot.entry_id, func.sum(Lot.points))
            .join(JournalEntry, JournalEntry.id == Lot.entry_id)
            .where(JournalEntry.kind == EntryKind.EARN, JournalEntry.member_id.in_(member_ids))
            .group_by(Lot.entry_id)
        ).all()
    )
    reversal = aliased(JournalEntry)
    rows = session.execute(
        select(
            JournalEntry.id,
            JournalEntry.member_id,
            JournalEntry.partner_id,
            JournalEntry.created_at,
            reversal.id,
            reversal.created_at,
        )
        .outerjoin(reversal, reversal.reverses_id == JournalEntry.id)
        .where(JournalEntry.kind == EntryKind.EARN, JournalEntry.member_id.in_(member_ids))
    ).all()
    events: list[tuple[datetime, int, uuid.UUID, uuid.UUID | None, int, int | None]] = []
    for earn_id, owner, partner, at, undo_id, undone_at in rows:
        events.append((at, 0, earn_id, None, int(owner or 0), partner))
        if undo_id is not None:
            events.append((undone_at, 1, earn_id, undo_id, int(owner or 0), partner))
    for moment, order, entry_id, reversal_id, member_id, partner_id in sorted(
        events, key=lambda event: (event[0], event[1])
    ):
        if order == 1:
            tiers.reverse(session, entry_id, reversal_id, moment, partner_id=partner_id)
            continue
        growth = int(earned.get(entry_id, 0))
        if growth:
            tiers.credit(
                session,
                member_id,
                growth,
                GrowthKind.EARN,
                moment,
                programme,
                journal_entry_id=entry_id,
                partner_id=partner_id,
            )

    @contextmanager
    def unit() -> Iterator[Session]:
        yield session

    jobs.evaluate(unit, now, programme, programme_version=1)
    spread = {tier.code: 0 for tier in programme.tiers}
    for member_id in member_ids:
        spread[tiers.standing(session, member_id, now, programme).tier.code] += 1
    return spread
