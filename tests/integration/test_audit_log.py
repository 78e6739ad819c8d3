"""The audit log on both databases: recorded in the caller's transaction, browsed, append-only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import DBAPIError

from tally.audit import service as audit
from tally.audit.domain import AuditFilter
from tally.audit.models import AuditEntry
from tally.db.session import Database

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _count(db: Database) -> int:
    with db.read() as session:
        return int(session.scalar(select(func.count()).select_from(AuditEntry)) or 0)


def test_an_entry_keeps_who_what_which_member_when_and_where(database: Database) -> None:
    with database.write() as session:
        audit.record(
            session,
            actor="staff:7",
            action="member.freeze",
            member_id=42,
            details={"reason": "fraud check", "at": T0},
            address="203.0.113.9",
            now=T0,
        )
    with database.read() as session:
        (entry,) = audit.browse(session, AuditFilter()).entries
    assert (entry.actor, entry.action, entry.member_id, entry.address) == (
        "staff:7",
        "member.freeze",
        42,
        "203.0.113.9",
    )
    assert entry.at == T0
    assert entry.details == {"reason": "fraud check", "at": T0.isoformat()}


def test_an_entry_is_part_of_the_callers_transaction(database: Database) -> None:
    def fail_after_recording() -> None:
        with database.write() as session:
            audit.record(session, actor="system", action="member.view", member_id=1, now=T0)
            raise RuntimeError("the action failed")

    with pytest.raises(RuntimeError, match="the action failed"):
        fail_after_recording()
    assert _count(database) == 0


@pytest.mark.parametrize(
    ("actor", "action"),
    [("staff", "member.view"), ("staff:0", "member.view"), ("bob", "x"), ("system", "Bad Name")],
)
def test_malformed_actors_and_actions_are_refused_and_write_nothing(
    database: Database, actor: str, action: str
) -> None:
    with pytest.raises(ValueError, match="not an audit"), database.write() as session:
        audit.record(session, actor=actor, action=action, now=T0)
    assert _count(database) == 0


def test_the_log_is_append_only(database: Database) -> None:
    with database.write() as session:
        audit.record(session, actor="staff:1", action="staff.sign_in", now=T0)
    for statement in (update(AuditEntry).values(actor="staff:2"), delete(AuditEntry)):
        with pytest.raises(DBAPIError, match="append-only"), database.write() as session:
            session.execute(statement)
    with database.read() as session:
        assert session.scalars(select(AuditEntry.actor)).all() == ["staff:1"]


def test_browsing_filters_and_pages_newest_first(database: Database) -> None:
    with database.write() as session:
        for number in range(7):
            audit.record(
                session,
                actor=f"staff:{1 + number % 2}",
                action="member.view" if number % 3 else "member.freeze",
                member_id=100 + number % 2,
                now=T0 + timedelta(hours=number),
            )
    with database.read() as session:
        first = audit.browse(session, AuditFilter(), limit=3)
        second = audit.browse(session, AuditFilter(), before_id=first.next_before, limit=3)
        third = audit.browse(session, AuditFilter(), before_id=second.next_before, limit=3)
        staff_one = audit.browse(session, AuditFilter(actor="staff:1"))
        freezes = audit.browse(session, AuditFilter(action="member.freeze"))
        member = audit.browse(session, AuditFilter(member_id=101))
        window = audit.browse(
            session, AuditFilter(since=T0 + timedelta(hours=2), until=T0 + timedelta(hours=4))
        )
        used = audit.actions_in_use(session)
    hours = [int((entry.at - T0).total_seconds() // 3600) for entry in first.entries]
    assert hours == [6, 5, 4]
    assert [len(first.entries), len(second.entries), len(third.entries)] == [3, 3, 1]
    assert third.next_before is None
    assert {entry.actor for entry in staff_one.entries} == {"staff:1"}
    assert len(staff_one.entries) == 4
    assert len(freezes.entries) == 3
    assert {entry.member_id for entry in member.entries} == {101}
    assert [entry.at for entry in window.entries] == [
        T0 + timedelta(hours=3),
        T0 + timedelta(hours=2),
    ]
    assert used == ["member.freeze", "member.view"]
