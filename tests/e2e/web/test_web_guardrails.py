"""The console's adjustment guardrails over HTTP: limits per role, the confirmation of large
amounts, impossible amounts refused with the real limit, and the requests page (approve once,
reject, withdraw; never one's own request). Refusals write nothing."""

from __future__ import annotations

import re
from datetime import timedelta

import web_fixtures
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from test_web_http import HTML, adjust_nonce, available, entry_count, flashes, hidden, sign_in
from web_fixtures import DemoData

from tally.adjustments.models import AdjustmentRequest
from tally.kit.clock import end_of_day, utcnow
from tally.ledger.models import Lot
from tally.programme.models import ProgrammeVersion
from tally.staff import service as staff
from tally.staff.models import StaffRole

# The fixtures, by name (see web_fixtures for why they do not live in a conftest.py).
client = web_fixtures.client
demo_data = web_fixtures.demo_data


def as_staff(client: TestClient, username: str) -> str:
    """Sign in afresh as ``username``; the session's CSRF token."""
    client.cookies.clear()
    return sign_in(client, username)


def adjust_form(client: TestClient, member_id: int, points: str, **extra: str) -> dict[str, str]:
    page = client.get(f"/console/members/{member_id}").text
    return {
        "csrf": hidden(page, "csrf"),
        "nonce": adjust_nonce(page),
        "points": points,
        "reason": "goodwill",
        **extra,
    }


def request_count(data: DemoData) -> int:
    with data.db.read() as session:
        return int(session.scalar(select(func.count()).select_from(AdjustmentRequest)) or 0)


def file_request(client: TestClient, member_id: int, points: str) -> int:
    """Support (limit 5,000 in the demo programme) asks for ``points``; the request's number."""
    as_staff(client, "support")
    response = client.post(
        f"/console/members/{member_id}/adjust", data=adjust_form(client, member_id, points)
    )
    assert response.status_code == 303
    shown = flashes(client.get(f"/console/members/{member_id}").text)
    found = re.search(r"#(\d+)", shown[0])
    assert found, shown
    return int(found.group(1))


def test_within_the_limit_support_adjusts_at_once(client: TestClient, demo_data: DemoData) -> None:
    before = available(demo_data, 15)
    as_staff(client, "support")
    page = client.get("/console/members/15").text
    assert "您可以独自调整最多 5,000 积分" in page
    assert "单次调整不得超过 10,000,000 积分" in page

    response = client.post("/console/members/15/adjust", data=adjust_form(client, 15, "5,000"))

    assert response.status_code == 303
    assert available(demo_data, 15) == before + 5_000


def test_above_the_limit_the_form_files_a_request_and_posts_nothing(
    client: TestClient, demo_data: DemoData
) -> None:
    before, entries = available(demo_data, 16), entry_count(demo_data)

    number = file_request(client, 16, "6000")

    assert available(demo_data, 16) == before
    assert entry_count(demo_data) == entries
    page = client.get("/console/members/16").text
    assert "待审批的调整申请" in page
    assert f'href="/console/adjustments#request-{number}"' in page
    assert 'data-testid="pending-count"' in page  # the navigation counts it
    with demo_data.db.read() as session:
        stored = session.get(AdjustmentRequest, number)
        assert stored is not None
        assert (stored.member_id, stored.points, stored.role_limit) == (16, 6_000, 5_000)
        in_force = session.scalar(select(func.max(ProgrammeVersion.version)))
        assert stored.programme_version == in_force


def test_a_large_amount_is_posted_only_once_re_typed(
    client: TestClient, demo_data: DemoData
) -> None:
    before, entries = available(demo_data, 17), entry_count(demo_data)
    as_staff(client, "admin")
    form = adjust_form(client, 17, "50000")

    asked = client.post("/console/members/17/adjust", data=form)
    assert asked.status_code == 200
    assert "为会员 #17 增加 50,000 积分（价值 ¥500.00）？" in asked.text
    assert 'name="confirm"' in asked.text
    assert adjust_nonce(asked.text) == form["nonce"]  # the same form, confirmed next
    assert entry_count(demo_data) == entries

    mistyped = client.post("/console/members/17/adjust", data=form | {"confirm": "5000"})
    assert mistyped.status_code == 422
    assert flashes(mistyped.text) == ["确认时输入的数额不一致，请重新输入。"]
    assert entry_count(demo_data) == entries

    confirmed = client.post("/console/members/17/adjust", data=form | {"confirm": "50,000"})
    assert confirmed.status_code == 303
    assert available(demo_data, 17) == before + 50_000


def test_an_impossible_amount_is_refused_with_the_real_limit(
    client: TestClient, demo_data: DemoData
) -> None:
    entries, filed = entry_count(demo_data), request_count(demo_data)
    as_staff(client, "admin")
    for points in ("1000000000", "-10000001"):
        form = adjust_form(client, 18, points, confirm=points)
        response = client.post("/console/members/18/adjust", data=form)
        assert response.status_code == 422
        assert response.headers["content-type"] == HTML
        assert flashes(response.text) == ["单次调整最多 10,000,000 积分。未做任何更改。"]
    assert (entry_count(demo_data), request_count(demo_data)) == (entries, filed)


