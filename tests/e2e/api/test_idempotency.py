"""Idempotency-Key: a retry gets the first answer and writes nothing, per partner, when raced."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from apikit import (
    assert_problem,
    db_state,
    entry_count,
    issue_key,
    tolerant_client,
    unique,
)
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

from conftest import Api, PartnerKey, make_partner
from tally.db.session import Database
from tally.schema import metadata


def idempotency_records(database: Database) -> int:
    table = metadata().tables["idempotency_records"]
    with database.read() as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


@dataclass
class Scene:
    client: TestClient
    database: Database
    partner: PartnerKey
    api: Api
    member: int
    friend: int

    def ok(self, response: Any) -> dict[str, Any]:
        assert response.status_code in (200, 201), response.text
        return response.json()  # type: ignore[no-any-return]

    def hold(self, points: int = 10) -> str:
        body = {"points": points, "expires_in_seconds": 3600, "reference": unique("hold")}
        return str(self.ok(self.api.post(f"/v1/members/{self.member}/holds", body))["id"])


@pytest.fixture
def scene(app: Any, database: Database, partner: PartnerKey) -> Iterator[Scene]:
    with tolerant_client(app) as client:
        api = Api(client, partner)
        member = api.enrol("13900000001")
        friend = api.enrol("13900000002")
        assert api.earn(member, 100).status_code == 201
        yield Scene(client, database, partner, api, member, friend)


# Each operation: (path, body) built from the scene (setup may write first).
Operation = Callable[[Scene], tuple[str, Any]]
OPERATIONS: dict[str, Operation] = {
    "enrol a new member": lambda s: (
        "/v1/members",
        {"external_id": {"namespace": "email", "id": "n@x"}},
    ),
    "enrol an existing member": lambda s: (
        "/v1/members",
        {"external_id": {"namespace": "phone", "id": "13900000001"}},
    ),
    "link an identity": lambda s: (
        f"/v1/members/{s.member}/identities",
        {"namespace": "wechat", "id": "wx-1"},
    ),
    "unlink an identity": lambda s: (
        s.ok(s.api.post(f"/v1/members/{s.member}/identities", {"namespace": "qq", "id": "1"})),
        (f"/v1/members/{s.member}/identities/unlink", {"namespace": "qq", "id": "1"}),
    )[1],
    "freeze": lambda s: (f"/v1/members/{s.member}/freeze", {"reason": "chargeback"}),
    "unfreeze": lambda s: (
        s.ok(s.api.post(f"/v1/members/{s.member}/freeze", {"reason": "check"})),
        (f"/v1/members/{s.member}/unfreeze", None),
    )[1],
    "earn": lambda s: (f"/v1/members/{s.member}/earn", {"points": 25, "reference": "o-1"}),
    "redeem": lambda s: (f"/v1/members/{s.member}/redeem", {"points": 25, "reference": "o-2"}),
    "hold": lambda s: (
        f"/v1/members/{s.member}/holds",
        {"points": 25, "expires_in_seconds": 600, "reference": "o-3"},
    ),
    "capture part of a hold": lambda s: (f"/v1/holds/{s.hold(30)}/capture", {"points": 20}),
    "capture a hold": lambda s: (f"/v1/holds/{s.hold(30)}/capture", None),
    "void a hold": lambda s: (f"/v1/holds/{s.hold(30)}/void", None),
    "transfer": lambda s: (
        "/v1/transfers",
        {"from_member_id": s.member, "to_member_id": s.friend, "points": 25, "reference": "g-1"},
    ),
    "reverse a redemption": lambda s: (
        f"/v1/transactions/{s.ok(s.api.redeem(s.member, 40))['id']}/reverse",
        None,
    ),
    "reverse an earn": lambda s: (
        f"/v1/transactions/{s.ok(s.api.earn(s.member, 40))['id']}/reverse",
        None,
    ),
    "adjust up": lambda s: (
        f"/v1/members/{s.member}/adjustments",
        {"points": 7, "reason": "goodwill"},
    ),
    "mint a member link": lambda s: (f"/v1/members/{s.member}/links", None),
    "adjust down": lambda s: (
        f"/v1/members/{s.member}/adjustments",
        {"points": -7, "reason": "fix"},
    ),
}


@pytest.mark.parametrize("operation", list(OPERATIONS.values()), ids=list(OPERATIONS))
def test_a_retry_returns_the_first_answer_and_writes_nothing(
    scene: Scene, operation: Operation
) -> None:
    path, body = operation(scene)
    key = unique("retry")
    first = scene.api.post(path, body, idempotency_key=key)
    assert first.status_code in (200, 201), first.text
    assert "idempotent-replayed" not in first.headers
    state, entries, records = (
        db_state(scene.database),
        entry_count(scene.database),
        idempotency_records(scene.database),
    )

    for _attempt in range(2):
        again = scene.api.post(path, body, idempotency_key=key)
        assert again.status_code == first.status_code
        assert again.content == first.content
        assert again.headers["idempotent-replayed"] == "true"
        assert again.headers["content-type"] == "application/json"

    assert db_state(scene.database) == state
    assert entry_count(scene.database) == entries
    assert idempotency_records(scene.database) == records


def test_a_retry_returns_the_first_balance_even_after_it_moved_on(scene: Scene) -> None:
    body = {"points": 30, "reference": "late-retry"}
    first = scene.api.post(f"/v1/members/{scene.member}/earn", body, idempotency_key="late")
    assert first.json()["balance"]["available"] == 130
    assert scene.api.redeem(scene.member, 100).status_code == 201

    again = scene.api.post(f"/v1/members/{scene.member}/earn", body, idempotency_key="late")

    assert again.json() == first.json()
    assert again.json()["balance"]["available"] == 130
    assert scene.api.balance(scene.member)["available"] == 30


def test_the_same_key_for_another_request_is_a_conflict_and_the_first_stays(scene: Scene) -> None:
    path = f"/v1/members/{scene.member}/earn"
    first = scene.api.post(path, {"points": 10, "reference": "k1"}, idempotency_key="shared")
    entries = entry_count(scene.database)

    conflict = scene.api.post(path, {"points": 11, "reference": "k1"}, idempotency_key="shared")

    assert_problem(conflict, 409, "idempotency_conflict")
    assert "idempotent-replayed" not in conflict.headers
    assert entry_count(scene.database) == entries
    replay = scene.api.post(path, {"points": 10, "reference": "k1"}, idempotency_key="shared")
    assert replay.content == first.content
    assert scene.api.balance(scene.member)["available"] == 110


def test_keys_belong_to_a_partner(scene: Scene) -> None:
    """Two partners may use the same key for different requests; neither sees the other's."""
    other = Api(scene.client, make_partner(scene.database, "SHOP", "members,earn,redeem,read"))
    path = f"/v1/members/{scene.member}/earn"

    mine = scene.api.post(path, {"points": 10, "reference": "same-ref"}, idempotency_key="k-1")
    theirs = other.post(path, {"points": 20, "reference": "same-ref"}, idempotency_key="k-1")

    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert "idempotent-replayed" not in theirs.headers
    assert mine.json()["id"] != theirs.json()["id"]
    assert theirs.json()["balance"]["available"] == 130
    # Each partner's retry replays its own answer.
    assert (
        other.post(path, {"points": 20, "reference": "same-ref"}, idempotency_key="k-1").content
        == theirs.content
    )
    assert (
        scene.api.post(path, {"points": 10, "reference": "same-ref"}, idempotency_key="k-1").content
        == mine.content
    )
    assert scene.api.balance(scene.member)["available"] == 130


