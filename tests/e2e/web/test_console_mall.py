"""The console's mall over HTTP: the catalog with stock, sold, sale and owner; an item's edit
form, stock and code pool (once per form, audited, refused for roles without ``mall``); orders
filtered by status, item and member; an order's page (audited) with ship, deliver, cancel and
refund (after a confirmation), and the orders due to the 48-hour refund."""

from __future__ import annotations

import os
import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
import web_fixtures
from fastapi.testclient import TestClient
from sqlalchemy import select
from test_web_guardrails import as_staff
from test_web_http import flashes, hidden
from web_fixtures import DemoData

from support.policy import policy_of
from tally.audit.models import AuditEntry
from tally.flows import mall_orders as flow
from tally.kit.clock import utcnow
from tally.ledger import service as ledger
from tally.ledger.domain import Origin
from tally.mall import repository
from tally.mall import service as catalog
from tally.mall.models import Order
from tally.mall.schemas import ItemCreate
from tally.partners import service as partners
from tally.programme import service as programme_service

client = web_fixtures.client
demo_data = web_fixtures.demo_data
MEMBER = 3


def _code() -> str:
    return f"T{os.urandom(3).hex().upper()}"


def _item(data: DemoData, kind: str = "physical", **extra: Any) -> str:
    code = _code()
    spec = ItemCreate.model_validate(
        {
            "code": code,
            "kind": kind,
            "names": {"zh-CN": f"测试{code}", "en": f"Test {code}"},
            "price": {"points": extra.pop("points", 100)},
            **extra,
        }
    )
    with data.db.write() as session:
        programme = programme_service.running(session, utcnow())
        assert programme is not None
        catalog.create_item(session, catalog.OPERATOR, spec, programme, utcnow())
    return code


def _actor(data: DemoData) -> flow.Actor:
    with data.db.read() as session:
        return flow.Actor(
            partner_id=partners.partner_by_code(session, "MOBILE").id, is_operator=True
        )


def _order(data: DemoData, code: str, **extra: Any) -> uuid.UUID:
    actor = _actor(data)
    policy = policy_of(data.settings)
    with data.db.write() as session:
        programme = programme_service.running(session, utcnow())
        assert programme is not None
        ledger.earn(
            session,
            Origin(partner_id=actor.partner_id),
            MEMBER,
            500,
            f"mall-test-{uuid.uuid4()}",
            utcnow(),
            policy,
        )
        row = flow.place_order(
            session,
            actor,
            MEMBER,
            flow.OrderRequest(item=code, **extra),
            programme,
            policy,
            utcnow(),
        )
        return row.id


def _row(data: DemoData, order_id: uuid.UUID) -> Order:
    with data.db.read() as session:
        found = session.get(Order, order_id)
        assert found is not None
        session.expunge(found)
        return found


def _audited(data: DemoData, action: str) -> list[dict[str, Any]]:
    with data.db.read() as session:
        rows = session.scalars(
            select(AuditEntry.details).where(AuditEntry.action == action).order_by(AuditEntry.id)
        )
        return [dict(row or {}) for row in rows]


def _form(html: str, action: str) -> dict[str, str]:
    """The csrf and nonce of the form posting to ``action``."""
    start = html.index(f'action="{action}"')
    block = html[start : html.index("</form>", start)]
    return {"csrf": hidden(html, "csrf"), "nonce": hidden(block, "nonce")}


def test_the_catalog_lists_items_and_an_item_shows_its_sale(
    client: TestClient, demo_data: DemoData
) -> None:
    now = utcnow()
    sale = {
        "starts_at": (now - timedelta(minutes=5)).isoformat(),
        "ends_at": (now + timedelta(hours=1)).isoformat(),
        "points": 10,
        "stock": 20,
    }
    code = _item(demo_data, "donation", stock=7, sale=sale)
    as_staff(client, "auditor")
    listed = client.get(f"/console/mall/items?q={code.lower()}")
    assert listed.status_code == 200
    row = listed.text.split(f'data-item="{code}"', 1)[1].split("</tr>", 1)[0]
    assert ">7<" in row
    assert "运营方" in row
    assert "进行中" in row
    page = client.get(f"/console/mall/items/{code}")
    assert page.status_code == 200
    assert 'data-testid="sale-stock">20<' in page.text
    assert 'action="/console/mall/items/' not in page.text  # an auditor has no forms
    refused = client.post(
        f"/console/mall/items/{code}/stock",
        data={"csrf": hidden(page.text, "csrf"), "nonce": "x", "add": "5"},
    )
    assert refused.status_code == 403
    with demo_data.db.read() as session:
        assert repository.item_by_code(session, code).stock == 7  # type: ignore[union-attr]


