"""Events reported by partners as a kind of write: single events grouped set-based with the
others of their batch, a batch request of up to 1,000 events in a transaction of its own in
which each event succeeds or fails on its own (:mod:`tally.flows.event_intake`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from tally.access.domain import Caller
from tally.db.raw import savepoint
from tally.errors import TallyError
from tally.flows import event_intake
from tally.flows.event_intake import Processed, Reported
from tally.ledger.domain import Origin
from tally.ledger.orders import Busy
from tally.writer.kinds import ALONE, Context

Result = Processed | TallyError | Busy
# The answer to a processed report: ``(write, results, context) -> (status, JSON body)``.
EventAnswer = Callable[["EventReport", Sequence[Result], Context], tuple[int, str]]


@dataclass(frozen=True, slots=True)
class EventReport:
    """One request's events: a single event (``batch`` False) or a batch request."""

    events: tuple[Reported, ...]
    batch: bool = False


class PartnerEvents:
    """Events of authenticated partners (scope ``events``), each the caller's own: the events
    of a partner are identified by its id and their ``event_id``."""

    name = "events"

    def __init__(self, answer_of: EventAnswer) -> None:
        self.answer_of = answer_of

    def post_many(
        self, session: Session, writes: Sequence[EventReport], context: Context
    ) -> list[Any]:
        outcomes: list[Any] = [None] * len(writes)
        singles: dict[int | None, list[int]] = {}
        for position, (write, caller) in enumerate(zip(writes, context.callers, strict=True)):
            if write.batch:
                outcomes[position] = (
                    _batch(session, write, _origin(caller), context) if context.alone else ALONE
                )
            else:
                singles.setdefault(_origin(caller).partner_id, []).append(position)
        for partner_id, positions in singles.items():
            results = event_intake.process(
                session,
                Origin(partner_id=partner_id),
                [writes[position].events[0] for position in positions],
                context.now,
                context.policy,
                context.programme,
                event_intake.book_for(context.programme),
                wait=context.wait,
            )
            for position, result in zip(positions, results, strict=True):
                outcomes[position] = [result]
        return [_single(write, outcome) for write, outcome in zip(writes, outcomes, strict=True)]

    def answer(
        self, session: Session, write: EventReport, outcome: Sequence[Result], context: Context
    ) -> tuple[int, str]:
        return self.answer_of(write, outcome, context)


def _origin(caller: Caller | None) -> Origin:
    if caller is None:
        raise TypeError("A partner's events need its authenticated caller.")
    return Origin(partner_id=caller.partner_id)


def _single(write: EventReport, outcome: Any) -> Any:
    """A single event's refusal or passing over is the write's own; else its results."""
    if not write.batch and isinstance(outcome, list) and isinstance(outcome[0], TallyError | Busy):
        return outcome[0]
    return outcome


def _batch(
    session: Session, write: EventReport, origin: Origin, context: Context
) -> Sequence[Result]:
    """A batch request's events in this transaction, each on its own: set-based, or (when that
    fails) one by one, each in a savepoint of its own. An event repeated in the request is
    answered as a repeat of its first report."""
    book = event_intake.book_for(context.programme)

    def run(events: Sequence[Reported]) -> list[Result]:
        return event_intake.process(
            session, origin, events, context.now, context.policy, context.programme, book
        )

    try:
        with savepoint(session):
            results = run(write.events)
    except TallyError:
        results = []
        for event in write.events:
            try:
                with savepoint(session):
                    results.extend(run([event]))
            except TallyError as error:
                results.append(error)
    return event_intake.with_repeats(write.events, results)
