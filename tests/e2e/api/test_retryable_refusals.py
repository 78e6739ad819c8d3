"""Refusals that say "retry" are never an Idempotency-Key's final answer: the same request, sent
again with the same key, can still succeed. Final refusals are remembered as before."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from apikit import assert_problem, entry_count, tolerant_client, unique
from fastapi.testclient import TestClient
from sqlalchemy import event, text

from conftest import Api, PartnerKey
from tally.app import create_app
from tally.config import Settings
from tally.db.engine import build_engine
from tally.db.session import Database
from tally.errors import ConcurrentChange, Conflict, InsufficientPoints, PointsChanged
from tally.flows import spending

LOCK_WAIT_MS = 300


def impatient(database: Database) -> Database:
    """Another handle on the same database that waits at most ``LOCK_WAIT_MS`` for a lock."""
    url = database.engine.url.render_as_string(hide_password=False)
    engine = build_engine(url)

    @event.listens_for(engine, "connect")
    def _short_wait(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        if database.dialect == "sqlite":
            cursor.execute(f"PRAGMA busy_timeout={LOCK_WAIT_MS}")
        else:
            cursor.execute(f"SET lock_timeout = {LOCK_WAIT_MS}")
            dbapi_connection.commit()
        cursor.close()

    return Database(engine)


@contextmanager
def holding_wallet(database: Database, member_id: int) -> Iterator[None]:
    """Another connection's transaction holding the member's wallet for the block (on SQLite
    the database's write lock: straight on the driver, past Tally's own write gate)."""
    if database.dialect == "sqlite":
        raw = sqlite3.connect(str(database.file_path), isolation_level=None)
        raw.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            raw.execute("ROLLBACK")
            raw.close()
        return
    with database.engine.connect() as connection, connection.begin() as transaction:
        connection.execute(
            text("SELECT member_id FROM wallets WHERE member_id = :m FOR UPDATE"), {"m": member_id}
        )
        yield
        transaction.rollback()


@pytest.fixture
def hurried(settings: Settings, database: Database, partner: PartnerKey) -> Iterator[TestClient]:
    """The app on :func:`impatient`, started once ``partner`` set up the programme."""
    db = impatient(database)
    with tolerant_client(create_app(settings, db)) as client:
        yield client
    db.dispose()


def test_a_write_that_met_a_held_lock_is_done_when_retried_with_its_key(
    hurried: TestClient, database: Database, partner: PartnerKey
) -> None:
    api = Api(hurried, partner)
    giver, receiver = api.enrol("13900000101"), api.enrol("13900000102")
    assert api.earn(giver, 100).status_code == 201
    body = {"from_member_id": giver, "to_member_id": receiver, "points": 30, "reference": "gift"}
    key = unique("transfer")
    before = entry_count(database)
    # Another transaction holds the giver's wallet (on SQLite: the write lock) past the wait.
    with holding_wallet(database, giver):
        refused = api.post("/v1/transfers", body, idempotency_key=key)
    problem = assert_problem(refused, 409, "conflict")
    assert problem["retryable"] is True
    assert problem["detail"].endswith("; retry.")
    assert entry_count(database) == before

    done = api.post("/v1/transfers", body, idempotency_key=key)
    assert done.status_code == 201, done.text
    assert done.headers.get("idempotent-replayed") is None
    assert api.balance(giver)["available"] == 70
    assert api.balance(receiver)["available"] == 30
    # From now on the key answers with the success, once.
    again = api.post("/v1/transfers", body, idempotency_key=key)
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == done.json()
    assert api.balance(giver)["available"] == 70


def test_a_batched_refusal_that_says_retry_leaves_the_key_unused(
    api: Api, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    member = api.enrol("13900000103")
    assert api.earn(member, 50).status_code == 201
    real_post = spending.post
    calls = []

    def changed_once(*args: Any, **kwargs: Any) -> list[Any]:
        calls.append(1)
        if len(calls) == 1:
            return [PointsChanged("The points changed meanwhile; retry.")]
        return real_post(*args, **kwargs)

    monkeypatch.setattr(spending, "post", changed_once)
    body = {"points": 20, "reference": unique("redeem")}
    key = unique("redeem")
    before = entry_count(database)
    refused = api.post(f"/v1/members/{member}/redeem", body, idempotency_key=key)
    problem = assert_problem(refused, 409, "insufficient_points")
    assert problem["retryable"] is True
    assert entry_count(database) == before

    done = api.post(f"/v1/members/{member}/redeem", body, idempotency_key=key)
    assert done.status_code == 201, done.text
    assert done.json()["balance"]["available"] == 30


def test_a_final_refusal_is_still_the_keys_answer(api: Api, database: Database) -> None:
    member = api.enrol("13900000104")
    assert api.earn(member, 10).status_code == 201
    body = {"points": 20, "reference": unique("redeem")}
    key = unique("redeem")
    refused = api.post(f"/v1/members/{member}/redeem", body, idempotency_key=key)
    problem = assert_problem(refused, 409, "insufficient_points")
    assert "retryable" not in problem
    assert api.earn(member, 50).status_code == 201
    # The same request, now coverable, still gets its first answer: the refusal was final.
    replayed = api.post(f"/v1/members/{member}/redeem", body, idempotency_key=key)
    assert replayed.status_code == 409
    assert replayed.headers["idempotent-replayed"] == "true"
    assert api.balance(member)["available"] == 60


def test_retrying_is_a_property_of_the_error_not_of_its_message() -> None:
    assert ConcurrentChange("changed").retryable
    assert PointsChanged("changed").retryable
    assert issubclass(ConcurrentChange, Conflict)
    assert ConcurrentChange.code == Conflict.code == "conflict"
    assert PointsChanged.code == InsufficientPoints.code
    assert not Conflict("A member keeps at least one identity; retry.").retryable
    assert not InsufficientPoints("not enough").retryable
