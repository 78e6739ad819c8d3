"""Input hygiene on SQLite and PostgreSQL, through FastAPI's routes and the fast lane alike:
credentials are checked first, ids in paths are parsed strictly, bodies have a size limit, JSON
objects may not name a key twice, text may not hide characters, payment times are bounded.
Every refusal is a problem document and writes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from apikit import assert_problem, db_state, issue_key, revoke, tolerant_client, unique
from fastapi.testclient import TestClient

from conftest import Api, PartnerKey
from tally.api import fastlane
from tally.db.session import Database

HUGE = "99999999999999999999999"
LIMIT = 64 * 1024
PAGE_LIMIT = 2 * 1024 * 1024
EARN = b'{"points": 5, "reference": "hygiene"}'


@pytest.fixture
def client(app: Any) -> Iterator[TestClient]:
    with tolerant_client(app) as test_client:
        yield test_client


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """For each request the fast lane looked at: whether it answered it itself."""
    seen: list[bool] = []
    ordinary = fastlane._ordinary

    def spy(*args: Any) -> Any:
        write = ordinary(*args)
        seen.append(write is not None)
        return write

    monkeypatch.setattr(fastlane, "_ordinary", spy)
    return seen


@pytest.fixture
def member(api: Api) -> int:
    """Member 1, with 100 points: the member a loosely parsed id would reach."""
    member_id = api.enrol("13800000001")
    assert member_id == 1
    assert api.earn(member_id, 100).status_code == 201
    return member_id


def send(
    client: TestClient,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    content: bytes | None = None,
    **kwargs: Any,
) -> Any:
    sent = {"content-type": "application/json", **(headers or {})}
    return client.request(method, path, headers=sent, content=content, **kwargs)


# --- 1. Credentials first ---------------------------------------------------------------------

BAD_CREDENTIALS = {
    "no Authorization": None,
    "not bearer": "Basic dXNlcjpwYXNz",
    "unknown key": "Bearer tly_000000000000.abcdefghijklmnopqrstuvwxyz012345",
}


def _otherwise_refused(member: int) -> dict[str, tuple[str, str, dict[str, str], bytes | None]]:
    """Requests refused for something else: ``(method, path, headers, body)``."""
    big = b'{"points": 1, "reference": "' + b"x" * LIMIT + b'"}'
    return {
        "earn without Idempotency-Key (lane path)": (
            "POST",
            f"/v1/members/{member}/earn",
            {},
            EARN,
        ),
        "enrol without Idempotency-Key": (
            "POST",
            "/v1/members",
            {},
            b'{"external_id": {"namespace": "phone", "id": "1"}}',
        ),
        "a malformed member id": ("GET", "/v1/members/abc", {}, None),
        "an unknown member": ("GET", "/v1/members/999999/balance", {}, None),
        "an unknown route": ("GET", "/v1/nothing-here", {}, None),
        "a body too large": ("POST", f"/v1/members/{member}/earn", {"Idempotency-Key": "k"}, big),
        "a duplicated key": (
            "POST",
            f"/v1/members/{member}/earn",
            {"Idempotency-Key": "k"},
            b'{"points": 1, "points": 999999, "reference": "dup"}',
        ),
        "an invalid body": (
            "POST",
            f"/v1/members/{member}/earn",
            {"Idempotency-Key": "k"},
            b'{"points": "many"}',
        ),
        "a wrong method": ("DELETE", f"/v1/members/{member}", {}, None),
    }


@pytest.mark.parametrize("credentials", list(BAD_CREDENTIALS.values()), ids=list(BAD_CREDENTIALS))
def test_a_request_without_valid_credentials_hears_unauthorized_first(
    client: TestClient, api: Api, database: Database, member: int, credentials: str | None
) -> None:
    for name, (method, path, headers, body) in _otherwise_refused(member).items():
        sent = dict(headers)
        if credentials is not None:
            sent["Authorization"] = credentials
        before = db_state(database)
        response = send(client, method, path, sent, body)
        assert_problem(response, 401, "unauthorized")
        assert response.headers["www-authenticate"] == "Bearer", name
        assert db_state(database) == before, name
    assert api.balance(member)["available"] == 100


def test_a_revoked_key_hears_unauthorized_before_a_validation_error(
    client: TestClient, database: Database, partner: PartnerKey, member: int
) -> None:
    key = issue_key(database, partner, "members,earn,redeem,read")
    revoke(database, key)
    response = send(
        client,
        "POST",
        f"/v1/members/{member}/earn",
        key.headers("k-1"),
        b'{"points": 1, "points": 2, "reference": "r"}',
    )
    assert_problem(response, 401, "unauthorized")


def test_a_valid_key_without_idempotency_key_still_gets_400(
    client: TestClient, api: Api, database: Database, member: int, taken: list[bool]
) -> None:
    before = db_state(database)
    for path in (f"/v1/members/{member}/earn", f"/v1/members/{member}/redeem"):
        response = send(client, "POST", path, api.key.headers(), EARN)
        assert_problem(response, 400, "idempotency_key_required")
    assert taken == [False, False]  # the lane handed them on; FastAPI answered
    assert db_state(database) == before


# --- 2. Ids in paths --------------------------------------------------------------------------

NOT_MEMBER_ONE = {
    "letters": "abc",
    "zero": "0",
    "negative": "-1",
    "beyond 64 bits": HUGE,
    "beyond 2**62": str(2**62 + 1),
    "fractional": "1.5",
    "plus sign": "+1",
    "leading space": "%201",
    "trailing space": "1%20",
    "leading zero": "01",
    "underscore": "1_0",
    "full-width digit": "%EF%BC%91",
    "Arabic-Indic digit": "%D9%A1",
    "exponent": "1e0",
}


@pytest.mark.parametrize("raw", list(NOT_MEMBER_ONE.values()), ids=list(NOT_MEMBER_ONE))
def test_a_member_id_of_any_other_shape_names_no_member(
    api: Api, database: Database, member: int, raw: str, taken: list[bool]
) -> None:
    before = db_state(database)
    for method, path, body in (
        ("GET", f"/v1/members/{raw}", None),
        ("GET", f"/v1/members/{raw}/balance", None),
        ("GET", f"/v1/members/{raw}/transactions", None),
        ("POST", f"/v1/members/{raw}/earn", {"points": 5, "reference": unique("e")}),
        ("POST", f"/v1/members/{raw}/redeem", {"points": 5, "reference": unique("r")}),
        ("POST", f"/v1/members/{raw}/freeze", {"reason": "typo"}),
    ):
        response = api.get(path) if method == "GET" else api.post(path, body)
        assert_problem(response, 404, "not_found")
    assert True not in taken  # never the lane's
    assert db_state(database) == before
    assert api.balance(member)["available"] == 100


def test_other_ids_in_paths_are_parsed_strictly(api: Api, database: Database, member: int) -> None:
    hold = api.post(
        f"/v1/members/{member}/holds", {"points": 5, "expires_in_seconds": 60, "reference": "h"}
    ).json()["id"]
    entry = api.earn(member, 1).json()["id"]
    variants = {
        "upper case": lambda value: value.upper(),
        "braces": lambda value: "{" + value + "}",
        "urn": lambda value: "urn:uuid:" + value,
        "no hyphens": lambda value: value.replace("-", ""),
        "padded": lambda value: "%20" + value,
    }
    before = db_state(database)
    for name, variant in variants.items():
        for response in (
            api.get(f"/v1/holds/{variant(hold)}"),
            api.post(f"/v1/holds/{variant(hold)}/void"),
            api.post(f"/v1/transactions/{variant(entry)}/reverse"),
            api.get(f"/v1/memberships/{variant(hold)}"),
        ):
            body = assert_problem(response, 404, "not_found")
            assert body, name
    for raw in ("01", "+1", "abc", "0", HUGE):
        assert_problem(api.get(f"/v1/families/{raw}"), 404, "not_found")
        assert_problem(api.get(f"/v1/members/{raw}/family"), 404, "not_found")
    assert db_state(database) == before
    assert api.get(f"/v1/holds/{hold}").status_code == 200  # the canonical form still works


def test_the_openapi_schema_states_the_path_id_bounds(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    parameters = {
        (path, parameter["name"]): parameter["schema"]
        for path, operations in schema["paths"].items()
        for operation in operations.values()
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "path"
    }
    member = parameters[("/v1/members/{member_id}", "member_id")]
    assert (member["type"], member["exclusiveMinimum"], member["maximum"]) == (
        "integer",
        0,
        2**62,
    )
    hold = parameters[("/v1/holds/{hold_id}", "hold_id")]
    assert hold["type"] == "string"
    assert hold["pattern"].startswith("^[0-9a-f]{8}-")
    for (path, name), value in parameters.items():
        if name in {"member_id", "family_id", "adjustment_request_id", "webhook_id"}:
            assert (value["type"], value["maximum"]) == ("integer", 2**62), path
        elif name == "code":  # a campaign's code, as the programme file spells codes
            assert value["pattern"] == "^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$", path
        else:
            assert value["pattern"] == hold["pattern"], path


# --- 3. Body size -----------------------------------------------------------------------------


def test_a_body_over_the_limit_is_refused_before_parsing(
    client: TestClient, api: Api, database: Database, member: int, taken: list[bool]
) -> None:
    # Valid JSON with padding: over the limit by one byte.
    head = b'{"points": 5, "reference": "big"'
    body = head + b" " * (LIMIT - len(head)) + b"}"
    assert len(body) == LIMIT + 1
    before = db_state(database)
    for path in (f"/v1/members/{member}/earn", "/v1/members"):
        response = send(client, "POST", path, api.key.headers(unique("k")), body)
        refused = assert_problem(response, 413, "payload_too_large")
        assert refused["max_bytes"] == LIMIT
    assert taken == []  # refused before the lane saw it
    assert db_state(database) == before
    # At the limit exactly, the body is read and answered as usual.
    fits = head + b" " * (LIMIT - len(head) - 1) + b"}"
    response = send(client, "POST", f"/v1/members/{member}/earn", api.key.headers("fits"), fits)
    assert response.status_code == 201, response.text


def test_a_chunked_body_without_content_length_is_counted_while_read(
    client: TestClient, api: Api, database: Database, member: int
) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"points": 5, "reference": "chunked", "pad": "'
        for _ in range(20):
            yield b"x" * 4096
        yield b'"}'

    before = db_state(database)
    response = client.post(
        f"/v1/members/{member}/earn",
        content=chunks(),
        headers={**api.key.headers("chunked"), "content-type": "application/json"},
    )
    assert "content-length" not in {name.lower() for name in response.request.headers}
    assert_problem(response, 413, "payload_too_large")
    assert db_state(database) == before


def test_the_limit_is_a_setting(database: Database, settings: Any, partner: PartnerKey) -> None:
    from tally.app import create_app

    app = create_app(settings.model_copy(update={"max_body_bytes": 2048}), database)
    with tolerant_client(app) as client:
        api = Api(client, partner)
        member_id = api.enrol("13800000009")
        pad = "x" * 2100
        assert_problem(api.earn(member_id, 1, reference=pad), 413, "payload_too_large")
        assert api.earn(member_id, 1, reference="x" * 100).status_code == 201


def test_pages_have_a_larger_limit_for_a_pasted_programme(client: TestClient) -> None:
    form = {"content-type": "application/x-www-form-urlencoded", "accept": "text/html"}
    beyond = client.post("/console/sign-in", content=b"username=" + b"a" * PAGE_LIMIT, headers=form)
    assert beyond.status_code == 413
    assert beyond.headers["content-type"].startswith("text/html")
    within = client.post("/console/sign-in", content=b"username=" + b"a" * 2 * LIMIT, headers=form)
    assert within.status_code != 413


# --- 4. Duplicate keys ------------------------------------------------------------------------

DUPLICATES: dict[str, tuple[str, bytes, str]] = {
    "earn points (lane path)": (
        "/v1/members/{m}/earn",
        b'{"points": 1, "points": 999999, "reference": "dup-1"}',
        "points",
    ),
    "redeem reference (lane path)": (
        "/v1/members/{m}/redeem",
        b'{"points": 1, "reference": "a", "reference": "b"}',
        "reference",
    ),
    "a key spelled with an escape": (
        "/v1/members/{m}/earn",
        b'{"points": 1, "\\u0070oints": 999999, "reference": "dup-2"}',
        "points",
    ),
    "nested in an enrolment": (
        "/v1/members",
        b'{"external_id": {"namespace": "phone", "id": "1", "id": "2"}}',
        "external_id.id",
    ),
    "adjustment points": (
        "/v1/members/{m}/adjustments",
        b'{"points": 1, "reason": "fix", "points": -100}',
        "points",
    ),
    "in a list of objects": (
        "/v1/families/1/settings",
        b'{"acting_member_id": 1, "limits": [{"member_id": 2, "member_id": 3}]}',
        "limits.0.member_id",
    ),
}


@pytest.mark.parametrize(("path", "body", "field"), list(DUPLICATES.values()), ids=list(DUPLICATES))
def test_json_naming_a_key_twice_is_refused(
    client: TestClient,
    api: Api,
    database: Database,
    member: int,
    taken: list[bool],
    path: str,
    body: bytes,
    field: str,
) -> None:
    before = db_state(database)
    response = send(client, "POST", path.format(m=member), api.key.headers(unique("k")), body)
    refused = assert_problem(response, 422, "validation_error")
    assert refused["errors"] == [
        {"field": field, "message": refused["errors"][0]["message"], "type": "duplicate_key"}
    ]
    assert field in refused["detail"]
    assert taken == []  # refused before the lane saw it
    assert db_state(database) == before
    assert api.balance(member)["available"] == 100


def test_repeated_keys_in_different_objects_are_fine(
    client: TestClient, api: Api, member: int
) -> None:
    body = b'{"external_id": {"namespace": "app", "id": "x-1"}, "profile": {"name": "id"}}'
    response = send(client, "POST", "/v1/members", api.key.headers("twice-ok"), body)
    assert response.status_code == 201, response.text


# --- 5. Hidden characters ---------------------------------------------------------------------

HIDDEN = {
    "RLO U+202E": "\u202e",
    "zero width space U+200B": "\u200b",
    "LRI U+2066": "\u2066",
    "BOM U+FEFF": "\ufeff",
    "line separator U+2028": "\u2028",
    "paragraph separator U+2029": "\u2029",
    "NEL U+0085": "\x85",
    "C1 CSI U+009B": "\x9b",
    "soft hyphen U+00AD": "\xad",
    "tag character U+E0041": "\U000e0041",
    "NUL": "\x00",
}


def _text_fields(member: int, value: str) -> dict[str, tuple[str, dict[str, Any]]]:
    return {
        "earn reference": (f"/v1/members/{member}/earn", {"points": 1, "reference": value}),
        "redeem reference": (f"/v1/members/{member}/redeem", {"points": 1, "reference": value}),
        "hold reference": (
            f"/v1/members/{member}/holds",
            {"points": 1, "expires_in_seconds": 60, "reference": value},
        ),
        "identity id": ("/v1/members", {"external_id": {"namespace": "app", "id": value}}),
        "identity namespace": ("/v1/members", {"external_id": {"namespace": value, "id": "1"}}),
        "linked identity": (f"/v1/members/{member}/identities", {"namespace": "app", "id": value}),
        "profile name": (
            "/v1/members",
            {"external_id": {"namespace": "app", "id": "n-1"}, "profile": {"name": value}},
        ),
        "freeze reason": (f"/v1/members/{member}/freeze", {"reason": value}),
        "adjustment reason": (f"/v1/members/{member}/adjustments", {"points": 1, "reason": value}),
        "family spend reference": (
            "/v1/families/1/redemptions",
            {"member_id": member, "points": 1, "reference": value},
        ),
        "membership payment reference": (
            "/v1/memberships/0190f5a0-0000-7000-8000-000000000000/payments",
            {"reference": value, "amount": {"minor_units": 1, "currency": "CNY"}},
        ),
    }


@pytest.mark.parametrize("char", list(HIDDEN.values()), ids=list(HIDDEN))
def test_hidden_characters_are_refused_in_identifiers_and_free_text(
    api: Api, database: Database, member: int, char: str
) -> None:
    before = db_state(database)
    for name, (path, body) in _text_fields(member, f"order{char}1").items():
        refused = assert_problem(api.post(path, body), 422, "validation_error")
        assert refused["errors"], name
    for params in (
        {"namespace": "phone", "id": f"138{char}1"},
        {"namespace": f"p{char}", "id": "1"},
    ):
        assert_problem(api.get("/v1/members/lookup", params=params), 422, "validation_error")
    assert db_state(database) == before
    assert api.balance(member)["available"] == 100


@pytest.mark.parametrize("char", ["\u202e", "\ufeff", "\u2028", "\x85", "\t"])
def test_hidden_characters_are_refused_in_idempotency_keys(
    client: TestClient, api: Api, database: Database, member: int, char: str
) -> None:
    key = f"key{char}1".encode()  # as a client sends it: UTF-8
    headers = {"Authorization": f"Bearer {api.key.api_key}", "content-type": "application/json"}
    before = db_state(database)
    response = client.post(
        f"/v1/members/{member}/earn", content=EARN, headers={**headers, "Idempotency-Key": key}
    )
    refused = assert_problem(response, 422, "validation_error")
    assert refused["field"] == "Idempotency-Key"
    assert db_state(database) == before


def test_ordinary_unicode_is_welcome(api: Api, member: int) -> None:
    body = {
        "external_id": {"namespace": "app", "id": "用户-١٢٣"},
        "profile": {"name": "李雷 Łukasz 🎉", "city": "Zürich"},
    }
    enrolled = api.post("/v1/members", body)
    assert enrolled.status_code == 201, enrolled.text
    assert api.earn(member, 1, reference="订单-2026/١").status_code == 201
    headers = {**api.key.headers(), "Idempotency-Key": "キー-1".encode()}
    response = api.client.post(
        f"/v1/members/{member}/earn", json={"points": 1, "reference": "r-1"}, headers=headers
    )
    assert response.status_code == 201, response.text


# --- 7. Family role refusals have codes of their own ------------------------------------------


def test_family_role_refusals_name_the_role(api: Api, database: Database) -> None:
    owner, member, stranger, invitee = (api.enrol(unique("fam"), namespace="app") for _ in "four")
    family = api.post("/v1/families", {"acting_member_id": owner}).json()["id"]
    for person in (member, invitee):
        body = {"acting_member_id": owner, "member_id": person}
        assert api.post(f"/v1/families/{family}/invitations", body).status_code == 201
    accept = f"/v1/families/{family}/invitations/{member}/accept"
    assert api.post(accept, {"acting_member_id": member}).status_code == 200
    cases = {
        "not_family_owner": [
            ("invitations", {"acting_member_id": member, "member_id": stranger}),
            (f"invitations/{invitee}/withdraw", {"acting_member_id": member}),
            (f"members/{owner}/remove", {"acting_member_id": member}),
            ("settings", {"acting_member_id": member, "mode": "pool"}),
            ("dissolve", {"acting_member_id": member}),
        ],
        "not_invitee": [
            (f"invitations/{invitee}/accept", {"acting_member_id": stranger}),
            (f"invitations/{invitee}/decline", {"acting_member_id": owner}),
        ],
        "not_member_itself": [(f"members/{member}/leave", {"acting_member_id": owner})],
        "not_family_member": [
            ("redemptions", {"member_id": stranger, "points": 1, "reference": unique("s")})
        ],
    }
    before = db_state(database)
    for code, requests in cases.items():
        for tail, body in requests:
            refused = assert_problem(api.post(f"/v1/families/{family}/{tail}", body), 403, code)
            assert refused["code"] != "forbidden"
    assert db_state(database) == before