def test_the_same_body_from_two_partners_is_two_operations(scene: Scene) -> None:
    other = Api(scene.client, make_partner(scene.database, "FOOD", "members,earn,redeem,read"))
    body = {"points": 15, "reference": "identical"}
    path = f"/v1/members/{scene.member}/earn"

    assert scene.api.post(path, body, idempotency_key="same").status_code == 201
    assert other.post(path, body, idempotency_key="same").status_code == 201

    assert scene.api.balance(scene.member)["available"] == 130


def test_a_partners_other_api_key_replays_the_same_key(scene: Scene) -> None:
    """Keys are scoped to the partner, not to one API key (a retry after a key rotation)."""
    rotated = Api(scene.client, issue_key(scene.database, scene.partner, "earn,read"))
    path = f"/v1/members/{scene.member}/earn"
    body = {"points": 10, "reference": "rotated"}
    first = scene.api.post(path, body, idempotency_key="rot")

    again = rotated.post(path, body, idempotency_key="rot")

    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert scene.api.balance(scene.member)["available"] == 110


def test_a_refusal_is_replayed_even_after_the_member_can_afford_it(scene: Scene) -> None:
    path = f"/v1/members/{scene.member}/redeem"
    body = {"points": 500, "reference": "too-much"}
    refused = scene.api.post(path, body, idempotency_key="poor")
    assert_problem(refused, 409, "insufficient_points")
    assert scene.api.earn(scene.member, 1000).status_code == 201
    entries = entry_count(scene.database)

    again = scene.api.post(path, body, idempotency_key="poor")

    assert_problem(again, 409, "insufficient_points")
    assert again.content == refused.content
    assert again.headers["idempotent-replayed"] == "true"
    assert entry_count(scene.database) == entries
    assert scene.api.balance(scene.member)["available"] == 1100
    # A new key is a new request, and now it succeeds.
    fresh = scene.api.post(path, {"points": 500, "reference": "too-much-2"})
    assert fresh.status_code == 201
    assert fresh.json()["balance"]["available"] == 600


