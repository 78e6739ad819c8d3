"""Partners, API keys and staff accounts managed in the console (administrators only): a key is
shown once and works at once, a revoked key or a deactivated partner is refused at once, the
operator's scopes only for its own channels, nobody locks themselves out; every change audited."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import web_fixtures
from fastapi.testclient import TestClient
from sqlalchemy import select
from test_web_guardrails import as_staff
from test_web_http import flashes, hidden
from web_fixtures import PASSWORD, DemoData

from tally.audit.models import AuditEntry
from tally.staff.models import StaffRole, StaffUser

# The fixtures, by name (see web_fixtures for why they do not live in a conftest.py).
client = web_fixtures.client
demo_data = web_fixtures.demo_data

KEY = re.compile(r'data-testid="new-key">(tly_[0-9a-f]{12}\.[^<]+)<')


@pytest.fixture
def other(demo_data: DemoData) -> Iterator[TestClient]:
    """A second browser, with its own cookies."""
    from tally.app import create_app

    with TestClient(create_app(demo_data.settings, demo_data.db), follow_redirects=False) as second:
        yield second


def probe(client: TestClient, key: str) -> int:
    """The status an API call with ``key`` gets: 404 for an unknown member when the key is
    good, 401 when it is not."""
    return client.get("/v1/members/999999", headers={"Authorization": f"Bearer {key}"}).status_code


def actions(data: DemoData, action_prefix: str) -> list[tuple[str, dict[str, object] | None]]:
    with data.db.read() as session:
        rows = session.scalars(
            select(AuditEntry)
            .where(AuditEntry.action.startswith(action_prefix))
            .order_by(AuditEntry.id)
        )
        return [(row.action, row.details) for row in rows]


def nonce(client: TestClient, path: str) -> str:
    """A fresh one-time token of the creating form on the page at ``path``."""
    return hidden(client.get(path).text, "nonce")


def create_key(client: TestClient, code: str, csrf: str, *scopes: str) -> tuple[int, str]:
    response = client.post(
        f"/console/partners/{code}/keys",
        data={
            "csrf": csrf,
            "nonce": nonce(client, f"/console/partners/{code}"),
            "scopes": list(scopes),
            "label": "tills",
        },
    )
    found = KEY.search(response.text)
    return response.status_code, found.group(1) if found else ""


def test_only_administrators_manage(client: TestClient) -> None:
    for username in ("support", "auditor"):
        csrf = as_staff(client, username)
        page = client.get("/console").text
        assert 'href="/console/partners"' not in page
        for method, path in [
            ("GET", "/console/partners"),
            ("GET", "/console/staff"),
            ("POST", "/console/partners"),
            ("POST", "/console/partners/SHOP/keys"),
            ("POST", "/console/staff"),
        ]:
            response = client.request(
                method, path, data={"csrf": csrf} if method == "POST" else None
            )
            assert response.status_code == 403, (username, path)
    as_staff(client, "admin")
    assert 'href="/console/partners"' in client.get("/console").text


def test_a_registered_partner_gets_a_key_shown_once_that_works_at_once(
    client: TestClient, demo_data: DemoData
) -> None:
    csrf = as_staff(client, "admin")
    registered = client.post(
        "/console/partners",
        data={
            "csrf": csrf,
            "nonce": nonce(client, "/console/partners"),
            "code": "E2E-KEYS",
            "name": "Keys <Co>",
        },
    )
    assert registered.status_code == 303
    assert registered.headers["location"] == "/console/partners/E2E-KEYS"
    again = client.post(
        "/console/partners",
        data={
            "csrf": csrf,
            "nonce": nonce(client, "/console/partners"),  # another form: the code is taken
            "code": "E2E-KEYS",
            "name": "x",
        },
    )
    assert again.status_code == 409
    assert flashes(again.text)[-1] == "该合作方代码已被使用。"

    status, key = create_key(client, "E2E-KEYS", csrf, "read", "earn")
    assert status == 201
    assert key
    assert probe(client, key) == 404  # authenticated: the member is what is missing

    page = client.get("/console/partners/E2E-KEYS").text
    prefix = key.split(".")[0]
    assert key not in page  # shown once only
    assert f'data-key="{prefix}"' in page
    assert '<span class="chip">earn</span><span class="chip">read</span>' in page

    revoked = client.post(f"/console/partners/E2E-KEYS/keys/{prefix}/revoke", data={"csrf": csrf})
    assert revoked.status_code == 303
    assert probe(client, key) == 401
    twice = client.post(f"/console/partners/E2E-KEYS/keys/{prefix}/revoke", data={"csrf": csrf})
    assert twice.status_code == 404

    logged = actions(demo_data, "api_key.") + actions(demo_data, "partner.register")
    assert ("api_key.revoke", {"partner": "E2E-KEYS", "prefix": prefix}) in logged
    assert any(
        action == "partner.register" and details == {"partner": "E2E-KEYS", "name": "Keys <Co>"}
        for action, details in logged
    )
    assert not any(key in str(details) for _action, details in logged)  # never the secret
    with demo_data.db.read() as session:
        entry = session.scalars(
            select(AuditEntry)
            .where(AuditEntry.action == "api_key.revoke")
            .order_by(AuditEntry.id.desc())
        ).first()
        assert entry is not None
        assert (entry.actor.startswith("staff:"), entry.address) == (True, "testclient")


def test_the_transfer_scope_only_for_the_operators_channels(client: TestClient) -> None:
    csrf = as_staff(client, "admin")
    refused, none = create_key(client, "SHOP", csrf, "read", "transfer")
    assert refused == 422
    assert none == ""
    shop = client.get("/console/partners/SHOP").text
    assert 'value="transfer" disabled' in shop

    status, key = create_key(client, "MOBILE", csrf, "transfer", "read")
    assert status == 201
    assert probe(client, key) == 404


def test_a_deactivated_partners_keys_are_refused_at_once(client: TestClient) -> None:
    csrf = as_staff(client, "admin")
    client.post(
        "/console/partners",
        data={
            "csrf": csrf,
            "nonce": nonce(client, "/console/partners"),
            "code": "E2E-OFF",
            "name": "Off",
        },
    )
    _status, key = create_key(client, "E2E-OFF", csrf, "read")

    assert (
        client.post("/console/partners/E2E-OFF/deactivate", data={"csrf": csrf}).status_code == 303
    )
    assert probe(client, key) == 401
    assert client.post("/console/partners/E2E-OFF/activate", data={"csrf": csrf}).status_code == 303
    assert probe(client, key) == 404


def test_staff_accounts_are_created_changed_and_deactivated(
    client: TestClient, other: TestClient, demo_data: DemoData
) -> None:
    csrf = as_staff(client, "admin")
    form = {"csrf": csrf, "username": "e2e-olga", "display_name": "Olga", "role": "ops"}
    form["nonce"] = nonce(client, "/console/staff")
    short = client.post("/console/staff", data=form | {"password": "short"})
    assert short.status_code == 422
    assert flashes(short.text) == ["密码至少 10 个字符。"]
    created = client.post("/console/staff", data=form | {"password": PASSWORD})  # corrected
    assert created.status_code == 303
    another = form | {"password": PASSWORD, "nonce": nonce(client, "/console/staff")}
    taken = client.post("/console/staff", data=another)
    assert flashes(taken.text)[-1] == "该用户名已被使用。"
    with demo_data.db.read() as session:
        olga = session.scalars(select(StaffUser).where(StaffUser.username == "e2e-olga")).one()

    other_form = other.get("/console/sign-in")
    signed_in = other.post(
        "/console/sign-in",
        data={
            "username": "e2e-olga",
            "password": PASSWORD,
            "csrf": hidden(other_form.text, "csrf"),
        },
    )
    assert signed_in.status_code == 303
    assert other.get("/console").status_code == 200

    promoted = client.post(f"/console/staff/{olga.id}/role", data={"csrf": csrf, "role": "finance"})
    assert promoted.status_code == 303
    deactivated = client.post(f"/console/staff/{olga.id}/deactivate", data={"csrf": csrf})
    assert deactivated.status_code == 303

    assert other.get("/console").status_code == 303  # signed out at once
    with demo_data.db.read() as session:
        stored = session.get(StaffUser, olga.id)
        assert stored is not None
        assert (stored.role, stored.is_active) == (StaffRole.FINANCE, False)
    assert [
        action
        for action, _details in actions(demo_data, "staff.")
        if action in {"staff.create", "staff.role_change", "staff.deactivate"}
    ][-3:] == [
        "staff.create",
        "staff.role_change",
        "staff.deactivate",
    ]


def test_nobody_locks_themselves_out(client: TestClient, demo_data: DemoData) -> None:
    csrf = as_staff(client, "admin")
    with demo_data.db.read() as session:
        me = session.scalars(select(StaffUser).where(StaffUser.username == "admin")).one()
    page = client.get("/console/staff").text
    assert f'action="/console/staff/{me.id}/deactivate"' not in page

    for path, data in [("deactivate", {}), ("role", {"role": "support"})]:
        response = client.post(f"/console/staff/{me.id}/{path}", data={"csrf": csrf, **data})
        assert response.status_code == 409, path
        assert flashes(response.text) == ["此操作会使您或所有管理员无法使用控制台。"]
    with demo_data.db.read() as session:
        stored = session.get(StaffUser, me.id)
        assert stored is not None
        assert (stored.role, stored.is_active) == (StaffRole.ADMIN, True)
