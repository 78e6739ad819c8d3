"""Bulk accrual: a file of events imported chunk by chunk gives exactly what the batch endpoint
gives for the same events; a crash loses nothing and a re-run credits nothing twice; refused
rows are written with their reasons; a bad file or partner writes nothing at all."""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from conftest import Api, make_partner
from support.event_import import (
    COLUMNS,
    IMPORT_CAMPAIGNS,
    api_event,
    balances,
    counters,
    stored,
    tiers,
    write_rows,
)
from support.event_programme import apply_campaigns
from tally.config import Settings
from tally.db.session import Database
from tally.errors import NotFound, TallyError, ValidationFailed
from tally.events.importing import BadFile
from tally.events.models import StoredEvent
from tally.flows import event_import
from tally.flows.enrolment import enrol
from tally.kit.clock import utcnow
from tally.ledger.models import JournalEntry
from tally.ledger.verify import verify
from tally.members import service as members_service
from tally.members.service import Identity
from tally.partners import service as partners
from tally.partners.models import Partner

ATTRIBUTES = ["attr.score", "attr.spent"]


class Crash(Exception):
    """A failure injected after a chunk commits."""


def _world(
    database: Database, count: int, now: datetime, rates: dict[str, str] | None = None
) -> list[int]:
    """The import programme (with exchange ``rates``), partner MOBILE and ``count`` members."""
    apply_campaigns(database, IMPORT_CAMPAIGNS, exchange_rates=rates)
    with database.write() as session:
        if session.scalar(select(Partner.id).where(Partner.code == "MOBILE")) is None:
            partners.create_partner(session, "MOBILE", "MOBILE partner", now)
        return [
            enrol(session, Identity("phone", f"1380000{index:04d}"), {}, now)[0]
            for index in range(count)
        ]


def _rows(members: list[int], count: int, prefix: str = "e") -> list[dict[str, Any]]:
    """Bills (some small, most capped per member and then by the budget), purchases, surveys
    and sign-ins over ``members``, in a known order."""
    rows = []
    for index in range(count):
        member = str(members[index % len(members)])
        day = f"2026-12-0{1 + index % 3}T{8 + index % 12:02d}:15:00+08:00"
        row: dict[str, Any] = {"event_id": f"{prefix}-{index}", "member_id": member}
        match index % 5:
            case 0 | 1:
                value = "12.50" if index % 7 == 0 else f"{40 + index}.05"
                row |= {"type": "bill_paid", "amount": value, "currency": "CNY"}
            case 2:
                row |= {"type": "purchase", "amount": f"{index * 3}.10", "currency": "CNY"}
            case 3:
                row |= {"type": "survey_done", "attr.score": str(index % 11), "attr.spent": "9.75"}
            case _:
                row |= {"type": "sign_in", "channel": "app"}
        rows.append({**row, "occurred_at": day})
    return rows


def _import(
    database: Database, settings: Settings, path: Path, now: datetime, **options: Any
) -> event_import.ImportReport:
    return event_import.run(
        database.write,
        _settings_for(settings, database),
        path,
        "MOBILE",
        clock=lambda: now,
        **options,
    )


def _settings_for(settings: Settings, database: Database) -> Settings:
    url = database.engine.url.render_as_string(hide_password=False)
    return settings.model_copy(update={"database_url": url})