def test_an_administrator_edits_an_item_once_and_bad_input_changes_nothing(
    client: TestClient, demo_data: DemoData
) -> None:
    code = _item(demo_data, "donation", stock=3)
    as_staff(client, "admin")
    url = f"/console/mall/items/{code}"
    page = client.get(url, headers={"Accept-Language": "en"}).text
    form = {
        **_form(page, f"{url}/edit"),
        "name_zh": "新名字",
        "name_en": "New name",
        "points": "250",
        "cash": "9.90",
        "currency": "CNY",
        "sale_starts_at": "2030-01-01T10:00",
        "sale_ends_at": "2030-01-01T09:00",  # before it starts
        "sale_points": "5",
        "sale_stock": "10",
        "active": "yes",
    }
    bad = client.post(f"{url}/edit", data=form, headers={"Accept-Language": "en"})
    assert bad.status_code == 422
    assert any("sale" in text for text in flashes(bad.text))
    form["sale_ends_at"] = "2030-01-01T12:00"
    saved = client.post(f"{url}/edit", data=form)
    assert saved.status_code == 303
    with demo_data.db.read() as session:
        item = repository.item_by_code(session, code)
        assert item is not None
        assert (item.points, item.cash_minor_units, item.names["en"]) == (250, 990, "New name")
        assert item.sale_points == 5
        assert item.sale_stock == 10
        assert item.sale_starts_at is not None
        assert item.sale_starts_at.hour == 2
        version = item.version
    again = client.post(f"{url}/edit", data=form)
    assert again.status_code == 303
    assert "已提交" in client.get(url).text or "already" in client.get(url).text
    with demo_data.db.read() as session:
        assert repository.item_by_code(session, code).version == version  # type: ignore[union-attr]
    assert _audited(demo_data, "mall.item_change")[-1] == {"item": code}

    page = client.get(url).text
    added = client.post(f"{url}/stock", data={**_form(page, f"{url}/stock"), "add": "4"})
    assert added.status_code == 303
    with demo_data.db.read() as session:
        assert repository.item_by_code(session, code).stock == 7  # type: ignore[union-attr]


def test_codes_are_uploaded_from_text_and_a_file(client: TestClient, demo_data: DemoData) -> None:
    code = _item(demo_data, "digital_code", low_water=3)
    as_staff(client, "admin")
    url = f"/console/mall/items/{code}"
    page = client.get(url).text
    assert 'data-testid="pool">0<' in page
    assert 'data-testid="low-water"' in page
    done = client.post(
        f"{url}/codes",
        data={**_form(page, f"{url}/codes"), "codes": "A-1\nA-2\n\nA-1\n"},
        files={"file": ("codes.txt", b"B-1\nB-2\nA-2\n", "text/plain")},
    )
    assert done.status_code == 303, done.text
    shown = client.get(url).text
    assert 'data-testid="pool">4<' in shown
    assert 'data-testid="low-water"' not in shown
    assert _audited(demo_data, "mall.codes_upload")[-1] == {"item": code, "added": 4}


def test_orders_are_filtered_shipped_delivered_and_audited(
    client: TestClient, demo_data: DemoData
) -> None:
    code = _item(demo_data, "physical", stock=5)
    order_id = _order(demo_data, code, address={"line": "1 Nanjing Road", "name": "王芳"})
    as_staff(client, "support")
    listed = client.get(f"/console/mall/orders?item={code}&status=processing")
    assert f'data-order="{order_id}" data-status="processing"' in listed.text
    assert str(order_id) not in client.get(f"/console/mall/orders?item={code}&status=shipped").text
    by_member = client.get(f"/console/mall/orders?member={MEMBER}").text
    assert str(order_id) in by_member
    refused = client.get("/console/mall/orders?member=abc", headers={"Accept-Language": "en"})
    assert any("Tally id, like 1024" in text for text in flashes(refused.text))
    assert "data-order=" not in refused.text
    page = client.get(f"/console/mall/orders/{order_id}")
    assert page.status_code == 200
    assert "王芳" in page.text
    assert 'action="/console/mall/orders/' not in page.text  # support may not fulfil
    assert _audited(demo_data, "mall.order_view")[-1] == {"order": str(order_id)}

    as_staff(client, "admin")
    url = f"/console/mall/orders/{order_id}"
    page = client.get(url).text
    assert 'data-testid="ship-by"' in page
    shipped = client.post(
        f"{url}/ship",
        data={**_form(page, f"{url}/ship"), "carrier": "SF", "tracking_number": "SF1001"},
    )
    assert shipped.status_code == 303
    row = _row(demo_data, order_id)
    assert (row.fulfilment_status.value, row.tracking_number) == ("shipped", "SF1001")
    page = client.get(url).text
    assert client.post(f"{url}/deliver", data=_form(page, f"{url}/deliver")).status_code == 303
    assert _row(demo_data, order_id).fulfilment_status.value == "delivered"
    actions = [entry["order"] for entry in _audited(demo_data, "mall.order_ship")]
    assert str(order_id) in actions


