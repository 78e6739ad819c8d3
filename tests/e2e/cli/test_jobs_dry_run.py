"""``tally jobs … --dry-run`` on both databases: it reports what the job would do, exactly what
the job then does, and writes nothing; a job run ahead of the clock is refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from e2e.cli.clikit import jobs_clock, run
from support.membership_programme import apply_programme
from tally.config import Settings, get_settings
from tally.db.session import Database
from tally.flows import earning, enrolment
from tally.kit.clock import utcnow
from tally.ledger.domain import Origin, Policy
from tally.ledger.holds import create_hold
from tally.members.service import Identity
from tally.memberships import service as memberships
from tally.partners import service as partners
from tally.programme.domain import Money, Programme
from tally.schema import metadata
from tally.sessions import service as web_sessions
from tally.sessions.models import SessionKind
from tally.staff import service as staff
from tally.staff.models import StaffRole
from tally.throttling import service as throttling

POLICY = Policy(
    validity_days=365, reversal_grace_days=30, zone_name="Asia/Shanghai", max_points=10**9
)
DAY = timedelta(days=1)


@pytest.fixture
def cli_database(
    database: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Database]:
    """The CLI pointed at the test database (SQLite file or PostgreSQL)."""
    monkeypatch.setenv("TALLY_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("TALLY_SECRET_KEY", settings.secret_key)
    get_settings.cache_clear()
    yield database
    get_settings.cache_clear()


def seed(db: Database) -> tuple[datetime, Programme]:
    """Three members with something for every job to do 40 days from now.

    1 earned 6000 growth 400 days ago (GOLD, nothing in the window: a grace period starts) and
    holds 100 points expiring in 10 days and 50 in 400; 2 earned 30 expiring in 5 days, holds 10
    for an hour and pays a monthly plan; 3 subscribed and never paid. Staff "ops" signed in to
    the console and failed a sign-in once.
    """
    programme = apply_programme(db)
    now = utcnow()
    with db.write() as session:
        partner = partners.create_partner(session, "PAY", "pay", now - 500 * DAY)
        origin = Origin(partner_id=partner.id)
        ids = [
            enrolment.enrol(session, Identity("phone", f"1370000000{n}"), {}, now - 500 * DAY)[0]
            for n in range(3)
        ]
        one, two, three = ids

        def earn(member: int, points: int, at: datetime, expires: datetime | None) -> None:
            earning.earn(
                session, origin, member, points, f"e{member}-{points}", at, POLICY, programme,
                expires_at=expires,
            )  # fmt: skip

        earn(one, 6000, now - 400 * DAY, now - 35 * DAY)
        earn(one, 100, now, now + 10 * DAY)
        earn(one, 50, now, now + 400 * DAY)
        earn(two, 30, now, now + 5 * DAY)
        create_hold(session, origin, two, 10, "h-1", 3600, now, POLICY)
        row, _ = memberships.subscribe(session, memberships.SYSTEM, two, "MONTHLY", programme, now)
        memberships.pay(
            session, memberships.Actor(partner_id=partner.id), row.id, "pay-1",
            Money(1500, "CNY"), now, programme, now,
        )  # fmt: skip
        memberships.subscribe(session, memberships.SYSTEM, three, "MONTHLY", programme, now)
        ops = staff.create(session, "ops", "correct horse 1", StaffRole.OPS, "Ops", now)
        client = web_sessions.Client("127.0.0.1", "pytest")
        web_sessions.start(session, SessionKind.CONSOLE, "t" * 32, now, client, staff_id=ops.id)
        rule = throttling.throttles_for(Settings()).account
        throttling.admit(session, [(throttling.account_key("ops"), rule)], now)
    return now, programme


def snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in a stable order."""
    with db.engine.connect() as connection:
        return {
            table.name: sorted(
                (tuple(row) for row in connection.execute(text(f"SELECT * FROM {table.name}"))),
                key=repr,
            )
            for table in metadata().sorted_tables
        }


def out(*args: str) -> dict[str, Any]:
    return json.loads(run(*args).stdout)  # type: ignore[no-any-return]


