"""Helpers shared by the end-to-end API suites: problem assertions and database snapshots."""

from __future__ import annotations

import os
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from conftest import SECRET, Api, PartnerKey
from tally.db.session import Database
from tally.kit.clock import utcnow
from tally.schema import metadata

PROBLEM_JSON = "application/problem+json"
# Refused writes remember their refusal for replays; everything else must stay untouched.
UNTOUCHED_TABLES = tuple(
    t.name for t in metadata().sorted_tables if t.name != "idempotency_records"
)


def tolerant_client(app: Any) -> TestClient:
    """A TestClient that turns server exceptions into the 500 responses a real client would see."""
    return TestClient(app, raise_server_exceptions=False)


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    """``response`` is an RFC 9457 problem document with this status and stable code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON, response.headers
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert body["status"] == status, body
    assert body["type"] == f"https://tally.dev/problems/{code}", body
    assert isinstance(body["title"], str), body
    assert body["title"], body
    assert isinstance(body["detail"], str), body
    assert body["detail"], body
    return body


def db_state(database: Database) -> dict[str, list[tuple[str, ...]]]:
    """Every row of every table but the idempotency records, as comparable text."""
    state: dict[str, list[tuple[str, ...]]] = {}
    with database.read() as session:
        for table in metadata().sorted_tables:
            if table.name not in UNTOUCHED_TABLES:
                continue
            rows = session.execute(select(table)).all()
            state[table.name] = sorted(tuple(str(value) for value in row) for row in rows)
    return state


def entry_count(database: Database) -> int:
    with database.read() as session:
        table = metadata().tables["journal_entries"]
        return len(session.execute(select(table.c.id)).all())


def all_transactions(api: Api, member_id: int, limit: int = 200) -> list[dict[str, Any]]:
    """Every transaction of a member, following the cursor."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    for _page in range(1000):
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        response = api.get(f"/v1/members/{member_id}/transactions", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        items.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("pagination never ended")


def issue_key(database: Database, partner: PartnerKey, scopes: str) -> PartnerKey:
    """Another API key of an existing partner, with other scopes."""
    from tally.partners import service as partners
    from tally.partners.models import Partner

    with database.write() as session:
        found = session.get(Partner, partner.partner_id)
        assert found is not None
        _key, plain = partners.issue_key(
            session, found, partners.parse_scopes(scopes), SECRET, utcnow()
        )
    return PartnerKey(partner.partner_id, partner.code, plain)


def revoke(database: Database, key: PartnerKey) -> None:
    from tally.partners.service import revoke_key

    with database.write() as session:
        revoke_key(session, key.api_key.partition(".")[0], utcnow())


def merge(database: Database, survivor_id: int, merged_id: int) -> int:
    """Merge two members as a staff member would; returns the merge record's id."""
    from tally.config import Settings
    from tally.flows import enrolment
    from tally.programme import runtime
    from tally.staff import service as staff
    from tally.staff.models import StaffRole, StaffUser

    with database.write() as session:
        user = session.scalar(select(StaffUser).where(StaffUser.username == "e2e-admin"))
        if user is None:
            user = staff.create(
                session, "e2e-admin", "e2e-password-1", StaffRole.ADMIN, "", utcnow()
            )
        programme = runtime.effective(session, Settings())
        record = enrolment.merge(
            session, survivor_id, merged_id, user.id, "duplicate", utcnow(), programme
        )
        return int(record.id)


def unique(prefix: str) -> str:
    return f"{prefix}-{os.urandom(5).hex()}"
