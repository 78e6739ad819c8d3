"""The demo's engagement: the last days of daily sign-ins on the member pages (streaks kept,
broken and restarted, a few reaching the day-7 bonus), shares in the operator's app (at most
three rewarded a week), and profiles completed: what the tasks page shows a newcomer."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from tally.flows import event_intake, referrals
from tally.flows.event_intake import Processed, Reported
from tally.flows.member_engagement import CHANNEL, sign_in_event_id
from tally.ledger.domain import Origin, Policy
from tally.programme.domain import Programme

DAYS = 9  # before today: the member signs in today on the page
HABITS = ((0.3, 0.95), (0.3, 0.4), (0.4, 0.0))  # (share of members, chance to sign in a day)
SHARES_A_DAY = 0.3  # of the members who sign in
PROFILE_DONE = 0.2


def report(
    session: Session,
    rng: random.Random,
    member_ids: list[int],
    operator_id: int,
    now: datetime,
    policy: Policy,
    programme: Programme,
) -> int:
    """Report a batch of sign-ins, shares and completed profiles a day; the events stored."""
    book = event_intake.book_for(programme)
    own = referrals.tally_origin(session, programme)
    app = Origin(partner_id=operator_id)
    chance = {member_id: _habit(rng) for member_id in member_ids}
    stored = 0
    for days_ago in range(DAYS, 0, -1):
        morning = now - timedelta(days=days_ago, minutes=rng.randint(0, 120))
        signing = [m for m in member_ids if rng.random() < chance[m]]
        sign_ins = [
            Reported(
                type="sign_in",
                event_id=sign_in_event_id(member_id, programme, morning),
                member_id=member_id,
                occurred_at=morning,
                channel=CHANNEL,
            )
            for member_id in signing
        ]
        stored += _stored(
            event_intake.process(
                session, own, sign_ins, morning, policy, programme, book, source=referrals.TALLY
            )
        )
        later = morning + timedelta(hours=3)
        shares = [
            Reported("share", f"demo-share-{days_ago}-{m}", m, later, channel="app")
            for m in signing
            if rng.random() < SHARES_A_DAY
        ]
        profiles = [
            Reported("profile_completed", f"demo-profile-{m}", m, later, channel="app")
            for m in signing
            if days_ago == DAYS and rng.random() < PROFILE_DONE
        ]
        happened = [*shares, *profiles]
        stored += _stored(
            event_intake.process(session, app, happened, later, policy, programme, book)
        )
    return stored


def _habit(rng: random.Random) -> float:
    draw = rng.random()
    for share, chance in HABITS:
        if draw < share:
            return chance
        draw -= share
    return 0.0


def _stored(results: Sequence[object]) -> int:
    return sum(isinstance(result, Processed) for result in results)