def test_a_refund_asks_for_confirmation_then_gives_points_back(
    client: TestClient, demo_data: DemoData
) -> None:
    code = _item(demo_data, "physical", stock=5, points=100)
    order_id = _order(demo_data, code, quantity=3, address={"line": "2 Road"})
    as_staff(client, "admin")
    url = f"/console/mall/orders/{order_id}"
    page = client.get(url, headers={"Accept-Language": "en"}).text
    ask = client.post(
        f"{url}/refund",
        data={**_form(page, f"{url}/refund"), "quantity": "1", "reason": "broken"},
        headers={"Accept-Language": "en"},
    )
    assert ask.status_code == 200
    assert 'data-testid="refund-confirm"' in ask.text
    assert "100 points back to the member, 1 units restocked" in ask.text
    assert _row(demo_data, order_id).refunded_points == 0  # nothing yet
    confirm = {
        "csrf": hidden(ask.text, "csrf"),
        "nonce": hidden(ask.text, "nonce"),
        "quantity": "1",
        "points": "",
        "reason": "broken",
        "confirm": "yes",
    }
    assert client.post(f"{url}/refund", data=confirm).status_code == 303
    row = _row(demo_data, order_id)
    assert (row.payment_status.value, row.refunded_points, row.refunded_quantity) == (
        "part_refunded",
        100,
        1,
    )
    assert client.post(f"{url}/refund", data=confirm).status_code == 303  # the same form again
    assert _row(demo_data, order_id).refunded_points == 100
    too_much = client.get(url).text
    refused = client.post(
        f"{url}/refund", data={**_form(too_much, f"{url}/refund"), "points": "999999"}
    )
    assert refused.status_code == 422
    assert _row(demo_data, order_id).refunded_points == 100
    page = client.get(url).text
    assert client.post(f"{url}/cancel", data=_form(page, f"{url}/cancel")).status_code == 303
    row = _row(demo_data, order_id)
    assert row.payment_status.value == "refunded"
    assert row.refunded_points == 300


def test_orders_due_to_the_automatic_refund_are_listed(
    client: TestClient, demo_data: DemoData
) -> None:
    soon = _item(demo_data, "physical", stock=5, ship_within="PT2H")
    later = _item(demo_data, "physical", stock=5, ship_within="P3D")
    due_id = _order(demo_data, soon, address={"line": "3 Road"})
    later_id = _order(demo_data, later, address={"line": "4 Road"})
    as_staff(client, "auditor")
    shown = client.get("/console/mall/orders/due?hours=6").text
    assert str(due_id) in shown
    assert str(later_id) not in shown
    assert str(later_id) in client.get("/console/mall/orders/due?hours=168").text
    assert client.get("/console/mall/orders/due?hours=0").status_code == 400
    with demo_data.db.write() as session:
        flow.ship(session, _actor(demo_data), due_id, "SF", "SF2", utcnow())
    assert str(due_id) not in client.get("/console/mall/orders/due?hours=6").text
    assert re.search(r"/console/mall/orders/due", shown)