def _count(database: Database, model: Any) -> int:
    with database.read() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_an_import_gives_exactly_what_the_batch_endpoint_gives(
    database: Database,
    second_database: Database,
    settings: Settings,
    app: Any,
    client: Any,
    tmp_path: Path,
) -> None:
    """The same 60 events, sent to POST /v1/events/batch 8 at a time on one database and
    imported 8 a chunk on another: the same stored outcomes, balances, chains, growth, tiers
    and counters (the budget and caps consumed in the same order), and a ledger that verifies."""
    now = utcnow()
    app.state.clock = lambda: now
    members = _world(database, 7, now)
    assert _world(second_database, 7, now) == members
    key = make_partner(database, "MOBILE", "events,members,read")
    rows = _rows(members, 60)
    sent = [api_event(row) for row in rows]
    api = Api(client, key)
    for start in range(0, len(sent), 8):
        answer = api.post("/v1/events/batch", {"events": sent[start : start + 8]})
        assert answer.status_code == 200, answer.text
    path = write_rows(tmp_path / "events.csv", rows, [*COLUMNS, *ATTRIBUTES])

    report = _import(second_database, settings, path, now, chunk=8)

    assert (report.rows, report.read, report.imported, report.rejected) == (60, 60, 60, 0)
    online, bulk = stored(database), stored(second_database)
    assert len(bulk) == 60
    assert bulk == online
    assert report.points == sum(outcome[8] for outcome in bulk.values()) > 0
    assert report.growth == sum(outcome[9] for outcome in bulk.values()) > 0
    assert balances(second_database) == balances(database)
    assert tiers(second_database) == tiers(database)
    assert counters(second_database) == counters(database)
    assert counters(second_database)["budget:BILLS"] == 400  # used up, never passed
    assert _count(second_database, JournalEntry) == _count(database, JournalEntry)
    for db in (database, second_database):
        with db.read() as session:
            assert verify(session).ok


def test_refunds_and_other_currencies_import_as_the_batch_endpoint_takes_them(
    database: Database,
    second_database: Database,
    settings: Settings,
    app: Any,
    client: Any,
    tmp_path: Path,
) -> None:
    """Purchases, some in USD at the programme's rate, then refunds of some of them (a part,
    the rest, one of a purchase never made, one in USD): the batch endpoint and the importer
    store the same outcomes and leave the same balances and counters."""
    now = utcnow()
    app.state.clock = lambda: now
    rates = {"USD": "7.1234"}
    members = _world(database, 3, now, rates)
    assert _world(second_database, 3, now, rates) == members
    key = make_partner(database, "MOBILE", "events,members,read")
    moment = "2026-12-02T10:00:00+08:00"
    rows: list[dict[str, Any]] = [
        {"type": "purchase", "event_id": f"p-{n}", "member_id": str(members[n % 3]),
         "occurred_at": moment, "amount": f"{100 + n * 17}.40",
         "currency": "USD" if n % 3 == 0 else "CNY"}
        for n in range(9)
    ]  # fmt: skip
    rows += [
        {"type": "refund", "event_id": "r-1", "member_id": str(members[1]), "refers_to": "p-1",
         "occurred_at": moment, "amount": "50.00", "currency": "CNY"},
        {"type": "refund", "event_id": "r-2", "member_id": str(members[1]), "refers_to": "p-1",
         "occurred_at": moment, "amount": "67.40", "currency": "CNY"},
        {"type": "refund", "event_id": "r-3", "member_id": str(members[0]), "refers_to": "p-3",
         "occurred_at": moment, "amount": "10.00", "currency": "USD"},
        {"type": "refund", "event_id": "r-4", "member_id": str(members[0]), "refers_to": "nope",
         "occurred_at": moment, "amount": "1.00", "currency": "CNY"},
        {"type": "purchase", "event_id": "p-9", "member_id": str(members[2]),
         "occurred_at": moment, "amount": "10.00", "currency": "EUR"},
    ]  # fmt: skip
    answer = Api(client, key).post("/v1/events/batch", {"events": [api_event(r) for r in rows]})
    assert answer.status_code == 200, answer.text
    refused = {r["event_id"]: r["code"] for r in answer.json()["results"] if "code" in r}
    path = write_rows(tmp_path / "events.csv", rows, [*COLUMNS, "refers_to"])
    rejects = tmp_path / "rejects.csv"

    report = _import(second_database, settings, path, now, chunk=100, rejects=rejects)

    with rejects.open(encoding="utf-8") as handle:
        assert {r["event_id"]: r["code"] for r in csv.DictReader(handle)} == refused
    assert set(refused) == {"r-4", "p-9"}
    assert (report.imported, report.rejected) == (12, 2)
    assert stored(second_database) == stored(database)
    assert stored(second_database)["r-2"][8] < 0  # took back points
    assert balances(second_database) == balances(database)
    assert counters(second_database) == counters(database)
    for db in (database, second_database):
        with db.read() as session:
            assert verify(session).ok


