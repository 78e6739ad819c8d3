"""The OpenAPI document states the whole contract: who may call, what each call may answer
(problem documents with their codes), the limits the server enforces, an example everywhere;
and the Authorize button of ``/docs`` works."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from fastapi.testclient import TestClient

from conftest import OPERATOR_SCOPES, SECRET, make_partner, require_or_skip
from support.browser import chromium_path, shared_chromium
from support.live import serving
from tally.api.openapi import registry
from tally.config import Settings
from tally.db.engine import build_engine
from tally.db.session import Database

PROBLEM_JSON = "application/problem+json"
WRITES = {"post", "put", "patch", "delete"}
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"


def _document(url: str, **overrides: Any) -> dict[str, Any]:
    from tally.app import create_app

    settings = Settings(database_url=url, secret_key=SECRET, job_interval_seconds=0, **overrides)
    app = create_app(settings)
    try:
        with TestClient(app) as client:
            response = client.get("/openapi.json")
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]
    finally:
        app.state.db.dispose()


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The document is static: built once, from an app on a throw-away SQLite file."""
    return _document(f"sqlite:///{tmp_path_factory.mktemp('contract') / 'tally.db'}")


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for method, operation in item.items():
            yield method, path, operation


def validator(spec: dict[str, Any], schema: dict[str, Any]) -> Any:
    """A JSON Schema validator for ``schema``, whose references point into ``spec``."""
    return jsonschema_rs.validator_for({**schema, "components": spec["components"]})


def test_every_operation_needs_the_bearer_api_key(spec: dict[str, Any]) -> None:
    assert spec["components"]["securitySchemes"] == {
        "bearerAuth": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "API key",
            "description": "A partner API key: `Authorization: Bearer <key>`.",
        }
    }
    for method, path, operation in operations(spec):
        assert operation["security"] == [{"bearerAuth": []}], (method, path)
        assert "scope" in operation["description"], (method, path)


def test_every_body_and_success_answer_has_a_valid_example(spec: dict[str, Any]) -> None:
    checked = 0
    for method, path, operation in operations(spec):
        media = [operation["requestBody"]["content"]] if "requestBody" in operation else []
        media += [
            response["content"]
            for status, response in operation["responses"].items()
            if status.startswith("2") and "content" in response
        ]
        for content in media:
            body = content["application/json"]
            assert "example" in body, (method, path)
            errors = [
                e.message for e in validator(spec, body["schema"]).iter_errors(body["example"])
            ]
            assert errors == [], (method, path, body["example"])
            checked += 1
    assert checked > 60


# Operations any API key may call, whatever its scopes: no 403 is documented for them.
ANY_KEY = {("get", "/v1/partners/me")}


def test_every_operation_documents_its_problems_with_their_codes(spec: dict[str, Any]) -> None:
    codes = registry()
    for method, path, operation in operations(spec):
        responses = operation["responses"]
        expected = {"401", "422"}
        if (method, path) in ANY_KEY:
            assert "403" not in responses, (method, path)
        else:
            expected.add("403")
        if "{" in path:
            expected.add("404")
        if method in WRITES:
            expected |= {"400", "409", "413"}
        assert expected <= set(responses), (method, path, sorted(responses))
        for status, response in responses.items():
            if int(status) < 400:
                continue
            content = response["content"]
            assert list(content) == [PROBLEM_JSON], (method, path, status)
            reference = content[PROBLEM_JSON]["schema"]["$ref"]
            assert reference.rsplit("/", 1)[-1] in {"Problem", "ValidationProblem"}
            examples = content[PROBLEM_JSON]["examples"]
            assert examples, (method, path, status)
            for code, example in examples.items():
                assert codes[code].status == int(status), code
                assert example["value"]["code"] == code
                assert example["value"]["status"] == int(status)
                assert validator(spec, {"$ref": reference}).is_valid(example["value"])
                assert f"`{code}`" in response["description"]
        assert "unauthorized" in responses["401"]["content"][PROBLEM_JSON]["examples"]
        assert responses["401"]["headers"]["WWW-Authenticate"]["required"] is True
    assert "HTTPValidationError" not in spec["components"]["schemas"]


