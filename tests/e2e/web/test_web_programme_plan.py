"""The console plans a pasted programme file: what applying it would change and its impact on
members, or each error with its line and field; nothing is applied; administrators only."""

from __future__ import annotations

import html
import re
from pathlib import Path

import web_fixtures
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from web_fixtures import PASSWORD, DemoData

from tally.flows import programme_impact
from tally.kit.clock import utcnow
from tally.programme import loader
from tally.programme import service as programmes
from tally.programme.models import ProgrammeVersion

client = web_fixtures.client
demo_data = web_fixtures.demo_data

DEMO = Path(__file__).resolve().parents[3] / "src" / "tally" / "demo" / "programme.yaml"


def hidden(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found, f"no hidden field {name}"
    return found.group(1)


def sign_in(client: TestClient, username: str) -> str:
    """Sign in through the form; the session's CSRF token."""
    form = client.get("/console/sign-in")
    response = client.post(
        "/console/sign-in",
        data={"username": username, "password": PASSWORD, "csrf": hidden(form.text, "csrf")},
    )
    assert response.status_code == 303, response.text
    return hidden(client.get("/console").text, "csrf")


def without_black_diamond() -> str:
    content = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    content["tiers"] = [tier for tier in content["tiers"] if tier["code"] != "BLACK_DIAMOND"]
    return yaml.safe_dump(content, allow_unicode=True, sort_keys=False)


def versions(data: DemoData) -> int:
    with data.db.read() as session:
        return int(session.scalar(select(func.count()).select_from(ProgrammeVersion)) or 0)


def test_an_administrator_plans_a_file_and_sees_its_impact(
    client: TestClient, demo_data: DemoData
) -> None:
    csrf = sign_in(client, "admin")
    assert 'action="/console/programme/plan#plan"' in client.get("/console/programme").text
    source = without_black_diamond()
    before = versions(demo_data)

    response = client.post("/console/programme/plan", data={"csrf": csrf, "source": source})

    assert response.status_code == 200, response.text
    with demo_data.db.read() as session:
        running = programmes.running(session)
        assert running is not None
        expected = programme_impact.plan(session, running, loader.load(source), utcnow())
    assert any(line.startswith("tier BLACK_DIAMOND removed: ") for line in expected)
    listed = re.findall(r"<li>([^<]*)</li>", response.text.split('class="plan-lines"')[1])
    assert [html.unescape(item) for item in listed] == expected
    assert versions(demo_data) == before  # planned, not applied


def test_a_file_that_does_not_validate_lists_each_error_with_its_line(
    client: TestClient, demo_data: DemoData
) -> None:
    csrf = sign_in(client, "admin")
    source = DEMO.read_text(encoding="utf-8").replace("theme: black-gold", "theme: gold", 1)
    before = versions(demo_data)

    response = client.post("/console/programme/plan", data={"csrf": csrf, "source": source})

    assert response.status_code == 422
    [error] = re.findall(r'<li class="mono">([^<]*)</li>', response.text)
    assert re.fullmatch(
        r"programme\.yaml:\d+: tiers\[4\]\.flags\.theme: no theme 'gold'; the member pages "
        r"have default, black-gold",
        html.unescape(error),
    ), error
    assert html.unescape(source) in html.unescape(response.text)  # the text is kept to fix it
    assert versions(demo_data) == before


def test_only_administrators_plan_and_every_plan_needs_the_form_token(
    client: TestClient, demo_data: DemoData
) -> None:
    csrf = sign_in(client, "support")
    assert "/console/programme/plan" not in client.get("/console/programme").text
    refused = client.post("/console/programme/plan", data={"csrf": csrf, "source": "x: 1"})
    assert refused.status_code == 403

    client.post("/console/sign-out", data={"csrf": csrf})
    sign_in(client, "admin")
    forged = client.post("/console/programme/plan", data={"source": without_black_diamond()})
    assert forged.status_code == 403
    assert "plan-lines" not in forged.text