def test_a_refusal_for_a_frozen_member_is_replayed_after_the_unfreeze(scene: Scene) -> None:
    scene.ok(scene.api.post(f"/v1/members/{scene.member}/freeze", {"reason": "check"}))
    path = f"/v1/members/{scene.member}/earn"
    body = {"points": 10, "reference": "while-frozen"}
    refused = scene.api.post(path, body, idempotency_key="frozen")
    assert_problem(refused, 409, "member_frozen")
    scene.ok(scene.api.post(f"/v1/members/{scene.member}/unfreeze"))

    again = scene.api.post(path, body, idempotency_key="frozen")

    assert again.content == refused.content
    assert again.headers["idempotent-replayed"] == "true"
    assert scene.api.balance(scene.member)["available"] == 100
    # The same business request under a new key is a new request, and now it succeeds.
    assert scene.api.post(path, body).status_code == 201


def test_a_request_validation_error_does_not_use_up_the_key(scene: Scene) -> None:
    path = f"/v1/members/{scene.member}/earn"
    bad = scene.api.post(path, {"points": "ten", "reference": "fixme"}, idempotency_key="fix")
    assert_problem(bad, 422, "validation_error")

    fixed = scene.api.post(path, {"points": 10, "reference": "fixme"}, idempotency_key="fix")

    assert fixed.status_code == 201, fixed.text
    assert "idempotent-replayed" not in fixed.headers
    assert fixed.json()["balance"]["available"] == 110


def test_a_ledger_validation_error_does_not_use_up_the_key(scene: Scene) -> None:
    path = f"/v1/members/{scene.member}/earn"
    past = {"points": 10, "reference": "fixme", "expires_at": "2020-01-01T00:00:00Z"}
    assert_problem(scene.api.post(path, past, idempotency_key="fix"), 422, "validation_error")

    fixed = scene.api.post(path, {"points": 10, "reference": "fixme"}, idempotency_key="fix")

    assert fixed.status_code == 201, fixed.text
    assert "idempotent-replayed" not in fixed.headers
    assert fixed.json()["balance"]["available"] == 110


