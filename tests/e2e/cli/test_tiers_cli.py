"""``tally member tier|growth|growth-adjust`` and ``tally jobs tiers`` on a fresh SQLite file."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from e2e.cli.clikit import jobs_clock, run
from tally.config import get_settings
from tally.db.engine import build_engine
from tally.db.session import Database
from tally.flows import earning, enrolment
from tally.kit.clock import utcnow
from tally.ledger.domain import Origin, Policy
from tally.members.service import Identity
from tally.partners import service as partners
from tally.programme import runtime

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "src" / "tally" / "demo" / "programme.yaml"
POLICY = Policy(
    validity_days=365, reversal_grace_days=30, zone_name="Asia/Shanghai", max_points=10**9
)


def out(*args: str) -> Any:
    return json.loads(run(*args).stdout)


def count(url: str, table: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
    finally:
        engine.dispose()


@pytest.fixture
def member(database_url: str) -> int:
    """Member 1 earned 6000 growth 40 days ago (GOLD) on the demo programme; staff 'ops'."""
    run("programme", "apply", str(DEMO), "--by", "test")
    run("staff", "create", "ops", "--role", "ops", "--password", "correct horse 1")
    db = Database(build_engine(database_url))
    try:
        with db.write() as session:
            then = utcnow() - timedelta(days=400)
            partner = partners.create_partner(session, "SHOPX", "shop", then)
            member_id, _ = enrolment.enrol(session, Identity("phone", "1390001"), {}, then)
            earning.earn(
                session,
                Origin(partner_id=partner.id),
                member_id,
                6000,
                "order-1",
                then,
                POLICY,
                runtime.effective(session, get_settings()),
            )
    finally:
        db.dispose()
    return member_id


def test_member_tier_shows_the_standing_and_history(member: int) -> None:
    shown = out("member", "tier", str(member))

    # Earned 400 days ago: GOLD still, but nothing counts in the 365-day window any more.
    assert (shown["tier"], shown["growth"], shown["lifetime_growth"]) == ("GOLD", 0, 6000)
    assert shown["to_keep"] == 5000
    assert [(row["from"], row["to"], row["reason"]) for row in shown["history"]] == [
        ("BRONZE", "GOLD", "upgrade")
    ]


def test_jobs_tiers_starts_the_grace_then_downgrades_once(
    member: int, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = out("jobs", "tiers")
    again = out("jobs", "tiers", "--as-of", first["as_of"])

    assert first["members"] == 1
    assert first["changes"] == {"grace_started": 1}
    assert again["changes"] == {}
    pending = out("member", "tier", str(member))
    assert pending["tier"] == "GOLD"
    due = datetime.fromisoformat(pending["downgrade_at"])
    later = (due + timedelta(seconds=1)).isoformat()
    jobs_clock(monkeypatch, due + timedelta(days=1))  # the grace has run out
    assert out("jobs", "tiers", "--as-of", later)["changes"] == {"downgrade": 1}
    assert out("jobs", "tiers", "--as-of", later)["changes"] == {}
    assert out("member", "tier", str(member))["tier"] == "SILVER"
    assert count(database_url, "tier_changes") == 3


def test_growth_adjust_and_growth_history(member: int, database_url: str) -> None:
    adjusted = out(
        "member", "growth-adjust", str(member), "5000", "--reason", "promo", "--staff", "ops"
    )

    assert (adjusted["tier"], adjusted["growth"], adjusted["upgraded_from"]) == ("GOLD", 5000, None)
    taken = out(
        "member", "growth-adjust", str(member), "--reason", "fix", "--staff", "ops", "--", "-1000"
    )
    assert taken["lifetime_growth"] == 10000
    history = out("member", "growth", str(member))
    assert [(row["kind"], row["points"], row["reason"]) for row in history] == [
        ("adjust", -1000, "fix"),
        ("adjust", 5000, "promo"),
        ("earn", 6000, None),
    ]


def test_growth_adjust_refusals_write_nothing(member: int, database_url: str) -> None:
    before = count(database_url, "growth_entries")

    too_much = run(
        "member",
        "growth-adjust",
        str(member),
        "--reason",
        "x",
        "--staff",
        "ops",
        "--",
        "-6001",
        code=2,
    )
    no_reason = run(
        "member", "growth-adjust", str(member), "5", "--reason", " ", "--staff", "ops", code=2
    )
    nobody = run(
        "member", "growth-adjust", str(member), "5", "--reason", "x", "--staff", "zed", code=2
    )
    unknown = run("member", "growth-adjust", "999", "5", "--reason", "x", "--staff", "ops", code=2)

    assert "insufficient_growth" in too_much.output
    assert "validation_error" in no_reason.output
    assert "not_found" in nobody.output
    assert "not_found" in unknown.output
    assert count(database_url, "growth_entries") == before
    assert "not_found" in run("member", "tier", "999", code=2).output