def test_parquet_imports_as_csv_does(
    dialect: str, database: Database, second_database: Database, settings: Settings, tmp_path: Path
) -> None:
    if dialect != "sqlite":
        pytest.skip("the file format is the same on every database")
    now = utcnow()
    members = _world(database, 4, now)
    _world(second_database, 4, now)
    rows = _rows(members, 25)
    columns = [*COLUMNS, *ATTRIBUTES]

    by_csv = _import(database, settings, write_rows(tmp_path / "e.csv", rows, columns), now)
    by_parquet = _import(
        second_database, settings, write_rows(tmp_path / "e.parquet", rows, columns), now
    )

    assert by_csv.imported == by_parquet.imported == 25
    assert stored(database) == stored(second_database)


def test_a_crash_after_a_chunk_loses_nothing_and_a_rerun_credits_nothing_twice(
    database: Database, second_database: Database, settings: Settings, tmp_path: Path
) -> None:
    now = utcnow()
    members = _world(database, 5, now)
    _world(second_database, 5, now)
    rows = _rows(members, 47)
    rows[10]["member_id"] = "999999"  # refused on both runs, never stored
    path = write_rows(tmp_path / "events.csv", rows, [*COLUMNS, *ATTRIBUTES])
    rejects = tmp_path / "rejects.csv"

    def crash_after_third(report: event_import.ImportReport) -> None:
        if report.chunks == 3:
            raise Crash

    with pytest.raises(Crash):
        _import(database, settings, path, now, chunk=6, rejects=rejects, on_chunk=crash_after_third)

    assert _count(database, StoredEvent) == 17  # three chunks of 6 committed, one row refused
    assert not rejects.exists()
    assert not rejects.with_name("rejects.csv.partial").exists()

    before = sum(outcome[8] for outcome in stored(database).values())
    resumed = _import(database, settings, path, now, chunk=6, rejects=rejects)
    again = _import(database, settings, path, now, chunk=6)
    clean = _import(second_database, settings, path, now, chunk=6)

    assert (resumed.imported, resumed.already_imported, resumed.rejected) == (29, 17, 1)
    assert (again.imported, again.already_imported, again.points) == (0, 46, 0)
    assert (clean.imported, clean.rejected) == (46, 1)
    assert before + resumed.points == clean.points
    assert stored(database) == stored(second_database)
    assert balances(database) == balances(second_database)
    assert counters(database) == counters(second_database)
    with database.read() as session:
        assert verify(session).ok
    with rejects.open(encoding="utf-8") as handle:
        refused = list(csv.DictReader(handle))
    assert [(r["row"], r["event_id"], r["code"]) for r in refused] == [("11", "e-10", "not_found")]


