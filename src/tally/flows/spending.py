"""Earns, redeems, holds, captures and voids on behalf of API callers: a redeem or a hold needs
the caller's tie to the member, a capture or a void the caller's own hold (ADR 8). The ties of
a whole batch are read with one statement, and so are the holds its captures and voids name; a
refused write is answered on its own and the rest of the batch posts
(:func:`tally.flows.earning.post`)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from tally.access import domain as access_domain
from tally.access import service as access
from tally.access.domain import Caller
from tally.errors import NotFound, TallyError
from tally.flows import earning
from tally.flows.earning import Earning
from tally.ledger import holds
from tally.ledger.domain import HeldRow, Origin, Policy
from tally.ledger.models import EntryKind
from tally.ledger.orders import Order, Outcome, capture_order, void_order
from tally.programme.domain import Programme

# What a refused tie says the caller asked to do.
ACTS = {EntryKind.REDEEM: "redeem points of", EntryKind.HOLD: "hold points of"}


@dataclass(frozen=True, slots=True)
class Capture:
    """Capture hold ``hold_id`` as the path gave it (all of it, or ``points`` of it): which
    member it spends from is known once the hold is read."""

    origin: Origin
    hold_id: str
    points: int | None = None


@dataclass(frozen=True, slots=True)
class Void:
    """Give back every point of hold ``hold_id`` as the path gave it."""

    origin: Origin
    hold_id: str


OnHold = Capture | Void  # a write naming a hold, not a member
Write = Earning | Order | Capture | Void


def post(
    session: Session,
    callers: Sequence[Caller],
    writes: Sequence[Write],
    now: datetime,
    policy: Policy,
    programme: Programme,
    *,
    wait: bool = True,
) -> list[Outcome]:
    """Post ``writes``, each on behalf of the caller at the same position, as
    :func:`tally.flows.earning.post` does. A redeem or a hold whose caller may not spend the
    member's points is refused ``forbidden`` (``no_relationship``); a capture of a hold the
    caller did not make is ``not_found`` (``forbidden`` for the operator's channels, which see
    it). Refused writes write nothing; earning needs no tie."""
    refused: dict[int, TallyError] = {}
    orders: dict[int, Earning | Order] = {}
    captures = _capture_orders(session, callers, writes, now)
    for position, write in enumerate(writes):
        order = captures.get(position, write)
        if isinstance(order, TallyError):
            refused[position] = order
        else:
            assert not isinstance(order, OnHold)
            orders[position] = order
    for kind, act in ACTS.items():
        spends = [
            (position, order)
            for position, order in orders.items()
            if isinstance(order, Order) and order.kind is kind
        ]
        if not spends:
            continue
        refusals = access.spend_refusals(
            session,
            [(callers[position], order.member_id) for position, order in spends],
            programme,
            now,
            act,
        )
        refused.update(
            (position, refusal)
            for (position, _order), refusal in zip(spends, refusals, strict=True)
            if refusal is not None
        )
    wanted = [position for position in orders if position not in refused]
    posted = dict(
        zip(
            wanted,
            earning.post(session, [orders[i] for i in wanted], now, policy, programme, wait=wait),
            strict=True,
        )
    )
    return [refused[i] if i in refused else posted[i] for i in range(len(writes))]


def _capture_orders(
    session: Session, callers: Sequence[Caller], writes: Sequence[Write], now: datetime
) -> dict[int, Order | TallyError]:
    """The order each capture or void makes (by position), or why it is refused; its hold is
    read with those of the others, in one statement."""
    asked = {
        position: (write, _uuid(write.hold_id))
        for position, write in enumerate(writes)
        if isinstance(write, OnHold)
    }
    found = holds.find(session, [hold_id for _write, hold_id in asked.values() if hold_id])
    made: dict[int, Order | TallyError] = {}
    for position, (write, hold_id) in asked.items():
        try:
            held = found.get(hold_id) if hold_id else None
            made[position] = _capture(callers[position], write, held, now)
        except TallyError as error:
            made[position] = error
    return made


def _capture(caller: Caller, write: OnHold, found: HeldRow | None, now: datetime) -> Order:
    what = f"Hold {write.hold_id}"
    if found is None:
        raise NotFound(f"{what} does not exist.")
    access_domain.require_own(caller, found.hold.partner_id, what)
    if isinstance(write, Void):
        return void_order(write.origin, found, now)
    return capture_order(write.origin, found, write.points, now)


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
