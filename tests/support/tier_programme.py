"""Programmes for tier tests: a currency in CNY and a ladder of tiers, built from the few
values a test cares about."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tally.programme.domain import Programme


def tier_programme(
    tiers: Sequence[tuple[str, int, str]],
    tier_model: dict[str, Any],
    *,
    validity_days: int = 3650,
    zone: str = "Asia/Shanghai",
) -> Programme:
    """``tiers`` are ``(code, threshold, earn multiplier)``, lowest first."""
    return Programme.model_validate(
        {
            "currency": {
                "code": "AIB",
                "names": {"zh-CN": "豆", "en": "Beans"},
                "point_value": {"amount": "0.01", "currency": "CNY"},
                "default_validity_days": validity_days,
                "timezone": zone,
            },
            "tiers": [
                {
                    "code": code,
                    "names": {"zh-CN": code, "en": code},
                    "threshold": threshold,
                    "earn_multiplier": multiplier,
                }
                for code, threshold, multiplier in tiers
            ],
            "tier_model": tier_model,
        }
    )
