"""Staff record a member's consent in the console (the member grants or withdraws at the
service desk or on the phone): channel ``console`` with the staff member on the record, audited,
CSRF-protected, once per form, and shown in every consent history (the console card,
``/m/privacy``, ``GET /v1/members/{id}/consents``). Over HTTP on both databases, the clock
injected."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from conftest import PartnerKey, make_partner
from support.race import race
from tally.api.member_links import link_for
from tally.audit.models import AuditEntry
from tally.config import Settings
from tally.db.session import Database
from tally.flows import enrolment
from tally.members import service as members
from tally.privacy.models import Consent
from tally.programme import loader
from tally.programme import service as programme_service
from tally.programme.domain import Programme
from tally.programme.runtime import default_programme
from tally.staff import service as staff_service
from tally.staff.models import StaffRole
from tally.web.console import consents_page, once

PASSWORD = "correct horse battery"
T0 = datetime(2026, 12, 3, 1, 0, tzinfo=UTC)
ROLES = (StaffRole.SUPPORT, StaffRole.ADMIN)


def programme() -> Programme:
    content = default_programme(Settings()).dump()
    return Programme.model_validate(
        {
            **content,
            "partners": [
                {"code": "MOBILE", "name": "Cloudway", "operator_channel": True},
                {"code": "SHOP", "name": "Select Mall"},
                {"code": "FOOD", "name": "Full Food"},
            ],
        }
    )


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Site:
    app: FastAPI
    db: Database
    staff: dict[str, int]
    member: int
    operator: PartnerKey
    clients: list[TestClient] = field(default_factory=list)

    def browser(self) -> TestClient:
        client = TestClient(self.app, follow_redirects=False, client=("198.51.100.7", 50000))
        client.__enter__()
        self.clients.append(client)
        return client

    def signed_in(self, username: str) -> TestClient:
        client = self.browser()
        page = client.get("/console/sign-in")
        data = {"username": username, "password": PASSWORD, "csrf": hidden(page.text, "csrf")}
        assert client.post("/console/sign-in", data=data).status_code == 303
        return client

    def acts(self) -> list[Consent]:
        with self.db.read() as session:
            query = select(Consent).where(Consent.member_id == self.member).order_by(Consent.id)
            return list(session.scalars(query))

    def audited(self) -> list[tuple[str, str, dict[str, Any] | None]]:
        with self.db.read() as session:
            query = select(AuditEntry).where(
                AuditEntry.member_id == self.member, AuditEntry.action.like("consent.%")
            )
            return [
                (row.actor, row.action, row.details)
                for row in session.scalars(query.order_by(AuditEntry.id))
            ]


@pytest.fixture
def site(settings: Settings, database: Database) -> Iterator[Site]:
    from tally.app import create_app

    with database.write() as session:
        found = programme()  # in force before the clock's start
        programme_service.apply(session, found, loader.dump(found), "tests", T0 - timedelta(days=1))
        staff = {
            role.value: staff_service.create(
                session, role.value, PASSWORD, role, f"{role.title()} Person", T0
            ).id
            for role in ROLES
        }
        member, _created = enrolment.enrol(
            session, members.Identity("phone", "13800000001"), {"name": "Li Lei"}, T0
        )
    operator = make_partner(database, "MOBILE", "members,read", operator_channel=True)
    app = create_app(settings, database)
    app.state.clock = Clock()
    built = Site(app, database, staff, member, operator)
    yield built
    for client in built.clients:
        client.__exit__(None, None, None)


def hidden(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no hidden field {name}"
    return found.group(1)


def consent_form(html: str) -> dict[str, str]:
    """The record-consent form's hidden fields (its CSRF token and one-time nonce)."""
    found = re.search(r'<form[^>]*id="record-consent".*?</form>', html, re.DOTALL)
    assert found, "no consent form"
    return {"csrf": hidden(found.group(0), "csrf"), "nonce": hidden(found.group(0), "nonce")}


def flashes(html: str) -> list[str]:
    return re.findall(r'class="flash flash-\w+"[^>]*>([^<]*)<', html)


def post(client: TestClient, member: int, fields: dict[str, str], **choice: str) -> Any:
    return client.post(f"/console/members/{member}/consents", data={**fields, **choice})


