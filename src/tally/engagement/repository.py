"""Every query of engagement: the streaks of a batch's members, read and kept in one statement
each."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from tally.engagement.domain import Streak
from tally.engagement.models import SignInStreak


def streaks(session: Session, member_ids: Sequence[int]) -> dict[int, Streak]:
    """The streaks of the members that have signed in, among ``member_ids``."""
    if not member_ids:
        return {}
    rows = session.execute(
        select(SignInStreak.member_id, SignInStreak.last_day, SignInStreak.streak).where(
            SignInStreak.member_id.in_(sorted(set(member_ids)))
        )
    )
    return {int(member): Streak(day, int(length)) for member, day, length in rows}


def keep(
    session: Session,
    known: Mapping[int, Streak],
    after: Mapping[int, Streak],
    now: datetime,
) -> None:
    """Store the streaks ``after`` a batch (``known``: those read before it): new ones in one
    insert, changed ones in one update."""
    new = [m for m in sorted(after) if m not in known]
    changed = [m for m in sorted(after) if m in known and after[m] != known[m]]
    rows = {
        m: {
            "member_id": m,
            "last_day": after[m].last_day,
            "streak": after[m].length,
            "updated_at": now,
        }
        for m in [*new, *changed]
    }
    if new:
        session.execute(insert(SignInStreak), [rows[m] for m in new])
    if changed:
        session.execute(update(SignInStreak), [rows[m] for m in changed])