def test_a_forbidden_request_does_not_use_up_the_key(scene: Scene) -> None:
    """Authorisation failures are not stored: the same key works once the key may do it."""
    weak = Api(scene.client, issue_key(scene.database, scene.partner, "read"))
    earned = scene.ok(scene.api.earn(scene.member, 10))
    path = f"/v1/transactions/{earned['id']}/reverse"
    assert_problem(weak.post(path, idempotency_key="rev"), 403, "forbidden")

    reversed_ = scene.api.post(path, idempotency_key="rev")

    assert reversed_.status_code == 201, reversed_.text
    assert reversed_.json()["details"] == {"clawed_back": 10, "shortfall": 0}


# --- Concurrency -----------------------------------------------------------------------------


@dataclass
class Race:
    responses: list[Any]
    entries_before: int
    entries_after: int


def _block_member_writes(scene: Scene) -> Callable[[], None]:
    """Hold the member's wallet (PostgreSQL) or the write lock (SQLite); return the release."""
    return _blocking(
        scene.database,
        "SELECT member_id FROM wallets WHERE member_id = :m FOR UPDATE",
        m=scene.member,
    )


def _blocking(database: Database, *statements: str, **params: Any) -> Callable[[], None]:
    """Run ``statements`` in a transaction left open (on SQLite: take the write lock)."""
    if database.dialect == "sqlite":
        connection = database.engine.execution_options(tally_write=True).connect()
        transaction = connection.begin()  # BEGIN IMMEDIATE: no one else may write
    else:
        connection = database.engine.connect()
        transaction = connection.begin()
        for statement in statements:
            connection.execute(text(statement), params)

    def release() -> None:
        if not connection.closed:
            transaction.rollback()
            connection.close()

    return release


def _wait_for_lock_waiters(database: Database, expected: int, timeout: float = 10.0) -> None:
    if database.dialect == "sqlite":
        time.sleep(0.3)  # nothing to observe: the requests queue on SQLite's write lock
        return
    deadline = time.monotonic() + timeout
    query = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    with database.engine.connect() as connection:
        while time.monotonic() < deadline:
            waiting = connection.execute(query).scalar()
            connection.rollback()  # statistics views are a snapshot per transaction
            if waiting >= expected:
                return
            time.sleep(0.02)
        activity = connection.execute(
            text(
                "SELECT state, wait_event_type, wait_event, left(query, 60) FROM pg_stat_activity"
                " WHERE datname = current_database()"
            )
        ).all()
    raise AssertionError(f"fewer than {expected} requests reached the lock: {activity}")


def race(
    scene: Scene,
    app: Any,
    requests: list[tuple[str, Any, str]],
    block: Callable[[Scene], Callable[[], None]] = _block_member_writes,
) -> Race:
    """Send ``requests`` (path, body, Idempotency-Key) at once while ``block`` holds them up, so
    they all overlap; then let them go."""
    # Separate clients (not started: their lifespans would stop the app's shared executor).
    clients = [TestClient(app, raise_server_exceptions=False) for _ in requests]
    before = entry_count(scene.database)
    release = block(scene)
    with concurrent.futures.ThreadPoolExecutor(len(requests)) as pool:
        try:
            futures = [
                pool.submit(client.post, path, json=body, headers=scene.partner.headers(key))
                for client, (path, body, key) in zip(clients, requests, strict=True)
            ]
            _wait_for_lock_waiters(scene.database, len(requests))
        finally:
            release()  # before the pool waits for its requests
        responses = [future.result(timeout=60) for future in futures]
    return Race(responses, before, entry_count(scene.database))


RACED = {
    "redeem": (lambda s: f"/v1/members/{s.member}/redeem", {"points": 10, "reference": "race"}),
    "adjustment": (lambda s: f"/v1/members/{s.member}/adjustments", {"points": -10, "reason": "r"}),
}


