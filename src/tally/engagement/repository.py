"""Every query of engagement: the streaks of a batch's members, read and kept in one statement
each; referral codes; referrals, found and completed for a batch in one statement each."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from tally.db.raw import Bulk, Raw
from tally.engagement.domain import Streak
from tally.engagement.models import Referral, SignInStreak


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


_INSERT_CODE = Raw(
    "INSERT INTO referral_codes (member_id, code, created_at) VALUES (:member, :code, :now)"
    " ON CONFLICT DO NOTHING"
)
_CODE_OF = Raw("SELECT code FROM referral_codes WHERE member_id = :member")
_OWNER_OF = Raw("SELECT member_id FROM referral_codes WHERE code = :code")
_PENDING = Raw(
    "SELECT referred_id, referrer_id FROM referrals"
    " WHERE referred_id = ANY(:ms) AND completed_at IS NULL"
)
_COMPLETE = Bulk(
    "UPDATE referrals SET completed_at = :now, completed_by = :by, refused = :refused"
    " WHERE referred_id = :referred AND completed_at IS NULL RETURNING referred_id",
    "UPDATE referrals r SET completed_at = v.now, completed_by = v.by, refused = v.refused"
    " FROM unnest(:referred::bigint[], :now::timestamptz[], :by::text[], :refused::text[])"
    " AS v(referred, now, by, refused)"
    " WHERE r.referred_id = v.referred AND r.completed_at IS NULL RETURNING r.referred_id",
)
_MERGED_PAIRS = Raw(
    "SELECT survivor_id, merged_id FROM member_merges"
    " WHERE survivor_id = ANY(:ms) OR merged_id = ANY(:ms)"
)


def referral_code(session: Session, member_id: int) -> str | None:
    row = _CODE_OF.one(session, {"member": member_id})
    return None if row is None else str(row[0])


def insert_referral_code(session: Session, member_id: int, code: str, now: datetime) -> None:
    """Give the member ``code`` unless it has one (or another member has that code)."""
    _INSERT_CODE.execute(session, {"member": member_id, "code": code, "now": now})


def owner_of(session: Session, code: str) -> int | None:
    row = _OWNER_OF.one(session, {"code": code})
    return None if row is None else int(row[0])


def insert_referral(
    session: Session, referred_id: int, referrer_id: int, code: str, now: datetime
) -> None:
    session.add(
        Referral(referred_id=referred_id, referrer_id=referrer_id, code=code, created_at=now)
    )
    session.flush()


def pending(session: Session, member_ids: Sequence[int]) -> dict[int, int]:
    """The referrers of those of ``member_ids`` whose referral is not completed yet."""
    if not member_ids:
        return {}
    rows = _PENDING.all(session, {"ms": sorted(set(member_ids))})
    return {int(referred): int(referrer) for referred, referrer in rows}


def merged_pairs(session: Session, member_ids: Sequence[int]) -> set[frozenset[int]]:
    """Every pair of members merged (then perhaps unmerged) of which one is in ``member_ids``."""
    rows = _MERGED_PAIRS.all(session, {"ms": sorted(set(member_ids))})
    return {frozenset((int(a), int(b))) for a, b in rows}


def complete(
    session: Session, completed: Mapping[int, tuple[str, str | None]], now: datetime
) -> set[int]:
    """Mark referrals completed — referred member → (the event that did it, why it rewarded
    no one or None) — in one statement; the referred members whose referral this marked (not
    one another transaction marked first)."""
    rows = [
        {"referred": referred, "now": now, "by": by, "refused": refused}
        for referred, (by, refused) in sorted(completed.items())
    ]
    return {int(row[0]) for row in _COMPLETE.returning(session, rows)} if rows else set()
