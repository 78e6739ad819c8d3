"""A merge carries the partners' ties to the merged member over to the survivor, and an
unmerge takes back exactly what it added (docs/security.md, "Merges and ties"): collection
records, consents (never broader than what the survivor said) and open checkout windows. And a
hold made inside the checkout window is captured or voided by its partner after the window.
Both databases; the clock is injected."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from apikit import assert_problem, tolerant_client
from sqlalchemy import select

from conftest import SECRET, Api, PartnerKey, make_partner
from support.access import apply
from support.ties import FOOD, OPERATOR, SHOP, Clock, programme, unique
from tally.config import Settings
from tally.db.session import Database
from tally.flows import enrolment
from tally.member_codes import service as codes
from tally.members.models import MemberMerge
from tally.privacy.models import Consent, Presentation, ProfileCollection
from tally.programme import runtime
from tally.staff import service as staff_service
from tally.staff.models import StaffRole

START = datetime(2027, 3, 1, 4, 0, 10, tzinfo=UTC)
WINDOW = timedelta(minutes=30)  # TALLY_CHECKOUT_WINDOW_SECONDS' default
CLOCKED = (
    "api.deps",
    "api.members",
    "api.member_codes",
    "api.ledger",
    "api.consents",
    "writer.writer",
)
PRIVACY_TABLES = (ProfileCollection, Consent, Presentation)


@dataclass
class World:
    database: Database
    apis: dict[str, Api]
    clock: Clock
    staff_id: int

    @property
    def operator(self) -> Api:
        return self.apis[OPERATOR]

    def member(self, points: int = 100, *, by: str = OPERATOR) -> int:
        """A new member (phone) enrolled by partner ``by``, holding ``points``."""
        member = self.apis[by].enrol(unique("138"))
        if points:
            ok(self.operator.earn(member, points))
        return member

    def show_code(self, member: int, to: str) -> None:
        """The member shows its code to ``to``'s checkout, which looks it up."""
        with self.database.write() as session:
            code = codes.issue(session, member, self.clock.now, SECRET).code
        ok(self.apis[to].get("/v1/members/lookup", params={"code": code}), 200)

    def consent(self, member: int, partner: str, granted: bool, purpose: str = "profile") -> None:
        """The member grants or withdraws a consent, through the operator's app."""
        body = {"partner": partner, "purpose": purpose, "granted": granted}
        ok(self.operator.post(f"/v1/members/{member}/consents", body))

    def merge(self, survivor: int, merged: int) -> int:
        with self.database.write() as session:
            found = runtime.effective(session, Settings())
            record = enrolment.merge(
                session, survivor, merged, self.staff_id, "duplicate", self.clock.now, found
            )
            return int(record.id)

    def unmerge(self, merge_id: int) -> None:
        with self.database.write() as session:
            found = runtime.effective(session, Settings())
            enrolment.unmerge(session, merge_id, self.staff_id, self.clock.now, found)

    def ties(self, member: int) -> dict[str, list[tuple[str, ...]]]:
        """Every collection, consent and presentation row of ``member``, as text (ids aside)."""
        found: dict[str, list[tuple[str, ...]]] = {}
        with self.database.read() as session:
            for model in PRIVACY_TABLES:
                table = model.__table__
                columns = [column for column in table.columns if column.name != "id"]
                rows = session.execute(select(*columns).where(table.c.member_id == member))
                found[table.name] = sorted(tuple(str(value) for value in row) for row in rows)
        return found

    def profile_seen_by(self, partner: str, member: int) -> Any:
        return ok(self.apis[partner].get(f"/v1/members/{member}"), 200)["profile"]

    def consents(self, member: int) -> dict[str, Any]:
        return ok(self.operator.get(f"/v1/members/{member}/consents"), 200)


def ok(response: Any, status: int = 201) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def refused(response: Any, member: int) -> None:
    body = assert_problem(response, 403, "forbidden")
    assert (body["reason"], body["member_id"]) == ("no_relationship", member), body


def hold(api: Api, member: int, points: int = 5, seconds: int = 3600) -> Any:
    body = {"points": points, "expires_in_seconds": seconds, "reference": unique("hold")}
    return api.post(f"/v1/members/{member}/holds", body)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    found = Clock(START)
    for module in CLOCKED:
        monkeypatch.setattr(f"tally.{module}.utcnow", found)
    return found


