"""``tally jobs idempotency``: purges Idempotency-Key records past the retention period, counts
them with --dry-run, and refuses a moment in the future unless it is a dry run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import insert, select

from e2e.cli.clikit import jobs_clock, run
from tally.config import Settings, get_settings
from tally.db.session import Database
from tally.idempotency.models import IdempotencyRecord
from tally.kit.clock import utcnow


@pytest.fixture
def cli_database(
    database: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Database]:
    """The CLI pointed at the test database, keeping records 10 days."""
    monkeypatch.setenv("TALLY_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("TALLY_SECRET_KEY", settings.secret_key)
    monkeypatch.setenv("TALLY_IDEMPOTENCY_RETENTION_DAYS", "10")
    get_settings.cache_clear()
    yield database
    get_settings.cache_clear()


def _keys(database: Database) -> list[str]:
    with database.read() as session:
        return sorted(session.scalars(select(IdempotencyRecord.key)))


def test_the_job_purges_what_is_past_the_retention(
    cli_database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = utcnow()
    jobs_clock(monkeypatch, now)
    with cli_database.write() as session:
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
                for age in (30, 12, 8)
            ],
        )
    ahead = (now + timedelta(days=5)).isoformat()
    refused = run("jobs", "idempotency", "--as-of", ahead, code=2)
    assert "is in the future" in refused.stderr
    assert _keys(cli_database) == ["age-12", "age-30", "age-8"]

    preview = json.loads(run("jobs", "idempotency", "--as-of", ahead, "--dry-run").stdout)
    assert preview["dry_run"] is True
    assert (preview["retention_days"], preview["records"]) == (10, 3)
    assert _keys(cli_database) == ["age-12", "age-30", "age-8"]

    done = json.loads(run("jobs", "idempotency").stdout)
    assert (done["retention_days"], done["purged"]) == (10, 2)
    assert done["before"] == (now - timedelta(days=10)).isoformat()
    assert _keys(cli_database) == ["age-8"]
    again = json.loads(run("jobs", "idempotency").stdout)
    assert again["purged"] == 0
