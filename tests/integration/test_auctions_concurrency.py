"""Auctions under real parallel connections (SQLite and PostgreSQL): racing bidders leave
exactly one leader whose maximum is the only points held, nobody else holding anything; two
closing workers close the auction once and charge the winner once."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from support.race import race
from tally.auctions import jobs
from tally.auctions import service as auctions
from tally.auctions.domain import Increment
from tally.auctions.models import Auction, AuctionBid
from tally.db.session import Database
from tally.errors import BidTooLow, ConcurrentChange
from tally.flows import enrolment
from tally.kit.clock import utcnow
from tally.ledger import repository as ledger
from tally.ledger import service as points
from tally.ledger.domain import Origin, Policy
from tally.ledger.models import EntryKind, JournalEntry
from tally.members.service import Identity
from tally.partners import service as partners

BIDDERS = 24
WALLET = 5_000
POLICY = Policy(validity_days=365, reversal_grace_days=30, zone_name="UTC", max_points=10**9)


def _setup(db: Database) -> tuple[uuid.UUID, list[int]]:
    now = utcnow()
    members = []
    with db.write() as session:
        shop = partners.create_partner(session, "SHOP", "Select Mall", now)
        for index in range(BIDDERS):
            member, _ = enrolment.enrol(session, Identity("t", f"bidder-{index}"), {}, now)
            points.earn(
                session, Origin(partner_id=shop.id), member, WALLET, f"e{index}", now, POLICY
            )
            members.append(member)
        spec = auctions.AuctionSpec(
            item_code="LUNCH-1",
            item_names={"zh-CN": "午餐", "en": "Lunch"},
            starts_at=now - timedelta(minutes=1),
            ends_at=now + timedelta(hours=1),
            start_points=100,
            reserve=None,
            increments=(Increment(0, 10), Increment(1000, 50)),
            soft_close_seconds=60,
        )
        auction = auctions.create(session, shop.id, spec, now, POLICY).id
    return auction, members


def _bid(db: Database, auction: uuid.UUID, member: int, maximum: int) -> object:
    """One bid, retried while a concurrent one changed the auction; its answer or refusal."""
    for _attempt in range(50):
        try:
            with db.write() as session:
                return auctions.bid(session, auction, member, maximum, utcnow(), POLICY)
        except ConcurrentChange:
            continue
        except BidTooLow as refused:
            return refused
        except Exception as error:
            if "deadlock" in str(error).lower() or "could not serialize" in str(error).lower():
                continue
            raise
    raise AssertionError("a bid was retried 50 times")


def _assert_consistent(db: Database, auction: uuid.UUID, members: list[int]) -> Auction:
    with db.read() as session:
        row = session.get(Auction, auction)
        assert row is not None
        assert row.leader_member_id is not None
        assert auctions.check_holds(session, auction) == []
        for member in members:
            wallet = ledger.wallet(session, member)
            assert wallet is not None
            if member == row.leader_member_id:
                assert (wallet.available, wallet.held) == (WALLET - row.leader_max, row.leader_max)
            else:
                assert (wallet.available, wallet.held) == (WALLET, 0), member
        count = session.scalar(
            select(func.count()).select_from(AuctionBid).where(AuctionBid.auction_id == auction)
        )
        assert row.bid_count == count
        return row


@pytest.mark.parametrize("spread", [True, False], ids=["distinct maxima", "equal maxima"])
def test_racing_bidders_leave_one_leader_holding_its_maximum(
    database: Database, spread: bool
) -> None:
    auction, members = _setup(database)
    maxima = [1000 + 37 * index if spread else 2000 for index in range(BIDDERS)]

    answers = race(BIDDERS, lambda i: _bid(database, auction, members[i], maxima[i]))

    failed = [a for a in answers if isinstance(a, Exception) and not isinstance(a, BidTooLow)]
    assert not failed
    accepted = [answer for answer in answers if isinstance(answer, auctions.BidResult)]
    row = _assert_consistent(database, auction, members)
    if spread:  # the highest maximum leads, one step above the runner-up's
        assert (row.leader_member_id, row.leader_max) == (members[-1], maxima[-1])
        leading = [answer for answer in accepted if answer.member_id == members[-1]]
        assert leading
        assert leading[0].leading
    else:  # equal maxima: the first accepted bid leads, at that maximum
        first = min(accepted, key=lambda answer: answer.seq)
        assert (row.leader_member_id, row.price) == (first.member_id, 2000)
        # The second ties (outbid at once by the earlier); every later one is below 2,050.
        assert len(accepted) == 2
        assert not max(accepted, key=lambda a: a.seq).leading


def test_two_closing_workers_charge_the_winner_once(database: Database) -> None:
    auction, members = _setup(database)
    for index, maximum in enumerate((700, 900, 1300)):
        answer = _bid(database, auction, members[index], maximum)
        assert isinstance(answer, auctions.BidResult)
    ended = utcnow() + timedelta(hours=2)

    reports = race(2, lambda _i: jobs.close_due(database.write, ended, POLICY))

    assert sorted(report.sold for report in reports) == [0, 1]  # type: ignore[attr-defined]
    with database.read() as session:
        row = session.get(Auction, auction)
        assert row is not None
        assert row.final_price == 910
        assert row.winner_member_id == members[2]
        captures = session.scalar(
            select(func.count())
            .select_from(JournalEntry)
            .where(JournalEntry.kind == EntryKind.CAPTURE, JournalEntry.member_id == members[2])
        )
        assert captures == 1
        assert auctions.check_holds(session, auction) == []
        winner = ledger.wallet(session, members[2])
        assert winner is not None
        assert (winner.available, winner.held) == (WALLET - 910, 0)
        for member in members[:2]:
            wallet = ledger.wallet(session, member)
            assert wallet is not None
            assert (wallet.available, wallet.held) == (WALLET, 0)


def test_the_scheduler_closes_an_ended_auction(database: Database) -> None:
    from tally.config import Settings
    from tally.programme.runtime import ProgrammeCache
    from tally.scheduler import Scheduler

    auction, members = _setup(database)
    answer = _bid(database, auction, members[0], 700)
    assert isinstance(answer, auctions.BidResult)
    with database.write() as session:  # the auction ended a minute ago
        row = session.get(Auction, auction)
        assert row is not None
        row.ends_at = utcnow() - timedelta(minutes=1)
    settings = Settings()

    Scheduler(database, settings, ProgrammeCache(settings, 0), interval=60).run_once()

    with database.read() as session:
        result = auctions.result_for_order(session, auction)
        assert result is not None
        assert (result.member_id, result.points) == (members[0], 100)
