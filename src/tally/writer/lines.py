"""Lines: the writes of one hot resource (a flash sale's item) queued in order of arrival and
written one batch at a time, each batch one transaction that waits for its locks, on the
database executor (ADR 29).

Where the group commit must not wait for a row lock on the event loop (PostgreSQL), it hands a
write that needs one to a thread of its own: a burst of orders of one item then becomes as many
transactions queued on that item's row, each holding an executor thread while it waits, so the
reads that share those threads (an API key looked up, a page) wait behind the sale. A line
instead keeps one thread per hot item: the orders that arrive while a batch is written make the
next batch, posted in their order (first come, first served) with one commit. The row locks of
other processes' lines are waited for in the batch, like any lock, on that one thread.
"""

from __future__ import annotations

import asyncio
import weakref
from concurrent.futures import Executor
from dataclasses import dataclass, field

from tally.writer.batch import Answer
from tally.writer.group_commit import settle
from tally.writer.submission import Submission
from tally.writer.writer import Writer


@dataclass
class _Line:
    items: list[Submission] = field(default_factory=list)
    drain: asyncio.Task[None] | None = None


class Lines:
    """Per-name lines of writes on an event loop (see the module's docstring)."""

    #: The most writes one batch of a line takes (the rest make the next batch).
    MAX_BATCH = 200

    def __init__(self, writer: Writer, executor: Executor) -> None:
        self.writer = writer
        self._executor = executor
        self._lines: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _Line]] = (
            weakref.WeakKeyDictionary()
        )

    async def write(self, name: str, submission: Submission) -> Submission:
        """``submission``, written in line ``name`` and answered; a refusal is raised."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Submission] = loop.create_future()
        submission.future = future
        lines = self._lines.setdefault(loop, {})
        line = lines.setdefault(name, _Line())
        line.items.append(submission)
        if line.drain is None:
            line.drain = loop.create_task(self._drain(lines, name, line))
        return await future

    async def _drain(self, lines: dict[str, _Line], name: str, line: _Line) -> None:
        loop = asyncio.get_running_loop()
        try:
            while line.items:
                await asyncio.sleep(0)  # let the requests already read join
                batch = line.items[: self.MAX_BATCH]
                del line.items[: self.MAX_BATCH]
                answers = await loop.run_in_executor(self._executor, self._write, batch)
                for submission, answer in zip(batch, answers, strict=True):
                    settle(submission, answer)
        finally:
            line.drain = None
            if not line.items:
                lines.pop(name, None)

    def _write(self, batch: list[Submission]) -> list[Answer]:
        """The batch's answers: one transaction waiting for locks; what it leaves, alone."""
        done, _busy = self.writer.batch(batch, wait=True)
        return [
            done[index] if index in done else self.writer.answer_alone(submission)
            for index, submission in enumerate(batch)
        ]