def test_another_approver_approves_once_from_the_requests_page(
    client: TestClient, demo_data: DemoData
) -> None:
    before = available(demo_data, 19)
    number = file_request(client, 19, "7000")

    own = client.get("/console/adjustments").text
    assert f'action="/console/adjustments/{number}/withdraw"' in own
    assert f'action="/console/adjustments/{number}/approve"' not in own
    refused = client.post(
        f"/console/adjustments/{number}/approve", data={"csrf": hidden(own, "csrf")}
    )
    assert refused.status_code == 403
    assert flashes(refused.text) == ["您不能审批自己提交的申请，须由其他员工处理。"]

    csrf = as_staff(client, "admin")
    listed = client.get("/console/adjustments").text
    assert f'action="/console/adjustments/{number}/approve"' in listed
    first = client.post(f"/console/adjustments/{number}/approve", data={"csrf": csrf})
    second = client.post(f"/console/adjustments/{number}/approve", data={"csrf": csrf})

    assert first.status_code == 303
    assert second.status_code == 409
    assert flashes(second.text) == [f"申请 #{number} 已批准并入账。", "该申请已处理。"]
    assert available(demo_data, 19) == before + 7_000
    decided = client.get("/console/adjustments").text
    assert "已批准并入账" in decided.split('id="decided"')[1]


def test_nobody_approves_their_own_request(client: TestClient, demo_data: DemoData) -> None:
    as_staff(client, "admin")
    form = adjust_form(client, 20, "200000", confirm="200000")  # above the admin's 100,000
    assert client.post("/console/members/20/adjust", data=form).status_code == 303
    with demo_data.db.read() as session:
        number = session.scalar(select(func.max(AdjustmentRequest.id)))
    before = available(demo_data, 20)
    csrf = hidden(client.get("/console/adjustments").text, "csrf")

    response = client.post(f"/console/adjustments/{number}/approve", data={"csrf": csrf})

    assert response.status_code == 403
    assert flashes(response.text) == ["您不能审批自己提交的申请，须由其他员工处理。"]
    assert available(demo_data, 20) == before


def test_reject_needs_a_note_and_posts_nothing(client: TestClient, demo_data: DemoData) -> None:
    with demo_data.db.write() as session:
        staff.create(session, "finn", web_fixtures.PASSWORD, StaffRole.FINANCE, "Finn", utcnow())
    before = available(demo_data, 15)
    number = file_request(client, 15, "6500")

    csrf = as_staff(client, "finn")
    bare = client.post(f"/console/adjustments/{number}/reject", data={"csrf": csrf, "note": " "})
    assert bare.status_code == 422
    rejected = client.post(
        f"/console/adjustments/{number}/reject", data={"csrf": csrf, "note": "no receipt"}
    )
    assert rejected.status_code == 303
    again = client.post(f"/console/adjustments/{number}/approve", data={"csrf": csrf})
    assert again.status_code == 409
    assert available(demo_data, 15) == before
    with demo_data.db.read() as session:
        stored = session.get(AdjustmentRequest, number)
        assert stored is not None
        assert (stored.status.value, stored.decision_note, stored.entry_id) == (
            "rejected",
            "no receipt",
            None,
        )


def test_auditors_see_requests_but_cannot_decide(client: TestClient, demo_data: DemoData) -> None:
    number = file_request(client, 16, "5500")
    csrf = as_staff(client, "auditor")
    page = client.get("/console/adjustments").text
    assert f'id="request-{number}"' in page
    assert "/approve" not in page
    for action in ("approve", "reject", "withdraw"):
        response = client.post(
            f"/console/adjustments/{number}/{action}", data={"csrf": csrf, "note": "x"}
        )
        assert response.status_code == 403, action
    with demo_data.db.read() as session:
        stored = session.get(AdjustmentRequest, number)
        assert stored is not None
        assert stored.status.value == "pending"


def test_credited_points_may_be_given_a_last_valid_day_also_through_a_request(
    client: TestClient, demo_data: DemoData
) -> None:
    zone = demo_data.settings.zone
    day = (utcnow().astimezone(zone) + timedelta(days=45)).date()
    as_staff(client, "support")
    entries = entry_count(demo_data)
    for points, expires in (("300", "2020-01-01"), ("-300", day.isoformat()), ("300", "soon")):
        refused = client.post(
            "/console/members/18/adjust", data=adjust_form(client, 18, points, expires=expires)
        )
        assert refused.status_code == 422, (points, expires)
        assert flashes(refused.text) == [
            "有效期须为今天之后的日期（如 2027-06-30），且仅用于增加的积分。"
        ]
    assert entry_count(demo_data) == entries

    form = adjust_form(client, 18, "6000", expires=day.isoformat())
    assert client.post("/console/members/18/adjust", data=form).status_code == 303
    with demo_data.db.read() as session:
        number = session.scalar(select(func.max(AdjustmentRequest.id)))
        stored = session.get(AdjustmentRequest, number)
        assert stored is not None
        assert stored.expires_at == end_of_day(day, zone)
    csrf = as_staff(client, "admin")
    assert (
        client.post(f"/console/adjustments/{number}/approve", data={"csrf": csrf}).status_code
        == 303
    )
    with demo_data.db.read() as session:
        stored = session.get(AdjustmentRequest, number)
        assert stored is not None
        lot = session.scalars(select(Lot).where(Lot.entry_id == stored.entry_id)).one()
        assert (lot.points, lot.expires_at) == (6_000, end_of_day(day, zone))


def test_a_large_debit_is_confirmed_with_its_value(client: TestClient, demo_data: DemoData) -> None:
    as_staff(client, "admin")
    asked = client.post("/console/members/17/adjust", data=adjust_form(client, 17, "-20000"))
    assert asked.status_code == 200
    assert "从会员 #17 扣除 20,000 积分（价值 ¥200.00）？" in asked.text
