"""Engagement, pure: daily sign-in streaks (a member's days in the programme's zone, walked in
order) and the shape of referral codes."""

from __future__ import annotations

import secrets
from collections.abc import Callable
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


# Referral codes: 10 characters of an alphabet without look-alikes (no 0/O, 1/I/L, U): 30^10,
# about 2^49 codes, drawn from a cryptographic source.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 10


def new_referral_code(below: Callable[[int], int] = secrets.randbelow) -> str:
    """A fresh random referral code."""
    return "".join(CODE_ALPHABET[below(len(CODE_ALPHABET))] for _ in range(CODE_LENGTH))


def clean_referral_code(text: str) -> str | None:
    """A referral code as typed (any case, spaces or hyphens between groups) in its stored
    form, or None when it cannot be one."""
    code = text.strip().upper().replace("-", "").replace(" ", "")
    if len(code) != CODE_LENGTH or any(char not in CODE_ALPHABET for char in code):
        return None
    return code


def grouped(code: str) -> str:
    """The code as shown: ``ABCDE-FGHJK``."""
    return f"{code[:5]}-{code[5:]}"
