"""The published OpenAPI document describes the whole partner-API contract."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from conftest import SECRET
from tally.config import Settings

CONTRACT = {
    ("post", "/v1/members"),
    ("get", "/v1/members/lookup"),
    ("get", "/v1/members/{member_id}"),
    ("post", "/v1/members/{member_id}/identities"),
    ("post", "/v1/members/{member_id}/identities/unlink"),
    ("post", "/v1/members/{member_id}/freeze"),
    ("post", "/v1/members/{member_id}/unfreeze"),
    ("get", "/v1/members/{member_id}/balance"),
    ("post", "/v1/members/{member_id}/earn"),
    ("post", "/v1/members/{member_id}/redeem"),
    ("post", "/v1/members/{member_id}/holds"),
    ("post", "/v1/holds/{hold_id}/capture"),
    ("post", "/v1/holds/{hold_id}/void"),
    ("post", "/v1/transfers"),
    ("post", "/v1/transactions/{transaction_id}/reverse"),
    ("get", "/v1/members/{member_id}/transactions"),
    ("post", "/v1/members/{member_id}/adjustments"),
}
WRITES = sorted(path for method, path in CONTRACT if method == "post")


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The document is static: build it once, from an app on a throw-away SQLite file."""
    from tally.app import create_app

    url = f"sqlite:///{tmp_path_factory.mktemp('openapi') / 'tally.db'}"
    app = create_app(Settings(database_url=url, secret_key=SECRET, job_interval_seconds=0))
    try:
        with TestClient(app) as client:
            response = client.get("/openapi.json")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/json")
        return response.json()  # type: ignore[no-any-return]
    finally:
        app.state.db.dispose()


def test_every_contract_operation_is_published(spec: dict[str, Any]) -> None:
    published = {(method, path) for path, item in spec["paths"].items() for method in item}
    assert published >= CONTRACT, sorted(CONTRACT - published)


def _header(operation: dict[str, Any], name: str) -> dict[str, Any] | None:
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "header" and parameter["name"].lower() == name.lower():
            return parameter  # type: ignore[no-any-return]
    return None


@pytest.mark.parametrize("path", WRITES)
def test_every_write_declares_the_idempotency_key_header(spec: dict[str, Any], path: str) -> None:
    header = _header(spec["paths"][path]["post"], "Idempotency-Key")
    assert header is not None, spec["paths"][path]["post"].get("parameters")
    assert header["name"] == "Idempotency-Key"
    assert header["schema"].get("type") == "string" or any(
        option.get("type") == "string" for option in header["schema"].get("anyOf", [])
    )
    assert header.get("description")


def test_every_api_post_requires_the_idempotency_key(spec: dict[str, Any]) -> None:
    """Not only the contract's writes: any POST the API publishes (e.g. member links)."""
    posts = sorted(
        p for p, item in spec["paths"].items() if p.startswith("/v1/") and "post" in item
    )
    assert set(WRITES) <= set(posts)
    for path in posts:
        header = _header(spec["paths"][path]["post"], "Idempotency-Key")
        assert header is not None, path
        assert header.get("required") is True, path


def test_reads_do_not_ask_for_an_idempotency_key(spec: dict[str, Any]) -> None:
    for path, item in spec["paths"].items():
        if "get" in item and path.startswith("/v1/"):
            assert _header(item["get"], "Idempotency-Key") is None, path


def test_writes_with_a_body_declare_it(spec: dict[str, Any]) -> None:
    bodiless = {
        "/v1/members/{member_id}/unfreeze",
        "/v1/holds/{hold_id}/void",
        "/v1/transactions/{transaction_id}/reverse",
    }
    for path in WRITES:
        operation = spec["paths"][path]["post"]
        if path in bodiless:
            continue
        assert "requestBody" in operation, path
        assert "application/json" in operation["requestBody"]["content"], path


def test_success_statuses_match_the_contract(spec: dict[str, Any]) -> None:
    created = {
        "/v1/members/{member_id}/earn",
        "/v1/members/{member_id}/redeem",
        "/v1/members/{member_id}/holds",
        "/v1/transfers",
        "/v1/transactions/{transaction_id}/reverse",
        "/v1/members/{member_id}/adjustments",
    }
    for path in created:
        assert "201" in spec["paths"][path]["post"]["responses"], path
    enrol = spec["paths"]["/v1/members"]["post"]["responses"]
    assert {"200", "201"} <= set(enrol)
    balance = spec["paths"]["/v1/members/{member_id}/balance"]["get"]["responses"]["200"]
    schema = balance["content"]["application/json"]["schema"]
    ref = schema["$ref"].rsplit("/", 1)[-1]
    assert set(spec["components"]["schemas"][ref]["properties"]) == {
        "available",
        "held",
        "expiring",
    }
