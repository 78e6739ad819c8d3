"""A programme for the coupon suites: the test plans' programme whose first tier and MONTHLY
plan give monthly coupons of the ``MONTHLY5`` template."""

from __future__ import annotations

from datetime import datetime, timedelta

from support.membership_programme import programme_text
from tally.coupons import service as coupons
from tally.coupons.domain import Kind
from tally.db.session import Database
from tally.kit.clock import utcnow
from tally.programme import loader
from tally.programme import service as programme_service
from tally.programme.domain import Programme

TEMPLATE = "MONTHLY5"


def apply_coupon_programme(database: Database, created: datetime | None = None) -> Programme:
    """Apply the programme (as version 1, a day before ``created`` or now, whichever is
    earlier) and create the ``MONTHLY5`` template:
    the first tier gives 2 a month, the MONTHLY plan 1 more."""
    content = loader.load(programme_text(), "programme.yaml").dump()
    allowance = {"kind": "monthly_coupons", "template": TEMPLATE}
    content["tiers"][0]["benefits"] = [*content["tiers"][0]["benefits"], {**allowance, "count": 2}]
    for plan in content["plans"]:
        if plan["code"] == "MONTHLY":
            plan["benefits"] = [*plan["benefits"], {**allowance, "count": 1}]
    text = loader.dump(Programme.model_validate(content))
    programme = programme_service.validate(text)
    now = created or utcnow()
    with database.write() as session:
        effective = min(now, utcnow()) - timedelta(days=1)
        programme_service.apply(session, programme, text, "tests", effective)
        coupons.create_template(
            session,
            coupons.TemplateSpec(TEMPLATE, Kind.AMOUNT, 500, {"zh-CN": "五元券", "en": "5 off"}),
            programme.currency.point_value.currency,
            now,
        )
    return programme