def test_support_records_a_grant_and_a_withdrawal_seen_in_every_history(site: Site) -> None:
    desk = site.signed_in("support")
    page = desk.get(f"/console/members/{site.member}")
    card = re.search(r'id="record-consent".*?</form>', page.text, re.DOTALL)
    assert card is not None
    assert 'value="FOOD"' in card.group(0)
    assert 'value="MOBILE"' not in card.group(0)  # an operator channel sees everything anyway

    granted = post(
        desk, site.member, consent_form(page.text), partner="FOOD", purpose="profile", grant="1"
    )
    assert granted.status_code == 303
    assert granted.headers["location"] == f"/console/members/{site.member}#consents"
    shown = desk.get(f"/console/members/{site.member}")
    assert flashes(shown.text) == ["已记录会员的授权：Full Food，查看会员资料。"]
    food = re.search(r'<li data-partner="FOOD" data-purpose="profile">.*?</li>', shown.text, re.S)
    assert food is not None
    assert "已授权" in food.group(0)
    assert "console" in food.group(0)
    assert "Support Person" in food.group(0)

    withdrawn = post(
        desk, site.member, consent_form(shown.text), partner="FOOD", purpose="profile", grant="0"
    )
    assert withdrawn.status_code == 303

    acts = site.acts()
    assert [(a.version, a.is_granted, a.channel, a.recorded_by) for a in acts] == [
        (1, True, "console", site.staff["support"]),
        (2, False, "console", site.staff["support"]),
    ]
    assert [a.created_at for a in acts] == [T0, T0]
    actor = f"staff:{site.staff['support']}"
    details = {"partner": "FOOD", "purpose": "profile", "channel": "console"}
    assert site.audited() == [
        (actor, "consent.grant", details),
        (actor, "consent.withdraw", details),
    ]

    api = site.browser()
    body = api.get(f"/v1/members/{site.member}/consents", headers=site.operator.headers()).json()
    assert [(item["granted"], item["channel"]) for item in body["history"]] == [
        (True, "console"),
        (False, "console"),
    ]
    assert body["consents"] == [
        {
            "partner": "FOOD",
            "purpose": "profile",
            "granted": False,
            "since": "2026-12-03T01:00:00Z",
            "channel": "console",
        }
    ]

    phone = site.browser()
    link = link_for(site.app.state.secret, site.member, T0).url
    assert phone.get(link.removeprefix("http://testserver")).status_code == 303
    privacy = phone.get("/m/privacy")
    history = privacy.text.split('id="consent-history"')[1]
    assert history.count("由客服操作") == 2


def test_a_form_submitted_twice_records_once(site: Site) -> None:
    desk = site.signed_in("admin")
    fields = consent_form(desk.get(f"/console/members/{site.member}").text)

    first = post(desk, site.member, fields, partner="SHOP", purpose="marketing", grant="1")
    again = post(desk, site.member, fields, partner="SHOP", purpose="marketing", grant="1")
    edited = post(desk, site.member, fields, partner="SHOP", purpose="marketing", grant="0")

    assert [r.status_code for r in (first, again, edited)] == [303, 303, 303]
    assert len(site.acts()) == 1
    assert len(site.audited()) == 1
    page = desk.get(f"/console/members/{site.member}")
    assert flashes(page.text) == [
        "已记录会员的授权：Select Mall，发送营销优惠。",
        "此表单已经记录过，没有重复记录。",
        "此表单已经记录过，没有重复记录。",
    ]

    # A new form repeating the standing state records nothing either.
    repeat = consent_form(page.text)
    post(desk, site.member, repeat, partner="SHOP", purpose="marketing", grant="1")
    assert flashes(desk.get(f"/console/members/{site.member}").text) == [
        "本来就是这样：未记录任何内容。"
    ]
    assert len(site.acts()) == 1


def test_a_double_submit_racing_records_once(site: Site) -> None:
    def submit(_index: int) -> object:
        return consents_page.record(
            site.db,
            form=once.Form("console-session:1", "form:consent:race", "race"),
            staff_id=site.staff["support"],
            member_id=site.member,
            partner="FOOD",
            purpose="profile",
            grant=True,
            now=T0,
            address=None,
        )

    outcomes = race(4, submit)

    assert sorted(outcomes, key=str) == [None, None, None, True], outcomes
    assert len(site.acts()) == 1
    assert len(site.audited()) == 1


