"""The console and the member pages over HTTP (no browser): access rules, forms, errors."""

from __future__ import annotations

import importlib
import pkgutil
import re
import uuid

import pytest
import web_fixtures
from fastapi import APIRouter
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from web_fixtures import PASSWORD, DemoData

from conftest import make_partner
from tally.api.member_links import mint_token
from tally.kit.clock import utcnow
from tally.ledger import service as ledger
from tally.ledger.models import JournalEntry
from tally.members import service as members
from tally.members.models import MemberStatus
from tally.web import console as console_package
from tally.web.console import router as console_router

# The fixtures, by name (see web_fixtures for why they do not live in a conftest.py).
client = web_fixtures.client
demo_data = web_fixtures.demo_data

HTML = "text/html; charset=utf-8"


def hidden(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no hidden field {name}"
    return found.group(1)


def adjust_nonce(html: str) -> str:
    """The one-time token of the member page's adjustment form (other forms have their own)."""
    found = re.search(r'action="/console/members/\d+/adjust"', html)
    assert found, "no adjustment form"
    return hidden(html[found.start() :], "nonce")


def flashes(html: str) -> list[str]:
    return re.findall(r'class="flash flash-\w+"[^>]*>([^<]*)<', html)


def sign_in(client: TestClient, username: str) -> str:
    """Sign in through the form; returns the session's CSRF token."""
    form = client.get("/console/sign-in")
    response = client.post(
        "/console/sign-in",
        data={"username": username, "password": PASSWORD, "csrf": hidden(form.text, "csrf")},
    )
    assert response.status_code == 303, response.text
    return hidden(client.get("/console").text, "csrf")


def available(data: DemoData, member_id: int) -> int:
    with data.db.read() as session:
        return ledger.balance(session, member_id, utcnow(), data.settings.zone).available


def entry_count(data: DemoData) -> int:
    with data.db.read() as session:
        return int(session.scalar(select(func.count()).select_from(JournalEntry)) or 0)


def console_routes() -> list[tuple[str, str]]:
    """``(method, path)`` of every staff-only console route."""
    found = []
    for router in console_router.STAFF_ROUTERS:
        for route in router.routes:
            assert isinstance(route, APIRoute)
            found.extend((method, f"/console{route.path}") for method in sorted(route.methods))
    return found


def test_every_console_module_router_is_staff_only() -> None:
    modules = [info.name for info in pkgutil.iter_modules(console_package.__path__)]
    routers = [
        getattr(importlib.import_module(f"tally.web.console.{name}"), "router", None)
        for name in modules
    ]
    declared = [router for router in routers if isinstance(router, APIRouter)]
    assert sorted(map(id, declared)) == sorted(map(id, console_router.STAFF_ROUTERS))
    public = {
        (route.path, tuple(sorted(route.methods)))
        for route in console_router.public.routes
        if isinstance(route, APIRoute)
    }
    assert public == {
        ("/console/sign-in", ("GET",)),
        ("/console/sign-in", ("POST",)),
        ("/console/sign-out", ("POST",)),
    }


def test_every_staff_route_sends_strangers_to_the_sign_in_form(client: TestClient) -> None:
    routes = console_routes()
    assert len(routes) >= 8
    for method, path in routes:
        url = path.replace("{member_id}", "1").replace("{merge_id}", "1").replace("{version}", "1")
        response = client.request(method, url)
        assert response.status_code == 303, (method, path)
        assert response.headers["location"].startswith("/console/sign-in?next="), (method, path)


def test_htmx_gets_a_redirect_header_instead_of_the_sign_in_page(client: TestClient) -> None:
    response = client.get("/console?q=138", headers={"HX-Request": "true"})
    assert response.status_code == 204
    assert response.headers["HX-Redirect"] == "/console/sign-in?next=/console%3Fq%3D138"


def test_sign_in_needs_the_form_token_and_goes_back_where_it_started(client: TestClient) -> None:
    refused = client.post(
        "/console/sign-in", data={"username": "support", "password": PASSWORD, "csrf": "x"}
    )
    assert refused.status_code == 403
    assert refused.headers["content-type"] == HTML

    form = client.get("/console/sign-in?next=/console/members/2")
    response = client.post(
        "/console/sign-in",
        data={
            "username": "support",
            "password": PASSWORD,
            "csrf": hidden(form.text, "csrf"),
            "next": hidden(form.text, "next"),
        },
    )
    assert response.headers["location"] == "/console/members/2"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie or "samesite=lax" in cookie.lower()
    assert "Path=/console" in cookie


def test_sign_in_never_redirects_to_another_site(client: TestClient) -> None:
    form = client.get("/console/sign-in")
    response = client.post(
        "/console/sign-in",
        data={
            "username": "admin",
            "password": PASSWORD,
            "csrf": hidden(form.text, "csrf"),
            "next": "//evil.example/console",
        },
    )
    assert response.headers["location"] == "/console"


def test_htmx_search_gets_only_the_results_block(client: TestClient) -> None:
    sign_in(client, "auditor")
    response = client.get("/console?q=shop-00003", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "<html" not in response.text
    assert 'href="/console/members/3"' in response.text
    assert "138****0003" in response.text  # auditors see masked phones

    nothing = client.get("/console?q=%00", headers={"HX-Request": "true"})
    assert nothing.status_code == 200


def test_the_same_adjustment_form_applies_once(client: TestClient, demo_data: DemoData) -> None:
    before = available(demo_data, 9)
    sign_in(client, "support")
    page = client.get("/console/members/9").text
    form = {"csrf": hidden(page, "csrf"), "nonce": adjust_nonce(page)}
    form |= {"points": "+1,000", "reason": "goodwill"}

    first = client.post("/console/members/9/adjust", data=form)
    second = client.post("/console/members/9/adjust", data=form)

    assert first.status_code == second.status_code == 303
    assert available(demo_data, 9) == before + 1000
    shown = client.get("/console/members/9").text
    assert flashes(shown) == ["余额已调整。", "此调整已执行过，未重复执行。"]


@pytest.mark.parametrize(
    ("points", "reason", "message"),
    [
        ("0", "x", "请输入非零整数积分"),
        ("ten", "x", "请输入非零整数积分"),
        ("10", "  ", "请填写原因"),
        ("10", "bad\x00reason", "请填写原因"),
        ("-99999999", "too much", "单次调整最多 10,000,000 积分。"),
    ],
)
def test_a_refused_adjustment_shows_why_and_writes_nothing(
    client: TestClient, demo_data: DemoData, points: str, reason: str, message: str
) -> None:
    entries = entry_count(demo_data)
    sign_in(client, "support")
    page = client.get("/console/members/10").text
    response = client.post(
        "/console/members/10/adjust",
        data={
            "csrf": hidden(page, "csrf"),
            "nonce": adjust_nonce(page),
            "points": points,
            "reason": reason,
        },
    )
    assert response.status_code in (409, 422)
    assert response.headers["content-type"] == HTML
    assert message in flashes(response.text)[0]
    assert hidden(response.text, "points") == points  # what was typed is kept
    assert entry_count(demo_data) == entries


def test_freeze_and_unfreeze(client: TestClient, demo_data: DemoData) -> None:
    csrf = sign_in(client, "support")
    frozen = client.post("/console/members/11/freeze", data={"csrf": csrf, "reason": "fraud check"})
    assert frozen.status_code == 303
    page = client.get("/console/members/11").text
    assert "会员已冻结。" in flashes(page)
    assert "已冻结：fraud check" in page
    again = client.post("/console/members/11/freeze", data={"csrf": csrf, "reason": "twice"})
    assert again.status_code == 409

    client.post("/console/members/11/unfreeze", data={"csrf": csrf})
    with demo_data.db.read() as session:
        assert members.get(session, 11).status is MemberStatus.ACTIVE


def test_merge_and_reverse_the_merge(client: TestClient, demo_data: DemoData) -> None:
    survivor, merged = 12, 13
    total = available(demo_data, survivor) + available(demo_data, merged)
    csrf = sign_in(client, "admin")

    response = client.post(
        f"/console/members/{survivor}/merge",
        data={"csrf": csrf, "other": f"#{merged}", "reason": "same person"},
    )
    assert response.status_code == 303
    assert available(demo_data, survivor) == total
    merged_page = client.get(f"/console/members/{merged}").text
    assert "已合并到" in merged_page
    assert 'form method="post" action="/console/members/13/adjust"' not in merged_page

    page = client.get(f"/console/members/{survivor}").text
    merge_id = re.search(r"/merges/(\d+)/reverse", page)
    assert merge_id
    reverse = client.post(
        f"/console/members/{survivor}/merges/{merge_id.group(1)}/reverse", data={"csrf": csrf}
    )
    assert reverse.status_code == 303
    with demo_data.db.read() as session:
        assert members.get(session, merged).status is MemberStatus.ACTIVE
    assert available(demo_data, survivor) + available(demo_data, merged) == total

    unknown = client.post(f"/console/members/{survivor}/merges/999999/reverse", data={"csrf": csrf})
    assert unknown.status_code == 404


def test_auditors_can_neither_change_anything_nor_open_as_member(client: TestClient) -> None:
    csrf = sign_in(client, "auditor")
    for action, data in [
        ("adjust", {"points": "5", "reason": "x", "nonce": "n" * 20}),
        ("freeze", {"reason": "x"}),
        ("unfreeze", {}),
        ("merge", {"other": "2", "reason": "x"}),
    ]:
        response = client.post(f"/console/members/14/{action}", data={"csrf": csrf, **data})
        assert response.status_code == 403, action
        assert "您没有执行此操作的权限。" in response.text

    opened = client.get("/console/members/14/open-as-member")
    assert opened.status_code == 403
    assert "location" not in opened.headers


def test_member_link_endpoint_needs_the_members_scope_and_an_idempotency_key(
    client: TestClient, demo_data: DemoData
) -> None:
    reader = make_partner(demo_data.db, f"RO{uuid.uuid4().hex[:6]}", "read")
    refused = client.post(
        "/v1/members/15/links", headers=reader.headers(idempotency_key=str(uuid.uuid4()))
    )
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"

    shop = {"Authorization": f"Bearer {demo_data.api_keys['SHOP']}"}
    not_operator = client.post(
        "/v1/members/15/links", headers={**shop, "Idempotency-Key": str(uuid.uuid4())}
    )
    assert not_operator.status_code == 403  # only the operator's own channel (MOBILE)
    assert not_operator.json()["reason"] == "operator_channel_only"

    auth = {"Authorization": f"Bearer {demo_data.api_keys['MOBILE']}"}
    assert client.post("/v1/members/15/links", headers=auth).status_code == 400
    missing = client.post(
        "/v1/members/999999/links", headers={**auth, "Idempotency-Key": str(uuid.uuid4())}
    )
    assert missing.status_code == 404

    key = {**auth, "Idempotency-Key": str(uuid.uuid4())}
    first = client.post("/v1/members/15/links", headers=key)
    replay = client.post("/v1/members/15/links", headers=key)
    assert first.status_code == replay.status_code == 201
    assert replay.json() == first.json()

    signed_in = client.get(first.json()["url"])
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/m"
    assert signed_in.headers["Referrer-Policy"] == "no-referrer"
    page = client.get("/m")
    assert f'data-testid="available">{available(demo_data, 15):,}<' in page.text


def test_member_pages_refuse_forged_tokens_and_merged_members(
    client: TestClient, demo_data: DemoData
) -> None:
    forged = mint_token("another-secret-entirely-xxxxxxxxxxxxxxxx", 16)
    assert client.get(f"/m/sign-in?token={forged}").status_code == 400
    assert client.get("/m/sign-in?token=%00").status_code == 400
    assert (
        client.get(
            "/m/sign-in?token=" + mint_token(demo_data.settings.secret_key, 999999)
        ).status_code
        == 403
    )
    assert 'data-reason="signed_out"' in client.get("/m").text
    assert 'data-reason="signed_out"' in client.get("/m/history").text


def test_member_sign_out_needs_the_form_token(client: TestClient, demo_data: DemoData) -> None:
    client.get("/m/sign-in?token=" + mint_token(demo_data.settings.secret_key, 17))
    page = client.get("/m").text
    assert client.post("/m/sign-out", data={"csrf": "wrong"}).status_code == 403
    assert 'data-testid="available"' in client.get("/m").text

    signed_out = client.post("/m/sign-out", data={"csrf": hidden(page, "csrf")})
    assert signed_out.headers["location"] == "/m"
    assert 'data-reason="signed_out"' in client.get("/m").text


def test_member_history_pages_with_htmx(client: TestClient, demo_data: DemoData) -> None:
    client.get("/m/sign-in?token=" + mint_token(demo_data.settings.secret_key, 1))
    page = client.get("/m/history").text
    assert page.count('class="m-row ') == 20
    more = re.search(r'hx-get="(/m/history\?before=[^"]+)"', page)
    assert more
    block = client.get(more.group(1), headers={"HX-Request": "true"})
    assert "<html" not in block.text
    assert block.text.count('class="m-row ') >= 1


def test_pages_answer_errors_in_html_and_the_api_in_problem_json(client: TestClient) -> None:
    page = client.get("/console/nowhere", headers={"Accept-Language": "en"})
    assert page.status_code == 404
    assert page.headers["content-type"] == HTML
    assert "Page not found" in page.text

    browser_typo = client.get("/nowhere", headers={"Accept": "text/html"})
    assert browser_typo.headers["content-type"] == HTML

    api = client.get("/v1/nowhere")
    assert api.status_code == 401  # who asks comes first, before whether the route exists
    assert api.headers["content-type"] == "application/problem+json"


def test_pages_carry_security_headers_and_a_versioned_stylesheet(client: TestClient) -> None:
    response = client.get("/console/sign-in")
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"
    stylesheet = re.search(r'href="(/static/css/tally\.css\?v=\w+)"', response.text)
    assert stylesheet
    assert client.get(stylesheet.group(1)).status_code == 200


def test_language_comes_from_the_switch_then_the_cookie_then_the_browser(
    client: TestClient,
) -> None:
    assert 'lang="en"' in client.get("/m", headers={"Accept-Language": "en-GB,en;q=0.9"}).text
    assert 'lang="zh-CN"' in client.get("/m", headers={"Accept-Language": "fr, zh;q=0.5"}).text
    assert 'lang="zh-CN"' in client.get("/m").text  # the programme's default

    switched = client.get("/m?lang=en", headers={"Accept-Language": "zh-CN"})
    assert 'lang="en"' in switched.text
    assert "lang=en" in switched.headers["set-cookie"]
    assert 'lang="en"' in client.get("/m", headers={"Accept-Language": "zh-CN"}).text
