"""A programme for the paid-membership suites: the demo programme with test plans, no partners."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from tally.db.session import Database
from tally.kit.clock import utcnow
from tally.programme import loader
from tally.programme import service as programme_service
from tally.programme.domain import Programme

DEMO = Path(__file__).resolve().parents[2] / "src" / "tally" / "demo" / "programme.yaml"
# The ``partner`` fixture's partner (tests/conftest.py), the operator's own channel.
OPERATOR = {"code": "MOBILE", "name": "MOBILE partner", "operator_channel": True}
PLANS = [
    {
        "code": "VIP88",
        "names": {"zh-CN": "88会员", "en": "88 VIP"},
        "price": {"amount": "88.00", "currency": "CNY"},
        "term": "P1Y",
        "eligibility": {"min_growth": 1000},
    },
    {
        "code": "MONTHLY",
        "names": {"zh-CN": "月卡", "en": "Monthly"},
        "price": {"amount": "15.00", "currency": "CNY"},
        "term": "P1M",
    },
    {
        "code": "CLUB",
        "names": {"zh-CN": "铂金俱乐部", "en": "Platinum Club"},
        "price": {"amount": "30.00", "currency": "CNY"},
        "term": "P30D",
        "eligibility": {"min_tier": "PLATINUM"},
    },
]


def programme_text() -> str:
    """The demo programme (Asia/Shanghai, six tiers) with the test plans, one partner (MOBILE,
    the operator's channel, which alone sells the plans) and the default namespaces (the
    demo's name its partners)."""
    demo = {**loader.load(DEMO.read_text(encoding="utf-8"), DEMO.name).dump()}
    demo.pop("namespaces")
    return loader.dump(Programme.model_validate({**demo, "plans": PLANS, "partners": [OPERATOR]}))


def apply_programme(database: Database) -> Programme:
    """Apply the test programme (as version 1, a day ago)."""
    text = programme_text()
    programme = programme_service.validate(text)
    with database.write() as session:
        programme_service.apply(session, programme, text, "tests", utcnow() - timedelta(days=1))
    return programme
