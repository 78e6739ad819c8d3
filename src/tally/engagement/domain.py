"""Daily sign-in streaks, pure: a member's days in the programme's zone, walked in order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True, slots=True)
class Streak:
    """The member's latest day signed in and the run of consecutive days it ends."""

    last_day: date
    length: int


@dataclass(frozen=True, slots=True)
class Day:
    """What an event sees of the member's sign-ins on its ``day``: the streak (counting the
    event's own day when it is a sign-in that counts), whether a streak was broken (signed in
    before, but neither on the day before nor on the day itself), and, for a sign-in that does
    not count, the day already signed in that it repeats or comes before."""

    streak: int
    broken: bool
    repeats: date | None = None


def step(before: Streak | None, day: date, *, signs_in: bool) -> tuple[Streak | None, Day]:
    """The member's streak after an event of ``day`` and what the event sees. A sign-in counts
    once a day, and only on a day after the latest one signed in."""
    yesterday = day - timedelta(days=1)
    alive = before is not None and before.last_day >= yesterday
    broken = before is not None and before.last_day < yesterday
    if not signs_in:
        return before, Day(before.length if alive and before else 0, broken)
    if before is not None and before.last_day >= day:
        return before, Day(before.length, False, repeats=before.last_day)
    length = before.length + 1 if before is not None and before.last_day == yesterday else 1
    return Streak(day, length), Day(length, broken)
