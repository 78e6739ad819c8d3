"""Earning with growth value: the ledger earn, the growth it carries and the immediate upgrade,
and the reversal that takes both back. All in the caller's one transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from tally.errors import NotReversible, TallyError, ValidationFailed
from tally.events import repository as events
from tally.ledger import repository as ledger_repository
from tally.ledger import reversals
from tally.ledger.domain import Origin, Policy, in_rounds
from tally.ledger.models import EntryKind, JournalEntry
from tally.ledger.orders import Order, Outcome, post_orders, posted, scaled
from tally.ledger.posting import Posted
from tally.programme.domain import Programme
from tally.tiers import service as tiers


@dataclass(frozen=True, slots=True)
class Earning:
    """An earn order with the growth value it carries (``None``: the order's points; ``0``:
    points that do not count towards tiers), optionally multiplied by the member's tier."""

    order: Order
    growth: int | None = None
    apply_tier_multiplier: bool = False


def earn(
    session: Session,
    origin: Origin,
    member_id: int,
    points: int,
    reference: str,
    now: datetime,
    policy: Policy,
    programme: Programme,
    *,
    expires_at: datetime | None = None,
    growth: int | None = None,
    apply_tier_multiplier: bool = False,
) -> Posted:
    """Credit ``points`` (times the member's tier multiplier when asked) and ``growth`` growth
    value (default: the base ``points``; ``0`` for points that do not qualify), upgrading the
    member at once if the growth lifts it to a higher tier.

    The answer's details are the ledger's, plus ``growth`` when it was given or a multiplier
    applied (with ``base_points`` and ``multiplier_bp``), and ``tier`` and ``upgraded_from``
    when the member was upgraded.
    """
    order = Order(EntryKind.EARN, origin, member_id, points, reference, expires_at)
    return posted(
        post(session, [Earning(order, growth, apply_tier_multiplier)], now, policy, programme)[0]
    )


def post(
    session: Session,
    orders: Sequence[Earning | Order],
    now: datetime,
    policy: Policy,
    programme: Programme,
    *,
    wait: bool = True,
) -> list[Outcome]:
    """Post earns (with their growth value, as :func:`earn`) and redeems together, as if one
    after another: each member's in turn, in the order given; without ``wait``, orders whose
    member's wallet another transaction holds are left :data:`~tally.ledger.orders.BUSY` (see
    :func:`tally.ledger.orders.post_orders`)."""
    return in_rounds(
        orders,
        lambda item: item.order.member_id if isinstance(item, Earning) else item.member_id,
        lambda distinct: _post_round(session, distinct, now, policy, programme, wait),
        shares=_shares_a_round,
    )


def _shares_a_round(item: Earning | Order) -> bool:
    """Whether an order may be posted in one round with its member's neighbouring ones: an earn
    that is not multiplied by the member's tier (an earlier earn of the round may change it)."""
    if isinstance(item, Earning):
        return item.order.kind is EntryKind.EARN and not item.apply_tier_multiplier
    return item.kind is EntryKind.EARN


