"""``tally coupons`` (list, show, issue as staff) and ``tally jobs coupons`` against a fresh
SQLite file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from e2e.cli.clikit import jobs_clock, run
from support.coupon_programme import TEMPLATE, apply_coupon_programme
from tally.config import get_settings
from tally.db.engine import build_engine
from tally.db.session import Database
from tally.flows import enrolment
from tally.members.service import Identity
from tally.schema import migrate
from tally.staff import service as staff
from tally.staff.models import StaffRole

NOW = datetime(2026, 12, 4, 10, tzinfo=UTC)


@pytest.fixture
def db(tmp_path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'tally.db'}"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TALLY_DATABASE_URL", url)
    monkeypatch.setenv("TALLY_SECRET_KEY", "cli-test-secret-" + "y" * 32)
    get_settings.cache_clear()
    database = Database(build_engine(url))
    migrate(database.engine)
    yield database
    database.dispose()
    get_settings.cache_clear()


def test_issue_show_and_the_monthly_job(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    apply_coupon_programme(db, NOW)
    with db.write() as session:
        member = enrolment.enrol(session, Identity("phone", "13700000001"), {}, NOW)[0]
        staff.create(session, "ops", "a-long-password-1", StaffRole.OPS, "Ops", NOW)
        staff.create(session, "auditor", "a-long-password-2", StaffRole.AUDITOR, "Aud", NOW)

    issued = json.loads(run("coupons", "issue", TEMPLATE, "--staff", "ops", "--count", "3").output)
    wallet = json.loads(
        run("coupons", "issue", TEMPLATE, "--staff", "ops", "--member", str(member)).output
    )
    refused = run("coupons", "issue", TEMPLATE, "--staff", "auditor", "--count", "1", code=2)
    unknown = run("coupons", "issue", "NOPE", "--staff", "ops", "--count", "1", code=2)
    jobs_clock(monkeypatch, NOW)
    month = json.loads(run("jobs", "coupons", "--as-of", NOW.isoformat()).output)
    again = json.loads(run("jobs", "coupons", "--as-of", NOW.isoformat()).output)
    shown = json.loads(run("coupons", "show", TEMPLATE).output)

    assert issued["issued"] == 3
    assert all(item["member_id"] is None for item in issued["codes"])
    assert wallet["codes"][0]["member_id"] == member
    assert "may not issue coupons" in refused.output
    assert "[not_found]" in unknown.output
    assert (month["month"], month["members"], month["issued"]) == ("2026-12", 1, 2)
    assert (again["issued"], again["repeats"]) == (0, 2)
    assert shown["use"] == {"codes": 6, "in_wallets": 3, "redeemed": 0, "rolled_back": 0}
    assert [item["code"] for item in json.loads(run("coupons", "list").output)] == [TEMPLATE]
