"""Online evaluation: values, exact decimals, the null semantics, and explanations."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tally.rules.conditions import FieldType, compile_condition, default_schema

SCHEMA = default_schema(
    attributes={"color": FieldType.STRING, "pages": FieldType.INT},
    aggregates={"purchases_30d": FieldType.INT, "spend_30d": FieldType.DECIMAL},
    items=True,
)
D = Decimal


def holds(source: str, **objects: dict[str, Any]) -> bool:
    return compile_condition(source, SCHEMA).evaluate(objects)


def test_the_issue_examples() -> None:
    when = compile_condition("event.amount >= 100 && member.tier in ['GOLD', 'PLATINUM']", SCHEMA)
    assert when.evaluate({"event": {"amount": D("100.00")}, "member": {"tier": "GOLD"}})
    assert not when.evaluate({"event": {"amount": D("99.99")}, "member": {"tier": "GOLD"}})
    assert not when.evaluate({"event": {"amount": D("150")}, "member": {"tier": "SILVER"}})
    items = compile_condition("!('color:red' in item.labels) && item.sku != '0001'", SCHEMA)
    assert items.evaluate({"item": {"labels": ["color:blue"], "sku": "0002"}})
    assert not items.evaluate({"item": {"labels": ["size:m", "color:red"], "sku": "0002"}})
    assert not items.evaluate({"item": {"labels": [], "sku": "0001"}})


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("event.amount == 99.995", True),
        ("event.amount == 99.9950", True),
        ("event.amount < 100", True),
        ("event.amount > 99.99", True),
        ("event.amount + 0.005 == 100", True),
        ("event.amount * 2 == 199.99", True),
        ("event.amount * 3 == 299.985", True),
        ("event.amount - 100 == -0.005", True),
        ("event.amount * 0.5 == 49.9975", True),
        ("event.amount * 0.001 == 0.1", True),  # 0.099995, rounded half to even at 4 places
    ],
)
def test_decimals_are_exact(source: str, expected: bool) -> None:
    assert holds(source, event={"amount": D("99.995")}) is expected


def test_a_decimal_with_more_places_is_rounded_half_to_even() -> None:
    assert holds("event.amount == 1.0002", event={"amount": D("1.00015")})
    assert holds("event.amount == 1.0002", event={"amount": D("1.00025")})
    assert holds("event.amount == 3", event={"amount": 3})  # an int where a decimal goes


def test_ints_and_decimals_mix() -> None:
    assert holds("item.quantity * item.amount == 7.50", item={"quantity": 3, "amount": D("2.50")})
    assert holds("item.quantity == 3.0 && item.quantity < 3.5", item={"quantity": 3})
    assert holds("event.hour in [20.0, 21]", event={"hour": 20})


def test_strings_and_their_functions() -> None:
    item = {"name": "Café Latte", "sku": "CAF-01", "labels": ["a", "b"]}
    assert holds("item.name.startsWith('Caf') && item.name.endsWith('tte')", item=item)
    assert holds("item.name.contains('é L') && item.name.lowerAscii() == 'café latte'", item=item)
    assert holds("'ÉA'.lowerAscii() == 'Éa' && size('中文') == 2", item=item)
    assert holds("size(item.labels) == 2 && size(item.sku) == 6 && item.sku < 'CAG'", item=item)
    assert holds("item.name.contains('') && item.name.startsWith('')", item=item)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("event.amount > 0", False),  # an ordering with a missing side is false
        ("event.amount <= 0", False),
        ("event.amount == 0", False),  # == needs both sides present ...
        ("event.amount != 0", True),  # ... and != is its negation
        ("!(event.amount > 0)", True),
        ("event.amount + 1 > 0", False),  # arithmetic on a missing value is missing
        ("event.channel == event.currency", False),
        ("event.channel != event.currency", True),
        ("event.channel.startsWith('a')", False),
        ("event.channel.lowerAscii() == 'app'", False),
        ("size(event.channel) == 0", False),
        ("'x' in member.tags", False),  # a missing list is empty
        ("!('x' in member.tags)", True),
        ("size(member.tags) == 0", True),
        ("event.channel in ['app', 'web']", False),
        ("member.birthday_today", False),  # a missing bool is false
        ("!member.birthday_today", True),
        ("member.birthday_today == false", True),
        ("event.weekday in [6, event.hour]", False),
    ],
)
def test_missing_values(source: str, expected: bool) -> None:
    assert holds(source, event={"channel": None}, member={}) is expected
    assert holds(source) is expected  # no objects at all


def test_a_list_literal_may_hold_missing_values() -> None:
    assert not holds("event.channel in [event.currency, 'app']", event={"channel": "web"})
    assert holds("event.channel in [event.currency, 'app']", event={"channel": "app"})


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("member.purchases_30d + 1 > 0", False),  # int64 overflow is missing
        ("member.purchases_30d - 1 > 0", True),
        ("member.purchases_30d * 2 != 0", True),
        ("-member.purchases_30d < 0", True),
        ("member.purchases_30d * 1.0 > 0", False),  # a decimal of 10^15 or more is missing
        ("member.purchases_30d > 999999999999999.9999", True),  # comparisons have no limit
    ],
)
def test_out_of_range_results_are_missing(source: str, expected: bool) -> None:
    assert holds(source, member={"purchases_30d": 2**63 - 1}) is expected


def test_decimal_limits() -> None:
    big = D("999999999999999.9999")
    assert holds("member.spend_30d == 999999999999999.9999", member={"spend_30d": big})
    assert not holds("member.spend_30d + 0.0001 > 0", member={"spend_30d": big})
    assert not holds("member.spend_30d > 0", member={"spend_30d": D("1E+15")})
    assert not holds("member.spend_30d > 0", member={"spend_30d": D("999999999999999.99995")})
    assert not holds("member.spend_30d > 0", member={"spend_30d": D("NaN")})
    assert not holds("member.spend_30d > 0", member={"spend_30d": D("Infinity")})
    assert holds("-(-9223372036854775807 - 1) * 1 != 0", member={})


def test_attributes_and_aggregates_are_fields() -> None:
    event = {"attributes": {"color": "red", "pages": 12}}
    assert holds("event.attributes.color == 'red' && event.attributes.pages >= 10", event=event)
    assert not holds("event.attributes.color == 'red'", event={"attributes": None})


def test_explain_names_the_smallest_false_part() -> None:
    condition = compile_condition(
        "event.amount >= 100 && (member.tier == 'GOLD' && member.purchases_30d > 2)"
        " && (event.channel == 'app' || event.channel == 'web')",
        SCHEMA,
    )
    env: dict[str, Any] = {
        "event": {"amount": D("120"), "channel": "app"},
        "member": {"tier": "GOLD", "purchases_30d": 3},
    }
    assert condition.explain(env) is None
    env["event"]["amount"] = D("99.99")
    assert condition.explain(env) == "event.amount >= 100"
    env["event"]["amount"] = D("100")
    env["member"]["purchases_30d"] = 1
    assert condition.explain(env) == "member.purchases_30d > 2"
    env["member"]["purchases_30d"] = 5
    env["event"]["channel"] = "store"
    assert condition.explain(env) == "event.channel == 'app' || event.channel == 'web'"


def test_explain_of_a_negation_is_the_whole_negation() -> None:
    condition = compile_condition('!("color:red" in item.labels)', SCHEMA)
    assert condition.explain({"item": {"labels": ["color:red"]}}) == "!('color:red' in item.labels)"


def test_to_source_is_canonical() -> None:
    condition = compile_condition('event.amount>=100&&(member.tier=="GOLD")', SCHEMA)
    assert condition.to_source() == "event.amount >= 100 && member.tier == 'GOLD'"
