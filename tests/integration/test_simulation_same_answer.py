"""The same answer online and in simulation: events processed online, in batches, then the
running programme simulated over them as a draft, reproduce exactly the points and growth stored
for every event — budgets consumed in the same order, refunds taking back in proportion and
giving caps and budgets back — and the simulation writes nothing."""

from __future__ import annotations

import itertools
import shutil
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select
from sqlalchemy.exc import DBAPIError

from support.event_programme import CAMPAIGNS, EVENT_TYPES, apply_campaigns
from support.membership_programme import DEMO, OPERATOR
from tally.config import Settings
from tally.db.engine import build_engine
from tally.db.session import Database
from tally.events.models import RuleCounter, StoredEvent
from tally.flows import event_intake, simulation
from tally.flows.enrolment import enrol
from tally.flows.event_intake import Processed, Reported
from tally.kit.clock import utcnow
from tally.ledger.domain import Origin
from tally.ledger.posting import policy_for
from tally.members.service import Identity
from tally.partners import service as partners
from tally.programme import loader
from tally.programme import service as programme_service
from tally.programme.domain import Programme
from tally.rules import engine
from tally.tiers import service as tiers
from tally.tiers.models import GrowthKind

MEMBERS = 3
SECRET = "simulation-secret-" + "x" * 32
_fresh = itertools.count()