@pytest.mark.parametrize(("path", "body"), list(RACED.values()), ids=list(RACED))
def test_concurrent_duplicates_write_exactly_once(
    scene: Scene, app: Any, path: Callable[[Scene], str], body: dict[str, Any]
) -> None:
    result = race(scene, app, [(path(scene), body, "raced-key")] * 6)

    assert result.entries_after == result.entries_before + 1
    assert scene.api.balance(scene.member)["available"] == 90
    winners = [
        r
        for r in result.responses
        if r.status_code == 201 and "idempotent-replayed" not in r.headers
    ]
    assert len(winners) == 1, [r.text for r in result.responses]


@pytest.mark.parametrize(("path", "body"), list(RACED.values()), ids=list(RACED))
def test_concurrent_duplicates_all_get_the_first_answer(
    scene: Scene, app: Any, path: Callable[[Scene], str], body: dict[str, Any]
) -> None:
    result = race(scene, app, [(path(scene), body, "raced-key")] * 6)

    first = next(r for r in result.responses if "idempotent-replayed" not in r.headers)
    assert first.status_code == 201, first.text
    for response in result.responses:
        assert response.status_code == first.status_code, response.text
        assert response.content == first.content
    replayed = [r for r in result.responses if r.headers.get("idempotent-replayed") == "true"]
    assert len(replayed) == len(result.responses) - 1


def test_concurrent_redemptions_never_overspend(scene: Scene, app: Any) -> None:
    path = f"/v1/members/{scene.member}/redeem"
    result = race(
        scene, app, [(path, {"points": 30, "reference": f"r{n}"}, f"k{n}") for n in range(5)]
    )

    statuses = sorted(r.status_code for r in result.responses)
    assert statuses == [201, 201, 201, 409, 409], [r.text for r in result.responses]
    for refused in (r for r in result.responses if r.status_code == 409):
        assert_problem(refused, 409, "insufficient_points")
    assert result.entries_after == result.entries_before + 3
    assert scene.api.balance(scene.member)["available"] == 10


def test_a_hold_raced_by_captures_and_a_void_is_settled_once(scene: Scene, app: Any) -> None:
    hold_id = scene.hold(30)
    requests = [
        (f"/v1/holds/{hold_id}/capture", None, "c1"),
        (f"/v1/holds/{hold_id}/void", None, "v1"),
        (f"/v1/holds/{hold_id}/capture", {"points": 10}, "c2"),
    ]
    result = race(scene, app, requests)

    winners = [r for r in result.responses if r.status_code == 200]
    assert len(winners) == 1, [r.text for r in result.responses]
    for loser in (r for r in result.responses if r.status_code != 200):
        assert_problem(loser, 409, "hold_not_active")
    assert result.entries_after == result.entries_before + 1
    hold = winners[0].json()["hold"]
    expected = {"captured": 70, "voided": 100}[hold["status"]]
    if hold["status"] == "captured" and hold["captured_points"] == 10:
        expected = 90
    assert scene.api.balance(scene.member) == {
        "available": expected,
        "held": 0,
        "expiring": scene.api.balance(scene.member)["expiring"],
    }


def _identity_taken_meanwhile(scene: Scene) -> Callable[[], None]:
    """An uncommitted enrolment of the raced identity: every request waits for it, then it goes."""
    return _blocking(
        scene.database,
        "INSERT INTO members (id, status, created_at, updated_at)"
        " VALUES (999999, 'active', now(), now())",
        "INSERT INTO member_identities (member_id, namespace, external_id, created_at)"
        " VALUES (999999, 'email', 'race@example.cn', now())",
    )


def test_concurrent_enrolments_of_one_identity_make_one_member(scene: Scene, app: Any) -> None:
    body = {"external_id": {"namespace": "email", "id": "race@example.cn"}}
    result = race(
        scene, app, [("/v1/members", body, f"e{n}") for n in range(6)], _identity_taken_meanwhile
    )

    assert sorted(r.status_code for r in result.responses) == [200] * 5 + [201], [
        r.text for r in result.responses
    ]
    assert len({r.json()["id"] for r in result.responses}) == 1
    found = scene.api.get(
        "/v1/members/lookup", params={"namespace": "email", "id": "race@example.cn"}
    )
    assert found.json()["id"] == result.responses[0].json()["id"]