def _post_round(
    session: Session,
    items: Sequence[Earning | Order],
    now: datetime,
    policy: Policy,
    programme: Programme,
    wait: bool,
) -> list[Outcome]:
    """Orders of distinct members (or several earns of one, in their order)."""
    earnings = [item if isinstance(item, Earning) else Earning(item) for item in items]
    refused: dict[int, TallyError] = {}
    for position, item in enumerate(earnings):
        if item.growth is not None and not 0 <= item.growth <= tiers.MAX_GROWTH:
            refused[position] = ValidationFailed(
                f"growth must be a whole number from 0 to {tiers.MAX_GROWTH}.", field="growth"
            )
    multiplied = [
        item.order.member_id
        for position, item in enumerate(earnings)
        if item.apply_tier_multiplier and position not in refused
    ]
    multipliers = {
        member_id: tier.earn_multiplier_bp
        for member_id, tier in tiers.current_tiers(session, multiplied, programme).items()
    }
    ledger_orders = [
        scaled(item.order, multipliers[item.order.member_id])
        if item.apply_tier_multiplier and item.order.member_id in multipliers
        else item.order
        for item in earnings
    ]
    wanted = [position for position in range(len(earnings)) if position not in refused]
    results = dict(
        zip(
            wanted,
            post_orders(session, [ledger_orders[i] for i in wanted], now, policy, wait=wait),
            strict=True,
        )
    )
    credits = [
        tiers.EarnedGrowth(
            item.order.member_id,
            _growth(item),
            result.entry_id,
            item.order.origin.partner_id,
        )
        for position, item in enumerate(earnings)
        if item.order.kind is EntryKind.EARN
        and isinstance(result := results.get(position), Posted)
        and result.entry_id is not None
        and _growth(item)
    ]
    # Growth is credited earn by earn (in rounds of distinct members), so tiers move as they
    # would one earn at a time.
    moves = dict(
        zip(
            [credit.journal_entry_id for credit in credits],
            in_rounds(
                credits,
                lambda credit: credit.member_id,
                lambda distinct: tiers.credit_earns(session, distinct, now, programme),
            ),
            strict=True,
        )
    )
    outcomes: list[Outcome] = []
    for position, item in enumerate(earnings):
        outcome = refused.get(position) or results[position]
        if isinstance(outcome, Posted) and item.order.kind is EntryKind.EARN:
            outcome = _with_growth(outcome, item, multipliers, moves.get(outcome.entry_id))
        outcomes.append(outcome)
    return outcomes


def _refunded_in_part(session: Session, entry: JournalEntry) -> bool:
    """Whether ``entry`` is the earn of an event a refund took part of back (reversing it
    whole would take that part twice)."""
    if entry.kind is not EntryKind.EARN or not (entry.reference or "").startswith("event:"):
        return False
    source = events.source_of(entry.partner_id)
    stored = events.find(session, source, [(entry.reference or "").removeprefix("event:")])
    found = events.by_ids(session, list(stored.values()))
    return any(row.refunded_minor > 0 for row in found.values())


def _growth(item: Earning) -> int:
    return item.order.points if item.growth is None else item.growth


def _with_growth(
    result: Posted,
    item: Earning,
    multipliers: dict[int, int],
    move: tuple[str, str | None] | None,
) -> Posted:
    """The earn's details with the growth it carried and the upgrade it caused."""
    member_id = item.order.member_id
    details: dict[str, Any] = dict(result.details)
    multiplier_bp = multipliers.get(member_id) if item.apply_tier_multiplier else None
    if multiplier_bp is not None:
        details.update({"base_points": item.order.points, "multiplier_bp": multiplier_bp})
    if item.growth is not None or multiplier_bp is not None:
        details["growth"] = _growth(item)
    tier_code, upgraded_from = move or (None, None)
    if upgraded_from is not None:
        details.update({"tier": tier_code, "upgraded_from": upgraded_from})
    return replace(result, details=details)


def reverse(
    session: Session, origin: Origin, entry_id: uuid.UUID, now: datetime, policy: Policy
) -> Posted:
    """Reverse a transaction; an earn's growth value goes with it (counted when it was), so
    every window it counted in loses exactly it (see the member's growth history). Tiers move
    down only at evaluation."""
    original = ledger_repository.entry(session, entry_id)
    if original is not None and _refunded_in_part(session, original):
        raise NotReversible(
            "Part of this purchase was refunded: send a refund event for the rest instead."
        )
    result = reversals.reverse(session, origin, entry_id, now, policy)
    if original is None or original.kind is not EntryKind.EARN:
        return result
    tiers.reverse(
        session,
        entry_id,
        result.entry_id,
        now,
        partner_id=origin.partner_id,
        staff_id=origin.staff_id,
    )
    return result