@st.composite
def events(draw: st.DrawFn) -> tuple[str, int, int, int, int, int]:
    """(type, member, amount in fen, drinks in fen, score, hours before now); a refund's
    drinks say how many quarters of what is left of the latest purchase it refunds."""
    kind = draw(st.sampled_from(["purchase", "bill_paid", "sign_in", "survey_done", "refund"]))
    amount = draw(st.sampled_from([0, 199, 5_000, 12_000, 30_000, 60_000]) | st.integers(0, 30_000))
    return (
        kind,
        draw(st.integers(0, MEMBERS - 1)),
        amount,
        draw(st.integers(1, 4) if kind == "refund" else st.sampled_from([0, amount // 3, amount])),
        draw(st.integers(0, 10)),
        draw(st.integers(0, 72)),
    )


# Rules that read the member at the event: the tier's multiplier (members move up as their
# growth arrives) and windowed aggregates (a count and a spend of the days before).
AGGREGATES = [
    {"code": "purchases_2d", "of": "purchase", "measure": "count", "days": 2},
    {"code": "spent_3d", "of": "purchase", "measure": "sum_amount", "days": 3},
]
MEMBER_RULES: list[dict[str, Any]] = [
    *CAMPAIGNS,
    {
        "code": "LOYAL",
        "names": {"zh-CN": "常客", "en": "Regulars"},
        "on": ["purchase", "bill_paid"],
        "rules": [
            {"code": "tier", "priority": 50, "award": {"multiply": "tier"}},
            {
                "code": "regular",
                "priority": 10,
                "when": "member.purchases_2d >= 2 || member.spent_3d >= 150.00",
                "award": {"points": 7},
            },
        ],
    },
]


def _apply(database: Database, member_rules: bool) -> Programme:
    if not member_rules:
        return apply_campaigns(database, CAMPAIGNS)
    demo = loader.load(DEMO.read_text(encoding="utf-8")).dump()
    demo.pop("namespaces")
    content = {
        **demo,
        "partners": [OPERATOR],
        "plans": [],
        "campaigns": MEMBER_RULES,
        "event_types": EVENT_TYPES,
        "aggregates": AGGREGATES,
    }
    content.pop("badges", None)
    text = loader.dump(Programme.model_validate(content))
    programme = programme_service.validate(text)
    with database.write() as session:
        programme_service.apply(session, programme, text, "tests", utcnow() - timedelta(days=1))
    return programme


BATCHES = st.lists(st.lists(events(), min_size=1, max_size=6), min_size=1, max_size=6)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batches=BATCHES, member_rules=st.booleans())
def test_simulating_the_running_programme_reproduces_every_stored_outcome(
    sqlite_template: Path,
    tmp_path: Path,
    batches: list[list[tuple[str, int, int, int, int, int]]],
    member_rules: bool,
) -> None:
    path = tmp_path / f"same-{next(_fresh)}.db"
    shutil.copy(sqlite_template, path)
    database = Database(build_engine(f"sqlite:///{path}"))
    config = Settings(
        database_url=f"sqlite:///{path}", secret_key=SECRET, programme_refresh_seconds=0
    )
    try:
        programme = _apply(database, member_rules)
        now = utcnow() - timedelta(hours=1)
        enrolled = now - timedelta(days=4)
        with database.write() as session:
            members = [
                enrol(session, Identity("phone", f"1370000{n:04d}"), {}, enrolled)[0]
                for n in range(MEMBERS)
            ]
            shop = partners.create_partner(session, "SHOP", "Shop", now).id
            for member, growth in zip(members, (950, 4_900), strict=False):  # near SILVER, GOLD
                tiers.credit(session, member, growth, GrowthKind.ADJUST, enrolled, programme)
        stored: list[Processed] = []
        numbers = itertools.count()
        refundable: list[list[Any]] = []  # [event_id, member, fen left], latest last
        for position, batch in enumerate(batches):
            taken_in = now + timedelta(minutes=position)
            # Refunds last in a batch: one between earning events splits the batch into runs,
            # and a tier change an earlier run made is not told apart (docs/rules.md).
            ordered = sorted(batch, key=lambda event: event[0] == "refund")
            sent = [_event(next(numbers), e, members, taken_in, refundable) for e in ordered]
            with database.write() as session:
                results = event_intake.process(
                    session,
                    Origin(partner_id=shop),
                    sent,
                    taken_in,
                    policy_for(programme, config),
                    programme,
                    event_intake.book_for(programme),
                )
            assert all(isinstance(result, Processed) for result in results), results
            stored += [result for result in results if isinstance(result, Processed)]
        with database.read() as session:
            counters_before = session.scalars(select(RuleCounter)).all()
            result = simulation.stored(
                session, config, programme, simulation.Period(), now + timedelta(minutes=5)
            )

        report = result.report
        assert report.events == len(stored)
        assert report.differences == ()
        assert report.draft == report.running
        assert report.running.points == sum(p.points for p in stored)
        assert report.running.growth == sum(p.growth for p in stored)
        assert [(line.running, line.rule) for line in report.rules] == [
            (line.draft, line.rule) for line in report.rules
        ]
        assert all(b.running_used == b.draft_used for b in report.budgets)
        assert report.tiers == ()
        with database.read() as session:
            assert session.scalar(select(func.count()).select_from(StoredEvent)) == len(stored)
            after = session.scalars(select(RuleCounter)).all()
            assert [(c.key, c.used) for c in after] == [(c.key, c.used) for c in counters_before]
    finally:
        database.dispose()


def _event(
    number: int,
    event: tuple[str, int, int, int, int, int],
    members: list[int],
    taken_in: datetime,
    refundable: list[list[Any]],
) -> Reported:
    kind, member, fen, drinks, score, hours = event
    occurred_at = taken_in - timedelta(hours=hours)
    if kind == "refund":
        if not refundable or refundable[-1][2] == 0:
            kind = "sign_in"
        else:
            purchase = refundable[-1]
            back = max(1, purchase[2] * drinks // 4)
            purchase[2] -= back
            return Reported(
                "refund",
                f"ev-{number}",
                purchase[1],
                taken_in,
                Decimal(back).scaleb(-2),
                "CNY",
                refers_to=purchase[0],
            )
    if kind == "sign_in":
        return Reported(kind, f"ev-{number}", members[member], occurred_at)
    if kind == "survey_done":
        spent = f"{Decimal(fen).scaleb(-2):.2f}"
        return Reported(
            kind,
            f"ev-{number}",
            members[member],
            occurred_at,
            attributes={"score": score, "spent": Decimal(spent)},
            payload={"attributes": {"score": score, "spent": spent}},
        )
    amount = Decimal(fen).scaleb(-2)
    items = ()
    if kind == "purchase" and drinks:
        items = (engine.Item(sku="tea", amount=Decimal(drinks).scaleb(-2), category="drinks"),)
    if fen:
        refundable.append([f"ev-{number}", members[member], fen])
    return Reported(
        kind,
        f"ev-{number}",
        members[member],
        occurred_at,
        amount,
        "CNY",
        items,
        payload={
            "items": [
                {"sku": item.sku, "amount": f"{item.amount:.2f}", "category": item.category}
                for item in items
            ]
        },
    )


def test_a_simulation_reads_in_a_transaction_that_refuses_writes(
    dialect: str, database: Database, settings: Settings
) -> None:
    programme = _apply(database, member_rules=True)  # aggregates read on both databases
    now = utcnow() - timedelta(hours=1)
    with database.write() as session:
        member = enrol(session, Identity("phone", "13700009999"), {}, now)[0]
        shop = partners.create_partner(session, "SHOP", "Shop", now).id
    sent = [("purchase", 0, 20_000, 0, 0, 0), ("purchase", 0, 12_000, 12_000, 0, 0)]
    for number, event in enumerate(sent):
        at = now + timedelta(minutes=number)
        with database.write() as session:
            event_intake.process(
                session,
                Origin(partner_id=shop),
                [_event(number, event, [member], at, [])],
                at,
                policy_for(programme, settings),
                programme,
                event_intake.book_for(programme),
            )

    with database.read() as session:
        simulation.read_only(session)
        result = simulation.stored(
            session, settings, programme, simulation.Period(), now + timedelta(minutes=5)
        )
        if dialect == "postgresql":
            with pytest.raises(DBAPIError, match="read-only transaction"):
                session.execute(delete(RuleCounter))

    # 200; then 120, BONUS's whole budget of 200 and LOYAL's 7 (200.00 spent the day before).
    report = result.report
    assert report.differences == ()
    assert report.running.points == report.draft.points == 200 + 120 + 200 + 7
    with database.read() as session:
        assert session.get(RuleCounter, "budget:BONUS").used == 200  # type: ignore[union-attr]
