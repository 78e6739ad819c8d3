"""``tally jobs expire`` reports the rows it could not process (how many, the first few) and
exits 0 having done the rest."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import text

from e2e.cli.clikit import run
from support.policy import policy_of
from tally.config import Settings, get_settings
from tally.db.session import Database
from tally.flows import enrolment
from tally.kit.clock import utcnow
from tally.ledger import service as ledger
from tally.ledger.domain import Origin
from tally.members.service import Identity
from tally.partners import service as partners

POLICY = policy_of(Settings())


@pytest.fixture
def cli_database(
    database: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Database]:
    monkeypatch.setenv("TALLY_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("TALLY_SECRET_KEY", settings.secret_key)
    get_settings.cache_clear()
    yield database
    get_settings.cache_clear()


def test_expire_reports_what_it_could_not_do_and_does_the_rest(cli_database: Database) -> None:
    now = utcnow() - timedelta(days=2)
    with cli_database.write() as session:
        partner = partners.create_partner(session, "CLIJ", "j", now)
        members = []
        for index in range(3):
            member_id, _ = enrolment.enrol(session, Identity("t", f"cli-j{index}"), {}, now)
            ledger.earn(
                session,
                Origin(partner_id=partner.id),
                member_id,
                50,
                f"e{index}",
                now,
                POLICY,
                now + timedelta(days=1),
            )
            members.append(member_id)
        session.execute(
            text("UPDATE wallets SET available = 0 WHERE member_id = :m"), {"m": members[0]}
        )

    report = json.loads(run("jobs", "expire").stdout)

    assert (report["members"], report["points_expired"]) == (2, 100)
    assert report["failures"] == 1
    [failed] = report["failed"]
    assert failed["kind"] == "member"
    assert failed["id"] == str(members[0])
    assert failed["code"] == "insufficient_points"
    again = json.loads(run("jobs", "expire").stdout)
    assert (again["members"], again["failures"]) == (0, 1)

    listed = json.loads(run("jobs", "failures").stdout)
    assert [
        (row["job"], row["kind"], row["id"], row["code"], row["failures"]) for row in listed
    ] == [("expiry", "member", str(members[0]), "insufficient_points", 2)]
    assert json.loads(run("jobs", "failures", "--job", "tiers").stdout) == []
