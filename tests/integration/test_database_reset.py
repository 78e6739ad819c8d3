"""Between PostgreSQL tests the database is emptied as a fresh migration leaves it: every table
empty (the append-only audit log too) but the system's accounts, every id from 1 again, the
audit log append-only still."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.exc import DBAPIError

from conftest import _empty, make_partner
from tally.audit import service as audit
from tally.audit.models import AuditEntry
from tally.db.session import Database
from tally.flows import enrolment
from tally.members.service import Identity
from tally.schema import metadata

pytestmark = pytest.mark.postgres
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _write_a_little_of_everything(db: Database) -> tuple[int, int]:
    partner = make_partner(db, "RESET", operator_channel=True)
    with db.write() as session:
        member, _ = enrolment.enrol(session, Identity("phone", "13800000001"), {}, T0)
        audit.record(session, actor="staff:1", action="member.freeze", member_id=member, now=T0)
    return partner.partner_id, member


def _enrol_and_roll_back(db: Database) -> None:
    """A rolled-back insert: it still uses up a sequence value."""
    with db.write() as session:
        enrolment.enrol(session, Identity("phone", "13800000002"), {}, T0)
        raise RuntimeError("roll back")


def _rows(db: Database) -> dict[str, int]:
    with db.read() as session:
        return {
            table.name: int(session.scalar(select(func.count()).select_from(table)) or 0)
            for table in metadata().sorted_tables
        }


def test_emptying_leaves_every_table_empty_and_ids_from_one(postgres_database: Database) -> None:
    db = postgres_database
    _empty(db)
    first = _write_a_little_of_everything(db)
    with pytest.raises(RuntimeError, match="roll back"):
        _enrol_and_roll_back(db)
    assert first == (1, 1)
    assert {name for name, count in _rows(db).items() if count} >= {
        "partners",
        "api_keys",
        "programme_versions",
        "members",
        "member_identities",
        "audit_entries",
    }

    _empty(db)

    assert {name: count for name, count in _rows(db).items() if count} == {"accounts": 3}
    assert _write_a_little_of_everything(db) == (1, 1)
    with db.read() as session:
        assert session.scalar(select(AuditEntry.id)) == 1
    _empty(db)


def test_the_audit_log_stays_append_only_after_emptying(postgres_database: Database) -> None:
    db = postgres_database
    _empty(db)
    _write_a_little_of_everything(db)
    _empty(db)
    _write_a_little_of_everything(db)
    with pytest.raises(DBAPIError, match="append-only"), db.write() as session:
        session.execute(delete(AuditEntry))
    assert _rows(db)["audit_entries"] == 1
    _empty(db)