def test_operation_specific_conflicts_are_listed(spec: dict[str, Any]) -> None:
    def conflicts(method: str, path: str) -> set[str]:
        response = spec["paths"][path][method]["responses"]["409"]
        return set(response["content"][PROBLEM_JSON]["examples"])

    assert {"insufficient_points", "member_frozen", "duplicate_reference"} <= conflicts(
        "post", "/v1/members/{member_id}/redeem"
    )
    assert "insufficient_points" not in conflicts("post", "/v1/members/{member_id}/earn")
    assert {"already_reversed", "not_reversible"} <= conflicts(
        "post", "/v1/transactions/{transaction_id}/reverse"
    )
    # Codes a route names in its own ``responses`` are listed too.
    assert "membership_not_active" in conflicts("post", "/v1/memberships/{membership_id}/cancel")
    assert {"idempotency_conflict", "conflict"} <= conflicts("post", "/v1/members")


def test_every_write_documents_the_idempotency_key(spec: dict[str, Any]) -> None:
    for method, path, operation in operations(spec):
        headers = [p for p in operation.get("parameters", []) if p["in"] == "header"]
        keys = [p for p in headers if p["name"] == "Idempotency-Key"]
        if method not in WRITES:
            assert keys == [], (method, path)
            continue
        assert len(keys) == 1, (method, path)
        key = keys[0]
        assert key["required"] is True
        assert key["schema"]["minLength"] == 1
        assert key["schema"]["maxLength"] == 255
        assert "idempotency_conflict" in key["description"]


def test_path_parameters_are_constrained(spec: dict[str, Any]) -> None:
    for method, path, operation in operations(spec):
        for parameter in operation.get("parameters", []):
            if parameter["in"] != "path":
                continue
            schema = parameter["schema"]
            bounded = {"maximum", "maxLength", "pattern", "format", "enum"} & set(schema)
            assert bounded, (method, path, parameter)


def test_what_an_operation_creates_links_to_the_operations_on_it(spec: dict[str, Any]) -> None:
    def links(path: str, status: str = "201") -> dict[str, Any]:
        found: dict[str, Any] = spec["paths"][path]["post"]["responses"][status]["links"]
        return {name: link["parameters"] for name, link in found.items()}

    enrolled = links("/v1/members")
    assert enrolled["earn"] == {"member_id": "$response.body#/id"}
    assert enrolled["get_member"] == {"member_id": "$response.body#/id"}
    assert links("/v1/members", "200")["redeem"] == {"member_id": "$response.body#/id"}
    held = links("/v1/members/{member_id}/holds")
    assert held["capture_hold"] == {"hold_id": "$response.body#/hold/id"}
    assert held["void_hold"] == {"hold_id": "$response.body#/hold/id"}
    assert "earn" not in held  # the member was named by the request itself
    assert links("/v1/members/{member_id}/earn") == {
        "reverse": {"transaction_id": "$response.body#/transaction_id"}
    }
    link_targets = {
        link["operationId"]
        for _method, _path, operation in operations(spec)
        for response in operation["responses"].values()
        for link in response.get("links", {}).values()
    }
    operation_ids = {operation["operationId"] for _m, _p, operation in operations(spec)}
    assert link_targets <= operation_ids


def test_one_schema_per_model(spec: dict[str, Any]) -> None:
    """``X-Input``/``X-Output`` twins collide in generated clients (two classes ``X``)."""
    names = spec["components"]["schemas"]
    assert not [name for name in names if name.endswith(("-Input", "-Output"))]
    titles = [schema.get("title", name) for name, schema in names.items()]
    assert len(titles) == len(set(titles)), sorted(t for t in titles if titles.count(t) > 1)


def _property(spec: dict[str, Any], model: str, field: str) -> dict[str, Any]:
    schema: dict[str, Any] = spec["components"]["schemas"][model]["properties"][field]
    return schema


