"""A partner spends only the points of members it is tied to (docs/security.md, "Spending a
member's points"): it collected the member (enrolled it, or linked an identity), the member has
an identity in a namespace the partner owns, or the member showed it its member code within
the checkout window; the operator's channels spend anyone's. Everyone else is refused
``403 forbidden`` (``no_relationship``) on redeem, holds, family spends and links, writing
nothing; earning stays open. The clock is injected; both databases."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
import pytest
from apikit import assert_problem, db_state, tolerant_client
from sqlalchemy import event

from conftest import SECRET, Api, PartnerKey, make_partner
from support.access import apply
from support.ties import FOOD, OPERATOR, SHOP, Clock, programme, unique
from tally.access import service as access_service
from tally.access.domain import Caller
from tally.db.session import Database
from tally.ledger.verify import verify
from tally.member_codes import service as codes
from tally.partners.domain import Scope
from tally.writer.group_commit import GroupCommit

START = datetime(2027, 3, 1, 4, 0, 10, tzinfo=UTC)
WINDOW = timedelta(minutes=30)  # TALLY_CHECKOUT_WINDOW_SECONDS' default
CLOCKED = (
    "api.deps",
    "api.members",
    "api.member_codes",
    "api.ledger",
    "api.families",
    "writer.writer",
)
_serial = itertools.count()


@dataclass
class World:
    database: Database
    keys: dict[str, PartnerKey]
    apis: dict[str, Api]
    clock: Clock

    @property
    def operator(self) -> Api:
        return self.apis[OPERATOR]

    @property
    def shop(self) -> Api:
        return self.apis[SHOP]

    @property
    def food(self) -> Api:
        return self.apis[FOOD]

    def member(self, points: int = 100, *, by: str = OPERATOR) -> int:
        """A new member (phone) enrolled by partner ``by``, holding ``points`` (the operator's)."""
        member = self.apis[by].enrol(unique("138"))
        if points:
            ok(self.operator.earn(member, points))
        return member

    def show_code(self, member: int, to: Api) -> None:
        """The member shows its code to ``to``'s checkout, which looks it up."""
        with self.database.write() as session:
            code = codes.issue(session, member, self.clock.now, SECRET).code
        ok(to.get("/v1/members/lookup", params={"code": code}), 200)

    def available(self, member: int) -> int:
        return int(self.operator.balance(member)["available"])


def ok(response: Any, status: int = 201) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def refused(response: Any, member: int) -> dict[str, Any]:
    body = assert_problem(response, 403, "forbidden")
    assert body["reason"] == "no_relationship", body
    assert body["member_id"] == member, body
    assert "member's code" in body["detail"], body
    assert "operator's app" in body["detail"], body
    return body


def hold(api: Api, member: int, points: int = 5) -> Any:
    body = {"points": points, "expires_in_seconds": 600, "reference": unique("hold")}
    return api.post(f"/v1/members/{member}/holds", body)


def link(api: Api, member: int, namespace: str) -> Any:
    body = {"namespace": namespace, "id": unique(namespace)}
    return api.post(f"/v1/members/{member}/identities", body)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    found = Clock(START)
    for module in CLOCKED:
        monkeypatch.setattr(f"tally.{module}.utcnow", found)
    return found


@pytest.fixture
def keys(database: Database) -> dict[str, PartnerKey]:
    with database.write() as session:
        apply(session, programme())
    scopes = "members,earn,redeem,read"
    return {
        OPERATOR: make_partner(database, OPERATOR, f"{scopes},transfer", operator_channel=True),
        SHOP: make_partner(database, SHOP, scopes),
        FOOD: make_partner(database, FOOD, scopes),
    }


@pytest.fixture
def world(
    app: Any, database: Database, keys: dict[str, PartnerKey], clock: Clock
) -> Iterator[World]:
    with tolerant_client(app) as client:
        yield World(database, keys, {code: Api(client, key) for code, key in keys.items()}, clock)


def test_a_partner_without_a_tie_spends_nothing_and_writes_nothing(world: World) -> None:
    member = world.member()
    family = ok(world.operator.post("/v1/families", {"acting_member_id": member, "mode": "share"}))
    spend = {"member_id": member, "points": 5, "reference": unique("spend")}
    before = db_state(world.database)

    refused(world.shop.redeem(member, 5), member)
    refused(hold(world.shop, member), member)
    refused(world.shop.post(f"/v1/families/{family['id']}/redemptions", spend), member)
    refused(link(world.shop, member, "shop"), member)
    refused(link(world.food, member, "food"), member)

    assert db_state(world.database) == before
    assert world.available(member) == 100
    # Earning needs no tie: the partner pays for the points it issues.
    assert ok(world.shop.earn(member, 7))["balance"]["available"] == 107


def test_the_partner_that_enrolled_the_member_spends_its_points(world: World) -> None:
    member = world.member(by=SHOP)

    assert ok(world.shop.redeem(member, 30))["balance"]["available"] == 70
    assert ok(hold(world.shop, member, 20))["balance"]["available"] == 50
    ok(link(world.shop, member, "shop"), 200)
    refused(world.food.redeem(member, 1), member)


def test_an_identity_in_a_namespace_the_partner_owns_ties_it(world: World) -> None:
    member = world.member()
    ok(link(world.operator, member, "shop"), 200)  # linked through the operator's app

    assert ok(world.shop.redeem(member, 40))["balance"]["available"] == 60
    refused(world.food.redeem(member, 1), member)  # the namespace is not FOOD's


def test_a_shown_code_ties_the_partner_for_the_checkout_window(world: World) -> None:
    member = world.member()
    key = unique("redeem-key")
    body = {"points": 10, "reference": unique("redeem")}
    refused(world.shop.post(f"/v1/members/{member}/redeem", body, idempotency_key=key), member)

    world.show_code(member, world.shop)

    # The refusal was not the key's answer: the same request now posts.
    posted = world.shop.post(f"/v1/members/{member}/redeem", body, idempotency_key=key)
    assert ok(posted)["balance"]["available"] == 90
    refused(world.food.redeem(member, 1), member)  # shown to SHOP, not to FOOD
    world.clock.advance(seconds=WINDOW.total_seconds() - 1)
    assert ok(hold(world.shop, member, 10))["balance"]["available"] == 80
    world.clock.advance(seconds=1)  # the window has ended
    before = db_state(world.database)

    refused(world.shop.redeem(member, 1), member)
    refused(hold(world.shop, member), member)
    assert db_state(world.database) == before

    world.show_code(member, world.shop)  # shown again: a new window
    assert ok(world.shop.redeem(member, 5))["balance"]["available"] == 75


def test_an_identity_linked_during_the_window_keeps_the_tie_after_it(world: World) -> None:
    member = world.member()
    world.show_code(member, world.shop)
    ok(link(world.shop, member, "email"), 200)  # a shared namespace: a collection, not owned

    world.clock.advance(minutes=31)

    assert ok(world.shop.redeem(member, 25))["balance"]["available"] == 75


def test_the_operator_channel_spends_any_members_points(world: World) -> None:
    member = world.member(by=SHOP)

    assert ok(world.operator.redeem(member, 10))["balance"]["available"] == 90
    assert ok(hold(world.operator, member, 10))["balance"]["available"] == 80


def test_an_unknown_member_is_not_found_whoever_asks(world: World) -> None:
    assert_problem(world.food.redeem(10**12, 1), 404, "not_found")
    assert_problem(hold(world.food, 10**12), 404, "not_found")


def test_a_family_spend_needs_a_tie_to_the_spending_member(world: World) -> None:
    owner = world.member(by=SHOP)
    family = ok(world.operator.post("/v1/families", {"acting_member_id": owner}))
    path = f"/v1/families/{family['id']}/redemptions"

    spent = ok(world.shop.post(path, {"member_id": owner, "points": 10, "reference": "f-1"}))

    assert spent["spent_by"] == owner
    refused(world.food.post(path, {"member_id": owner, "points": 10, "reference": "f-2"}), owner)
    assert world.available(owner) == 90


# --- A batch --------------------------------------------------------------------------------


async def _post(http: httpx2.AsyncClient, key: PartnerKey, path: str, body: Any) -> Any:
    return await http.post(path, json=body, headers=key.headers(f"batch-{next(_serial)}"))


def _redeem(http: httpx2.AsyncClient, key: PartnerKey, member: int, points: int) -> Any:
    body = {"points": points, "reference": f"batch-r{next(_serial)}"}
    return _post(http, key, f"/v1/members/{member}/redeem", body)


def test_a_batch_posts_the_tied_redeems_and_refuses_the_others_on_their_own(
    app: Any, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, bob = world.member(by=SHOP), world.member()
    sizes: list[int] = []
    answer = GroupCommit._batched

    def spy(self: GroupCommit, batch: list[Any]) -> Any:
        sizes.append(len(batch))
        return answer(self, batch)

    monkeypatch.setattr(GroupCommit, "_batched", spy)
    shop, food, operator = world.keys[SHOP], world.keys[FOOD], world.keys[OPERATOR]

    async def scenario() -> list[Any]:
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://tally") as http:
            return await asyncio.gather(
                _redeem(http, shop, alice, 10),  # SHOP enrolled alice
                _redeem(http, shop, bob, 10),  # no tie
                _redeem(http, food, alice, 10),  # no tie
                _redeem(http, operator, bob, 30),  # an operator channel
                _post(http, shop, f"/v1/members/{bob}/earn", {"points": 5, "reference": "b-e"}),
                _redeem(http, shop, alice, 200),  # tied, but more than alice has
            )

    # A loop of its own, on a thread of its own: an earlier test may leave one running here.
    with ThreadPoolExecutor(max_workers=1) as thread:
        responses = thread.submit(asyncio.run, asyncio.wait_for(scenario(), timeout=30)).result()

    assert sizes[0] == 6, sizes
    assert [r.status_code for r in responses] == [201, 403, 403, 201, 201, 409]
    for response, member in ((responses[1], bob), (responses[2], alice)):
        refused(response, member)
    assert responses[5].json()["code"] == "insufficient_points"
    assert (world.available(alice), world.available(bob)) == (90, 75)
    with world.database.read() as session:
        report = verify(session)
    assert report.ok, report.problems


def test_the_ties_of_a_whole_batch_are_read_with_one_statement(
    world: World, keys: dict[str, PartnerKey]
) -> None:
    tied = [world.member(0, by=SHOP) for _ in range(3)]
    untied = [world.member(0) for _ in range(3)]
    ok(link(world.operator, untied[0], "food"), 200)  # FOOD owns it: tied to FOOD only
    callers = {
        code: Caller(key.partner_id, code, 0, frozenset({Scope.REDEEM}), code == OPERATOR)
        for code, key in keys.items()
    }
    asks = [
        *((callers[SHOP], member) for member in [*tied, *untied]),
        *((callers[FOOD], member) for member in [*tied, *untied]),
        (callers[OPERATOR], untied[1]),
        (callers[SHOP], 10**12),  # no such member: left to the write (not_found)
    ]
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    engine = world.database.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        with world.database.read() as session:
            statements.clear()
            refusals = access_service.spend_refusals(session, asks, programme(), START)
    finally:
        event.remove(engine, "before_cursor_execute", count)

    assert len(statements) == 1, statements
    refused_pairs = [
        (caller.partner_code, member)
        for (caller, member), refusal in zip(asks, refusals, strict=True)
        if refusal is not None
    ]
    assert refused_pairs == [
        (SHOP, untied[0]),
        (SHOP, untied[1]),
        (SHOP, untied[2]),
        *((FOOD, member) for member in tied),
        (FOOD, untied[1]),
        (FOOD, untied[2]),
    ]
