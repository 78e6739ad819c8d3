"""The console's coupons over the demo: ops staff create a template and issue codes once per
form (CSRF, a one-time token, audited); an auditor sees the use but no form and is refused;
the member's wallet lists the codes valid, used and expired."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta

import web_fixtures
from fastapi.testclient import TestClient
from sqlalchemy import select
from test_web_guardrails import as_staff
from test_web_http import flashes, hidden
from web_fixtures import DemoData

from tally.api.member_links import mint_token
from tally.audit.models import AuditEntry
from tally.coupons import service as coupons
from tally.coupons.domain import Cart, Kind
from tally.coupons.models import Coupon, CouponTemplate
from tally.kit.clock import utcnow

client = web_fixtures.client
demo_data = web_fixtures.demo_data
WALLET_MEMBER = 21


def _nonce(html: str) -> str:
    found = re.search(r'name="nonce" value="([^"]+)"', html)
    assert found is not None, "no form"
    return found.group(1)


def _code() -> str:
    return f"WEB{os.urandom(3).hex().upper()}"


def test_an_administrator_creates_a_template_and_issue_codes_once(
    client: TestClient, demo_data: DemoData
) -> None:
    as_staff(client, "admin")
    listed = client.get("/console/coupons")
    code = _code()
    form = {
        "csrf": hidden(listed.text, "csrf"), "nonce": _nonce(listed.text),
        "code": code.lower(), "kind": "percent", "value": "12.5", "cap": "30.00",
        "min_spend": "100", "name_zh": "春季券", "name_en": "Spring",
        "categories": "food, drinks", "total": "50", "valid_until": "2099-12-31",
    }  # fmt: skip

    created = client.post("/console/coupons", data=form)
    again = client.post("/console/coupons", data=form)

    assert created.status_code == again.status_code == 303
    assert created.headers["location"] == f"/console/coupons/{code}"
    with demo_data.db.read() as session:
        row = coupons.template(session, code)
        assert (row.kind, row.value, row.cap, row.min_spend) == (Kind.PERCENT, 1250, 3000, 10_000)
        assert (row.categories, row.total_limit) == (["food", "drinks"], 50)
        assert row.valid_until == datetime(2099, 12, 31, 16, tzinfo=UTC)  # 1 Jan, Shanghai
    shown = client.get(created.headers["location"])
    assert "减 12.5%" in shown.text
    assert "最多减 ¥30.00" in shown.text
    issue = {"csrf": hidden(shown.text, "csrf"), "nonce": _nonce(shown.text), "count": "3"}
    done = client.post(f"/console/coupons/{code}/issue", data=issue)
    repeat = client.post(f"/console/coupons/{code}/issue", data=issue)
    assert done.status_code == 200
    assert repeat.status_code == 303
    generated = re.search(r'data-testid="issued-codes">([^<]*)<', done.text)
    assert generated is not None
    assert len(generated.group(1).split()) == 3
    assert "已发放 3 个券码" in done.text
    with demo_data.db.read() as session:
        assert session.scalar(select(CouponTemplate.issued).where(CouponTemplate.code == code)) == 3
        actions = session.scalars(
            select(AuditEntry.action).where(AuditEntry.action.like("coupon.%"))
        ).all()
    assert actions.count("coupon.template_create") >= 1
    assert actions.count("coupon.issue") >= 1
    later = client.get(f"/console/coupons/{code}")
    assert generated.group(1).split()[0] not in later.text  # listed afterwards only masked


def test_an_auditor_sees_no_form_and_is_refused(client: TestClient, demo_data: DemoData) -> None:
    as_staff(client, "auditor")
    listed = client.get("/console/coupons")
    assert listed.status_code == 200
    assert 'id="nav-coupons"' in listed.text
    assert 'name="nonce"' not in listed.text
    refused = client.post(
        "/console/coupons", data={"csrf": hidden(listed.text, "csrf"), "code": _code()}
    )
    assert refused.status_code == 403


def test_a_bad_template_form_is_refused_and_nothing_written(
    client: TestClient, demo_data: DemoData
) -> None:
    as_staff(client, "admin")
    listed = client.get("/console/coupons")
    with demo_data.db.read() as session:
        before = len(coupons.templates(session))
    form = {"csrf": hidden(listed.text, "csrf"), "nonce": _nonce(listed.text), "code": _code(),
            "kind": "amount", "value": "1.234", "name_zh": "券", "name_en": "C"}  # fmt: skip

    refused = client.post("/console/coupons", data=form)

    assert refused.status_code == 422
    assert flashes(refused.text)
    with demo_data.db.read() as session:
        assert len(coupons.templates(session)) == before


def test_the_wallet_shows_valid_used_and_expired(client: TestClient, demo_data: DemoData) -> None:
    now = utcnow()
    with demo_data.db.write() as session:
        made = {}
        for name, until in (
            ("VALID", now + timedelta(days=9)),
            ("USED", None),
            ("GONE", now - timedelta(days=1)),
        ):
            names = {"zh-CN": f"{name}券", "en": name}
            spec = coupons.TemplateSpec(_code(), Kind.AMOUNT, 1500, names, valid_until=until)
            made[name] = coupons.create_template(session, spec, "CNY", now)
            issued_at = now - timedelta(days=2)  # GONE was still valid then
            coupons.issue(
                session, made[name], coupons.Issuer(), issued_at, member_ids=[WALLET_MEMBER]
            )
        used = session.scalar(select(Coupon.code).where(Coupon.template_id == made["USED"].id))
        assert used is not None
        checkout = coupons.Checkout(partner_id=1, partner_code="SHOP")
        coupons.redeem(session, coupons.Ask(used, Cart(5000), WALLET_MEMBER), checkout, now)
    client.get(f"/m/sign-in?token={mint_token(demo_data.settings.secret_key, WALLET_MEMBER)}")
    wallet = client.get("/m/coupons")

    assert wallet.status_code == 200, wallet.text
    states = re.findall(r'data-state="(\w+)"', wallet.text)
    assert states.count("valid") >= 1
    assert "used" in states
    assert "expired" in states
    assert "VALID券" in wallet.text
    assert "减 ¥15.00" in wallet.text
    assert "已使用" in wallet.text
    assert "已于" in wallet.text
    english = client.get("/m/coupons", headers={"Accept-Language": "en"}, params={"lang": "en"})
    assert "My coupons" in english.text
    assert "¥15.00 off" in english.text
