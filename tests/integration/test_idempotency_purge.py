"""Idempotency records are purged after the retention period, in bounded chunks, by
`tally jobs idempotency` and by the scheduler of `tally serve`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select

from tally.config import Settings
from tally.db.session import Database
from tally.idempotency import service as idempotency
from tally.idempotency.models import IdempotencyRecord
from tally.programme.runtime import ProgrammeCache
from tally.scheduler import Scheduler

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _records(database: Database, ages_in_days: list[float]) -> None:
    with database.write() as session:
        session.execute(
            insert(IdempotencyRecord),
            [
                {
                    "principal": "partner:1",
                    "key": f"key-{index}",
                    "request_hash": "0" * 64,
                    "status_code": 201,
                    "response_body": "{}",
                    "created_at": NOW - timedelta(days=age),
                }
                for index, age in enumerate(ages_in_days)
            ],
        )


def _keys(database: Database) -> list[str]:
    with database.read() as session:
        return sorted(session.scalars(select(IdempotencyRecord.key)))


def test_records_older_than_the_cutoff_are_purged_chunk_by_chunk(database: Database) -> None:
    _records(database, [40] * 7 + [31, 29, 1, 0])
    calls: list[int] = []

    def counted() -> Any:
        calls.append(1)
        return database.write()

    before = NOW - timedelta(days=30)
    with database.read() as session:
        assert idempotency.purgeable(session, before) == 8
    assert idempotency.purge(counted, before, chunk=3) == 8
    assert len(calls) == 3  # 3 + 3 + 2: the short chunk ends it
    assert _keys(database) == ["key-10", "key-8", "key-9"]
    # Nothing older is left: a second run deletes nothing.
    assert idempotency.purge(database.write, before, chunk=3) == 0
    assert _keys(database) == ["key-10", "key-8", "key-9"]


def test_a_purged_key_is_new_again(database: Database) -> None:
    _records(database, [45])
    with database.read() as session:
        assert idempotency.records(session, "partner:1", ["key-0"])
    idempotency.purge(database.write, NOW - timedelta(days=30))
    with database.read() as session:
        assert idempotency.records(session, "partner:1", ["key-0"]) == {}


def test_the_scheduler_purges_past_the_retention_setting(database: Database) -> None:
    now = datetime.now(UTC)
    settings = Settings(idempotency_retention_days=10)
    with database.write() as session:
        session.execute(
            insert(IdempotencyRecord),
            [
                {
                    "principal": "partner:1",
                    "key": f"age-{age}",
                    "request_hash": "0" * 64,
                    "status_code": 201,
                    "response_body": "{}",
                    "created_at": now - timedelta(days=age),
                }
                for age in (11, 9)
            ],
        )
    Scheduler(database, settings, ProgrammeCache(settings, 0), interval=3600).run_once()
    assert _keys(database) == ["age-9"]
    with database.read() as session:
        total = session.scalar(select(func.count()).select_from(IdempotencyRecord))
    assert total == 1
