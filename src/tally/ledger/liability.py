"""The programme's outstanding liability: the points members hold unspent, and what they were
worth when issued (each lot records the value of a point then; ADR 12). Computed by aggregates
in the database, never by loading lots."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tally.ledger.models import Lot, Wallet
from tally.programme.domain import Money


@dataclass(frozen=True, slots=True)
class Outstanding:
    """Unspent points valued in one currency, at the value a point had when each was issued
    (rounded half to even to a minor unit once, over the whole sum)."""

    points: int
    value: Money


@dataclass(frozen=True, slots=True)
class Liability:
    """Unspent points by currency; ``held`` points reserved by holds (not in lots meanwhile);
    ``unvalued`` unspent points in lots that record no value of a point."""

    outstanding: list[Outstanding]
    held: int
    unvalued: int

    @property
    def points(self) -> int:
        return sum(item.points for item in self.outstanding) + self.unvalued


def valued(groups: Iterable[tuple[str, int, int, int]]) -> list[Outstanding]:
    """``(currency, value_points, points, Σ points × value_minor)`` groups of lots, summed per
    currency exactly: ``value_points`` points are worth ``value_minor`` minor units, so a group
    is worth its product sum over ``value_points``."""
    points: dict[str, int] = defaultdict(int)
    worth: dict[str, Fraction] = defaultdict(Fraction)
    for currency, value_points, group_points, product in groups:
        points[currency] += group_points
        worth[currency] += Fraction(product, value_points)
    return [
        Outstanding(points[currency], Money(round(worth[currency]), currency))
        for currency in sorted(points)
    ]


def liability(session: Session, now: datetime) -> Liability:
    """The points in unexpired lots, valued per currency; held points; points in lots without
    a value. Three grouped queries over lots and wallets (a handful of rows back)."""
    live = (Lot.remaining > 0) & (Lot.expires_at > now)
    groups = session.execute(
        select(
            Lot.value_currency,
            Lot.value_points,
            func.sum(Lot.remaining),
            func.sum(Lot.remaining * Lot.value_minor),
        )
        .where(live, Lot.value_points.is_not(None))
        .group_by(Lot.value_currency, Lot.value_points)
    ).all()
    unvalued = session.scalar(
        select(func.coalesce(func.sum(Lot.remaining), 0)).where(live, Lot.value_points.is_(None))
    )
    held = session.scalar(select(func.coalesce(func.sum(Wallet.held), 0)))
    rates = []
    for currency, per, points, product in groups:
        assert currency is not None  # a lot's value is written whole (ADR 12)
        assert per is not None
        rates.append((currency, int(per), int(points), int(product)))
    return Liability(
        outstanding=valued(rates),
        held=int(held or 0),
        unvalued=int(unvalued or 0),
    )