@pytest.fixture
def world(app: Any, database: Database, clock: Clock) -> Iterator[World]:
    with database.write() as session:
        apply(session, programme())
        staff_id = staff_service.create(
            session, "merger", "merger-password-1", StaffRole.SUPPORT, "Merger", START
        ).id
    scopes = "members,earn,redeem,read"
    keys: dict[str, PartnerKey] = {
        OPERATOR: make_partner(database, OPERATOR, f"{scopes},transfer", operator_channel=True),
        SHOP: make_partner(database, SHOP, scopes),
        FOOD: make_partner(database, FOOD, scopes),
    }
    with tolerant_client(app) as client:
        apis = {code: Api(client, key) for code, key in keys.items()}
        yield World(database, apis, clock, staff_id)


def test_the_partner_that_enrolled_the_merged_member_spends_from_the_survivor_until_unmerged(
    world: World,
) -> None:
    survivor, merged = world.member(), world.member(by=SHOP)
    shop = world.apis[SHOP]
    ok(shop.redeem(merged, 10))
    refused(shop.redeem(survivor, 1), survivor)
    assert world.profile_seen_by(SHOP, survivor) is None
    before = (world.ties(survivor), world.ties(merged))

    merge_id = world.merge(survivor, merged)

    assert ok(shop.redeem(survivor, 20))["balance"]["available"] == 170  # 100 + the 90 moved
    assert ok(hold(shop, survivor, 5))["balance"]["available"] == 165
    assert world.profile_seen_by(SHOP, survivor) is not None  # it enrolled the same person
    refused(world.apis[FOOD].redeem(survivor, 1), survivor)  # the merge tied FOOD to nothing
    collections = world.consents(survivor)["collections"]
    assert [(item["partner"], item["method"]) for item in collections] == [
        (OPERATOR, "enrol"),
        (SHOP, "enrol"),
    ]
    assert world.ties(merged) == before[1]  # the merged member keeps its own rows

    world.unmerge(merge_id)

    refused(shop.redeem(survivor, 1), survivor)
    refused(hold(shop, survivor), survivor)
    assert world.profile_seen_by(SHOP, survivor) is None
    assert (world.ties(survivor), world.ties(merged)) == before
    # Its lots came back untouched (the survivor spent its own, older, first): 90, less 1.
    assert ok(shop.redeem(merged, 1))["balance"]["available"] == 89


def test_a_tie_the_survivor_had_of_its_own_outlives_the_unmerge(world: World) -> None:
    survivor, merged = world.member(by=SHOP), world.member(by=SHOP)
    email = {"namespace": "email", "id": unique("mail")}
    ok(world.apis[SHOP].post(f"/v1/members/{merged}/identities", email), 200)
    before = world.ties(survivor)

    merge_id = world.merge(survivor, merged)
    # The survivor already had SHOP's enrolment by phone: only the email link is added.
    with world.database.read() as session:
        record = session.get(MemberMerge, merge_id)
        assert record is not None
        assert len(record.moved["ties"]["collections"]) == 1
    world.unmerge(merge_id)

    assert world.ties(survivor) == before
    assert ok(world.apis[SHOP].redeem(survivor, 10))["balance"]["available"] == 90


def test_a_code_shown_by_the_merged_member_ties_the_survivor_for_the_rest_of_the_window(
    world: World,
) -> None:
    survivor, merged = world.member(), world.member()
    food = world.apis[FOOD]
    world.show_code(merged, FOOD)
    world.clock.advance(minutes=10)
    before = (world.ties(survivor), world.ties(merged))

    merge_id = world.merge(survivor, merged)

    assert ok(food.redeem(survivor, 10))["balance"]["available"] == 190
    world.unmerge(merge_id)
    refused(food.redeem(survivor, 1), survivor)
    assert (world.ties(survivor), world.ties(merged)) == before

    world.merge(survivor, merged)  # again; the window it carries ends when the code's does
    world.clock.advance(minutes=20)
    refused(food.redeem(survivor, 1), survivor)


def test_a_window_the_survivor_opened_again_after_the_merge_stays_at_the_unmerge(
    world: World,
) -> None:
    survivor, merged = world.member(), world.member()
    world.show_code(merged, FOOD)
    merge_id = world.merge(survivor, merged)
    world.clock.advance(minutes=25)
    world.show_code(survivor, FOOD)  # a new window, the survivor's own

    world.unmerge(merge_id)

    world.clock.advance(minutes=20)  # the carried window would have ended; this one has not
    assert ok(world.apis[FOOD].redeem(survivor, 10))["balance"]["available"] == 90


