"""The member pages' engagement: sign in for today (a ``sign_in`` event Tally raises itself,
once per day of the programme's zone), and what the page shows — the streak, the tasks with
their progress, the referral code and its share link."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from tally.engagement import repository
from tally.engagement.domain import grouped
from tally.errors import TallyError
from tally.flows import event_intake, member_tasks, referrals
from tally.flows.daily_sign_ins import SIGN_IN
from tally.flows.event_intake import Processed, Reported
from tally.flows.member_tasks import TaskProgress
from tally.ledger.domain import Policy
from tally.programme.domain import Programme

CHANNEL = "member_pages"


@dataclass(frozen=True, slots=True)
class Engagement:
    """What the member's engagement page shows."""

    streak: int  # consecutive days signed in, still alive (yesterday or today)
    signed_in_today: bool
    tasks: list[TaskProgress]
    referral_code: str  # as shown: ABCDE-FGHJK
    share_url: str | None


def sign_in_event_id(member_id: int, programme: Programme, now: datetime) -> str:
    """One event id per member and day of the programme's zone: a second sign-in that day is
    a repeat of the first."""
    return f"tally:sign_in:{member_id}:{now.astimezone(programme.zone).date().isoformat()}"


def sign_in_today(
    session: Session, member_id: int, now: datetime, policy: Policy, programme: Programme
) -> Processed:
    """Sign the member in for today through Tally's own source (``repeat`` when it already
    was); a frozen or merged member is refused with its error."""
    event = Reported(
        type=SIGN_IN,
        event_id=sign_in_event_id(member_id, programme, now),
        member_id=member_id,
        occurred_at=now,
        channel=CHANNEL,
    )
    result = event_intake.process(
        session,
        referrals.tally_origin(session, programme),
        [event],
        now,
        policy,
        programme,
        event_intake.book_for(programme),
        source=referrals.TALLY,
    )[0]
    if isinstance(result, TallyError):
        raise result
    assert isinstance(result, Processed)  # one event alone is never passed over
    return result


def engagement(session: Session, member_id: int, now: datetime, programme: Programme) -> Engagement:
    """The member's streak, tasks and referral code (made the first time it is shown)."""
    today = now.astimezone(programme.zone).date()
    streak = repository.streaks(session, [member_id]).get(member_id)
    alive = streak is not None and streak.last_day >= today - timedelta(days=1)
    code = referrals.code_of(session, member_id, now)
    spec = programme.referral
    return Engagement(
        streak=streak.length if streak is not None and alive else 0,
        signed_in_today=streak is not None and streak.last_day >= today,
        tasks=member_tasks.progress(session, programme, [member_id], now)[member_id],
        referral_code=grouped(code),
        share_url=spec.share_url.replace("{code}", code) if spec and spec.share_url else None,
    )
