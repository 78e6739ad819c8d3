"""Live auction state for the member pages' server-sent events.

One watcher per auction per process, however many browsers watch it: a single loop reads the
auction's version (one small query) every ``interval`` seconds while anyone watches, loads the
state only when the version moved (or the auction's phase changed with time), and hands the
same state to every subscriber's queue. The loop stops when the last subscriber leaves. State
lives in the database, so watchers on other workers see the same changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tally.auctions import domain
from tally.auctions import repository as auction_repository
from tally.auctions import service as auctions
from tally.db.session import Database
from tally.errors import NotFound

Clock = Callable[[], datetime]
Runner = Callable[[Callable[[], Any]], Any]  # runs blocking work off the event loop (awaitable)
QUEUE_SIZE = 8
CLOSED = (domain.Phase.SOLD, domain.Phase.UNSOLD)


@dataclass
class _Channel:
    """One auction's watchers and the loop that feeds them."""

    subscribers: set[asyncio.Queue[auctions.AuctionView | None]] = field(default_factory=set)
    task: asyncio.Task[None] | None = None
    last: auctions.AuctionView | None = None


class AuctionWatch:
    """The watchers of every auction this process serves (see the module's docstring)."""

    def __init__(self, db: Database, run: Runner, clock: Clock, interval: float = 1.0) -> None:
        self._db = db
        self._run = run
        self._clock = clock
        self.interval = interval
        self._channels: dict[uuid.UUID, _Channel] = {}
        self.polls = 0  # version reads made, for tests and metrics

    def watching(self, auction_id: uuid.UUID) -> int:
        """How many subscribers watch the auction now."""
        channel = self._channels.get(auction_id)
        return len(channel.subscribers) if channel else 0

    async def subscribe(self, auction_id: uuid.UUID) -> asyncio.Queue[auctions.AuctionView | None]:
        """A queue that gets the auction's state now and at every change; ``None`` when the
        auction closed (nothing more will come). ``not_found`` for an unknown auction."""
        channel = self._channels.setdefault(auction_id, _Channel())
        if channel.last is None:
            found = await self._run(lambda: self._load(auction_id))
            if found is None:
                if not channel.subscribers:
                    self._channels.pop(auction_id, None)
                raise NotFound(f"Auction {auction_id} does not exist.")
            channel.last = found
        queue: asyncio.Queue[auctions.AuctionView | None] = asyncio.Queue(QUEUE_SIZE)
        queue.put_nowait(channel.last)
        if channel.last.phase in CLOSED:  # nothing more will come: no loop for it
            queue.put_nowait(None)
            if not channel.subscribers:
                self._channels.pop(auction_id, None)
            return queue
        channel.subscribers.add(queue)
        if channel.task is None or channel.task.done():
            channel.task = asyncio.get_running_loop().create_task(self._loop(auction_id, channel))
        return queue

    def unsubscribe(
        self, auction_id: uuid.UUID, queue: asyncio.Queue[auctions.AuctionView | None]
    ) -> None:
        """Stop feeding ``queue``; the auction's loop ends with its last subscriber."""
        channel = self._channels.get(auction_id)
        if channel is None:
            return
        channel.subscribers.discard(queue)
        if not channel.subscribers:
            if channel.task is not None:
                channel.task.cancel()
            self._channels.pop(auction_id, None)

    def _load(self, auction_id: uuid.UUID) -> auctions.AuctionView | None:
        with self._db.read() as session:
            row = auction_repository.auction(session, auction_id)
            return None if row is None else auctions.view_of(row, self._clock())

    def _version(self, auction_id: uuid.UUID) -> int | None:
        self.polls += 1
        with self._db.read() as session:
            return auction_repository.version(session, auction_id)

    async def _loop(self, auction_id: uuid.UUID, channel: _Channel) -> None:
        while channel.subscribers:
            await asyncio.sleep(self.interval)
            last = channel.last
            assert last is not None
            version = await self._run(lambda: self._version(auction_id))
            phase = domain.phase(_status(last), last.starts_at, last.ends_at, self._clock())
            if version == last.version and phase is last.phase:
                continue
            found = await self._run(lambda: self._load(auction_id))
            if found is None:
                continue
            channel.last = found
            closed = found.phase in CLOSED
            for queue in list(channel.subscribers):
                _offer(queue, found)
                if closed:
                    _offer(queue, None)
            if closed:
                return


def _status(found: auctions.AuctionView) -> domain.AuctionStatus:
    if found.phase is domain.Phase.SOLD:
        return domain.AuctionStatus.SOLD
    if found.phase is domain.Phase.UNSOLD:
        return domain.AuctionStatus.UNSOLD
    return domain.AuctionStatus.OPEN


def _offer(
    queue: asyncio.Queue[auctions.AuctionView | None], item: auctions.AuctionView | None
) -> None:
    """Give a subscriber the newest state: one too slow to keep up loses the oldest first."""
    if queue.full():
        with contextlib.suppress(asyncio.QueueEmpty):
            queue.get_nowait()
    queue.put_nowait(item)
