"""A times cap under racing writers: eight connections report a member's shares at once on
PostgreSQL, and the campaign fires on exactly three of them (share at most 3 times a week)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from support.event_programme import CAMPAIGNS, apply_campaigns
from support.race import race
from tally.config import Settings
from tally.db.session import Database
from tally.events.models import RuleCounter
from tally.flows import event_intake
from tally.flows.enrolment import enrol
from tally.flows.event_intake import Processed, Reported
from tally.ledger.domain import Origin
from tally.ledger.posting import policy_for
from tally.ledger.verify import verify
from tally.members.service import Identity
from tally.partners import service as partners

NOW = datetime(2026, 12, 4, 4, 0, tzinfo=UTC)  # Friday, week 49
SHARE = {
    "code": "SHARE",
    "names": {"zh-CN": "分享", "en": "Share"},
    "on": ["share"],
    "caps": [{"per": "member", "period": "week", "times": 3}],
    "rules": [{"code": "shared", "award": {"points": 10}}],
}


def test_racing_shares_never_pass_a_times_cap(
    dialect: str, database: Database, settings: Settings
) -> None:
    if dialect != "postgresql":
        pytest.skip("SQLite has one writer at a time: nothing races")
    programme = apply_campaigns(database, [*CAMPAIGNS, SHARE])
    policy = policy_for(programme, settings)
    with database.write() as session:
        partner_id = partners.create_partner(session, "APP", "App", NOW).id
        member_id = enrol(session, Identity("phone", "13900000001"), {}, NOW)[0]

    def share(index: int) -> list[object]:
        event = Reported(type="share", event_id=f"s-{index}", member_id=member_id, occurred_at=NOW)
        with database.write() as session:
            return list(
                event_intake.process(
                    session,
                    Origin(partner_id=partner_id),
                    [event],
                    NOW,
                    policy,
                    programme,
                    event_intake.book_for(programme),
                )
            )

    results = race(8, share)

    processed = [r[0] for r in results if isinstance(r, list) and isinstance(r[0], Processed)]
    assert len(processed) == 8, results
    assert sorted(p.points for p in processed) == [0] * 5 + [10] * 3
    capped = [
        (s["reason"], s["detail"])
        for p in processed
        if p.points == 0
        for s in p.outcome["skipped"]
        if s["campaign"] == "SHARE"
    ]
    assert capped == [("capped", "at most 3 times a week, 0 left")] * 5
    with database.read() as session:
        counter = session.get(RuleCounter, f"cap:SHARE:0:{member_id}:2026-W49")
        assert counter is not None
        assert counter.used == 3
        assert verify(session).ok
