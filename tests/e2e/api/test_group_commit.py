"""Group commit: writes that reach the server together share one transaction, and each still
gets the answer it would have had alone.

The requests here run on one event loop (an ASGI client, no threads), so every request sent
together reaches the group commit before it writes; a spy on it records the batch sizes.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx2
import pytest
from apikit import PROBLEM_JSON, entry_count
from sqlalchemy import text

from conftest import PartnerKey
from tally.db.session import Database
from tally.ledger.verify import verify
from tally.writer.group_commit import GroupCommit

_serial = itertools.count()


class Client:
    """An async partner client on the app's own event loop."""

    def __init__(self, http: httpx2.AsyncClient, key: PartnerKey) -> None:
        self.http = http
        self.key = key

    async def post(self, path: str, body: Any, key: str | None = None) -> httpx2.Response:
        headers = self.key.headers(key or f"gc-{next(_serial)}")
        return await self.http.post(path, json=body, headers=headers)

    async def earn(self, member: int, points: int, **extra: Any) -> httpx2.Response:
        body = {"points": points, "reference": f"e{next(_serial)}", **extra}
        return await self.post(f"/v1/members/{member}/earn", body)

    async def redeem(
        self, member: int, points: int, reference: str | None = None
    ) -> httpx2.Response:
        body = {"points": points, "reference": reference or f"r{next(_serial)}"}
        return await self.post(f"/v1/members/{member}/redeem", body)

    async def enrol(self, phone: str) -> int:
        response = await self.post(
            "/v1/members", {"external_id": {"namespace": "phone", "id": phone}}
        )
        assert response.status_code == 201, response.text
        return int(response.json()["id"])

    async def available(self, member: int) -> int:
        response = await self.http.get(f"/v1/members/{member}/balance", headers=self.key.headers())
        assert response.status_code == 200, response.text
        return int(response.json()["available"])


