"""``GET /v1/campaigns``, ``/{code}``, ``/{code}/results``, ``POST /{code}/pause`` and
``/resume``: campaigns as they stand at the injected clock, paused and resumed without a new
programme version (audited), and A/B results per arm that add up to the stored outcomes."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from apikit import assert_problem, db_state, issue_key
from sqlalchemy import func, select

from conftest import Api, PartnerKey, make_partner
from support.event_programme import CAMPAIGNS, apply_campaigns
from tally.audit.models import AuditEntry
from tally.campaigns.models import CampaignOutcome, CampaignState
from tally.db.session import Database
from tally.events.models import StoredEvent
from tally.kit.clock import utcnow
from tally.rules.engine import HOLDOUT, arm_of
from tally.rules.rule_book import CampaignSpec, Variant

SHANGHAI = ZoneInfo("Asia/Shanghai")
TESTED: dict[str, Any] = {
    "code": "TEST",
    "names": {"zh-CN": "测试", "en": "Test"},
    "on": ["purchase"],
    "holdout": "0.20",
    "variants": [
        {"code": "A", "weight": 1},
        {
            "code": "B",
            "weight": 1,
            "rules_override": {"bonus": {"award": {"points_per": {"amount": "1.00", "points": 3}}}},
        },
    ],
    "rules": [
        {
            "code": "bonus",
            "priority": 80,
            "when": "event.amount >= 20",
            "award": {"points_per": {"amount": "1.00", "points": 1}},
        }
    ],
}
LATER = {
    "code": "LATER",
    "names": {"zh-CN": "以后", "en": "Later"},
    "on": ["sign_in"],
    "schedule": {"from": "2099-01-01"},
    "rules": [{"code": "x", "award": {"points": 1}}],
}
ENDED = {
    "code": "OVER",
    "names": {"zh-CN": "结束", "en": "Over"},
    "on": ["sign_in"],
    "schedule": {"until": "2020-12-31"},
    "rules": [{"code": "x", "award": {"points": 1}}],
}
SPEC = CampaignSpec(
    "TEST", ("purchase",), (), variants=(Variant("A", 1), Variant("B", 1)), holdout_bp=2000
)


@pytest.fixture
def noon(app: Any) -> datetime:
    """The injected clock: noon today in the programme's zone."""
    found = datetime.combine(utcnow().astimezone(SHANGHAI).date(), time(12), SHANGHAI)
    app.state.clock = lambda: found
    return found


@pytest.fixture
def operator(database: Database, partner: PartnerKey, client: Any, noon: datetime) -> Api:
    apply_campaigns(database, [*CAMPAIGNS, TESTED, LATER, ENDED])
    return Api(client, issue_key(database, partner, "events,members,read,admin"))


def _purchase(event_id: str, member: int, at: datetime, value: str = "50.00") -> dict[str, Any]:
    return {
        "type": "purchase",
        "event_id": event_id,
        "member_id": member,
        "occurred_at": at.isoformat(),
        "amount": {"value": value, "currency": "CNY"},
    }


def _count(database: Database, model: Any) -> int:
    with database.read() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_the_list_shows_status_budget_and_todays_points(
    operator: Api, noon: datetime, database: Database
) -> None:
    member = operator.enrol("13900000001")
    yesterday = noon - timedelta(days=1)
    drinks = [{"sku": "t", "amount": "30.00", "category": "drinks"}]
    sent = {**_purchase("o-1", member, noon - timedelta(hours=1), "30.00"), "items": drinks}
    assert operator.post("/v1/events", sent).status_code == 201
    assert (
        operator.post("/v1/events", _purchase("o-0", member, yesterday, "7.00")).status_code == 201
    )

    answer = operator.get("/v1/campaigns")

    assert answer.status_code == 200, answer.text
    items = {item["code"]: item for item in answer.json()["items"]}
    assert list(items) == ["BASE", "BONUS", "SURVEY", "WELCOME", "TEST", "LATER", "OVER"]
    assert {code: item["status"] for code, item in items.items()} == {
        "BASE": "running",
        "BONUS": "running",
        "SURVEY": "running",
        "WELCOME": "running",
        "TEST": "running",
        "LATER": "scheduled",
        "OVER": "ended",
    }
    bonus = items["BONUS"]
    assert (bonus["budget"], bonus["budget_used"], bonus["points_today"]) == (200, 60, 60)
    assert items["BASE"]["points_today"] == 30  # yesterday's 7 are not today's
    assert items["LATER"]["starts"] == "2099-01-01"
    assert items["OVER"]["ends"] == "2020-12-31"
    assert items["TEST"]["variants"] == ["A", "B"]
    assert items["TEST"]["holdout"] == "0.20"
    assert operator.get("/v1/campaigns/BONUS").json() == bonus