def test_refused_rows_are_written_with_their_reasons_and_the_rest_imported(
    database: Database, settings: Settings, tmp_path: Path
) -> None:
    now = utcnow()
    members = _world(database, 3, now)
    with database.write() as session:
        members_service.freeze(session, members[2], "fraud", now)
    good = {"type": "bill_paid", "member_id": str(members[0]), "currency": "CNY"}
    moment = "2026-12-02T10:00:00+08:00"
    rows: list[dict[str, Any]] = [
        {**good, "event_id": "ok-1", "amount": "30.00", "occurred_at": moment},
        {**good, "event_id": "bad-type", "type": "Bill", "amount": "1.00", "occurred_at": moment},
        {**good, "event_id": "unknown-type", "type": "lottery", "occurred_at": moment},
        {
            **good,
            "event_id": "nobody",
            "member_id": "424242",
            "amount": "1.00",
            "occurred_at": moment,
        },
        {
            **good,
            "event_id": "frozen",
            "member_id": str(members[2]),
            "amount": "1.00",
            "occurred_at": moment,
        },
        {
            **good,
            "event_id": "not-a-number",
            "member_id": "abc",
            "amount": "1.00",
            "occurred_at": moment,
        },
        {**good, "event_id": "float", "amount": "1e3", "occurred_at": moment},
        {**good, "event_id": "negative", "amount": "-5.00", "occurred_at": moment},
        {**good, "event_id": "dollars", "amount": "5.00", "currency": "USD", "occurred_at": moment},
        {**good, "event_id": "fils", "amount": "5.001", "occurred_at": moment},
        {
            **good,
            "event_id": "no-currency",
            "amount": "5.00",
            "currency": None,
            "occurred_at": moment,
        },
        {**good, "event_id": "naive", "amount": "5.00", "occurred_at": "2026-12-02T10:00:00"},
        {**good, "event_id": "no-date", "amount": "5.00", "occurred_at": "yesterday"},
        {**good, "event_id": "feb-30", "amount": "5.00", "occurred_at": "2026-02-30T10:00:00Z"},
        {**good, "event_id": "ok-1", "amount": "99.00", "occurred_at": moment},
        {**good, "event_id": "", "amount": "5.00", "occurred_at": moment},
        {
            "type": "survey_done",
            "event_id": "survey-typed",
            "member_id": str(members[1]),
            "attr.score": "nine",
            "occurred_at": moment,
        },
        {
            **good,
            "event_id": "undeclared",
            "attr.score": "3",
            "amount": "5.00",
            "occurred_at": moment,
        },
        {**good, "event_id": "refund", "type": "refund", "amount": "5.00", "occurred_at": moment},
        {**good, "event_id": "ok-2", "amount": "40.00", "occurred_at": "2026-12-02 02:00:00Z"},
    ]
    path = write_rows(tmp_path / "events.csv", rows, [*COLUMNS, "attr.score"])
    rejects = tmp_path / "rejects.csv"

    report = _import(database, settings, path, now, chunk=7, rejects=rejects)

    assert (report.read, report.imported, report.rejected) == (20, 2, 18)
    with rejects.open(encoding="utf-8") as handle:
        refused = {row["event_id"]: (row["code"], row["reason"]) for row in csv.DictReader(handle)}
    assert refused == {
        "bad-type": ("validation_error", "Unknown event type 'Bill'."),
        "unknown-type": ("validation_error", "Unknown event type 'lottery'."),
        "nobody": ("not_found", "Member 424242 does not exist."),
        "frozen": ("member_frozen", f"Member {members[2]} is frozen."),
        "not-a-number": ("validation_error", "member_id must be a positive whole number."),
        "float": ("validation_error", 'amount must be an exact decimal, e.g. "152.00".'),
        "negative": ("validation_error", 'amount must be an exact decimal, e.g. "152.00".'),
        "dollars": ("validation_error", "Amounts must be in the programme's currency, CNY."),
        "fils": ("validation_error", "CNY amounts have at most 2 decimals."),
        "no-currency": ("validation_error", "amount and currency go together."),
        "naive": ("validation_error", _BAD_MOMENT),
        "no-date": ("validation_error", _BAD_MOMENT),
        "feb-30": ("validation_error", _BAD_MOMENT),
        "ok-1": ("duplicate_in_file", "event_id ok-1 appears on an earlier row of the file."),
        "": ("validation_error", "event_id is missing."),
        "survey-typed": ("validation_error", "Attribute 'score' must be int, not str."),
        "undeclared": ("validation_error", "Attribute 'score' is not declared for bill_paid."),
        "refund": ("validation_error", "A refund names the event it refunds."),
    }
    with rejects.open(encoding="utf-8") as handle:
        header = next(csv.reader(handle))
    assert header == ["row", *COLUMNS, "attr.score", "reason", "code"]
    assert set(stored(database)) == {"ok-1", "ok-2"}
    assert stored(database)["ok-1"][4] == 3000  # the first row of the id, not the repeat
    with database.read() as session:
        assert verify(session).ok


_BAD_MOMENT = (
    "occurred_at must be an ISO-8601 date and time with its offset, e.g. 2026-05-06T10:00:00+08:00."
)


