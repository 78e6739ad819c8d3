"""The writer (ADR 18) without HTTP: a batch of mixed kinds answered each on its own, keys used
twice, refusals stored or not, ``write_now`` for trusted callers, and a kind registered by a
test (here and through the API) that posts set-based without any edit to the API layer."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import httpx2
import orjson
import pytest
from fastapi import Depends
from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.responses import Response

from conftest import PartnerKey, make_partner
from tally.api.deps import Mutation, mutation
from tally.config import Settings
from tally.db.session import Database
from tally.errors import ConcurrentChange, IdempotencyConflict, InsufficientPoints, NotFound
from tally.flows import enrolment
from tally.idempotency.models import IdempotencyRecord
from tally.ledger import service as ledger
from tally.ledger.domain import Origin, Policy
from tally.ledger.models import EntryKind
from tally.ledger.orders import Order
from tally.ledger.posting import Posted
from tally.members.service import Identity
from tally.partners.service import Scope
from tally.programme.domain import Programme
from tally.programme.runtime import default_programme
from tally.writer.kinds import Context, Kinds
from tally.writer.ledger import TRUSTED_ORDERS
from tally.writer.submission import Submission
from tally.writer.writer import Writer

POLICY = Policy(validity_days=365, reversal_grace_days=30, zone_name="UTC", max_points=100_000)
PROGRAMME = default_programme(Settings(secret_key="w" * 32))
NOW = datetime(2026, 12, 3, 12, tzinfo=UTC)
ZONE = ZoneInfo("UTC")
_serial = itertools.count()


@dataclass(frozen=True)
class Toy:
    """A toy write: ``refuse`` names the refusal its kind answers with."""

    points: int
    refuse: str = ""


@dataclass
class ToyKind:
    """A kind of write a test adds: it posts its writes in one go and records each call."""

    name: str = "toy"
    calls: list[list[Toy]] = field(default_factory=list)
    flaky: bool = True  # refuse "retry" writes with a retryable refusal until told otherwise

    def post_many(self, session: Session, writes: Sequence[Toy], context: Context) -> list[Any]:
        self.calls.append(list(writes))
        outcomes: list[Any] = []
        for write in writes:
            if write.refuse == "final":
                outcomes.append(NotFound("No such toy."))
            elif write.refuse == "retry" and self.flaky:
                outcomes.append(ConcurrentChange("A concurrent toy; retry."))
            else:
                outcomes.append(write.points * 2)
        return outcomes

    def answer(
        self, session: Session, write: Toy, outcome: int, context: Context
    ) -> tuple[int, str]:
        return 201, orjson.dumps({"doubled": outcome}).decode()


def _writer(database: Database, toy: ToyKind) -> Writer:
    kinds = Kinds().register(toy, Toy).register(TRUSTED_ORDERS, Order)
    return Writer(database, kinds, lambda _session: (PROGRAMME, POLICY))


def _keyed(writer: Writer, write: object, key: str, fingerprint: str = "f") -> Submission:
    return writer.submission(write, key=key, fingerprint=fingerprint, principal="import:test")


def _member(database: Database) -> int:
    with database.write() as session:
        member, _ = enrolment.enrol(session, Identity("t", f"w{next(_serial)}"), {}, NOW)
    return member


def _records(database: Database) -> int:
    with database.read() as session:
        return int(session.scalar(select(func.count()).select_from(IdempotencyRecord)) or 0)


class Noted(BaseModel):
    note: str


def test_a_batch_of_mixed_kinds_is_answered_each_on_its_own(database: Database) -> None:
    toy = ToyKind()
    writer = _writer(database, toy)
    partner = make_partner(database, f"W{next(_serial)}")
    origin = Origin(partner_id=partner.partner_id)
    alice, bob = _member(database), _member(database)

    def work(session: Session) -> tuple[int, Noted]:
        return 200, Noted(note="done")

    answers = writer.write_now(
        [
            writer.submission(Toy(3)),
            writer.submission(Order(EntryKind.EARN, origin, alice, 100, "e1")),
            writer.submission(Toy(1, refuse="final")),
            writer.submission(Order(EntryKind.REDEEM, origin, bob, 5, "r1")),  # bob has none
            writer.submission(Order(EntryKind.EARN, origin, bob, 40, "e2")),
            writer.submission(Toy(4)),
            _keyed(writer, work, "work-1"),
        ],
        now=NOW,
    )

    assert toy.calls == [[Toy(3), Toy(1, refuse="final"), Toy(4)]]  # one call, set-based
    first, earned, refused, poor, later, fourth, worked = answers
    assert isinstance(first, Submission)
    assert first.outcome == 6
    assert isinstance(earned, Submission)
    assert isinstance(earned.outcome, Posted)
    assert earned.outcome.balance is not None
    assert earned.outcome.balance.available == 100
    assert isinstance(refused, NotFound)
    assert isinstance(poor, InsufficientPoints)  # refused on its own: bob's earn still posts
    assert isinstance(later, Submission)
    assert later.outcome.balance.available == 40
    assert isinstance(fourth, Submission)
    assert fourth.outcome == 8
    assert isinstance(worked, Submission)
    assert (worked.status, worked.body) == (
        200,
        '{"note":"done"}',
    )
    with database.read() as session:
        assert ledger.balance(session, alice, NOW, ZONE).available == 100
        assert ledger.balance(session, bob, NOW, ZONE).available == 40


def test_a_key_used_twice_in_a_batch_posts_once_and_the_second_replays(
    database: Database,
) -> None:
    toy = ToyKind()
    writer = _writer(database, toy)

    first, again, other = writer.write_now(
        [
            _keyed(writer, Toy(5), "twice"),
            _keyed(writer, Toy(5), "twice"),
            _keyed(writer, Toy(6), "twice", fingerprint="another request"),
        ]
    )

    assert toy.calls == [[Toy(5)]]
    assert isinstance(first, Submission)
    assert not first.replayed
    assert isinstance(again, Submission)
    assert again.replayed
    assert (again.status, again.body) == (first.status, first.body) == (201, '{"doubled":10}')
    assert isinstance(other, IdempotencyConflict)
    assert _records(database) == 1


def test_a_final_refusal_is_the_keys_answer_and_one_that_says_retry_is_not(
    database: Database,
) -> None:
    toy = ToyKind()
    writer = _writer(database, toy)

    final, retry = writer.write_now(
        [_keyed(writer, Toy(1, refuse="final"), "k1"), _keyed(writer, Toy(2, refuse="retry"), "k2")]
    )
    assert isinstance(final, NotFound)
    assert isinstance(retry, ConcurrentChange)
    assert _records(database) == 1

    toy.flaky = False
    replayed, posted = writer.write_now(
        [_keyed(writer, Toy(1), "k1"), _keyed(writer, Toy(2, refuse="retry"), "k2")]
    )
    assert isinstance(replayed, Submission)
    assert replayed.replayed
    assert replayed.status == 404
    assert orjson.loads(replayed.body)["code"] == "not_found"
    assert isinstance(posted, Submission)
    assert not posted.replayed
    assert posted.body == '{"doubled":4}'  # the retry posted: the key had stayed unused
    assert _records(database) == 2


def test_a_cli_posts_trusted_orders_set_based_with_write_now(database: Database) -> None:
    writer = _writer(database, ToyKind())
    partner = make_partner(database, f"W{next(_serial)}")
    origin = Origin(partner_id=partner.partner_id)
    members = [_member(database) for _ in range(3)]

    answers = writer.write_now(
        [
            writer.submission(Order(EntryKind.EARN, origin, member, 10 * (n + 1), f"cli-{n}"))
            for n, member in enumerate(members)
        ]
        + [writer.submission(Order(EntryKind.REDEEM, origin, members[2], 5, "cli-r"))],
        now=NOW,
    )

    assert [a.outcome.balance.available for a in answers if isinstance(a, Submission)] == [
        10,
        20,
        30,
        25,
    ]
    with database.read() as session:
        assert [ledger.balance(session, m, NOW, ZONE).available for m in members] == [
            10,
            20,
            25,
        ]


def test_a_kind_registered_by_a_test_is_posted_through_the_api_in_one_batch(
    app: Any, database: Database
) -> None:
    toy = ToyKind()
    app.state.group_commit.writer.kinds.register(toy, Toy)

    async def post_toy(
        points: int, write: Annotated[Mutation, Depends(mutation(Scope.EARN))]
    ) -> Response:
        return await write.post(Toy(points))

    app.add_api_route("/v1/toys/{points}", post_toy, methods=["POST"])
    partner: PartnerKey = make_partner(database, f"W{next(_serial)}")

    async def main() -> list[httpx2.Response]:
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://tally") as http:
            warm = await http.post("/v1/toys/10", headers=partner.headers("toy-10"))
            assert warm.status_code == 201, warm.text
            toy.calls.clear()
            return await asyncio.gather(
                *(
                    http.post(f"/v1/toys/{n}", headers=partner.headers(f"toy-{n}"))
                    for n in range(1, 5)
                ),
                http.post("/v1/toys/9", headers=partner.headers("toy-1")),  # another request
            )

    # A loop of its own, on a thread of its own: an earlier test may leave one running here.
    with ThreadPoolExecutor(max_workers=1) as thread:
        *made, conflict = thread.submit(asyncio.run, main()).result()

    posted = [write for call in toy.calls for write in call]
    assert sorted(posted, key=lambda write: write.points) == [Toy(n) for n in range(1, 5)]
    assert max(len(call) for call in toy.calls) >= 2, toy.calls  # several in one post_many
    assert [(r.status_code, r.json()) for r in made] == [
        (201, {"doubled": 2 * n}) for n in range(1, 5)
    ]
    assert conflict.status_code == 409
    assert conflict.json()["code"] == "idempotency_conflict"


def test_programme_and_policy_come_from_the_callers_pricing(database: Database) -> None:
    seen: list[Programme] = []

    class Seeing(ToyKind):
        def post_many(self, session: Session, writes: Sequence[Toy], context: Context) -> list[Any]:
            seen.append(context.programme)
            assert context.policy is POLICY
            assert context.now == NOW
            return super().post_many(session, writes, context)

    writer = Writer(database, Kinds().register(Seeing(), Toy), lambda _session: (PROGRAMME, POLICY))
    writer.write_now([writer.submission(Toy(1))], now=NOW)
    assert seen == [PROGRAMME]


@pytest.mark.parametrize("refuse", ["final", "retry"])
def test_a_refused_write_without_a_key_stores_nothing(database: Database, refuse: str) -> None:
    writer = _writer(database, ToyKind())
    [answer] = writer.write_now([writer.submission(Toy(1, refuse=refuse))])
    assert isinstance(answer, NotFound | ConcurrentChange)
    assert _records(database) == 0
