"""A family pool spend reads, in the history of every member it drew on, as a spend from the
family's points by the one who spent it — in the API (``family_spend``), on the member pages
and in the console — not as the member's own purchase at the partner."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from conftest import SECRET, Api, PartnerKey
from tally.api.member_links import mint_token
from tally.config import Settings
from tally.db.session import Database
from tally.families import service as families
from tally.families.models import FamilyMode
from tally.flows import enrolment, family_spend
from tally.kit.clock import utcnow
from tally.ledger import service as ledger
from tally.ledger.domain import Origin
from tally.ledger.posting import policy_for
from tally.members.service import Identity
from tally.programme.runtime import default_programme
from tally.staff import service as staff_service
from tally.staff.models import StaffRole

PASSWORD = "family-history-pw-1"
EN = {"Accept-Language": "en"}


@dataclass
class Household:
    family: int
    owner: int
    ann: int
    bob: int
    outsider: int
    entry_id: str


@pytest.fixture
def web(app: Any) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


@pytest.fixture
def household(database: Database, settings: Settings, partner: PartnerKey) -> Household:
    """A pool family (owner Olivia, Ann, Bob) whose owner spends 250 points drawn on all three."""
    programme = default_programme(settings)
    policy = policy_for(programme, settings)
    origin = Origin(partner_id=partner.partner_id)
    now = utcnow()
    with database.write() as session:
        ids = []
        for phone, name, points in (
            ("13800000001", "Olivia", 100),
            ("13800000002", "Ann", 100),
            ("13800000003", None, 100),
            ("13800000004", "Zed", 100),
        ):
            profile = {"name": name} if name else {}
            member, _ = enrolment.enrol(session, Identity("phone", phone), profile, now)
            ledger.earn(session, origin, member, points, f"seed-{phone}", now, policy)
            ids.append(member)
        owner, ann, bob, outsider = ids
        family = families.create(session, owner, FamilyMode.POOL, now)
        for member in (ann, bob):
            families.invite(session, family, owner, member, now, programme.family)
            families.accept(session, family, member, member, now)
        spent = family_spend.spend(
            session, origin, family, owner, 250, "dinner-1", now, policy, programme
        )
        ledger.redeem(session, origin, outsider, 30, "own-1", now, policy)
    return Household(family, owner, ann, bob, outsider, str(spent.entry_id))


def transactions(api: Api, member: int) -> list[dict[str, Any]]:
    response = api.get(f"/v1/members/{member}/transactions")
    assert response.status_code == 200, response.text
    return response.json()["items"]  # type: ignore[no-any-return]


def test_every_member_drawn_on_sees_a_family_spend_by_the_owner(
    api: Api, household: Household, partner: PartnerKey
) -> None:
    drawn = {household.owner: -100, household.ann: -100, household.bob: -50}
    for member, points in drawn.items():
        spends = [item for item in transactions(api, member) if item["kind"] == "redeem"]
        assert len(spends) == 1, spends
        item = spends[0]
        assert item["id"] == household.entry_id
        assert item["points"] == points
        assert item["family_spend"] == {
            "family_id": household.family,
            "mode": "pool",
            "owner_id": household.owner,
            "spent_by": household.owner,
            "partner_id": partner.partner_id,
            "points": 250,
        }
        assert item["details"]["owner_id"] == household.owner


def test_an_ordinary_redeem_is_not_a_family_spend(api: Api, household: Household) -> None:
    own = [item for item in transactions(api, household.outsider) if item["kind"] == "redeem"]
    assert [(item["points"], item["family_spend"]) for item in own] == [(-30, None)]
    earns = [item for item in transactions(api, household.ann) if item["kind"] == "earn"]
    assert earns[0]["family_spend"] is None


def member_history(web: TestClient, member: int, headers: dict[str, str]) -> str:
    response = web.get(f"/m/sign-in?token={mint_token(SECRET, member)}", follow_redirects=False)
    assert response.status_code == 303, response.text
    return web.get("/m/history", headers=headers).text


def rows(html: str) -> list[str]:
    return [
        " ".join(re.sub(r"<[^>]+>", " ", row).split())
        for row in re.findall(r'<li class="m-row[^"]*">(.*?)</li>', html, flags=re.S)
    ]


def test_the_member_pages_say_who_spent_the_family_points(
    web: TestClient, household: Household, partner: PartnerKey
) -> None:
    shop = f"{partner.code} partner"
    ann = rows(member_history(web, household.ann, EN))
    assert any(
        row.startswith(f"Family pool spend Spent by Olivia, the family owner, at {shop} −100")
        for row in ann
    ), ann
    assert not any(row.startswith("Spent ") for row in ann), ann

    owner = rows(member_history(web, household.owner, EN))
    assert any(row.startswith(f"Family pool spend Spent by you at {shop} −100") for row in owner)

    chinese = rows(member_history(web, household.bob, {"Accept-Language": "zh-CN"}))
    assert any(row.startswith(f"家庭积分池消费 由家长Olivia在{shop}使用 −50") for row in chinese), (
        chinese
    )

    outsider = rows(member_history(web, household.outsider, EN))
    assert any(row.startswith(f"Spent {shop} −30") for row in outsider), outsider


def test_the_console_history_names_the_family_and_the_spender(
    web: TestClient, database: Database, household: Household
) -> None:
    with database.write() as session:
        staff_service.create(session, "fam-support", PASSWORD, StaffRole.SUPPORT, "Sam", utcnow())
    form = web.get("/console/sign-in")
    csrf = re.search(r'name="csrf" value="([^"]*)"', form.text)
    assert csrf is not None
    signed_in = web.post(
        "/console/sign-in",
        data={"username": "fam-support", "password": PASSWORD, "csrf": csrf.group(1)},
        follow_redirects=False,
    )
    assert signed_in.status_code == 303, signed_in.text

    page = web.get(f"/console/members/{household.bob}", headers=EN)
    assert page.status_code == 200
    text = " ".join(re.sub(r"<[^>]+>", " ", page.text).split())
    expected = (
        f"Family pool spend −50 MOBILE partner Spent by member #{household.owner} "
        f"from family #{household.family} (owner #{household.owner})"
    )
    assert expected in text, text


def test_a_family_spend_recorded_before_owner_id_names_the_entrys_member() -> None:
    from tally.ledger.models import EntryKind, JournalEntry

    entry = JournalEntry(
        kind=EntryKind.REDEEM,
        member_id=7,
        partner_id=3,
        details={
            "family_id": 2,
            "spent_by": 7,
            "mode": "pool",
            "month": "2026-11",
            "drawn": [{"member_id": 7, "points": 10}, {"member_id": 8, "points": 5}],
        },
        created_at=datetime(2026, 11, 2, tzinfo=UTC),
    )
    assert family_spend.spend_note(entry) == family_spend.SpendNote(
        family_id=2, mode="pool", owner_id=7, spent_by=7, partner_id=3, points=15
    )
    entry.details = None
    assert family_spend.spend_note(entry) is None


def test_a_pool_spend_can_use_points_a_timed_out_hold_gave_back(
    database: Database, settings: Settings, partner: PartnerKey, household: Household
) -> None:
    from datetime import timedelta

    from sqlalchemy import func, select

    from tally.ledger import holds as ledger_holds
    from tally.ledger.models import EntryKind, JournalEntry
    from tally.ledger.verify import verify

    programme = default_programme(settings)
    policy = policy_for(programme, settings)
    origin = Origin(partner_id=partner.partner_id)
    now = utcnow()
    with database.write() as session:  # Bob's last 50 points held for a minute
        ledger_holds.create_hold(session, origin, household.bob, 50, "hold-b", 60, now, policy)
    later = now + timedelta(minutes=2)
    with database.write() as session:
        spent = family_spend.spend(
            session, origin, household.family, household.owner, 50, "dinner-2", later, policy,
            programme,
        )  # fmt: skip
        lapses = session.scalar(
            select(func.count())
            .select_from(JournalEntry)
            .where(JournalEntry.kind == EntryKind.LAPSE)
        )
    assert spent.drawn == [(household.bob, 50)]
    assert lapses == 1
    with database.read() as session:
        assert verify(session).ok


def test_a_reversed_family_spend_reads_as_cancelled_in_every_history(
    api: Api, web: TestClient, database: Database, settings: Settings, household: Household
) -> None:
    import uuid

    from tally.ledger import reversals

    policy = policy_for(default_programme(settings), settings)
    origin = Origin(partner_id=api.key.partner_id)
    with database.write() as session:
        reversals.reverse(session, origin, uuid.UUID(household.entry_id), utcnow(), policy)

    for member, points in ((household.owner, 100), (household.ann, 100), (household.bob, 50)):
        items = transactions(api, member)
        reversal = next(item for item in items if item["kind"] == "reversal")
        assert reversal["points"] == points
        assert reversal["reverses_id"] == household.entry_id
        assert reversal["family_spend"]["spent_by"] == household.owner
        assert reversal["family_spend"]["family_id"] == household.family
    ann = rows(member_history(web, household.ann, EN))
    assert ann[0].startswith("Family pool spend cancelled Spent by Olivia, the family owner"), ann