@pytest.mark.parametrize("role", ["auditor", "ops", "finance"])
def test_roles_without_the_permission_see_no_form_and_are_refused(site: Site, role: str) -> None:
    with site.db.write() as session:
        staff_service.create(session, role, PASSWORD, StaffRole(role), role, T0)
    client = site.signed_in(role)
    page = client.get(f"/console/members/{site.member}")
    assert page.status_code == 200
    assert 'id="record-consent"' not in page.text
    csrf = hidden(page.text, "csrf")
    fields = {"csrf": csrf, "nonce": "n" * 24}

    refused = post(client, site.member, fields, partner="FOOD", purpose="profile", grant="1")

    assert refused.status_code == 403
    assert site.acts() == []
    assert site.audited() == []


def test_a_form_without_its_csrf_token_is_refused(site: Site) -> None:
    desk = site.signed_in("support")
    fields = consent_form(desk.get(f"/console/members/{site.member}").text)
    for csrf in ("", "forged"):
        refused = post(
            desk,
            site.member,
            {**fields, "csrf": csrf},
            partner="FOOD",
            purpose="profile",
            grant="1",
        )
        assert refused.status_code == 403
    outsider = site.browser()
    anonymous = post(outsider, site.member, fields, partner="FOOD", purpose="profile", grant="1")
    assert anonymous.status_code in {303, 403}
    assert site.acts() == []


@pytest.mark.parametrize(
    ("choice", "status", "message"),
    [
        ({"partner": "NOPE", "purpose": "profile", "grant": "1"}, 422, "没有这个合作伙伴。"),
        ({"partner": "FOOD", "purpose": "gossip", "grant": "1"}, 422, "没有这种授权用途。"),
        ({"partner": "FOOD", "purpose": "profile", "grant": "2"}, 422, None),
        ({"partner": "FOOD", "purpose": "profile", "grant": ""}, 422, None),
        ({"partner": "", "purpose": "profile", "grant": "1"}, 422, "没有这个合作伙伴。"),
    ],
)
def test_bad_choices_are_refused_on_the_page_and_write_nothing(
    site: Site, choice: dict[str, str], status: int, message: str | None
) -> None:
    desk = site.signed_in("support")
    fields = consent_form(desk.get(f"/console/members/{site.member}").text)

    refused = post(desk, site.member, fields, **choice)

    assert refused.status_code == status
    assert 'id="record-consent"' in refused.text  # the member page again, with why
    if message is not None:
        assert flashes(refused.text) == [message]
    assert site.acts() == []
    assert site.audited() == []
    # The refused form was not used up: corrected, it records.
    fixed = post(desk, site.member, fields, partner="FOOD", purpose="profile", grant="1")
    assert fixed.status_code == 303
    assert len(site.acts()) == 1


def test_a_form_without_its_nonce_is_refused(site: Site) -> None:
    desk = site.signed_in("support")
    fields = consent_form(desk.get(f"/console/members/{site.member}").text)

    refused = post(
        desk, site.member, {**fields, "nonce": ""}, partner="FOOD", purpose="profile", grant="1"
    )

    assert refused.status_code == 422
    assert flashes(refused.text) == ["表单已失效，请刷新页面后重试。"]
    assert site.acts() == []


def test_no_consent_is_recorded_for_a_merged_or_unknown_member(site: Site) -> None:
    with site.db.write() as session:
        other, _created = enrolment.enrol(session, members.Identity("phone", "13800000002"), {}, T0)
        enrolment.merge(
            session, site.member, other, site.staff["admin"], "duplicate", T0, programme()
        )
    desk = site.signed_in("support")
    merged_page = desk.get(f"/console/members/{other}")
    assert 'id="record-consent"' not in merged_page.text
    fields = consent_form(desk.get(f"/console/members/{site.member}").text)

    merged = post(desk, other, fields, partner="FOOD", purpose="profile", grant="1")
    unknown = post(desk, 10**12, fields, partner="FOOD", purpose="profile", grant="1")

    assert merged.status_code == 409
    assert unknown.status_code == 404
    with site.db.read() as session:
        assert session.scalars(select(Consent)).all() == []


def test_the_clock_is_the_apps(site: Site) -> None:
    site.app.state.clock.now = T0 + timedelta(hours=3)
    desk = site.signed_in("support")
    fields = consent_form(desk.get(f"/console/members/{site.member}").text)
    post(desk, site.member, fields, partner="FOOD", purpose="profile", grant="1")
    assert [act.created_at for act in site.acts()] == [T0 + timedelta(hours=3)]
