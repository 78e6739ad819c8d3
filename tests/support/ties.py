"""What the partner-tie tests share: a programme with an operator channel and two partners that
own namespaces, a settable clock, and unique identifiers."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta

from tally.config import Settings
from tally.programme.domain import Programme
from tally.programme.runtime import default_programme

OPERATOR, SHOP, FOOD = "MOBILE", "SHOP", "FOOD"


def programme() -> Programme:
    """MOBILE the operator's channel; SHOP owns ``shop`` and may use email; FOOD owns ``food``."""
    content = default_programme(Settings()).dump()
    return Programme.model_validate(
        {
            **content,
            "partners": [
                {"code": OPERATOR, "name": "Cloudway", "operator_channel": True},
                {"code": SHOP, "name": "Select Mall"},
                {"code": FOOD, "name": "Full Food"},
            ],
            "namespaces": [
                {"code": "phone", "shared_with": "all"},
                {"code": "email", "shared_with": [SHOP]},
                {"code": "shop", "owner": SHOP},
                {"code": "food", "owner": FOOD},
            ],
        }
    )


def unique(prefix: str) -> str:
    return f"{prefix}-{os.urandom(5).hex()}"


@dataclass
class Clock:
    """A clock the test sets: call it for the time, ``advance`` to move it."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)