def test_consents_carry_over_never_broader_than_the_survivors_and_unmerge_restores_them(
    world: World,
) -> None:
    survivor, merged = world.member(), world.member()
    world.consent(survivor, SHOP, True)
    world.consent(survivor, SHOP, False)  # the survivor withdrew SHOP's view
    world.consent(merged, SHOP, True)  # ... which the merged member granted
    world.consent(merged, FOOD, True)  # the survivor never said anything about FOOD
    world.consent(merged, FOOD, True, "marketing")
    world.clock.advance(minutes=1)
    before = (world.ties(survivor), world.ties(merged))

    merge_id = world.merge(survivor, merged)

    assert world.profile_seen_by(FOOD, survivor) is not None
    assert world.profile_seen_by(SHOP, survivor) is None  # withdrawn stays withdrawn
    found = world.consents(survivor)
    standing = {(item["partner"], item["purpose"]): item for item in found["consents"]}
    assert {key: item["granted"] for key, item in standing.items()} == {
        (SHOP, "profile"): False,
        (FOOD, "profile"): True,
        (FOOD, "marketing"): True,
    }
    assert [(item["partner"], item["purpose"], item["channel"]) for item in found["history"]] == [
        (SHOP, "profile", f"api:{OPERATOR}"),
        (SHOP, "profile", f"api:{OPERATOR}"),
        (FOOD, "marketing", "merge"),
        (FOOD, "profile", "merge"),
    ]
    assert standing[(FOOD, "profile")]["since"].startswith("2027-03-01T04:01:10")
    with world.database.read() as session:
        carried = session.scalars(
            select(Consent).where(Consent.member_id == survivor, Consent.channel == "merge")
        ).all()
        assert {row.recorded_by for row in carried} == {world.staff_id}
    assert world.ties(merged) == before[1]

    world.unmerge(merge_id)

    assert world.profile_seen_by(FOOD, survivor) is None
    assert (world.ties(survivor), world.ties(merged)) == before


def test_a_later_withdrawal_of_the_merged_member_carries_over_and_an_act_after_the_merge_stays(
    world: World,
) -> None:
    survivor, merged = world.member(), world.member()
    world.consent(survivor, FOOD, True)
    world.consent(survivor, SHOP, True)
    world.clock.advance(minutes=1)
    world.consent(merged, FOOD, True)
    world.consent(merged, FOOD, False)  # after the survivor's grant: the person's latest word
    merge_id = world.merge(survivor, merged)
    assert world.profile_seen_by(FOOD, survivor) is None
    assert world.profile_seen_by(SHOP, survivor) is not None

    world.consent(survivor, SHOP, False)  # after the merge, on the survivor
    world.unmerge(merge_id)

    assert world.profile_seen_by(FOOD, survivor) is not None  # the survivor's grant again
    assert world.profile_seen_by(SHOP, survivor) is None  # its own act after the merge stays
    channels = [item["channel"] for item in world.consents(survivor)["history"]]
    assert "merge" not in channels


def test_a_hold_made_in_the_window_is_captured_or_voided_by_its_partner_after_it(
    world: World,
) -> None:
    member = world.member()
    shop = world.apis[SHOP]
    world.show_code(member, SHOP)
    to_capture = ok(hold(shop, member, 30, seconds=4 * 3600))["hold"]["id"]
    to_void = ok(hold(shop, member, 20, seconds=4 * 3600))["hold"]["id"]
    world.clock.advance(seconds=WINDOW.total_seconds() + 60)  # the window has ended
    refused(shop.redeem(member, 1), member)
    refused(hold(shop, member), member)

    captured = ok(shop.post(f"/v1/holds/{to_capture}/capture", {"points": 25}), 200)
    voided = ok(shop.post(f"/v1/holds/{to_void}/void", {}), 200)

    assert captured["hold"]["status"] == "captured"
    assert voided["hold"]["status"] == "voided"
    assert ok(world.operator.get(f"/v1/members/{member}/balance"), 200)["available"] == 75
    # The hold is SHOP's alone: another partner does not see it, tie or not.
    world.show_code(member, FOOD)
    assert_problem(world.apis[FOOD].post(f"/v1/holds/{to_void}/void", {}), 404, "not_found")


def test_a_hold_on_the_merged_member_is_captured_from_the_survivor_after_the_window(
    world: World,
) -> None:
    survivor, merged = world.member(), world.member()
    shop = world.apis[SHOP]
    world.show_code(merged, SHOP)
    made = ok(hold(shop, merged, 40, seconds=4 * 3600))["hold"]["id"]
    world.merge(survivor, merged)
    world.clock.advance(hours=1)

    captured = ok(shop.post(f"/v1/holds/{made}/capture", {}), 200)

    assert captured["hold"]["member_id"] == survivor
    assert captured["balance"]["available"] == 160
    refused(shop.redeem(survivor, 1), survivor)
