"""``member_enrolled``: the event Tally raises itself when a member is enrolled, so that a
campaign on it (a welcome bonus) rewards the new member in the enrolment's transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from tally.errors import ConcurrentChange, TallyError
from tally.flows import event_intake, referrals
from tally.flows.event_intake import Reported
from tally.ledger.domain import Policy
from tally.ledger.orders import Busy
from tally.programme.domain import Programme

MEMBER_ENROLLED = "member_enrolled"


def raise_enrolled(
    session: Session,
    member_id: int,
    now: datetime,
    policy: Policy,
    programme: Programme,
    *,
    channel: str | None = None,
) -> None:
    """Raise ``member_enrolled`` for a member just enrolled (source ``tally``, funded by the
    operator's channel), when a campaign is on it; its event id names the member, so it is
    raised once whatever retries."""
    book = event_intake.book_for(programme)
    if not any(MEMBER_ENROLLED in campaign.on for campaign in book.campaigns):
        return
    event = Reported(
        MEMBER_ENROLLED, f"tally:enrolled:{member_id}", member_id, now, channel=channel
    )
    origin = referrals.tally_origin(session, programme)
    (result,) = event_intake.process(
        session, origin, [event], now, policy, programme, book, source=referrals.TALLY
    )
    if isinstance(result, TallyError):
        raise result
    if isinstance(result, Busy):
        raise ConcurrentChange("The new member is busy; retry.")