JOBS = [
    # job, the real run's report without as_of, what the dry run adds
    pytest.param(
        "expire",
        {"members": 2, "lots_expired": 3, "points_expired": 6120, "holds_lapsed": 1},
        id="expire",
    ),
    pytest.param("lapses", {"holds_lapsed": 1}, id="lapses"),
    pytest.param(
        "tiers", {"members": 2, "changes": {"grace_started": 1}, "skipped": 0}, id="tiers"
    ),
    pytest.param("memberships", {"expired": 1, "abandoned": 1}, id="memberships"),
    pytest.param("sign-ins", {"sessions": 1, "throttles": 1}, id="sign-ins"),
]


@pytest.mark.parametrize(("job", "done"), JOBS)
def test_a_dry_run_reports_what_the_job_then_does_and_writes_nothing(
    cli_database: Database, monkeypatch: pytest.MonkeyPatch, job: str, done: dict[str, Any]
) -> None:
    now, _programme = seed(cli_database)
    ahead = (now + 40 * DAY).isoformat()
    before = snapshot(cli_database)

    preview = out("jobs", job, "--as-of", ahead, "--dry-run")

    assert snapshot(cli_database) == before
    assert preview.pop("as_of") == ahead
    assert preview.pop("dry_run") is True
    sample = preview.pop("sample", None)
    assert preview == {k: v for k, v in done.items() if k != "skipped"} | _extra(job)
    assert sample or job == "sign-ins"  # no session or account is shown, only counts

    jobs_clock(monkeypatch, now + 41 * DAY)
    report = out("jobs", job, "--as-of", ahead)
    assert report.pop("as_of") == ahead
    assert report == done
    assert snapshot(cli_database) != before


def _extra(job: str) -> dict[str, Any]:
    """Figures only the dry run gives: the points the lapsing holds release."""
    return {"points_released": 10} if job in {"expire", "lapses"} else {}


def test_the_dry_run_samples_name_members_lots_and_holds(cli_database: Database) -> None:
    now, _programme = seed(cli_database)
    ahead = (now + 40 * DAY).isoformat()

    expiry = out("jobs", "expire", "--as-of", ahead, "--dry-run")["sample"]
    tiers = out("jobs", "tiers", "--as-of", ahead, "--dry-run")["sample"]
    due = out("jobs", "memberships", "--as-of", ahead, "--dry-run")["sample"]

    assert expiry["lots"] == [
        {"member_id": 1, "lots": 2, "points": 6100},
        {"member_id": 2, "lots": 1, "points": 20},
    ]
    [hold] = expiry["holds"]
    assert (hold["member_id"], hold["points"]) == (2, 10)
    assert tiers == [{"member_id": 1, "from": "GOLD", "to": "GOLD", "reason": "grace_started"}]
    assert (len(due["expired"]), len(due["abandoned"])) == (1, 1)


@pytest.mark.parametrize("job", ["expire", "lapses", "tiers", "memberships", "sign-ins"])
def test_a_moment_in_the_future_is_refused_unless_dry_run(
    cli_database: Database, monkeypatch: pytest.MonkeyPatch, job: str
) -> None:
    now, _programme = seed(cli_database)
    jobs_clock(monkeypatch, now)
    before = snapshot(cli_database)

    refused = run("jobs", job, "--as-of", (now + 61 * timedelta(seconds=1)).isoformat(), code=2)

    assert "is in the future" in refused.stderr
    assert "Add --dry-run" in refused.stderr
    assert refused.stdout == ""
    assert snapshot(cli_database) == before
    # Within the minute of clock skew allowed, and in the past, the job runs.
    run("jobs", job, "--as-of", (now + timedelta(seconds=59)).isoformat())
    run("jobs", job, "--as-of", (now - DAY).isoformat())


def test_a_date_means_its_end_so_today_is_still_the_future(
    cli_database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    now, programme = seed(cli_database)
    jobs_clock(monkeypatch, now)
    today = now.astimezone(programme.zone).date().isoformat()

    refused = run("jobs", "expire", "--as-of", today, code=2)

    assert f"--as-of {today} means" in " ".join(refused.stderr.split())
    assert out("jobs", "expire", "--as-of", today, "--dry-run")["dry_run"] is True
