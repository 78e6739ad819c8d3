"""Earns and redeems on behalf of API callers: a redeem needs the caller's tie to the member
(ADR 8). The ties of a whole batch are read with one statement; a refused redeem is answered
on its own and the rest of the batch posts (:func:`tally.flows.earning.post`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from tally.access import service as access
from tally.access.domain import Caller
from tally.errors import TallyError
from tally.flows import earning
from tally.flows.earning import Earning
from tally.ledger.domain import Policy
from tally.ledger.models import EntryKind
from tally.ledger.orders import Order, Outcome
from tally.programme.domain import Programme


def post(
    session: Session,
    callers: Sequence[Caller],
    orders: Sequence[Earning | Order],
    now: datetime,
    policy: Policy,
    programme: Programme,
    *,
    wait: bool = True,
) -> list[Outcome]:
    """Post ``orders``, each on behalf of the caller at the same position, as
    :func:`tally.flows.earning.post` does; a redeem whose caller may not spend the member's
    points is refused ``forbidden`` (``no_relationship``) and writes nothing. Earning needs no
    tie."""
    spends = [
        (position, order)
        for position, order in enumerate(orders)
        if isinstance(order, Order) and order.kind is EntryKind.REDEEM
    ]
    refusals = access.spend_refusals(
        session,
        [(callers[position], order.member_id) for position, order in spends],
        programme,
        now,
        "redeem points of",
    )
    refused: dict[int, TallyError] = {
        position: refusal
        for (position, _order), refusal in zip(spends, refusals, strict=True)
        if refusal is not None
    }
    wanted = [position for position in range(len(orders)) if position not in refused]
    posted = dict(
        zip(
            wanted,
            earning.post(session, [orders[i] for i in wanted], now, policy, programme, wait=wait),
            strict=True,
        )
    )
    return [refused[i] if i in refused else posted[i] for i in range(len(orders))]
