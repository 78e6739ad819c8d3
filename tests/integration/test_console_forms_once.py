"""Console forms that create something are submitted once, on SQLite and PostgreSQL, through the
console's own routes: the same form sent twice — a double click, a refresh, back and submit again,
even both at the same instant — creates exactly one API key (its secret shown once, never
again), one partner, one staff account, one adjustment; the second submit is told what the first
did. A token from another session or another form, or none, creates nothing."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from support.race import race
from tally.audit.models import AuditEntry
from tally.db.session import Database
from tally.flows import enrolment
from tally.kit.clock import utcnow
from tally.ledger.models import JournalEntry
from tally.members.service import Identity
from tally.partners import service as partners
from tally.partners.models import ApiKey, Partner
from tally.staff import service as staff_service
from tally.staff.models import StaffRole, StaffUser

PASSWORD = "a-long-password"
KEY = re.compile(r'data-testid="new-key">(tly_[0-9a-f]{12}\.[^<]+)<')


@dataclass
class Console:
    app: FastAPI
    db: Database
    partner: str
    member: int
    browsers: list[TestClient] = field(default_factory=list)


@pytest.fixture
def console(app: FastAPI, database: Database) -> Iterator[Console]:
    with database.write() as session:
        staff_service.create(session, "ada", PASSWORD, StaffRole.ADMIN, "Ada", utcnow())
        partners.create_partner(session, "SHOP", "Select Mall", utcnow())
        member, _ = enrolment.enrol(session, Identity("phone", "13800000001"), {}, utcnow())
    site = Console(app, database, "SHOP", member)
    yield site
    for browser in site.browsers:
        browser.__exit__(None, None, None)


def signed_in(site: Console) -> TestClient:
    """A browser of its own, signed in as the administrator."""
    browser = TestClient(site.app, follow_redirects=False)
    browser.__enter__()
    site.browsers.append(browser)
    csrf = hidden(browser.get("/console/sign-in").text, "csrf")
    answer = browser.post(
        "/console/sign-in", data={"username": "ada", "password": PASSWORD, "csrf": csrf}
    )
    assert answer.status_code == 303, answer.text
    return browser


def hidden(html: str, name: str, after: str = "") -> str:
    """The value of the hidden field ``name`` (in the form whose action follows ``after``)."""
    start = html.index(after) if after else 0
    found = re.search(rf'name="{name}" value="([^"]*)"', html[start:])
    assert found, f"no hidden field {name}"
    return found.group(1)


def flashes(html: str) -> list[str]:
    return re.findall(r'class="flash flash-\w+"[^>]*>([^<]*)<', html)


def count(db: Database, model: type, **where: object) -> int:
    with db.read() as session:
        query = select(func.count()).select_from(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return int(session.scalar(query) or 0)


def key_form(browser: TestClient, code: str) -> dict[str, object]:
    page = browser.get(f"/console/partners/{code}").text
    return {
        "csrf": hidden(page, "csrf"),
        "nonce": hidden(page, "nonce", f'action="/console/partners/{code}/keys"'),
        "scopes": ["read", "earn"],
        "label": "tills",
    }


def keys_of(db: Database, code: str) -> list[str]:
    with db.read() as session:
        found = session.scalars(
            select(ApiKey.prefix)
            .join(Partner, Partner.id == ApiKey.partner_id)
            .where(Partner.code == code)
        )
        return list(found)


def test_the_same_key_form_sent_twice_creates_one_key_and_never_shows_it_again(
    console: Console,
) -> None:
    browser = signed_in(console)
    form = key_form(browser, console.partner)

    first = browser.post(f"/console/partners/{console.partner}/keys", data=form)
    second = browser.post(f"/console/partners/{console.partner}/keys", data=form)  # refresh

    assert first.status_code == 201
    secret = KEY.search(first.text)
    assert secret is not None
    prefix = secret.group(1).split(".")[0]
    assert second.status_code == 303
    assert second.headers["location"] == f"/console/partners/{console.partner}"
    shown = browser.get(second.headers["location"]).text
    assert secret.group(1) not in second.text + shown  # never its secret a second time
    assert flashes(shown) == [
        f"此表单已提交过：当时已创建密钥 {prefix}。"
        "密钥只显示一次；如未复制，请吊销该密钥并重新创建。"
    ]
    assert keys_of(console.db, console.partner) == [prefix]
    assert count(console.db, AuditEntry, action="api_key.create") == 1


def test_a_double_click_racing_on_the_same_key_form_creates_one_key(console: Console) -> None:
    browser = signed_in(console)
    form = key_form(browser, console.partner)

    outcomes = clicks(browser, console, f"/console/partners/{console.partner}/keys", form)

    assert sorted(outcomes) == [201, 303, 303, 303], outcomes  # type: ignore[type-var]
    assert len(keys_of(console.db, console.partner)) == 1
    assert count(console.db, AuditEntry, action="api_key.create") == 1


def test_a_new_form_creates_another_key(console: Console) -> None:
    browser = signed_in(console)

    for _ in range(2):
        created = browser.post(
            f"/console/partners/{console.partner}/keys", data=key_form(browser, console.partner)
        )
        assert created.status_code == 201

    assert len(keys_of(console.db, console.partner)) == 2


@pytest.mark.parametrize("token", ["", "garbage", "A" * 16 + "." + "0" * 32])
def test_a_key_form_without_this_sessions_token_creates_nothing(
    console: Console, token: str
) -> None:
    browser = signed_in(console)
    form = key_form(browser, console.partner) | {"nonce": token}

    refused = browser.post(f"/console/partners/{console.partner}/keys", data=form)

    assert refused.status_code == 422
    assert flashes(refused.text)[-1] == "表单已失效，请刷新页面后重试。"
    assert keys_of(console.db, console.partner) == []


def test_a_token_is_bound_to_its_session_and_to_its_form(console: Console) -> None:
    browser, other = signed_in(console), signed_in(console)
    theirs = key_form(other, console.partner)
    partners_page = browser.get("/console/partners").text
    register_token = hidden(partners_page, "nonce", 'action="/console/partners"')

    stolen = browser.post(
        f"/console/partners/{console.partner}/keys",
        data=key_form(browser, console.partner) | {"nonce": theirs["nonce"]},
    )
    misused = browser.post(
        f"/console/partners/{console.partner}/keys",
        data=key_form(browser, console.partner) | {"nonce": register_token},
    )

    assert stolen.status_code == misused.status_code == 422
    assert keys_of(console.db, console.partner) == []


def test_a_refused_form_is_not_used_up(console: Console) -> None:
    """Nothing was created, so the operator corrects the same form and sends it again."""
    browser = signed_in(console)
    form = key_form(browser, console.partner)

    refused = browser.post(f"/console/partners/{console.partner}/keys", data=form | {"scopes": []})
    corrected = browser.post(f"/console/partners/{console.partner}/keys", data=form)

    assert refused.status_code == 422
    assert corrected.status_code == 201
    assert len(keys_of(console.db, console.partner)) == 1


def test_the_same_partner_form_sent_twice_registers_one_partner(console: Console) -> None:
    browser = signed_in(console)
    page = browser.get("/console/partners").text
    form = {"csrf": hidden(page, "csrf"), "nonce": hidden(page, "nonce"), "code": "HOTEL"}

    first = browser.post("/console/partners", data=form | {"name": "Cloudrest"})
    again = browser.post("/console/partners", data=form | {"name": "Cloudrest, edited"})

    assert first.status_code == again.status_code == 303
    assert again.headers["location"] == "/console/partners/HOTEL"
    assert flashes(browser.get("/console/partners/HOTEL").text) == [
        "合作方 HOTEL 已注册。",
        "此表单已提交过：合作方 HOTEL 已注册。",
    ]
    assert count(console.db, Partner, code="HOTEL") == 1
    assert count(console.db, AuditEntry, action="partner.register") == 1


def test_two_forms_racing_to_register_one_code_register_it_once(console: Console) -> None:
    """Two different forms (two tabs) at once: one registers, the other is told the code is
    taken — a refusal, not an error, on either database."""
    browser = signed_in(console)
    cookies = dict(browser.cookies)
    forms = []
    for _ in range(2):
        page = browser.get("/console/partners").text
        forms.append({"csrf": hidden(page, "csrf"), "nonce": hidden(page, "nonce"), "code": "SPA"})

    def submit(index: int) -> object:
        with TestClient(console.app, follow_redirects=False, cookies=cookies) as tab:
            return tab.post("/console/partners", data=forms[index]).status_code

    outcomes = race(2, submit)

    assert sorted(outcomes) == [303, 409], outcomes  # type: ignore[type-var]
    assert count(console.db, Partner, code="SPA") == 1
    assert count(console.db, AuditEntry, action="partner.register") == 1


def test_the_same_staff_form_sent_twice_creates_one_account(console: Console) -> None:
    browser = signed_in(console)
    page = browser.get("/console/staff").text
    form = {
        "csrf": hidden(page, "csrf"),
        "nonce": hidden(page, "nonce"),
        "username": "olga",
        "display_name": "Olga",
        "role": "ops",
        "password": PASSWORD,
    }

    first = browser.post("/console/staff", data=form)
    back_and_again = browser.post("/console/staff", data=form)

    assert first.status_code == back_and_again.status_code == 303
    assert flashes(browser.get("/console/staff").text) == [
        "员工账号 olga 已创建。",
        "此表单已提交过：员工账号 olga 已存在。",
    ]
    assert count(console.db, StaffUser, username="olga") == 1
    assert count(console.db, AuditEntry, action="staff.create") == 1


def clicks(browser: TestClient, site: Console, path: str, form: dict[str, object]) -> list[object]:
    """The statuses of four submits of ``form`` at the same instant, from the same session."""
    cookies = dict(browser.cookies)

    def submit(_index: int) -> object:
        with TestClient(site.app, follow_redirects=False, cookies=cookies) as click:
            return click.post(path, data=form).status_code

    return race(4, submit)


def test_the_same_adjustment_form_sent_twice_posts_once(console: Console) -> None:
    browser = signed_in(console)
    page = browser.get(f"/console/members/{console.member}").text
    form = {
        "csrf": hidden(page, "csrf"),
        "nonce": hidden(page, "nonce", f'action="/console/members/{console.member}/adjust"'),
        "points": "500",
        "reason": "goodwill",
    }

    outcomes = clicks(browser, console, f"/console/members/{console.member}/adjust", form)

    assert outcomes == [303] * 4
    assert count(console.db, JournalEntry, member_id=console.member) == 1
    assert count(console.db, AuditEntry, action="member.adjust") == 1