@pytest.mark.parametrize(
    ("name", "columns", "error"),
    [
        ("missing.csv", ["type", "event_id", "member_id"], "Missing column(s): occurred_at."),
        ("extra.csv", [*COLUMNS, "points"], "Unknown column(s): points;"),
        (
            "half-money.csv",
            ["type", "event_id", "member_id", "occurred_at", "amount"],
            "Columns amount and currency go together.",
        ),
        ("events.txt", COLUMNS, "the file must be .csv or .parquet."),
    ],
)
def test_a_bad_file_is_refused_before_anything_is_written(
    database: Database,
    settings: Settings,
    tmp_path: Path,
    name: str,
    columns: list[str],
    error: str,
) -> None:
    now = utcnow()
    members = _world(database, 1, now)
    rows = [
        {key: value for key, value in row.items() if key in columns} for row in _rows(members, 3)
    ]
    path = tmp_path / name
    write_rows(path.with_suffix(".csv"), rows, columns).rename(path)
    rejects = tmp_path / "rejects.csv"

    with pytest.raises(BadFile, match=error.replace("(", r"\(").replace(")", r"\)")):
        _import(database, settings, path, now, rejects=rejects)

    assert _count(database, StoredEvent) == 0
    assert not rejects.exists()


def test_a_float_column_an_unreadable_file_or_an_unknown_partner_writes_nothing(
    dialect: str, database: Database, settings: Settings, tmp_path: Path
) -> None:
    import polars as pl

    now = utcnow()
    members = _world(database, 1, now)
    floats = tmp_path / "floats.parquet"
    pl.DataFrame(
        {
            "type": ["bill_paid"],
            "event_id": ["f"],
            "member_id": [members[0]],
            "occurred_at": ["2026-12-02T10:00:00Z"],
            "amount": [12.5],
            "currency": ["CNY"],
        }
    ).write_parquet(floats)
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"not parquet at all")
    good = write_rows(tmp_path / "good.csv", _rows(members, 2), COLUMNS)

    with pytest.raises(BadFile, match="Column amount holds binary floats"):
        _import(database, settings, floats, now)
    with pytest.raises(BadFile, match="not a readable"):
        _import(database, settings, garbage, now)
    with pytest.raises(BadFile, match="No such file"):
        _import(database, settings, tmp_path / "absent.csv", now)
    with pytest.raises(NotFound, match="Partner NOBODY does not exist"):
        event_import.run(database.write, settings, good, "NOBODY", clock=lambda: now)
    with database.write() as session:
        partners.set_active(session, "MOBILE", False)
    with pytest.raises(ValidationFailed, match="Partner MOBILE is not active"):
        _import(database, settings, good, now)

    assert _count(database, StoredEvent) == 0
    assert isinstance(BadFile("x"), TallyError)


def test_a_chunk_of_many_rows_takes_as_many_statements_as_a_chunk_of_few(
    dialect: str,
    database: Database,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Set-based per chunk: checking, finding the stored, the members, evaluating, storing and
    posting 190 bills is as many round trips as 10 (bills under the BILLS bonus, so that both
    consume the same counters: none)."""
    if dialect != "postgresql":
        pytest.skip("counted as PostgreSQL round trips")
    import psycopg

    now = utcnow()
    members = _world(database, 200, now)
    bills = [
        {"type": "bill_paid", "event_id": f"b-{n}", "member_id": str(members[n]),
         "occurred_at": "2026-12-01T09:00:00+08:00", "amount": "10.00", "currency": "CNY"}
        for n in range(200)
    ]  # fmt: skip
    few = write_rows(tmp_path / "few.csv", bills[:10], COLUMNS)
    many = write_rows(tmp_path / "many.csv", bills[10:], COLUMNS)
    executed: list[str] = []
    real = psycopg.Cursor.execute

    def counted(self: psycopg.Cursor[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
        executed.append(str(query)[:60])
        return real(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", counted)
    assert _import(database, settings, few, now, chunk=10).imported == 10
    few_statements, executed[:] = list(executed), []
    assert _import(database, settings, many, now, chunk=190).imported == 190
    many_statements = list(executed)
    monkeypatch.undo()

    assert many_statements == few_statements
    with database.read() as session:
        assert verify(session).ok
