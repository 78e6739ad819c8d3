"""``tally programme plan`` states what a file does to members, on a fresh SQLite file."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import yaml

from e2e.cli.clikit import run
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


def seed(url: str, growths: list[int]) -> None:
    db = Database(build_engine(url))
    try:
        with db.write() as session:
            programme = runtime.effective(session, get_settings())
            then = utcnow() - timedelta(days=3)
            shop = partners.partner_by_code(session, "SHOP")
            for number, growth in enumerate(growths):
                member, _ = enrolment.enrol(
                    session, Identity("phone", f"1391{number:07d}"), {}, then
                )
                earning.earn(
                    session, Origin(partner_id=shop.id), member, 1, f"o{number}", then, POLICY,
                    programme, growth=growth,
                )  # fmt: skip
    finally:
        db.dispose()


def test_plan_says_who_holds_a_removed_tier_and_where_they_go(
    database_url: str, tmp_path: Path
) -> None:
    run("programme", "apply", str(DEMO), "--by", "test")
    seed(database_url, [150_000] * 6 + [60_000, 2_000])
    content = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    content["tiers"] = [tier for tier in content["tiers"] if tier["code"] != "BLACK_DIAMOND"]
    content["plans"] = []
    smaller = tmp_path / "smaller.yaml"
    smaller.write_text(yaml.safe_dump(content, allow_unicode=True), encoding="utf-8")

    # After three lines: what is in force, what is scheduled, what the file is planned against.
    plan = run("programme", "plan", str(smaller)).stdout.splitlines()[3:]

    assert plan == [
        "tier BLACK_DIAMOND removed: 6 members hold it; at the next evaluation 6 to DIAMOND",
        "plan VIP88 removed: no open membership",
    ]
    assert run("programme", "plan", str(DEMO)).stdout.splitlines()[-1] == "no changes"
    applied = run("programme", "apply", str(smaller), "--by", "test").stdout.splitlines()
    assert applied == ["applied version 2", *(f"  {line}" for line in plan)]