def test_a_partner_reads_campaigns_without_budgets_and_no_results(
    operator: Api, client: Any, database: Database
) -> None:
    shop = Api(client, make_partner(database, "SHOP", "read"))

    listed = shop.get("/v1/campaigns")

    assert listed.status_code == 200, listed.text
    bonus = next(item for item in listed.json()["items"] if item["code"] == "BONUS")
    assert bonus["names"] == {"zh-CN": "加赠", "en": "Bonus"}
    assert (bonus["budget"], bonus["budget_used"], bonus["points_today"]) == (None, None, None)
    refused = assert_problem(shop.get("/v1/campaigns/TEST/results"), 403, "forbidden")
    assert refused["reason"] == "operator_channel_only"


def test_unknown_codes_and_bad_paths_are_404(operator: Api, database: Database) -> None:
    state = db_state(database)
    for path in ("/v1/campaigns/NOPE", "/v1/campaigns/NOPE/results", "/v1/campaigns/a%20b"):
        assert_problem(operator.get(path), 404, "not_found")
    for action in ("pause", "resume"):
        assert_problem(operator.post(f"/v1/campaigns/NOPE/{action}"), 404, "not_found")
    assert db_state(database) == state


def test_a_paused_campaign_gives_nothing_explained_then_resumes(
    operator: Api, noon: datetime, database: Database
) -> None:
    member = operator.enrol("13900000002")
    at = noon - timedelta(hours=2)

    paused = operator.post("/v1/campaigns/BASE/pause", idempotency_key="pause-1")

    assert paused.status_code == 200, paused.text
    assert paused.json()["status"] == "paused"
    assert paused.json()["changed_at"] is not None
    assert paused.json()["changed_by"] == f"partner:{operator.key.partner_id}"
    # 10.00: nothing from TEST (its condition needs 20.00) nor BONUS (no drinks).
    dry = operator.post("/v1/events?dry_run=true", _purchase("p-0", member, at, "10.00")).json()
    assert dry["points"] == 0
    body = operator.post("/v1/events", _purchase("p-1", member, at, "10.00")).json()
    assert body["points"] == 0
    assert {(s["campaign"], s["rule"], s["reason"]) for s in body["skipped"]} >= {
        ("BASE", "per-yuan", "paused"),
        ("BASE", "growth", "paused"),
    }
    assert operator.balance(member)["available"] == 0

    again = operator.post("/v1/campaigns/BASE/pause", idempotency_key="pause-2")
    replay = operator.post("/v1/campaigns/BASE/pause", idempotency_key="pause-1")

    assert again.json() == paused.json()  # already paused: the state, nothing changed
    assert replay.json() == paused.json()
    assert replay.headers["Idempotent-Replayed"] == "true"
    resumed = operator.post("/v1/campaigns/BASE/resume")
    assert resumed.json()["status"] == "running"
    body = operator.post("/v1/events", _purchase("p-2", member, at, "10.00")).json()
    assert [(r["campaign"], r["points"]) for r in body["rules"]] == [("BASE", 10), ("BASE", 0)]
    prefix = operator.key.api_key.partition(".")[0]
    with database.read() as session:
        entries = session.scalars(
            select(AuditEntry).where(AuditEntry.action.like("campaign.%")).order_by(AuditEntry.id)
        ).all()
        by, details = f"partner:{operator.key.partner_id}", {"campaign": "BASE", "key": prefix}
        assert [(e.action, e.actor, e.details) for e in entries] == [
            ("campaign.pause", by, details),
            ("campaign.resume", by, details),
        ]
        state = session.get(CampaignState, "BASE")
        assert state is not None
        assert not state.is_paused
    # A paused campaign's skipped rules never count in its results.
    with database.read() as session:
        counted = session.scalars(
            select(CampaignOutcome.event_id).where(CampaignOutcome.campaign == "BASE")
        ).all()
        stored = {row.event_id: row.id for row in session.scalars(select(StoredEvent))}
    assert set(counted) == {stored["p-2"]}


