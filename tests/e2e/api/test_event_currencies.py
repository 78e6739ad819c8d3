"""Events in other currencies: refused unless the programme declares a rate; with one, every
amount is converted exactly (rounded down to the programme money's minor unit) before the
rules read it, and what was sent is kept."""

from __future__ import annotations

from typing import Any

import pytest
from apikit import assert_problem, issue_key
from sqlalchemy import select

from conftest import Api, PartnerKey
from support.event_programme import CAMPAIGNS, apply_campaigns
from tally.db.session import Database
from tally.errors import ValidationFailed
from tally.events.models import StoredEvent
from tally.programme import service as programme_service

RATES = {"USD": "7.1234", "JPY": "0.0475"}


@pytest.fixture
def events_key(database: Database, partner: PartnerKey) -> PartnerKey:
    apply_campaigns(database, CAMPAIGNS, exchange_rates=RATES)
    return issue_key(database, partner, "events,members,read")


def _purchase(event_id: str, member_id: int, value: str, currency: str, **extra: Any) -> Any:
    return {
        "type": "purchase",
        "event_id": event_id,
        "member_id": member_id,
        "occurred_at": "2026-12-02T10:00:00+08:00",
        "amount": {"value": value, "currency": currency},
        **extra,
    }


def test_amounts_in_a_currency_with_a_rate_are_converted_exactly_before_the_rules(
    api: Api, client: Any, events_key: PartnerKey, database: Database
) -> None:
    member = api.enrol("13900000001")
    events = Api(client, events_key)
    drinks = [{"sku": "tea", "amount": "3.00", "category": "drinks"}]

    dollars = events.post("/v1/events", _purchase("usd-1", member, "10.00", "USD", items=drinks))
    yen = events.post("/v1/events", _purchase("jpy-1", member, "999", "JPY"))

    assert dollars.status_code == yen.status_code == 201, (dollars.text, yen.text)
    # 10.00 USD = 71.234 CNY → 71.23; the tea's 3.00 USD = 21.3702 → 21.37, 2 points a yuan.
    assert [(r["rule"], r["points"]) for r in dollars.json()["rules"] if r["points"]] == [
        ("per-yuan", 71),
        ("drinks", 42),
    ]
    assert yen.json()["points"] == 47  # 999 JPY = 47.4525 CNY → 47.45
    with database.read() as session:
        stored = session.scalars(select(StoredEvent).where(StoredEvent.event_id == "usd-1")).one()
        assert (stored.amount_minor, stored.currency) == (7123, "CNY")
        assert (stored.payload["sent_amount"], stored.payload["sent_currency"]) == ("10.00", "USD")

    refund = {
        "type": "refund",
        "event_id": "usd-r",
        "member_id": member,
        "occurred_at": "2026-12-03T10:00:00+08:00",
        "amount": {"value": "5.00", "currency": "USD"},
        "refers_to": "usd-1",
    }
    taken = events.post("/v1/events", refund).json()
    # 5.00 USD = 35.617 → 35.61 of the 71.23 CNY refunded: 71 × 3561 / 7123 → 35, 42 × … → 20.
    assert taken["points"] == -55


@pytest.mark.parametrize(
    ("amount", "says"),
    [
        ({"value": "10.00", "currency": "EUR"}, "CNY or one it has a rate for (JPY, USD)"),
        ({"value": "10.5", "currency": "JPY"}, "JPY amounts have at most 0 decimals"),
    ],
)
def test_a_currency_without_a_rate_or_with_too_many_decimals_is_refused(
    api: Api, client: Any, events_key: PartnerKey, amount: dict[str, str], says: str
) -> None:
    member = api.enrol("13900000002")
    sent = {**_purchase("x-1", member, "1", "USD"), "amount": amount}

    answer = Api(client, events_key).post("/v1/events", sent)

    assert_problem(answer, 422, "validation_error")
    assert says in answer.json()["detail"]


@pytest.mark.parametrize(
    ("rates", "says"),
    [
        ({"CNY": "1"}, "CNY is the programme's own money"),
        ({"XXY": "1"}, "'XXY' is not a known ISO 4217 currency code"),
        ({"USD": "0"}, "more than 0"),
        ({"USD": 7.1}, "quoted decimal string"),
    ],
)
def test_bad_exchange_rates_are_refused_when_the_file_is_validated(
    rates: dict[str, Any], says: str
) -> None:
    text = f"""
currency:
  code: AIB
  names: {{zh-CN: AI豆, en: AI Beans}}
  point_value: {{amount: "0.01", currency: CNY}}
  default_validity_days: 365
  timezone: Asia/Shanghai
  exchange_rates: {rates!r}
tiers:
  - {{code: MEMBER, names: {{zh-CN: 会员, en: Member}}, threshold: 0}}
"""
    with pytest.raises(ValidationFailed) as refused:
        programme_service.validate(text)
    assert says in str(refused.value) or says in repr(refused.value.__dict__)
