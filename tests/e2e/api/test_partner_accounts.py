"""``GET /v1/partners/me``: the calling partner with its accounts, for any of its keys, itself
only; balances follow earns, redemptions and reversals; no key or a revoked one is 401."""

from __future__ import annotations

from typing import Any

from apikit import assert_problem, tolerant_client

from conftest import Api, PartnerKey, make_partner
from tally.db.session import Database
from tally.kit.clock import utcnow
from tally.partners import service as partners


def accounts(api: Api) -> dict[str, Any]:
    response = api.get("/v1/partners/me")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_partner_sees_itself_with_its_accounts(api: Api, partner: PartnerKey) -> None:
    member = api.enrol("13800000001")
    assert api.earn(member, 100).status_code == 201
    earned = api.earn(member, 40).json()
    assert api.redeem(member, 30).status_code == 201
    reversal = api.post(f"/v1/transactions/{earned['id']}/reverse")
    assert reversal.status_code == 201, reversal.text

    body = accounts(api)

    assert body["id"] == partner.partner_id
    assert body["code"] == "MOBILE"
    assert body["operator_channel"] is True
    assert body["is_active"] is True
    pid = partner.partner_id
    assert body["accounts"] == [
        {"kind": "issued", "code": f"partner:{pid}:issued", "unit": "points", "balance": -100},
        {"kind": "accepted", "code": f"partner:{pid}:redeemed", "unit": "points", "balance": 30},
    ]
    assert (body["issued"], body["accepted"], body["net"]) == (100, 30, 70)


def test_each_partner_sees_only_itself_with_any_of_its_keys(
    api: Api, client: Any, database: Database
) -> None:
    api.earn(api.enrol("13800000002"), 25)
    other = make_partner(database, "FOOD", "earn")  # one scope, and not ``read``

    body = accounts(Api(client, other))

    assert (body["id"], body["code"], body["operator_channel"]) == (other.partner_id, "FOOD", False)
    assert [item["balance"] for item in body["accounts"]] == [0, 0]
    assert (body["issued"], body["accepted"], body["net"]) == (0, 0, 0)
    assert accounts(api)["issued"] == 25


def test_no_key_or_a_revoked_one_is_unauthorized(app: Any, database: Database) -> None:
    key = make_partner(database, "SHOP")
    with database.write() as session:
        partners.revoke_key(session, key.api_key.partition(".")[0], utcnow())
    with tolerant_client(app) as client:
        assert_problem(client.get("/v1/partners/me"), 401, "unauthorized")
        revoked = client.get("/v1/partners/me", headers=key.headers())
        assert_problem(revoked, 401, "unauthorized")
        assert revoked.headers["www-authenticate"] == "Bearer"
