"""Samples of the console's campaign pages and event explorer for the template suite."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from tally.campaigns.domain import Status
from tally.campaigns.service import CampaignView
from tally.programme.domain import Money
from tally.web.console.auth import Staff
from tally.web.console.campaigns_page import STATUSES
from tally.web.console.events_page import REASONS, Found

NOW = datetime(2026, 11, 26, 4, 30, tzinfo=UTC)
Sample = tuple[str, dict[str, Any], str | None]


def _view(code: str, status: Status, **extra: Any) -> CampaignView:
    fields: dict[str, Any] = {
        "code": code,
        "names": {"zh-CN": "测试 <b>", "en": "Test <b>"},
        "on": ["purchase"],
        "status": status,
        "starts": None,
        "ends": None,
        "budget": None,
        "budget_used": 0,
        "points_today": 0,
        "variants": [],
        "holdout": None,
        "changed_at": None,
        "changed_by": None,
    }
    return CampaignView(**{**fields, **extra})


def campaign_samples(base: dict[str, Any], admin: Staff, auditor: Staff) -> list[Sample]:
    """The list (empty, every status and schedule), one campaign (paused with results, ended,
    as an auditor), and the explorer (nothing asked, an event explained, nothing found)."""
    tested = _view(
        "HIGH",
        Status.PAUSED,
        starts=date(2026, 1, 1),
        ends=date(2027, 12, 31),
        budget=1_000_000,
        budget_used=4_200,
        points_today=310,
        variants=["A", "B"],
        holdout="0.10",
        changed_at=NOW,
        changed_by="staff:1",
    )
    views = [
        tested,
        _view("SOON", Status.SCHEDULED, starts=date(2027, 1, 1)),
        _view("OVER", Status.ENDED, ends=date(2025, 1, 1)),
        _view("BASE", Status.RUNNING),
    ]
    page = {**base, "statuses": STATUSES, "section": "campaigns"}
    arms = [
        {
            "arm": arm,
            "members": 10,
            "events": 20,
            "points": 300,
            "growth": 0,
            "amount": Money(123_456, "CNY"),
            "amount_per_member": Money(12_345, "CNY"),
        }
        for arm in ("A", "B", "holdout", None)
    ]
    event = Found(
        uuid.UUID(int=7),
        "order-<1>",
        "purchase",
        "SHOP",
        1,
        NOW,
        NOW,
        Money(15_200, "CNY"),
        152,
        152,
        uuid.UUID(int=8),
        2,
        [
            {"campaign": "BASE", "rule": "per-yuan", "points": 152, "growth": 0, "variant": None}
            | {"badge": None, "cut": 0, "cut_by": None},
            {"campaign": "HIGH", "rule": "x3", "points": 10, "growth": 0, "variant": "A"}
            | {"badge": "BIG", "cut": 290, "cut_by": "capped"},
        ],
        [
            {"campaign": "WEEKEND", "rule": "double", "reason": "condition_false"}
            | {"detail": "when: event.weekday in [6, 7]"},
            {"campaign": "HELD", "rule": "r", "reason": "holdout", "detail": None},
        ],
        {"HELD": "holdout", "HIGH": "A"},
    )
    bare = Found(
        uuid.UUID(int=9), "e", "sign_in", "Tally", 2, NOW, NOW, None, 0, 0, None, 1, [], [], {}
    )
    asked = {"id": "", "partner": "", "event_id": "", "member": ""}
    explorer = {**base, "staff": auditor, "reasons": REASONS, "section": "events"}
    return [
        ("console/campaigns.html", {**page, "staff": auditor, "campaigns": []}, None),
        ("console/campaigns.html", {**page, "staff": admin, "campaigns": views}, None),
        (
            "console/campaign.html",
            {**page, "staff": admin, "campaign": tested, "arms": arms, "nonce": "n"}
            | {"changed_by": "Ada <b> (#1)"},
            None,
        ),
        (
            "console/campaign.html",
            {**page, "staff": admin, "campaign": views[3], "arms": arms[3:], "nonce": "n"}
            | {"changed_by": None},
            None,
        ),
        (
            "console/campaign.html",
            {**page, "staff": auditor, "campaign": views[2], "arms": [], "nonce": ""}
            | {"changed_by": None},
            None,
        ),
        (
            "console/events.html",
            {**explorer, "asked": asked, "searched": False, "events": []},
            None,
        ),
        (
            "console/events.html",
            {
                **explorer,
                "asked": asked | {"member": "1"},
                "searched": True,
                "events": [event, bare],
            },
            None,
        ),
        (
            "console/events.html",
            {**explorer, "asked": asked | {"id": "x"}, "searched": True, "events": []},
            None,
        ),
    ]
