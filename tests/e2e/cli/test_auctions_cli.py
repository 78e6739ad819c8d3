"""``tally jobs auctions`` against a fresh SQLite file: a dry run names what is due, a run
closes each ended auction once, the winner pays the price."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest

from e2e.cli.clikit import run
from tally.auctions import service as auctions
from tally.auctions.domain import Increment
from tally.config import get_settings
from tally.db.engine import build_engine
from tally.db.session import Database
from tally.flows import enrolment
from tally.kit.clock import utcnow
from tally.ledger import repository as ledger
from tally.ledger import service as points
from tally.ledger.domain import Origin, Policy
from tally.members.service import Identity
from tally.partners import service as partners
from tally.schema import migrate

POLICY = Policy(validity_days=365, reversal_grace_days=30, zone_name="UTC", max_points=10**9)


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


def test_the_job_closes_an_ended_auction_once(db: Database) -> None:
    now = utcnow()
    started = now - timedelta(hours=2)
    with db.write() as session:
        shop = partners.create_partner(session, "SHOP", "Select Mall", started)
        bidders = []
        for phone in ("13700000001", "13700000002"):
            member, _ = enrolment.enrol(session, Identity("phone", phone), {}, started)
            points.earn(session, Origin(partner_id=shop.id), member, 1000, phone, started, POLICY)
            bidders.append(member)
        spec = auctions.AuctionSpec(
            item_code="LUNCH-1",
            item_names={"zh-CN": "午餐", "en": "Lunch"},
            starts_at=started,
            ends_at=now - timedelta(minutes=10),
            start_points=100,
            reserve=None,
            increments=(Increment(0, 10),),
            soft_close_seconds=60,
        )
        auction = auctions.create(session, shop.id, spec, started, POLICY)
        auction_id = auction.id
    with db.write() as session:
        auctions.bid(session, auction_id, bidders[0], 600, started + timedelta(minutes=5), POLICY)
    with db.write() as session:
        auctions.bid(session, auction_id, bidders[1], 400, started + timedelta(minutes=6), POLICY)

    due = json.loads(run("jobs", "auctions", "--dry-run").stdout)
    assert (due["due"], due["sample"], due["dry_run"]) == (1, [str(auction_id)], True)
    early = (now - timedelta(minutes=11)).isoformat()
    assert json.loads(run("jobs", "auctions", "--as-of", early).stdout)["sold"] == 0

    report = json.loads(run("jobs", "auctions").stdout)
    assert (report["sold"], report["unsold"]) == (1, 0)
    assert json.loads(run("jobs", "auctions").stdout)["sold"] == 0  # once only

    with db.read() as session:
        result = auctions.result_for_order(session, auction_id)
        assert result is not None
        assert (result.member_id, result.points) == (bidders[0], 410)
        winner, loser = (ledger.wallet(session, member) for member in bidders)
        assert winner is not None
        assert loser is not None
        assert (winner.available, winner.held, loser.available, loser.held) == (590, 0, 1000, 0)


def test_a_future_moment_is_refused(db: Database) -> None:
    ahead = (utcnow() + timedelta(hours=1)).isoformat()
    assert "in the future" in run("jobs", "auctions", "--as-of", ahead, code=2).stderr
