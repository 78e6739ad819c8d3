"""Refunds: take back, in proportion to the money refunded, what an outcome gave.

Pure. Shares are computed on the money refunded so far, before and after this refund, each
rounded down, and their difference taken back: the take-backs of successive refunds add up to
at most the grant, money already refunded is never counted twice, and refunding everything
returns exactly everything (earned 1,000 on 200.00; a refund of 100.00 takes back 500).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Context, Decimal

from tally.rules.engine import Outcome

_EXACT = Context(prec=60)


@dataclass(frozen=True, slots=True)
class TakenBack:
    """What a refund takes back from one applied rule (``points`` and ``growth`` ≤ 0)."""

    campaign: str
    rule: str
    points: int
    growth: int


@dataclass(frozen=True, slots=True)
class Refund:
    """The take-backs by rule, and the points each counter key gets back."""

    lines: tuple[TakenBack, ...]
    given_back: Mapping[str, int]

    @property
    def points(self) -> int:
        return sum(line.points for line in self.lines)

    @property
    def growth(self) -> int:
        return sum(line.growth for line in self.lines)


def _share(granted: int, part: Decimal, whole: Decimal) -> int:
    return int(_EXACT.divide_int(_EXACT.multiply(Decimal(granted), part), whole))


def refund(
    original: Outcome,
    amount: Decimal,
    refunded: Decimal,
    already_refunded: Decimal = Decimal(0),
) -> Refund:
    """What refunding ``refunded`` of an event of ``amount`` takes back, when
    ``already_refunded`` was refunded before; money beyond ``amount`` takes nothing."""
    if amount <= 0:
        return Refund((), {})
    before = min(max(already_refunded, Decimal(0)), amount)
    after = min(before + max(refunded, Decimal(0)), amount)
    lines = []
    given_back: dict[str, int] = {}
    for applied in original.applied:
        points = _share(applied.points, after, amount) - _share(applied.points, before, amount)
        growth = _share(applied.growth, after, amount) - _share(applied.growth, before, amount)
        if points or growth:
            lines.append(TakenBack(applied.campaign, applied.rule, -points, -growth))
        for key in applied.counters:
            if points:
                given_back[key] = given_back.get(key, 0) + points
    return Refund(tuple(lines), given_back)
