"""Group commit: the writes that reach an event loop together share one transaction.

A batch is written on the event loop itself: handing it to a thread cost a third more CPU per
write on PostgreSQL (the two threads contend for the GIL at every round trip), and SQLite
writes one transaction at a time anyway. Meanwhile the next batch gathers in the sockets
(ADR 6, ADR 18).

Whatever a batch does not answer is done alone, in a transaction of its own, which gives it its
usual answer: a key used twice in the batch, a write the database refused, and (SQLite) a unit
of work that failed in its savepoint. On PostgreSQL the loop must never wait for a row lock (a
job may hold a wallet for a while): the batch passes over writes whose rows are held elsewhere
and puts them in the next batch, twice at most; those and the units of work are then done
alone on the database executor, each in a task of its own (side by side on its threads),
without holding up the batches that follow.
"""

from __future__ import annotations

import asyncio
import weakref
from concurrent.futures import Executor
from dataclasses import dataclass, field

from tally.writer.batch import Answer
from tally.writer.submission import Submission
from tally.writer.writer import Writer


@dataclass
class _Queue:
    items: list[Submission] = field(default_factory=list)
    drain: asyncio.Task[None] | None = None  # the task writing batches, while there is one
    elsewhere: set[asyncio.Task[None]] = field(default_factory=set)  # writes done alone


class GroupCommit:
    """Queues each event loop's submissions and writes them in batches (see the module)."""

    MAX_GATHER_ROUNDS = 8
    # Batches a write whose rows are held elsewhere tries again (another worker's batch holds
    # them for milliseconds) before it is done alone (a job may hold them for longer).
    MAX_PASSES = 2

    def __init__(self, writer: Writer, executor: Executor | None) -> None:
        self.writer = writer
        self._executor = executor  # none: wait for locks in the batch (SQLite)
        # One queue per event loop (a server has one; tests may drive an app from several).
        self._queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Queue] = (
            weakref.WeakKeyDictionary()
        )

    async def write(self, submission: Submission) -> Submission:
        """``submission``, answered; a refusal is raised."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Submission] = loop.create_future()
        submission.future = future
        queue = self._queues.setdefault(loop, _Queue())
        queue.items.append(submission)
        if queue.drain is None:
            queue.drain = loop.create_task(self._drain(queue))
        return await future

    async def _drain(self, queue: _Queue) -> None:
        loop = asyncio.get_running_loop()
        try:
            while queue.items:
                await self._gather(queue)
                batch, queue.items = queue.items, []
                done, busy = self._batched(batch)
                for index, answer in done.items():
                    settle(batch[index], answer)
                rest: list[Submission] = []
                for index, submission in enumerate(batch):
                    if index in done:
                        continue
                    if index in busy and submission.passes < self.MAX_PASSES:
                        submission.passes += 1
                        queue.items.append(submission)  # most likely free in the next batch
                    else:
                        rest.append(submission)
                if not rest:
                    continue
                if self._executor is None:
                    for submission in rest:
                        settle(submission, self.writer.answer_alone(submission))
                    continue
                for submission in rest:  # side by side on the executor's threads
                    task = loop.create_task(self._alone_elsewhere(submission))
                    queue.elsewhere.add(task)
                    task.add_done_callback(queue.elsewhere.discard)
        finally:
            # Cleared in the same step that found the queue empty: a write queued after it
            # starts a new drain.
            queue.drain = None

    async def _gather(self, queue: _Queue) -> None:
        """Let the requests already read from the sockets join the batch."""
        size = -1
        for _round in range(self.MAX_GATHER_ROUNDS):
            if len(queue.items) == size:
                return
            size = len(queue.items)
            await asyncio.sleep(0)

    def _batched(self, batch: list[Submission]) -> tuple[dict[int, Answer], set[int]]:
        return self.writer.batch(batch, wait=self._executor is None)

    async def _alone_elsewhere(self, submission: Submission) -> None:
        loop = asyncio.get_running_loop()
        answer = await loop.run_in_executor(self._executor, self.writer.answer_alone, submission)
        settle(submission, answer)


def settle(submission: Submission, answer: Answer) -> None:
    """Hand the waiting caller its answer."""
    future = submission.future
    assert future is not None
    if future.cancelled():
        return
    if isinstance(answer, BaseException):
        future.set_exception(answer)
    else:
        future.set_result(answer)
