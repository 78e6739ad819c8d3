"""Refusable units of work and lines (ADR 29), on SQLite and PostgreSQL: a refusal is answered
in its batch with nothing of it written, and a line writes its writes in order of arrival, in
fewer batches than writes, one at a time."""

from __future__ import annotations

import asyncio
import itertools
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tally.config import Settings
from tally.db.session import Database
from tally.errors import SoldOut
from tally.flows import enrolment
from tally.idempotency.models import IdempotencyRecord
from tally.ledger.domain import Policy
from tally.members.models import Member
from tally.members.service import Identity
from tally.programme.runtime import default_programme
from tally.writer.kinds import REFUSABLE, Kinds, Refusable
from tally.writer.lines import Lines
from tally.writer.submission import Submission
from tally.writer.writer import Writer

POLICY = Policy(validity_days=365, reversal_grace_days=30, zone_name="UTC", max_points=100_000)
PROGRAMME = default_programme(Settings(secret_key="w" * 32))
NOW = datetime(2026, 12, 4, 12, tzinfo=UTC)
_serial = itertools.count()


class Enrolled(BaseModel):
    member_id: int


def _enrol(order: list[int], number: int, refuse: bool = False) -> Refusable:
    def work(session: Session) -> tuple[int, BaseModel]:
        member, _ = enrolment.enrol(session, Identity("t", f"l{next(_serial)}"), {}, NOW)
        order.append(number)
        if refuse:
            raise SoldOut("Sold out.", item="X")
        return 201, Enrolled(member_id=member)

    return Refusable(work)


class Counting(Writer):
    """A writer that counts its batches and the writes it does alone."""

    def __init__(self, database: Database) -> None:
        super().__init__(
            database, Kinds().register(REFUSABLE, Refusable), lambda _s: (PROGRAMME, POLICY)
        )
        self.batches: list[int] = []
        self.alone_count = 0

    def batch(self, submissions: Any, *, wait: bool, now: Any = None) -> Any:
        self.batches.append(len(submissions))
        return super().batch(submissions, wait=wait, now=now)

    def alone(self, submission: Submission, now: Any = None) -> None:
        self.alone_count += 1
        super().alone(submission, now)


def _count(database: Database, model: Any) -> int:
    with database.read() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _keyed(writer: Writer, write: object, key: str) -> Submission:
    return writer.submission(write, key=key, fingerprint="f", principal="import:test")


def test_a_refusal_is_answered_in_its_batch_and_writes_nothing(database: Database) -> None:
    writer = Counting(database)
    order: list[int] = []
    before = _count(database, Member)
    answers = writer.write_now(
        [
            _keyed(writer, _enrol(order, 0), "r0"),
            _keyed(writer, _enrol(order, 1, refuse=True), "r1"),
            _keyed(writer, _enrol(order, 2), "r2"),
        ]
    )
    assert [type(answer).__name__ for answer in answers] == ["Submission", "SoldOut", "Submission"]
    assert writer.batches == [3]
    assert writer.alone_count == 0  # the refusal was not done again alone
    assert _count(database, Member) == before + 2  # the refused unit's member rolled back
    assert _count(database, IdempotencyRecord) == 3  # the refusal is its key's answer
    again = writer.write_now([_keyed(writer, _enrol(order, 3), "r1")])[0]
    assert isinstance(again, Submission)
    assert again.replayed
    assert orjson.loads(again.body)["code"] == "sold_out"


def test_a_line_writes_in_order_of_arrival_one_batch_at_a_time(database: Database) -> None:
    writer = Counting(database)
    order: list[int] = []
    executor = ThreadPoolExecutor(max_workers=4)
    lines = Lines(writer, executor)
    before = _count(database, Member)

    async def burst() -> list[Any]:
        sends = [
            lines.write("item:X", writer.submission(_enrol(order, n, refuse=n % 5 == 4)))
            for n in range(40)
        ]
        return await asyncio.gather(*sends, return_exceptions=True)

    try:
        # On an event loop of its own thread: Playwright's sync API may have left this thread
        # running one for the tests after a browser test.
        with ThreadPoolExecutor(max_workers=1) as pool:
            answers = pool.submit(lambda: asyncio.run(burst())).result()
    finally:
        executor.shutdown(wait=True)
    assert order == list(range(40))  # first come, first served
    assert sum(isinstance(answer, SoldOut) for answer in answers) == 8
    assert sum(isinstance(answer, Submission) for answer in answers) == 32
    assert sum(writer.batches) == 40
    assert len(writer.batches) < 40  # grouped: those that came while a batch was written
    assert writer.alone_count == 0
    assert _count(database, Member) == before + 32
