"""tally.db.raw on both databases: list parameters, statements over many rows, savepoints."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tally.db.raw import Bulk, Raw, savepoint
from tally.db.session import Database
from tally.kit.clock import utcnow
from tally.ledger.models import EntryKind, JournalEntry
from tally.ledger.repository import ENTRY_COLUMNS
from tally.partners.models import Partner

INSERT_PARTNER = Raw(
    "INSERT INTO partners (code, name, is_active, created_at) VALUES (:code, :name, :on, :at)"
)
PARTNER_CODES = Raw("SELECT code FROM partners WHERE id = ANY(:ids) ORDER BY code")
PARTNERS_NAMED = Raw("SELECT id FROM partners WHERE code = ANY(:codes) ORDER BY id")
ENTRIES = Bulk.insert("journal_entries", ENTRY_COLUMNS)
NEW_PARTNERS = Bulk.insert(
    "partners",
    {"code": "text", "name": "text", "is_active": "boolean", "created_at": "timestamptz"},
    "RETURNING code",
)
RENAME = Bulk(
    "UPDATE partners SET name = :name WHERE code = :code AND is_active",
    "UPDATE partners AS p SET name = v.name FROM unnest(:code::text[], :name::text[])"
    " AS v(code, name) WHERE p.code = v.code AND p.is_active",
)


def _partners(db: Database, codes: list[str], active: bool = True) -> list[int]:
    with db.write() as session:
        for code in codes:
            INSERT_PARTNER.execute(
                session, {"code": code, "name": code, "on": active, "at": utcnow()}
            )
    with db.read() as session:
        return [row[0] for row in PARTNERS_NAMED.all(session, {"codes": codes})]


def test_a_list_parameter_matches_any_of_its_values(database: Database) -> None:
    ids = _partners(database, ["A", "B", "C"])

    with database.read() as session:
        assert PARTNER_CODES.all(session, {"ids": [ids[2], ids[0], 10**12]}) == [("A",), ("C",)]
        assert PARTNER_CODES.all(session, {"ids": []}) == []
        assert PARTNERS_NAMED.all(session, {"codes": ["B", "nobody", "é\"'\\"]}) == [(ids[1],)]


def test_bulk_insert_writes_every_row_as_the_models_read_it(database: Database) -> None:
    now = datetime(2026, 12, 1, 8, 30, 15, 123456, tzinfo=UTC)
    rows = [
        {
            "id": uuid.uuid4(),
            "kind": EntryKind.EARN,
            "member_id": 7,
            "partner_id": None,
            "staff_id": 3,
            "reference": 'r-1 "quoted" \\ 积分',
            "source_key": None,
            "reverses_id": None,
            "memo": None,
            "details": {"points": 5, "note": "双倍"},
            "created_at": now,
            "hash": "a" * 64,
            "programme_version": 3,
        },
        {
            "id": uuid.uuid4(),
            "kind": EntryKind.REDEEM,
            "member_id": None,
            "partner_id": 2**62,
            "staff_id": None,
            "reference": None,
            "source_key": "redeem:1:x",
            "reverses_id": uuid.uuid4(),
            "memo": "m",
            "details": None,
            "created_at": now,
            "hash": "b" * 64,
            "programme_version": None,
        },
    ]
    with database.write() as session:
        assert ENTRIES.execute(session, rows) == 2
        assert ENTRIES.execute(session, []) == 0

    with database.read() as session:
        found = {entry.id: entry for entry in session.scalars(select(JournalEntry))}
    assert set(found) == {row["id"] for row in rows}
    for row in rows:
        entry = found[row["id"]]
        for column, value in row.items():
            assert getattr(entry, column) == value, column


def test_bulk_returning_gives_each_row(database: Database) -> None:
    rows = [
        {"code": code, "name": code, "is_active": True, "created_at": utcnow()} for code in "XYZ"
    ]
    with database.write() as session:
        returned = NEW_PARTNERS.returning(session, rows)
    assert sorted(returned) == [("X",), ("Y",), ("Z",)]


def test_bulk_update_counts_only_the_rows_its_guard_let_through(database: Database) -> None:
    _partners(database, ["ON1", "ON2"])
    _partners(database, ["OFF"], active=False)

    with database.write() as session:
        changed = RENAME.execute(
            session,
            [
                {"code": "ON1", "name": "one"},
                {"code": "OFF", "name": "x"},
                {"code": "ON2", "name": "two"},
            ],
        )
    assert changed == 2
    with database.read() as session:
        names = {row[0]: row[1] for row in session.execute(select(Partner.code, Partner.name))}
    assert names == {"ON1": "one", "ON2": "two", "OFF": "OFF"}


def test_a_savepoint_rolls_back_statements_run_on_the_driver(database: Database) -> None:
    def doomed(session: Session) -> None:
        with savepoint(session):
            INSERT_PARTNER.execute(
                session, {"code": "GONE", "name": "g", "on": True, "at": utcnow()}
            )
            raise RuntimeError

    with database.write() as session:
        PARTNER_CODES.all(session, {"ids": []})  # the driver connection is in use already
        with pytest.raises(RuntimeError):
            doomed(session)
        INSERT_PARTNER.execute(session, {"code": "KEPT", "name": "k", "on": True, "at": utcnow()})

    with database.read() as session:
        assert list(session.scalars(select(Partner.code))) == ["KEPT"]


def test_a_locking_read_runs_on_both_databases(database: Database) -> None:
    ids = _partners(database, ["L1", "L2"])
    locked = Raw("SELECT id FROM partners WHERE id = ANY(:ids) ORDER BY id", lock=True)

    with database.write() as session:
        assert locked.all(session, {"ids": ids}) == [(ids[0],), (ids[1],)]
    assert "FOR UPDATE" in locked.pg_sql
    assert "FOR UPDATE" not in locked.sqlite_sql
