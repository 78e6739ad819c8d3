"""Profile visibility and consents through the API: a partner sees the personal data it
collected or the member consented to share with it, and nothing else."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from apikit import assert_problem, db_state, tolerant_client
from sqlalchemy import select

from conftest import SECRET, Api, PartnerKey
from tally.audit.models import AuditEntry
from tally.db.session import Database
from tally.kit.clock import utcnow
from tally.member_codes import service as member_codes
from tally.partners import service as partners_service
from tally.programme import service as programme_service

DEMO = Path(__file__).resolve().parents[3] / "src" / "tally" / "demo" / "programme.yaml"
PHONE = "13812345678"
PROFILE = {"name": "Li Lei", "phone": PHONE, "birthday": "1990-05-01", "city": "Hangzhou"}


@pytest.fixture
def partners(database: Database, partner: PartnerKey) -> dict[str, PartnerKey]:
    """The demo programme in force (MOBILE the operator's channel), and SHOP and FOOD."""
    text = DEMO.read_text(encoding="utf-8")
    with database.write() as session:
        programme_service.apply(
            session, programme_service.validate(text), text, "tests", utcnow() - timedelta(days=1)
        )
    return {"MOBILE": partner, "SHOP": key_of(database, "SHOP"), "FOOD": key_of(database, "FOOD")}


def key_of(database: Database, code: str) -> PartnerKey:
    """An API key of the programme's partner ``code`` (created with the programme)."""
    with database.write() as session:
        found = partners_service.partner_by_code(session, code)
        scopes = partners_service.parse_scopes("members,earn,redeem,read")
        _key, plain = partners_service.issue_key(session, found, scopes, SECRET, utcnow())
        return PartnerKey(found.id, code, plain)


@pytest.fixture
def apis(app: Any, partners: dict[str, PartnerKey]) -> Iterator[dict[str, Api]]:
    with tolerant_client(app) as client:
        yield {code: Api(client, key) for code, key in partners.items()}


def ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json()  # type: ignore[no-any-return]


def enrol_at_shop(shop: Api) -> int:
    """SHOP enrols a member with its own user id and a profile, then links the phone."""
    body = ok(
        shop.post(
            "/v1/members",
            {"external_id": {"namespace": "shop", "id": "s-1"}, "profile": PROFILE},
        ),
        201,
    )
    assert body["profile"]["phone"] == PHONE
    member = int(body["id"])
    linked = ok(shop.post(f"/v1/members/{member}/identities", {"namespace": "phone", "id": PHONE}))
    assert {"namespace": "phone", "id": PHONE} in linked["identities"]
    return member


def show_code(database: Database, member: int, partner: Api) -> None:
    """The member shows its member code to ``partner``'s checkout (a tie: it may link to it)."""
    with database.write() as session:
        code = member_codes.issue(session, member, utcnow(), SECRET).code
    ok(partner.get("/v1/members/lookup", params={"code": code}))


def consent(mobile: Api, member: int, partner: str, granted: bool, status: int) -> dict[str, Any]:
    body = {"partner": partner, "purpose": "profile", "granted": granted}
    return ok(mobile.post(f"/v1/members/{member}/consents", body), status)


def test_the_collecting_partner_sees_the_profile_and_another_sees_no_personal_data(
    apis: dict[str, Api], database: Database
) -> None:
    shop, food = apis["SHOP"], apis["FOOD"]
    member = enrol_at_shop(shop)
    show_code(database, member, food)  # FOOD may link its own user id to the member

    mine = ok(shop.get(f"/v1/members/{member}"))
    assert mine["profile"] == PROFILE
    assert mine["identities"] == [
        {"namespace": "shop", "id": "s-1"},
        {"namespace": "phone", "id": PHONE},
    ]

    answers = [
        ok(food.get(f"/v1/members/{member}")),
        ok(food.get("/v1/members/lookup", params={"namespace": "phone", "id": PHONE})),
        ok(food.post("/v1/members", {"external_id": {"namespace": "phone", "id": PHONE}})),
        ok(food.post(f"/v1/members/{member}/identities", {"namespace": "food", "id": "f-9"})),
        ok(food.get(f"/v1/members/{member}/consents")),
    ]
    for answer in answers:
        text = json.dumps(answer)
        assert PHONE not in text, text
        assert "Li Lei" not in text, text
        assert "Hangzhou" not in text, text
    seen = answers[0]
    assert seen["id"] == member
    assert seen["status"] == "active"
    assert seen["tier"] == "BRONZE"
    assert seen["balance"] == {"available": 0}
    assert seen["profile"] is None
    assert seen["identities"] == []
    # FOOD linked its own user id: it sees that one, still no profile and no phone.
    assert answers[3]["identities"] == [{"namespace": "food", "id": "f-9"}]
    assert answers[3]["profile"] is None
    assert answers[4]["collections"] == [
        {
            "partner": "FOOD",
            "method": "link",
            "namespace": "food",
            "created_at": answers[4]["collections"][0]["created_at"],
        }
    ]


def test_the_operator_channel_sees_everything(apis: dict[str, Api], database: Database) -> None:
    member = enrol_at_shop(apis["SHOP"])
    show_code(database, member, apis["FOOD"])
    ok(apis["FOOD"].post(f"/v1/members/{member}/identities", {"namespace": "food", "id": "f-1"}))
    apis["SHOP"].earn(member, 300)

    seen = ok(apis["MOBILE"].get(f"/v1/members/{member}"))
    assert seen["profile"] == PROFILE
    assert [item["namespace"] for item in seen["identities"]] == ["shop", "phone", "food"]
    assert seen["balance"] == {"available": 300}


def test_a_consent_shows_the_profile_and_its_withdrawal_hides_it_again(
    apis: dict[str, Api], database: Database
) -> None:
    mobile, shop, food = apis["MOBILE"], apis["SHOP"], apis["FOOD"]
    member = enrol_at_shop(shop)

    granted = consent(mobile, member, "FOOD", True, 201)
    assert [(item["partner"], item["granted"]) for item in granted["consents"]] == [("FOOD", True)]
    seen = ok(food.get(f"/v1/members/{member}"))
    assert seen["profile"] == PROFILE
    assert {"namespace": "phone", "id": PHONE} in seen["identities"]
    assert {"namespace": "shop", "id": "s-1"} not in seen["identities"]  # SHOP's own user ids

    before = db_state(database)
    again = consent(mobile, member, "FOOD", True, 200)  # already so: nothing recorded
    assert db_state(database) == before
    assert again["history"] == granted["history"]

    withdrawn = consent(mobile, member, "FOOD", False, 201)
    seen = ok(food.get(f"/v1/members/{member}"))
    assert seen["profile"] is None
    assert PHONE not in json.dumps(seen)
    assert [(item["partner"], item["granted"]) for item in withdrawn["consents"]] == [
        ("FOOD", False)
    ]

    consent(mobile, member, "FOOD", True, 201)
    history = ok(mobile.get(f"/v1/members/{member}/consents"))["history"]
    assert [
        (item["partner"], item["purpose"], item["granted"], item["channel"]) for item in history
    ] == [
        ("FOOD", "profile", True, "api:MOBILE"),
        ("FOOD", "profile", False, "api:MOBILE"),
        ("FOOD", "profile", True, "api:MOBILE"),
    ]
    assert history == sorted(history, key=lambda item: item["created_at"])
    with database.read() as session:
        audited = session.execute(
            select(AuditEntry.actor, AuditEntry.action).where(
                AuditEntry.member_id == member, AuditEntry.action.startswith("consent.")
            )
        ).all()
    actor = f"partner:{mobile.key.partner_id}"
    assert [tuple(row) for row in audited] == [
        (actor, "consent.grant"),
        (actor, "consent.withdraw"),
        (actor, "consent.grant"),
    ]
    # A partner sees only its own consents and collections.
    shops = ok(shop.get(f"/v1/members/{member}/consents"))
    assert shops["consents"] == []
    assert shops["history"] == []
    assert [
        (item["partner"], item["method"], item["namespace"]) for item in shops["collections"]
    ] == [
        ("SHOP", "enrol", "shop"),
        ("SHOP", "link", "phone"),
    ]
    foods = ok(food.get(f"/v1/members/{member}/consents"))
    assert len(foods["history"]) == 3
    assert foods["collections"] == []


def test_a_marketing_consent_does_not_disclose_the_profile(apis: dict[str, Api]) -> None:
    member = enrol_at_shop(apis["SHOP"])
    body = {"partner": "FOOD", "purpose": "marketing", "granted": True}
    answer = ok(apis["MOBILE"].post(f"/v1/members/{member}/consents", body), 201)
    assert answer["consents"][0]["purpose"] == "marketing"
    assert ok(apis["FOOD"].get(f"/v1/members/{member}"))["profile"] is None


def test_only_the_operator_channels_record_consents(
    apis: dict[str, Api], database: Database
) -> None:
    member = enrol_at_shop(apis["SHOP"])
    before = db_state(database)
    body = {"partner": "FOOD", "purpose": "profile", "granted": True}
    for code in ("SHOP", "FOOD"):
        refused = assert_problem(
            apis[code].post(f"/v1/members/{member}/consents", body), 403, "forbidden"
        )
        assert refused["reason"] == "operator_channel_only"
    assert db_state(database) == before


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"partner": "NOPE", "purpose": "profile", "granted": True}, 422, "unknown_partner"),
        ({"partner": "FOOD", "purpose": "selling", "granted": True}, 422, "unknown_purpose"),
        ({"partner": "FOOD", "purpose": "profile"}, 422, "validation_error"),
        ({"partner": "FOOD", "purpose": "profile", "granted": "yes"}, 422, "validation_error"),
        (
            {"partner": "FOOD", "purpose": "profile", "granted": True, "x": 1},
            422,
            "validation_error",
        ),
        ({"partner": "FOOD\u202e", "purpose": "profile", "granted": True}, 422, "validation_error"),
    ],
)
def test_bad_consents_are_refused_and_write_nothing(
    apis: dict[str, Api], database: Database, body: dict[str, Any], status: int, code: str
) -> None:
    member = enrol_at_shop(apis["SHOP"])
    before = db_state(database)
    assert_problem(apis["MOBILE"].post(f"/v1/members/{member}/consents", body), status, code)
    assert db_state(database) == before


