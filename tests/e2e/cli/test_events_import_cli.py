"""``tally events import`` against a fresh SQLite file (and once on PostgreSQL): a CSV of bills
imported in chunks with a summary and a rejects file, a re-run that credits nothing twice, a
ledger that verifies, and bad files or partners refused with exit 2 and nothing written."""

from __future__ import annotations

import csv
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from e2e.cli.clikit import run
from support.event_import import COLUMNS, IMPORT_CAMPAIGNS, write_rows
from support.event_programme import apply_campaigns
from tally.config import get_settings
from tally.db.engine import build_engine
from tally.db.session import Database
from tally.events.models import StoredEvent
from tally.flows.enrolment import enrol
from tally.kit.clock import utcnow
from tally.members.service import Identity
from tally.partners import service as partners


@pytest.fixture
def members(database_url: str) -> list[int]:
    """The import programme applied, partner MOBILE, three members."""
    return _world(database_url)


def _world(database_url: str) -> list[int]:
    run("db", "upgrade")
    db = Database(build_engine(database_url))
    try:
        apply_campaigns(db, IMPORT_CAMPAIGNS)
        with db.write() as session:
            if not any(p.code == "MOBILE" for p in partners.partners(session)):
                partners.create_partner(session, "MOBILE", "Mobile", utcnow())
            return [
                enrol(session, Identity("phone", f"1390000{i:04d}"), {}, utcnow())[0]
                for i in range(3)
            ]
    finally:
        db.dispose()


def _stored(database_url: str) -> int:
    db = Database(build_engine(database_url))
    try:
        with db.read() as session:
            return int(session.scalar(select(func.count()).select_from(StoredEvent)) or 0)
    finally:
        db.dispose()


def _bills(members: list[int], count: int) -> list[dict[str, Any]]:
    return [
        {
            "type": "bill_paid",
            "event_id": f"bill-{index}",
            "member_id": str(members[index % len(members)]),
            "occurred_at": "2026-12-01T09:30:00+08:00",
            "amount": f"{10 + index}.00",
            "currency": "CNY",
            "channel": "billing",
        }
        for index in range(count)
    ]


def test_import_prints_a_summary_writes_rejects_and_a_rerun_credits_nothing_twice(
    database_url: str, members: list[int], tmp_path: Path
) -> None:
    rows = _bills(members, 10)
    rows[3]["amount"] = "12.345"
    path = write_rows(tmp_path / "bills.csv", rows, COLUMNS)
    rejects = tmp_path / "rejects.csv"

    result = run(
        "events", "import", str(path), "--partner", "MOBILE", "--rejects", str(rejects),
        "--chunk", "4",
    )  # fmt: skip

    summary = json.loads(result.stdout)
    assert {key: summary[key] for key in ("rows", "read", "imported", "rejected", "chunks")} == {
        "rows": 10,
        "read": 10,
        "imported": 9,
        "rejected": 1,
        "chunks": 3,
    }
    assert summary["already_imported"] == 0
    assert summary["points"] > 0
    assert summary["growth"] > 0
    assert summary["events_per_second"] > 0
    assert summary["peak_rss_mib"] > 0
    assert "importing" in result.stderr  # the progress bar
    with rejects.open(encoding="utf-8") as handle:
        refused = list(csv.DictReader(handle))
    assert [(r["event_id"], r["amount"], r["code"], r["reason"]) for r in refused] == [
        ("bill-3", "12.345", "validation_error", "CNY amounts have at most 2 decimals.")
    ]

    again = json.loads(run("events", "import", str(path), "--partner", "MOBILE").stdout)

    assert (again["imported"], again["already_imported"], again["points"]) == (0, 9, 0)
    assert _stored(database_url) == 9
    assert "ledger OK" in run("ledger", "verify").stdout


@pytest.mark.parametrize(
    ("columns", "partner", "message"),
    [
        (["type", "event_id", "member_id"], "MOBILE", "Missing column(s): occurred_at."),
        ([*COLUMNS, "bonus"], "MOBILE", "Unknown column(s): bonus;"),
        (COLUMNS, "NOBODY", "Partner NOBODY does not exist."),
    ],
)
def test_a_bad_file_or_partner_exits_2_and_writes_nothing(
    database_url: str,
    members: list[int],
    tmp_path: Path,
    columns: list[str],
    partner: str,
    message: str,
) -> None:
    rows = [{k: v for k, v in row.items() if k in columns} for row in _bills(members, 3)]
    path = write_rows(tmp_path / "bills.csv", rows, columns)
    rejects = tmp_path / "rejects.csv"

    result = run(
        "events", "import", str(path), "--partner", partner, "--rejects", str(rejects), code=2
    )

    assert message in result.stderr
    assert result.stdout == ""
    assert _stored(database_url) == 0
    assert not rejects.exists()


def test_a_missing_file_exits_2(database_url: str, members: list[int], tmp_path: Path) -> None:
    result = run("events", "import", str(tmp_path / "none.csv"), "--partner", "MOBILE", code=2)
    assert "No such file" in result.stderr


def test_import_on_postgresql_then_the_ledger_verifies(
    postgres_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = postgres_server.create_database(f"cli_import_{uuid.uuid4().hex[:12]}")
    monkeypatch.setenv("TALLY_DATABASE_URL", url)
    monkeypatch.setenv("TALLY_SECRET_KEY", "cli-test-secret-" + "y" * 32)
    get_settings.cache_clear()
    try:
        members = _world(url)
        path = write_rows(tmp_path / "bills.parquet", _bills(members, 12), COLUMNS)

        first = json.loads(run("events", "import", str(path), "--partner", "MOBILE").stdout)
        again = json.loads(run("events", "import", str(path), "--partner", "MOBILE").stdout)

        assert (first["imported"], first["rejected"]) == (12, 0)
        assert (again["imported"], again["already_imported"]) == (0, 12)
        assert _stored(url) == 12
        assert "ledger OK" in run("ledger", "verify").stdout
    finally:
        get_settings.cache_clear()
