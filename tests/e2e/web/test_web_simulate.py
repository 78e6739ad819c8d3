"""The console simulates an uploaded draft on stored events: the same report as
``tally rules simulate``, in both languages; administrators only, with the form token; nothing
written."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import web_fixtures
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from web_fixtures import DemoData

from tally.events.models import RuleCounter, StoredEvent
from tally.flows import event_intake
from tally.flows.enrolment import enrol
from tally.flows.event_intake import Reported
from tally.kit.clock import utcnow
from tally.ledger.domain import Origin
from tally.ledger.posting import policy_for
from tally.members.service import Identity
from tally.partners import service as partners
from tally.programme import runtime
from tally.programme import service as programmes
from tally.programme.loader import dump

client = web_fixtures.client
demo_data = web_fixtures.demo_data

# A Wednesday long past: no other suite reports events that happened then.
DAY = "2026-06-03"
AT = datetime(2026, 6, 3, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


def hidden(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found, f"no hidden field {name}"
    return found.group(1)


def sign_in(client: TestClient, username: str) -> str:
    form = client.get("/console/sign-in")
    response = client.post(
        "/console/sign-in",
        data={
            "username": username,
            "password": web_fixtures.PASSWORD,
            "csrf": hidden(form.text, "csrf"),
        },
    )
    assert response.status_code == 303, response.text
    return hidden(client.get("/console").text, "csrf")


@pytest.fixture(scope="module")
def stored(demo_data: DemoData) -> int:
    """A new member's purchase of 120.00 on :data:`DAY`, processed online; the member's id."""
    with demo_data.db.write() as session:
        member = enrol(session, Identity("phone", "13712340001"), {}, utcnow())[0]
        programme = runtime.effective(session, demo_data.settings)
        shop = partners.partner_by_code(session, "SHOP")
        assert shop is not None
        [processed] = event_intake.process(
            session,
            Origin(partner_id=shop.id),
            [Reported("purchase", "sim-1", member, AT, Decimal("120.00"), "CNY")],
            utcnow(),
            policy_for(programme, demo_data.settings),
            programme,
            event_intake.book_for(programme),
        )
    assert isinstance(processed, event_intake.Processed)
    assert processed.points == 120, processed.outcome
    return member


def draft_doubling_base(demo_data: DemoData) -> str:
    with demo_data.db.read() as session:
        running = programmes.running(session)
    assert running is not None
    content = yaml.safe_load(dump(running))
    base = next(c for c in content["campaigns"] if c["code"] == "BASE")
    base["rules"][0]["award"]["points_per"]["points"] = 2
    base["rules"][1]["award"]["growth_per"]["growth"] = 10
    return yaml.safe_dump(content, allow_unicode=True, sort_keys=False)


def counts(data: DemoData) -> tuple[int, int]:
    with data.db.read() as session:
        return (
            int(session.scalar(select(func.count()).select_from(StoredEvent)) or 0),
            int(session.scalar(select(func.sum(RuleCounter.used))) or 0),
        )


def cells(page: str, row: str) -> list[str]:
    found = re.search(rf"<tr {row}[^>]*>(.*?)</tr>", page, re.S)
    assert found, row
    return [
        html.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
        for cell in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", found.group(1), re.S)
    ]


def simulate(client: TestClient, csrf: str, source: str, **period: str) -> tuple[int, str]:
    response = client.post(
        "/console/programme/simulate?lang=en",
        data={"csrf": csrf, "since": DAY, "until": DAY, **period},
        files={"draft": ("draft.yaml", source.encode(), "application/yaml")},
    )
    return response.status_code, response.text


def test_an_administrator_simulates_a_draft_and_reads_its_report(
    client: TestClient, demo_data: DemoData, stored: int
) -> None:
    csrf = sign_in(client, "admin")
    programme = client.get("/console/programme?lang=en").text
    assert 'href="/console/programme/simulate"' in programme
    form = client.get("/console/programme/simulate?lang=en").text
    assert 'enctype="multipart/form-data"' in form
    before = counts(demo_data)

    status, page = simulate(client, csrf, draft_doubling_base(demo_data))

    assert status == 200, page
    assert "1 stored events replayed" in page
    assert cells(page, 'data-total="points"') == ["Points", "120", "240", "+120"]
    assert cells(page, 'data-total="growth"') == ["Growth value", "120", "1,200", "+1,080"]
    assert cells(page, 'data-total="cost"') == ["Cost", "CN¥1.20", "CN¥2.40", "CN¥1.20"]
    assert cells(page, 'data-line="BASE/per-yuan"') == [
        "per-yuan",
        "120",
        "240",
        "0",
        "0",
        "1",
        "1",
    ]
    # 1,200 growth reaches SILVER (1,000) where 120 kept the new member BRONZE.
    assert cells(page, f'data-member="{stored}"') == [
        str(stored),
        "120",
        "1,200",
        "BRONZE",
        "SILVER",
    ]
    assert "1 events priced differently by the draft." in page
    assert counts(demo_data) == before  # nothing written

    chinese = client.post(
        "/console/programme/simulate?lang=zh-CN",
        data={"csrf": csrf, "since": DAY, "until": DAY},
        files={"draft": ("draft.yaml", draft_doubling_base(demo_data).encode(), "text/yaml")},
    ).text
    assert "已重放 1 个已存储事件" in chinese
    assert cells(chinese, 'data-total="points"') == ["积分", "120", "240", "+120"]


def test_a_broken_draft_or_period_is_answered_with_each_error(
    client: TestClient, demo_data: DemoData, stored: int
) -> None:
    csrf = sign_in(client, "admin")
    source = draft_doubling_base(demo_data)
    before = counts(demo_data)

    status, page = simulate(client, csrf, source.replace("Asia/Shanghai", "Asia/Nowhere"))
    assert status == 422
    [error] = re.findall(r'<li class="mono">([^<]*)</li>', page)
    assert re.fullmatch(
        r"draft\.yaml:\d+: currency\.timezone: 'Asia/Nowhere' is not an IANA time zone "
        r"\(e\.g\. Asia/Shanghai\)",
        html.unescape(error),
    ), error

    status, page = simulate(client, csrf, source, since="2026-06-04", until="2026-06-03")
    assert status == 422
    assert "--since 2026-06-04 is after --until 2026-06-03." in html.unescape(page)

    status, page = simulate(client, csrf, "")
    assert status == 422
    assert "Choose a draft programme file." in page
    assert counts(demo_data) == before


def test_only_administrators_simulate_and_every_simulation_needs_the_form_token(
    client: TestClient, demo_data: DemoData
) -> None:
    csrf = sign_in(client, "support")
    assert "/console/programme/simulate" not in client.get("/console/programme").text
    assert client.get("/console/programme/simulate").status_code == 403
    refused = client.post(
        "/console/programme/simulate",
        data={"csrf": csrf},
        files={"draft": ("draft.yaml", b"x: 1", "text/yaml")},
    )
    assert refused.status_code == 403

    client.post("/console/sign-out", data={"csrf": csrf})
    sign_in(client, "admin")
    forged = client.post(
        "/console/programme/simulate",
        files={"draft": ("draft.yaml", draft_doubling_base(demo_data).encode(), "text/yaml")},
    )
    assert forged.status_code == 403
    assert "simulate-totals" not in forged.text
