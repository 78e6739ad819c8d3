"""The console's programme page shows the version in force and the versions scheduled (version,
when, by whom), switches at a scheduled instant by the app's clock, and plans a pasted file from
a chosen moment against the version it would follow, applying nothing."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tally.app import create_app
from tally.config import Settings
from tally.db.session import Database
from tally.kit.clock import utcnow
from tally.programme import service as programmes
from tally.programme.models import ProgrammeVersion
from tally.staff import service as staff_service
from tally.staff.models import StaffRole

DEMO = Path(__file__).resolve().parents[3] / "src" / "tally" / "demo" / "programme.yaml"
PASSWORD = "a-long-password-1"


def _text(validity: int) -> str:
    return DEMO.read_text().replace(
        "default_validity_days: 365", f"default_validity_days: {validity}"
    )


def _apply(db: Database, validity: int, now: datetime, at: datetime | None, by: str) -> int:
    text = _text(validity)
    with db.write() as session:
        return programmes.apply(session, programmes.validate(text), text, by, now, at).version


def _hidden(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found, f"no hidden field {name}"
    return found.group(1)


@pytest.fixture
def clock() -> list[datetime]:
    return [utcnow()]


@pytest.fixture
def console(
    settings: Settings, database: Database, clock: list[datetime]
) -> Iterator[tuple[TestClient, str]]:
    """A signed-in administrator's client, on an app whose clock the test moves; its CSRF."""
    with database.write() as session:
        staff_service.create(session, "admin", PASSWORD, StaffRole.ADMIN, "Admin", utcnow())
    app = create_app(settings, database)
    app.state.clock = lambda: clock[0]
    with TestClient(app, follow_redirects=False, headers={"Accept-Language": "en"}) as client:
        form = client.get("/console/sign-in")
        signed = client.post(
            "/console/sign-in",
            data={"username": "admin", "password": PASSWORD, "csrf": _hidden(form.text, "csrf")},
        )
        assert signed.status_code == 303, signed.text
        yield client, _hidden(client.get("/console").text, "csrf")


def _section(page: str, name: str) -> str:
    return page.split(f'id="{name}"')[1].split("</section>", maxsplit=1)[0]


def test_the_page_shows_what_is_in_force_and_scheduled(
    console: tuple[TestClient, str], database: Database, clock: list[datetime]
) -> None:
    client, _csrf = console
    page = client.get("/console/programme")
    assert page.status_code == 200
    assert "Nothing is scheduled." in _section(page.text, "schedule")

    start = clock[0]
    first = _apply(database, 365, start, None, "alice")
    at = start + timedelta(minutes=5)  # within the console session's idle time
    second = _apply(database, 30, start, at, "bob")
    schedule = _section(client.get("/console/programme").text, "schedule")
    assert f'<a href="/console/programme/{first}">v{first}</a>' in schedule.split("<h2>")[0]
    listed = re.findall(r'<li data-version="(\d+)">(.*?)</li>', schedule, re.S)
    assert [int(number) for number, _text in listed] == [second]
    assert "applied by bob" in listed[0][1]
    assert "Nothing is scheduled." not in schedule

    clock[0] = at  # the instant passes: the page says so without a restart
    schedule = _section(client.get("/console/programme").text, "schedule")
    assert f'<a href="/console/programme/{second}">v{second}</a>' in schedule.split("<h2>")[0]
    assert "Nothing is scheduled." in schedule


def test_a_draft_is_planned_from_a_moment_against_the_version_it_follows(
    console: tuple[TestClient, str], database: Database, clock: list[datetime]
) -> None:
    client, csrf = console
    start = clock[0]
    _apply(database, 365, start, None, "alice")
    second = _apply(database, 30, start, start + timedelta(days=2), "bob")
    with database.read() as session:
        before = session.scalar(select(func.count()).select_from(ProgrammeVersion))

    planned = client.post(
        "/console/programme/plan",
        data={"csrf": csrf, "source": _text(90), "effective_from": "2030-01-01T00:00"},
    )
    assert planned.status_code == 200, planned.text
    plan = _section(planned.text, "plan")
    basis = html.unescape(plan.split('class="plan-basis">')[1].split("</p>")[0])
    assert basis.startswith(f"Planned against v{second}")
    assert "plan-refusal" not in plan
    lines = re.findall(r"<li>([^<]*)</li>", plan.split('class="plan-lines"')[1])
    assert html.unescape(lines[0]) == "currency.default_validity_days: 30 → 90"

    now = client.post("/console/programme/plan", data={"csrf": csrf, "source": _text(90)})
    assert now.status_code == 200
    assert "taking effect now" in now.text
    assert f"Version {second} is scheduled for" in html.unescape(
        now.text.split('class="plan-refusal')[1].split("</p>")[0]
    )

    for moment in ("2020-01-01T00:00", "someday"):
        refused = client.post(
            "/console/programme/plan",
            data={"csrf": csrf, "source": _text(90), "effective_from": moment},
        )
        assert refused.status_code == 422, moment
        assert 'class="plan-errors"' in refused.text
    with database.read() as session:
        assert session.scalar(select(func.count()).select_from(ProgrammeVersion)) == before
