"""The auction room's live state (SQLite and PostgreSQL): two watchers of one auction share one
loop that reads the auction's version, both get each change, and the loop stops with the last
watcher; a close ends the stream."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from tally.auctions import jobs
from tally.auctions import service as auctions
from tally.auctions.domain import Increment, Phase
from tally.db.session import Database
from tally.flows import enrolment
from tally.kit.clock import utcnow
from tally.ledger import service as points
from tally.ledger.domain import Origin, Policy
from tally.members.service import Identity
from tally.partners import service as partners
from tally.web.member.auction_watch import AuctionWatch

POLICY = Policy(validity_days=365, reversal_grace_days=30, zone_name="UTC", max_points=10**9)
TICK = 0.05


async def _inline(work: Callable[[], Any]) -> Any:
    return work()


def _run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run ``scenario`` on an event loop of its own thread (this thread may already run one:
    Playwright's sync API leaves it so for the tests after a browser test)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(lambda: asyncio.run(scenario())).result()


def _auction(db: Database) -> tuple[uuid.UUID, list[int]]:
    now = utcnow()
    with db.write() as session:
        shop = partners.create_partner(session, "SHOP", "Select Mall", now)
        members = []
        for index in range(2):
            member, _ = enrolment.enrol(session, Identity("t", f"w{index}"), {}, now)
            points.earn(session, Origin(partner_id=shop.id), member, 1000, f"w{index}", now, POLICY)
            members.append(member)
        spec = auctions.AuctionSpec(
            "LUNCH-1", {"zh-CN": "午餐", "en": "Lunch"}, now - timedelta(minutes=1),
            now + timedelta(hours=1), 100, None, (Increment(0, 10),), 60,
        )  # fmt: skip
        return auctions.create(session, shop.id, spec, now, POLICY).id, members


def _bid(db: Database, auction: uuid.UUID, member: int, maximum: int) -> None:
    with db.write() as session:
        auctions.bid(session, auction, member, maximum, utcnow(), POLICY)


def test_two_watchers_share_one_loop_and_both_see_each_bid(database: Database) -> None:
    auction, (li, wang) = _auction(database)
    watch = AuctionWatch(database, _inline, utcnow, interval=TICK)

    async def scenario() -> None:
        first, second = await watch.subscribe(auction), await watch.subscribe(auction)
        assert [(await first.get()).version, (await second.get()).version] == [1, 1]
        assert watch.watching(auction) == 2
        _bid(database, auction, li, 300)
        seen = [await asyncio.wait_for(queue.get(), 5) for queue in (first, second)]
        assert [(item.version, item.price, item.leader_member_id) for item in seen] == [
            (2, 100, li),
            (2, 100, li),
        ]
        _bid(database, auction, wang, 500)
        seen = [await asyncio.wait_for(queue.get(), 5) for queue in (first, second)]
        assert [(item.price, item.leader_member_id) for item in seen] == [(310, wang)] * 2

        polls = watch.polls
        await asyncio.sleep(TICK * 10)
        assert watch.polls - polls <= 12  # one loop for both watchers, not one each

        watch.unsubscribe(auction, first)
        watch.unsubscribe(auction, second)
        assert watch.watching(auction) == 0
        polls = watch.polls
        await asyncio.sleep(TICK * 4)
        assert watch.polls == polls  # nobody watches: nothing is read

    _run(scenario)


def test_the_close_is_the_last_thing_a_watcher_gets(database: Database) -> None:
    auction, (li, _wang) = _auction(database)
    _bid(database, auction, li, 300)
    watch = AuctionWatch(database, _inline, utcnow, interval=TICK)

    async def scenario() -> None:
        queue = await watch.subscribe(auction)
        assert (await queue.get()).phase is Phase.OPEN
        jobs.close_due(database.write, utcnow() + timedelta(hours=2), POLICY)
        final = await asyncio.wait_for(queue.get(), 5)
        assert final is not None
        assert final.phase is Phase.SOLD
        assert final.final_price == 100
        assert await asyncio.wait_for(queue.get(), 5) is None
        watch.unsubscribe(auction, queue)
        late = await watch.subscribe(auction)  # a watcher arriving after the close
        assert [late.get_nowait().phase, late.get_nowait()] == [Phase.SOLD, None]
        assert watch.watching(auction) == 0

    _run(scenario)