def test_limits_are_stated_as_the_server_enforces_them(
    spec: dict[str, Any], tmp_path: Path
) -> None:
    assert _property(spec, "HoldRequest", "expires_in_seconds")["maximum"] == 7 * 24 * 3600
    assert _property(spec, "EarnRequest", "points")["maximum"] == 1_000_000_000
    assert _property(spec, "EarnRequest", "points")["exclusiveMinimum"] == 0
    assert _property(spec, "EarnRequest", "reference")["maxLength"] == 191
    limit = spec["paths"]["/v1/members/{member_id}/transactions"]["get"]["parameters"]
    assert next(p for p in limit if p["name"] == "limit")["schema"]["maximum"] == 200

    assert "in the future" in _property(spec, "EarnRequest", "expires_at")["description"]
    assert "At most the points held" in _property(spec, "CaptureRequest", "points")["description"]
    cursor = next(p for p in limit if p["name"] == "cursor")
    assert "next_cursor" in cursor["description"]

    narrower = _document(
        f"sqlite:///{tmp_path / 'tally.db'}", hold_max_seconds=3600, max_points_per_operation=5000
    )
    hold = _property(narrower, "HoldRequest", "expires_in_seconds")
    assert hold["maximum"] == 3600
    assert "3,600" in hold["description"]
    assert _property(narrower, "RedeemRequest", "points")["maximum"] == 5000
    assert _property(narrower, "HoldRequest", "points")["maximum"] == 5000
    assert "1 to 5,000" in _property(narrower, "HoldRequest", "points")["description"]
    assert _property(narrower, "FamilySpendRequest", "points")["maximum"] == 5000


# --- /docs in a browser ------------------------------------------------------------------------


@pytest.fixture
def served(tmp_path: Path, sqlite_template: Path) -> Iterator[tuple[str, str]]:
    """Tally on uvicorn over a fresh SQLite copy: (base URL, an API key with every scope)."""
    from tally.app import create_app

    path = tmp_path / "tally.db"
    shutil.copy(sqlite_template, path)
    url = f"sqlite:///{path}"
    db = Database(build_engine(url))
    key = make_partner(db, "MOBILE", OPERATOR_SCOPES, operator_channel=True)
    settings = Settings(database_url=url, secret_key=SECRET, job_interval_seconds=0)
    with serving(create_app(settings, db)) as base:
        yield base, key.api_key
    db.dispose()


@pytest.mark.browser
def test_the_authorize_button_of_the_docs_sends_the_key(served: tuple[str, str]) -> None:
    """Authorised in Swagger UI, "Try it out" reaches the API as the partner (404 for an
    unknown member, not 401)."""
    require_or_skip(chromium_path() is not None, "Chromium")
    from playwright.sync_api import expect

    base, api_key = served
    with shared_chromium() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 1000})
        try:
            page = context.new_page()
            page.set_default_timeout(10_000)
            page.goto(f"{base}/docs")
            page.get_by_role("button", name="Authorize").first.click()
            dialog = page.locator(".modal-ux")
            expect(dialog).to_contain_text("bearerAuth")
            dialog.locator("input").fill(api_key)
            dialog.locator("button.authorize").click()
            expect(dialog).to_contain_text("Authorized")
            dialog.locator("button.btn-done").click()

            block = page.locator("#operations-members-get_member")
            block.locator(".opblock-summary").click()
            block.get_by_role("button", name="Try it out").click()
            block.locator("input[placeholder='member_id']").fill("987654")
            block.get_by_role("button", name="Execute").click()
            answer = block.locator(".responses-table.live-responses-table")
            expect(answer).to_contain_text("not_found")
            expect(answer.locator("tbody td.response-col_status")).to_have_text("404")
            ARTIFACTS.mkdir(exist_ok=True)
            block.screenshot(path=str(ARTIFACTS / "openapi-docs-authorized.png"))
        finally:
            context.close()


def test_a_method_not_allowed_names_every_method_of_the_path(client: Any, partner: Any) -> None:
    """``/v1/families/{id}`` has two routes (GET and PATCH): ``Allow`` names both."""
    response = client.request("OPTIONS", "/v1/families/1", headers=partner.headers("k-1"))
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == "GET, PATCH"
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["code"] == "method_not_allowed"
