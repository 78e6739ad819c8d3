"""The API's writer: the kinds of write its endpoints post, the documents they answer, and the
group commit that posts them (:mod:`tally.writer`)."""

from __future__ import annotations

from concurrent.futures import Executor

from sqlalchemy.orm import Session

from tally.api import events as events_api
from tally.api import views
from tally.api.deps import caller_for
from tally.config import Settings
from tally.db.session import Database
from tally.flows.earning import Earning
from tally.flows.spending import Capture, OnHold, Void, Write
from tally.ledger.domain import Policy
from tally.ledger.orders import Order
from tally.ledger.posting import Posted, policy_for
from tally.programme.domain import Programme
from tally.programme.runtime import ProgrammeCache
from tally.writer.events import EventReport, PartnerEvents
from tally.writer.group_commit import GroupCommit
from tally.writer.kinds import REFUSABLE, Context, Kinds, Refusable
from tally.writer.ledger import PartnerWrites
from tally.writer.writer import Writer


def posted_answer(
    session: Session, write: Write, result: Posted, context: Context
) -> tuple[int, str]:
    """The answer to a posted earn, redeem, hold (201: made), capture or void (200)."""
    zone = context.programme.zone
    if result.hold is None:
        return 201, views.posted(session, result, context.now, zone).model_dump_json()
    made = not isinstance(write, OnHold)
    answer = views.hold_posted(session, result, context.now, zone, made=made)
    return 201 if made else 200, answer.model_dump_json()


def kinds() -> Kinds:
    """The kinds of write the API's endpoints post (a unit of work needs no registering)."""
    return (
        Kinds()
        .register(PartnerWrites(posted_answer), Earning, Order, Capture, Void)
        .register(PartnerEvents(events_api.answer), EventReport)
        .register(REFUSABLE, Refusable)
    )


def group_commit(
    db: Database,
    executor: Executor | None,
    settings: Settings,
    programme: ProgrammeCache,
    secret: str,
) -> GroupCommit:
    """The app's writer, grouping the writes of each event loop (waiting for locks in the
    batch, on SQLite, when there is no ``executor``)."""

    def pricing(session: Session) -> tuple[Programme, Policy]:
        return programme.get(session), policy_for(programme.current, settings)

    writer = Writer(
        db,
        kinds(),
        pricing,
        authenticate=lambda session, token: caller_for(session, token, secret, programme),
    )
    return GroupCommit(writer, executor)
