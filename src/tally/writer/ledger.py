"""The ledger's kinds of write: partners' earns, redeems, holds, captures and voids, posted
set-based (:func:`tally.flows.spending.post`), and the orders of trusted callers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.orm import Session

from tally.access.domain import Caller
from tally.flows import spending
from tally.flows.earning import Earning
from tally.ledger.domain import Origin
from tally.ledger.orders import Order, post_orders
from tally.ledger.posting import Posted
from tally.writer.kinds import Context

# The answer to a posted write: ``(session, write, posted, context) -> (status, JSON body)``.
PostedAnswer = Callable[[Session, spending.Write, Posted, Context], tuple[int, str]]


@dataclass(frozen=True, slots=True)
class PartnerWrites:
    """Earns (:class:`~tally.flows.earning.Earning`), redeems and holds
    (:class:`~tally.ledger.orders.Order`), captures and voids (:mod:`tally.flows.spending`)
    of authenticated partners, each on behalf of its caller: the caller's partner is the
    write's origin, and may redeem, hold or capture only what it may (ADR 8). The answers are
    the adapter's (``answer``: the API's documents)."""

    answer_of: PostedAnswer
    name: str = "ledger"

    def post_many(
        self, session: Session, writes: Sequence[spending.Write], context: Context
    ) -> list[Any]:
        callers = context.callers
        owned = [_owned(write, caller) for write, caller in zip(writes, callers, strict=True)]
        return spending.post(
            session,
            callers,  # type: ignore[arg-type]  # authenticated partners: _owned checked
            owned,
            context.now,
            context.policy,
            context.programme,
            wait=context.wait,
        )

    def answer(
        self, session: Session, write: spending.Write, outcome: Posted, context: Context
    ) -> tuple[int, str]:
        return self.answer_of(session, write, outcome, context)


def _owned(write: spending.Write, caller: Caller | None) -> spending.Write:
    """``write`` on behalf of ``caller``'s partner."""
    if caller is None:
        raise TypeError("A partner's ledger write needs its authenticated caller.")
    origin = Origin(partner_id=caller.partner_id)
    if isinstance(write, Earning):
        return replace(write, order=replace(write.order, origin=origin))
    return replace(write, origin=origin)  # an Order, a Capture or a Void


class TrustedOrders:
    """Ledger orders of trusted callers (the CLI, jobs, the demo, importers): posted with the
    origin they carry, no partner's tie to check (:func:`tally.ledger.orders.post_orders`).
    They answer with their :class:`~tally.ledger.posting.Posted` (``Submission.outcome``); an
    Idempotency-Key needs an answer document this kind does not define yet."""

    name = "orders"

    def post_many(self, session: Session, writes: Sequence[Order], context: Context) -> list[Any]:
        return post_orders(session, writes, context.now, context.policy, wait=context.wait)

    def answer(
        self, session: Session, write: Order, outcome: Posted, context: Context
    ) -> tuple[int, str]:
        raise TypeError("Trusted orders are posted without an Idempotency-Key.")


TRUSTED_ORDERS = TrustedOrders()
