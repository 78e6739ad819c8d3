"""A programme for the events suites: the demo programme with small campaigns of known
outcomes (a base rate with growth, a budgeted category bonus, a sign-in reward)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from support.membership_programme import DEMO, OPERATOR
from tally.db.session import Database
from tally.kit.clock import utcnow
from tally.programme import loader
from tally.programme import service as programme_service
from tally.programme.domain import Programme

EVENT_TYPES = [{"code": "survey_done", "attributes": {"score": "int", "spent": "decimal"}}]
CAMPAIGNS: list[dict[str, Any]] = [
    {
        "code": "BASE",
        "names": {"zh-CN": "消费积分", "en": "Points on spend"},
        "on": ["purchase", "bill_paid"],
        "rules": [
            {
                "code": "per-yuan",
                "priority": 100,
                "award": {"points_per": {"amount": "1.00", "points": 1}},
            },
            {
                "code": "growth",
                "priority": 100,
                "award": {"growth_per": {"amount": "1.00", "growth": 1}},
            },
        ],
    },
    {
        "code": "BONUS",
        "names": {"zh-CN": "加赠", "en": "Bonus"},
        "on": ["purchase"],
        "budget": {"points": 200},
        "rules": [
            {
                "code": "drinks",
                "priority": 90,
                "items": "item.category == 'drinks'",
                "award": {"points_per": {"amount": "1.00", "points": 2}},
            }
        ],
    },
    {
        "code": "SURVEY",
        "names": {"zh-CN": "问卷", "en": "Survey"},
        "on": ["survey_done"],
        "rules": [
            {
                "code": "happy",
                "when": "event.attributes.score >= 8 && event.attributes.spent >= 9.50",
                "award": {"points": 20},
            }
        ],
    },
    {
        "code": "WELCOME",
        "names": {"zh-CN": "签到", "en": "Sign-in"},
        "on": ["sign_in"],
        "rules": [{"code": "daily", "award": {"points": 5}}],
    },
]


def apply_campaigns(
    database: Database,
    campaigns: list[dict[str, Any]],
    exchange_rates: dict[str, str] | None = None,
) -> Programme:
    """Apply the demo programme with ``campaigns`` (as version 1, a day ago), and the
    ``exchange_rates`` of other currencies events may come in."""
    demo = loader.load(DEMO.read_text(encoding="utf-8"), DEMO.name).dump()
    demo.pop("namespaces")
    if exchange_rates:
        demo["currency"] = {**demo["currency"], "exchange_rates": exchange_rates}
    content = {
        **demo,
        "partners": [OPERATOR],
        "plans": [],
        "campaigns": campaigns,
        "event_types": EVENT_TYPES,
    }
    content.pop("aggregates", None)
    content.pop("badges", None)
    text = loader.dump(Programme.model_validate(content))
    programme = programme_service.validate(text)
    with database.write() as session:
        programme_service.apply(session, programme, text, "tests", utcnow() - timedelta(days=1))
    return programme