def test_consents_of_an_unknown_member_are_not_found(
    apis: dict[str, Api], database: Database
) -> None:
    before = db_state(database)
    body = {"partner": "FOOD", "purpose": "profile", "granted": True}
    assert_problem(apis["MOBILE"].post("/v1/members/999/consents", body), 404, "not_found")
    assert_problem(apis["MOBILE"].get("/v1/members/999/consents"), 404, "not_found")
    assert db_state(database) == before


def test_a_consent_replays_its_first_answer(apis: dict[str, Api], database: Database) -> None:
    member = enrol_at_shop(apis["SHOP"])
    body = {"partner": "FOOD", "purpose": "profile", "granted": True}
    first = apis["MOBILE"].post(f"/v1/members/{member}/consents", body, idempotency_key="c-1")
    assert first.status_code == 201, first.text
    replay = apis["MOBILE"].post(f"/v1/members/{member}/consents", body, idempotency_key="c-1")
    assert replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()
    missing = apis["MOBILE"].client.post(
        f"/v1/members/{member}/consents", json=body, headers=apis["MOBILE"].key.headers()
    )
    assert missing.status_code == 400
    assert len(ok(apis["MOBILE"].get(f"/v1/members/{member}/consents"))["history"]) == 1


def test_finding_an_existing_member_collects_nothing(
    apis: dict[str, Api], database: Database
) -> None:
    member = enrol_at_shop(apis["SHOP"])
    before = db_state(database)
    found = ok(
        apis["FOOD"].post(
            "/v1/members",
            {
                "external_id": {"namespace": "phone", "id": PHONE},
                "profile": {"name": "Someone Else", "phone": "13900000000"},
            },
        )
    )
    assert found["id"] == member
    assert found["profile"] is None
    assert db_state(database) == before  # no profile change, no collection for FOOD
    assert ok(apis["SHOP"].get(f"/v1/members/{member}"))["profile"] == PROFILE