def test_partners_may_not_pause(operator: Api, client: Any, database: Database) -> None:
    shop = Api(client, make_partner(database, "SHOP", "read,admin"))
    state = db_state(database)

    refused = assert_problem(shop.post("/v1/campaigns/BASE/pause"), 403, "forbidden")

    assert refused["reason"] == "operator_channel_only"
    assert db_state(database) == state


def test_results_per_arm_add_up_to_the_stored_outcomes(
    operator: Api, noon: datetime, database: Database
) -> None:
    at = noon - timedelta(hours=3)
    members = [operator.enrol(f"1390001{n:04d}") for n in range(24)]
    events = [
        _purchase(f"r-{n}-{value}", member, at, value)
        for n, member in enumerate(members)
        for value in ("25.50", "10.00")
    ]
    batch = operator.post("/v1/events/batch", {"events": events})
    assert batch.status_code == 200, batch.text

    answer = operator.get("/v1/campaigns/TEST/results")

    assert answer.status_code == 200, answer.text
    arms = {arm["arm"]: arm for arm in answer.json()["arms"]}
    assert list(arms) == ["A", "B", HOLDOUT]
    expected: dict[str, list[int]] = {arm: [0, 0, 0, 0] for arm in arms}
    for member in members:
        arm = arm_of(str(member), SPEC)
        assert arm is not None
        # Only the 25.50 purchase passes `event.amount >= 20`: 25 points in A, 76 in B.
        per = {"A": 25, "B": 76, HOLDOUT: 0}[arm]
        expected[arm][0] += 1
        expected[arm][1] += 2
        expected[arm][2] += per
        expected[arm][3] += 3550
    for arm, (count, events_, points, minor) in expected.items():
        found = arms[arm]
        assert (found["members"], found["events"], found["points"]) == (count, events_, points)
        assert found["amount"] == {"value": f"{minor // 100}.{minor % 100:02d}", "currency": "CNY"}
        assert found["growth"] == 0
    assert sum(arm["events"] for arm in arms.values()) == 48
    assert all(expected[arm][0] > 0 for arm in arms)  # every arm has members
    with database.read() as session:
        points = session.scalar(
            select(func.sum(CampaignOutcome.points)).where(CampaignOutcome.campaign == "TEST")
        )
        applied = sum(
            rule["points"]
            for row in session.scalars(select(StoredEvent))
            for rule in row.outcome["rules"]
            if rule["campaign"] == "TEST"
        )
    assert points == applied == sum(arm["points"] for arm in arms.values())


def test_a_campaign_without_events_lists_its_arms_at_zero(operator: Api) -> None:
    body = operator.get("/v1/campaigns/BASE/results").json()

    assert body == {
        "campaign": "BASE",
        "arms": [
            {
                "arm": None,
                "members": 0,
                "events": 0,
                "points": 0,
                "growth": 0,
                "amount": {"value": "0.00", "currency": "CNY"},
            }
        ],
    }


def test_a_refund_takes_its_share_out_of_the_arm_not_an_event(
    operator: Api, noon: datetime
) -> None:
    at = noon - timedelta(hours=3)
    members = [operator.enrol(f"1390002{n:04d}") for n in range(12)]
    for n, member in enumerate(members):
        assert (
            operator.post("/v1/events", _purchase(f"f-{n}", member, at, "40.00")).status_code == 201
        )
    before = {arm["arm"]: arm for arm in operator.get("/v1/campaigns/TEST/results").json()["arms"]}

    for n, member in enumerate(members):
        refund = {
            "type": "refund",
            "event_id": f"back-{n}",
            "member_id": member,
            "occurred_at": at.isoformat(),
            "amount": {"value": "10.00", "currency": "CNY"},
            "refers_to": f"f-{n}",
        }
        answer = operator.post("/v1/events", refund)
        assert answer.status_code == 201, answer.text

    after = {arm["arm"]: arm for arm in operator.get("/v1/campaigns/TEST/results").json()["arms"]}
    for arm, found in after.items():
        was = before[arm]
        count = was["members"]
        assert (found["members"], found["events"]) == (count, was["events"])  # not new events
        assert found["amount"]["value"] == f"{30 * count}.00"  # 40.00 less 10.00 each
        per = {"A": 40, "B": 120, HOLDOUT: 0}[str(arm)]
        assert (was["points"], found["points"]) == (per * count, per * count * 3 // 4)
