"""A/B results add up to the stored outcomes, for random streams of events: per arm, the members,
events, points and amounts of every stored event the campaign is on, counted independently from
the events' own explanations and each member's arm."""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st
from sqlalchemy import select

from support.event_programme import CAMPAIGNS, apply_campaigns
from tally.campaigns import service as campaigns
from tally.config import Settings
from tally.db.session import Database
from tally.events.models import StoredEvent
from tally.flows import event_intake
from tally.flows.enrolment import enrol
from tally.flows.event_intake import Reported
from tally.ledger.domain import Origin
from tally.ledger.posting import policy_for
from tally.members.service import Identity
from tally.partners import service as partners
from tally.rules.engine import arm_of

NOW = datetime(2026, 12, 4, 4, 0, tzinfo=UTC)
TESTED: dict[str, Any] = {
    "code": "TEST",
    "names": {"zh-CN": "测试", "en": "Test"},
    "on": ["purchase", "sign_in"],
    "holdout": "0.25",
    "variants": [
        {"code": "A", "weight": 2},
        {
            "code": "B",
            "weight": 1,
            "rules_override": {"bonus": {"award": {"points_per": {"amount": "1.00", "points": 2}}}},
        },
    ],
    "caps": [{"per": "member", "period": "day", "points": 150}],
    "rules": [
        {
            "code": "bonus",
            "when": "event.amount >= 20",
            "award": {"points_per": {"amount": "1.00", "points": 1}},
        },
        {"code": "hello", "when": "event.type == 'sign_in'", "award": {"growth": 3}},
    ],
}
MEMBERS = 12
serial = itertools.count()
events = st.lists(
    st.tuples(
        st.integers(0, MEMBERS - 1),
        st.sampled_from(["purchase", "sign_in", "survey_done"]),
        st.decimals(min_value=1, max_value=300, places=2),
    ),
    min_size=1,
    max_size=25,
)


def _reported(member: int, kind: str, amount: Decimal) -> Reported:
    with_amount = kind == "purchase"
    return Reported(
        type=kind,
        event_id=f"h-{next(serial)}",
        member_id=member,
        occurred_at=NOW,
        amount=amount if with_amount else None,
        currency="CNY" if with_amount else None,
        attributes={"score": 1, "spent": Decimal("1.00")} if kind == "survey_done" else {},
    )


def test_results_add_up_to_the_stored_events(database: Database, settings: Settings) -> None:
    app_settings = settings
    programme = apply_campaigns(database, [*CAMPAIGNS, TESTED])
    book = event_intake.book_for(programme)
    spec = next(campaign for campaign in book.campaigns if campaign.code == "TEST")
    policy = policy_for(programme, app_settings)
    with database.write() as session:
        shop = partners.create_partner(session, "SHOP", "Shop", NOW).id
        members = [
            enrol(session, Identity("phone", f"1370000{n:04d}"), {}, NOW)[0] for n in range(MEMBERS)
        ]

    @examples(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
    @given(events, st.integers(1, 4))
    def check(sent: list[tuple[int, str, Decimal]], batches: int) -> None:
        reported = [_reported(members[m], kind, amount) for m, kind, amount in sent]
        for part in range(batches):
            with database.write() as session:
                event_intake.process(
                    session,
                    Origin(partner_id=shop),
                    reported[part::batches],
                    NOW,
                    policy,
                    programme,
                    book,
                )
        expected: dict[str | None, list[Any]] = defaultdict(lambda: [set(), 0, 0, 0, 0])
        with database.read() as session:
            for row in session.scalars(select(StoredEvent)):
                if row.type not in spec.on:
                    continue
                arm = expected[arm_of(str(row.member_id), spec)]
                arm[0].add(row.member_id)
                arm[1] += 1
                arm[2] += sum(r["points"] for r in row.outcome["rules"] if r["campaign"] == "TEST")
                arm[3] += sum(r["growth"] for r in row.outcome["rules"] if r["campaign"] == "TEST")
                arm[4] += row.amount_minor or 0
            found = campaigns.results(session, book, "TEST")
        assert [arm.arm for arm in found] == ["A", "B", "holdout"]
        for arm in found:
            members_, count, points, growth, minor = expected[arm.arm]
            assert (arm.members, arm.events, arm.points, arm.growth, arm.amount_minor) == (
                len(members_),
                count,
                points,
                growth,
                minor,
            ), arm.arm

    check()
