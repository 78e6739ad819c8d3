"""The operator's app reads a member's engagement (streak, tasks with progress, referral code)
and signs the member in for today; only the operator's channels may, and refusals write
nothing."""

from __future__ import annotations

import pytest
from apikit import assert_problem, db_state

from conftest import Api, make_partner
from support.event_programme import CAMPAIGNS, apply_campaigns
from tally.db.session import Database
from tally.kit.clock import utcnow

TASKS = [
    {
        "code": "SHARE",
        "names": {"zh-CN": "分享", "en": "Share"},
        "on": ["share"],
        "task": {"goal": 3, "period": "week"},
        "caps": [{"per": "member", "period": "week", "times": 3}],
        "rules": [{"code": "shared", "award": {"points": 10}}],
    }
]
SCOPES = "members,earn,redeem,read,events"


@pytest.fixture
def app_api(database: Database, client) -> Api:  # type: ignore[no-untyped-def]
    apply_campaigns(database, [*CAMPAIGNS, *TASKS])
    return Api(client, make_partner(database, "MOBILE", SCOPES, operator_channel=True))


def test_sign_in_once_a_day_and_read_the_engagement(app_api: Api) -> None:
    member = app_api.enrol("13600000001")
    before = app_api.get(f"/v1/members/{member}/engagement")
    assert before.status_code == 200, before.text
    assert (before.json()["streak"], before.json()["signed_in_today"]) == (0, False)

    first = app_api.post(f"/v1/members/{member}/sign-ins")
    again = app_api.post(f"/v1/members/{member}/sign-ins")
    assert (first.status_code, again.status_code) == (201, 200), (first.text, again.text)
    assert first.json()["points"] == 5  # WELCOME's daily sign-in
    assert again.json()["id"] == first.json()["id"]
    shared = app_api.post(
        "/v1/events",
        {"type": "share", "event_id": "share-1", "member_id": member,
         "occurred_at": utcnow().isoformat()},
    )  # fmt: skip
    assert shared.status_code == 201, shared.text

    after = app_api.get(f"/v1/members/{member}/engagement").json()
    assert (after["streak"], after["signed_in_today"]) == (1, True)
    assert [(t["campaign"], t["done"], t["goal"], t["complete"]) for t in after["tasks"]] == [
        ("SHARE", 1, 3, False)
    ]
    code = after["referral_code"]
    assert len(code) == 11
    assert app_api.get(f"/v1/members/{member}/engagement").json()["referral_code"] == code
    referred = app_api.post(
        "/v1/members",
        {"external_id": {"namespace": "phone", "id": "13600000002"}, "referral_code": code},
    )
    assert referred.status_code == 201, referred.text


def test_only_the_operators_channels_and_known_members(
    app_api: Api,
    database: Database,
    client,  # type: ignore[no-untyped-def]
) -> None:
    member = app_api.enrol("13600000003")
    shop = Api(client, make_partner(database, "SHOP", SCOPES))
    before = db_state(database)

    for answer in (
        shop.get(f"/v1/members/{member}/engagement"),
        shop.post(f"/v1/members/{member}/sign-ins"),
    ):
        body = assert_problem(answer, 403, "forbidden")
        assert body["reason"] == "operator_channel_only"
    assert_problem(app_api.get("/v1/members/999999/engagement"), 404, "not_found")
    assert_problem(app_api.post("/v1/members/999999/sign-ins"), 404, "not_found")
    assert db_state(database) == before