@pytest.fixture
def batches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every batch the group commit writes."""
    sizes: list[int] = []
    answer = GroupCommit._batched

    def spy(self: GroupCommit, batch: list[Any]) -> Any:
        sizes.append(len(batch))
        return answer(self, batch)

    monkeypatch.setattr(GroupCommit, "_batched", spy)
    return sizes


@pytest.fixture
def run(app: Any, partner: PartnerKey) -> Callable[[Callable[[Client], Awaitable[Any]]], Any]:
    def runner(scenario: Callable[[Client], Awaitable[Any]]) -> Any:
        async def main() -> Any:
            transport = httpx2.ASGITransport(app=app)
            async with httpx2.AsyncClient(transport=transport, base_url="http://tally") as http:
                return await asyncio.wait_for(scenario(Client(http, partner)), timeout=30)

        # A loop of its own, on a thread of its own: an earlier test may leave one running here.
        with ThreadPoolExecutor(max_workers=1) as thread:
            return thread.submit(asyncio.run, main()).result()

    return runner


def _sound(database: Database) -> None:
    with database.read() as session:
        report = verify(session)
    assert report.ok, report.problems


def test_writes_sent_together_share_a_batch_and_keep_their_own_answers(
    run: Any, batches: list[int], database: Database
) -> None:
    async def scenario(client: Client) -> Any:
        alice, bob, carol = [await client.enrol(f"1390000000{n}") for n in range(3)]
        for member in (alice, bob, carol):
            assert (await client.earn(member, 100)).status_code == 201
        batches.clear()
        responses = await asyncio.gather(
            client.earn(alice, 10),
            client.earn(alice, 5, growth=0),
            client.redeem(alice, 30),
            client.redeem(bob, 101),  # more than bob has
            client.redeem(bob, 100),
            client.earn(carol, 7),
            client.earn(10**9, 5),  # no such member
            client.redeem(carol, 0),  # not a valid amount
            client.post(
                f"/v1/members/{carol}/holds",
                {"points": 20, "expires_in_seconds": 600, "reference": "h1"},
            ),
            client.post(
                "/v1/members", {"external_id": {"namespace": "phone", "id": "13900000099"}}
            ),
        )
        balances = [await client.available(member) for member in (alice, bob, carol)]
        return responses, balances

    responses, balances = run(scenario)

    assert [r.status_code for r in responses] == [201, 201, 201, 409, 201, 201, 404, 422, 201, 201]
    assert responses[3].json()["code"] == "insufficient_points"
    assert responses[3].headers["content-type"] == PROBLEM_JSON
    assert responses[6].json()["code"] == "not_found"
    assert [r.json()["balance"]["available"] for r in responses[:3]] == [110, 115, 85]
    assert responses[4].json()["balance"]["available"] == 0
    assert balances == [85, 0, 87]
    assert max(batches) >= 8, batches  # the valid writes went in one or two batches
    _sound(database)


def test_one_key_sent_twice_in_a_batch_writes_once_and_answers_both_alike(
    run: Any, batches: list[int], database: Database
) -> None:
    async def scenario(client: Client) -> Any:
        member = await client.enrol("13900000011")
        body = {"points": 40, "reference": "twice"}
        path = f"/v1/members/{member}/earn"
        batches.clear()
        return await asyncio.gather(client.post(path, body, "k"), client.post(path, body, "k"))

    before = entry_count(database)
    first, second = run(scenario)

    assert (first.status_code, second.status_code) == (201, 201)
    assert first.content == second.content
    assert second.headers.get("idempotent-replayed") == "true"
    assert entry_count(database) == before + 1


def test_a_reference_used_twice_in_a_batch_is_refused_once_and_spares_the_rest(
    run: Any, batches: list[int], database: Database
) -> None:
    async def scenario(client: Client) -> Any:
        member, other = await client.enrol("13900000021"), await client.enrol("13900000022")
        batches.clear()
        body = {"points": 5, "reference": "order-1"}
        responses = await asyncio.gather(
            client.post(f"/v1/members/{member}/earn", body),
            client.post(f"/v1/members/{other}/earn", body),
            client.earn(other, 9),
        )
        return responses, await client.available(member), await client.available(other)

    (first, second, third), member_points, other_points = run(scenario)

    assert sorted([first.status_code, second.status_code]) == [201, 409]
    refused = first if first.status_code == 409 else second
    assert refused.json()["code"] == "duplicate_reference"
    assert third.status_code == 201
    assert member_points + other_points == 5 + 9
    _sound(database)


def test_a_refusal_given_in_a_batch_is_remembered_for_the_key(run: Any, batches: list[int]) -> None:
    async def scenario(client: Client) -> Any:
        member = await client.enrol("13900000031")
        path = f"/v1/members/{member}/redeem"
        body = {"points": 5, "reference": "too-much"}
        refused, _ = await asyncio.gather(client.post(path, body, "once"), client.earn(member, 1))
        await client.earn(member, 50)
        return refused, await client.post(path, body, "once")

    refused, retried = run(scenario)

    assert refused.status_code == 409
    assert refused.json()["code"] == "insufficient_points"
    assert retried.status_code == 409
    assert retried.content == refused.content
    assert retried.headers.get("idempotent-replayed") == "true"


def test_writes_sent_one_after_another_are_all_answered(
    run: Any, batches: list[int], database: Database
) -> None:
    async def scenario(client: Client) -> Any:
        member = await client.enrol("13900000041")
        for _ in range(30):  # each write starts after the batch before it has ended
            assert (await client.earn(member, 1)).status_code == 201
        return await client.available(member)

    assert run(scenario) == 30
    assert len(batches) == 31


# SQLite has one writer at a time: there are no row locks to pass over.
@pytest.mark.parametrize("dialect", ["postgresql"], indirect=True)
def test_a_wallet_held_elsewhere_does_not_hold_up_the_batch(
    run: Any, batches: list[int], database: Database
) -> None:
    """PostgreSQL: an order whose wallet another transaction holds (a job, say) is done alone
    off the event loop, once the wallet is free; the rest of its batch is answered at once."""

    async def scenario(client: Client) -> Any:
        held, free = await client.enrol("13900000051"), await client.enrol("13900000052")
        holder = database.engine.connect()
        holder.execute(
            text("SELECT member_id FROM wallets WHERE member_id = :m FOR UPDATE"), {"m": held}
        )
        waiting = asyncio.create_task(client.earn(held, 7))
        answered = asyncio.create_task(client.earn(free, 3))
        finished, _pending = await asyncio.wait(
            {waiting, answered}, timeout=10, return_when=asyncio.FIRST_COMPLETED
        )
        first = set(finished)
        holder.rollback()
        holder.close()
        return first == {answered}, await waiting, await answered

    answered_first, waited, answered = run(scenario)

    assert answered_first
    assert (waited.status_code, answered.status_code) == (201, 201)
    assert waited.json()["balance"]["available"] == 7
    _sound(database)
