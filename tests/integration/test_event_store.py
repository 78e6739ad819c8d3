"""The store of events and the counters of caps and budgets, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tally.db.session import Database
from tally.events import counters
from tally.events import repository as events

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def _row(event_id: str, member_id: int = 1, **fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": uuid.uuid4(),
        "source": "p1",
        "event_id": event_id,
        "partner_id": 1,
        "type": "purchase",
        "member_id": member_id,
        "occurred_at": NOW,
        "received_at": NOW,
        "amount_minor": 15200,
        "currency": "CNY",
        "channel": None,
        "refers_to": None,
        "payload": {"items": []},
        "points": 152,
        "growth": 152,
        "outcome": {"rules": [], "skipped": []},
        "transaction_id": None,
        "programme_version": 1,
        "refunded_minor": 0,
    }
    row.update(fields)
    return row


def test_an_event_is_stored_once_per_source_and_event_id(database: Database) -> None:
    first, repeat, other_source = _row("e-1"), _row("e-1"), _row("e-1", source="p2")
    with database.write() as session:
        assert events.insert(session, [first, other_source]) == {first["id"], other_source["id"]}
    with database.write() as session:
        assert events.insert(session, [repeat]) == set()  # the first one stands
        assert events.find(session, "p1", ["e-1", "e-2"]) == {"e-1": first["id"]}
        stored = events.by_ids(session, [first["id"]])[first["id"]]
        assert (stored.points, stored.amount_minor, stored.outcome) == (
            152,
            15200,
            first["outcome"],
        )
        assert stored.occurred_at == NOW


def test_refunded_amounts_add_up(database: Database) -> None:
    row = _row("e-1")
    with database.write() as session:
        events.insert(session, [row])
        events.add_refunded(session, {row["id"]: 5000})
        events.add_refunded(session, {row["id"]: 2500})
    with database.read() as session:
        assert events.by_ids(session, [row["id"]])[row["id"]].refunded_minor == 7500


def test_windowed_counts_and_sums_per_member(database: Database) -> None:
    rows = [
        _row("a", 1, occurred_at=NOW - timedelta(days=1), amount_minor=1000),
        _row("b", 1, occurred_at=NOW - timedelta(days=29), amount_minor=2000),
        _row("c", 1, occurred_at=NOW - timedelta(days=31), amount_minor=4000),  # out of window
        _row("d", 1, type="sign_in", amount_minor=None),  # another type
        _row("e", 2, occurred_at=NOW + timedelta(seconds=1)),  # after the moment
    ]
    windows = [
        events.Window("purchases_30d", ("purchase",), "count", 30),
        events.Window("spend_30d", ("purchase", "bill_paid"), "sum_amount", 30),
    ]
    with database.write() as session:
        events.insert(session, rows)
        events.add_refunded(session, {rows[1]["id"]: 500})  # money refunded is not spend
    with database.read() as session:
        found = events.aggregates(session, [1, 2, 3], windows, NOW)
    assert found == {
        1: {"purchases_30d": 2, "spend_30d": 2500},
        2: {"purchases_30d": 0, "spend_30d": 0},
        3: {"purchases_30d": 0, "spend_30d": 0},
    }


def test_a_counter_belongs_to_the_campaign_its_key_names() -> None:
    assert counters.campaign_of("budget:BASE") == "BASE"
    assert counters.campaign_of("cap:X-1:0:7:2026-12") == "X-1"


def test_counters_start_at_zero_and_add_what_was_consumed(database: Database) -> None:
    keys = ["budget:BASE", "cap:BASE:0:1:2026-12"]
    with database.write() as session:
        assert counters.lock(session, keys, NOW) == dict.fromkeys(keys, 0)
        counters.add(session, {"budget:BASE": 300, "cap:BASE:0:1:2026-12": 0}, NOW)
    with database.write() as session:
        assert counters.lock(session, ["budget:BASE"], NOW) == {"budget:BASE": 300}
        counters.add(session, {"budget:BASE": -100}, NOW)  # a refund gives back
    with database.read() as session:
        assert counters.used(session, [*keys, "budget:OTHER"]) == {
            "budget:BASE": 200,
            "cap:BASE:0:1:2026-12": 0,
            "budget:OTHER": 0,
        }


def test_adding_to_a_counter_not_locked_first_is_a_programming_error(database: Database) -> None:
    with pytest.raises(LookupError), database.write() as session:
        counters.add(session, {"budget:NEVER": 5}, NOW)


def test_a_budget_is_never_overrun_by_racing_writers(dialect: str, database: Database) -> None:
    """Writers that check what a budget has left and consume it, each in its own transaction
    on its own connection at the same moment, never consume more than the budget."""
    if dialect != "postgresql":
        pytest.skip("SQLite has one writer at a time: nothing races")
    budget, writers, wanted = 1000, 8, 300
    barrier = threading.Barrier(writers)
    granted: list[int] = []
    errors: list[BaseException] = []

    def consume() -> None:
        try:
            barrier.wait()
            with database.write() as session:
                used = counters.lock(session, ["budget:RACE"], NOW)["budget:RACE"]
                grant = min(wanted, budget - used)
                counters.add(session, {"budget:RACE": grant}, NOW)
            granted.append(grant)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=consume) for _ in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(granted) == budget
    assert sorted(granted) == [0] * 4 + [100, 300, 300, 300]
    with database.read() as session:
        assert counters.used(session, ["budget:RACE"]) == {"budget:RACE": budget}