def test_the_catalog_pages_on(
    client: TestClient, demo_data: DemoData, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = _item(demo_data, "donation"), _item(demo_data, "donation")
    monkeypatch.setattr("tally.web.console.mall_items.LIST_SIZE", 1)
    as_staff(client, "auditor")
    page = client.get("/console/mall/items?q=test").text  # the test items, not the demo's
    found = re.search(r'rel="next" href="(/console/mall/items\?after=\d+&amp;q=test)"', page)
    assert found is not None
    codes = set(re.findall(r'data-item="(T\w+)"', page))
    following = client.get(found.group(1).replace("&amp;", "&")).text
    assert len(codes) == 1
    assert codes.isdisjoint(re.findall(r'data-item="(T\w+)"', following))
    assert {first, second} - codes  # not everything on the first page


def _new_item(page: str, **fields: str) -> dict[str, str]:
    body = {
        **_form(
            page[page.index('method="post" action="/console/mall/items"') :], "/console/mall/items"
        ),
        "csrf": hidden(page, "csrf"),
        "kind": "physical",
        "name_zh": "保温杯",
        "name_en": "Flask",
        "points": "800",
        "currency": "CNY",
        "active": "yes",
    }
    return {**body, **fields}


def _count(data: DemoData, code: str) -> int:
    with data.db.read() as session:
        return 0 if repository.item_by_code(session, code) is None else 1


def test_an_administrator_creates_an_item_once_and_is_told_what_is_wrong(
    client: TestClient, demo_data: DemoData
) -> None:
    as_staff(client, "admin")
    code = _code()
    en = {"Accept-Language": "en"}
    page = client.get("/console/mall/items", headers=en).text
    assert "<details" in page
    assert "New item" in page
    form = _new_item(page, code=code, cash="19.90", stock="40")

    missing = client.post("/console/mall/items", data={**form, "name_en": ""}, headers=en)
    assert missing.status_code == 422
    assert any("names.en" in text for text in flashes(missing.text))
    assert f'value="{code}"' in missing.text  # the form keeps what was typed
    assert '<details class="new-item" id="new-item" open>' in missing.text
    booking = client.post("/console/mall/items", data={**form, "kind": "booking"}, headers=en)
    assert booking.status_code == 422
    plan = client.post("/console/mall/items", data={**form, "kind": "plan"}, headers=en)
    assert plan.status_code == 422
    assert any("plan" in text for text in flashes(plan.text))
    assert _count(demo_data, code) == 0

    created = client.post("/console/mall/items", data=form)
    assert created.status_code == 303
    assert created.headers["location"].endswith(f"/console/mall/items/{code}")
    again = client.post("/console/mall/items", data=form)
    assert again.status_code == 303
    assert again.headers["location"].endswith(f"/console/mall/items/{code}")
    with demo_data.db.read() as session:
        item = repository.item_by_code(session, code)
        assert item is not None
        assert (item.kind.value, item.points, item.cash_minor_units, item.stock) == (
            "physical",
            800,
            1990,
            40,
        )
        assert item.owner_partner_id is None
        assert item.created_by_staff_id is not None
        assert item.is_active
    assert [entry for entry in _audited(demo_data, "mall.item_create") if entry == {"item": code}]
    assert len([e for e in _audited(demo_data, "mall.item_create") if e == {"item": code}]) == 1
    shown = client.get(f"/console/mall/items/{code}").text
    assert "已提交" in shown or "already" in shown

    page = client.get("/console/mall/items").text
    taken = client.post("/console/mall/items", data=_new_item(page, code=code), headers=en)
    assert taken.status_code == 409
    assert any(f"code {code} exists already" in text for text in flashes(taken.text))
    pool_code = _code()
    page = client.get("/console/mall/items").text
    pool = client.post(
        "/console/mall/items",
        data=_new_item(page, code=pool_code, kind="digital_code", stock="9", active=""),
    )
    assert pool.status_code == 303
    with demo_data.db.read() as session:
        made = repository.item_by_code(session, pool_code)
        assert made is not None
        assert (made.stock, made.is_active) == (0, False)  # a pool starts empty


def test_a_role_without_the_mall_permission_creates_nothing(
    client: TestClient, demo_data: DemoData
) -> None:
    as_staff(client, "support")
    page = client.get("/console/mall/items").text
    assert 'method="post" action="/console/mall/items"' not in page
    code = _code()
    refused = client.post(
        "/console/mall/items",
        data={
            "csrf": hidden(page, "csrf"),
            "nonce": "x",
            "code": code,
            "kind": "donation",
            "name_zh": "树",
            "name_en": "Tree",
            "points": "10",
        },
    )
    assert refused.status_code == 403
    assert _count(demo_data, code) == 0
