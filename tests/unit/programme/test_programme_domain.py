"""The programme models: money as integers, multipliers in basis points, the demo file, the
published JSON Schema and the human-readable plan of changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tally.cli.programme import programme_schema
from tally.programme import loader
from tally.programme.changes import changes
from tally.programme.domain import (
    Money,
    PointRate,
    PointValue,
    Price,
    Programme,
    stack_benefits,
)

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "src" / "tally" / "demo" / "programme.yaml"


def demo() -> Programme:
    return loader.load(DEMO.read_text(), "programme.yaml")


@pytest.mark.parametrize(
    ("amount", "currency", "rate"),
    [
        ("0.01", "CNY", PointRate(1, 1, "CNY")),
        ("0.001", "CNY", PointRate(10, 1, "CNY")),
        ("0.005", "USD", PointRate(10, 5, "USD")),
        ("1", "JPY", PointRate(1, 1, "JPY")),
        ("0.25", "JPY", PointRate(100, 25, "JPY")),
        ("0.010", "KWD", PointRate(1, 10, "KWD")),
    ],
)
def test_a_point_value_becomes_whole_minor_units_per_points(
    amount: str, currency: str, rate: PointRate
) -> None:
    assert PointValue(amount=amount, currency=currency).rate == rate


def test_a_point_worth_nothing_is_refused() -> None:
    with pytest.raises(ValueError, match="more than nothing"):
        PointValue(amount="0.00", currency="CNY")


def test_a_price_is_integer_minor_units() -> None:
    price = Price(amount="88.00", currency="CNY")
    assert price.money == Money(8800, "CNY")
    assert str(price.money) == "88.00 CNY"
    assert Price(amount="500", currency="JPY").money == Money(500, "JPY")
    assert str(Money(500, "JPY")) == "500 JPY"


def test_the_demo_programme() -> None:
    programme = demo()
    assert programme.currency.code == "AIB"
    assert programme.currency.names.zh_cn == "AI豆"
    assert programme.currency.point_value.rate == PointRate(1, 1, "CNY")  # 100 points = 1 CNY
    assert programme.currency.default_validity_days == 365
    assert [tier.names.zh_cn for tier in programme.tiers] == [
        "青铜", "白银", "黄金", "铂金", "钻石", "黑钻",
    ]  # fmt: skip
    assert [tier.threshold for tier in programme.tiers] == [0, 1000, 5000, 15000, 40000, 100000]
    assert [tier.earn_multiplier_bp for tier in programme.tiers] == [
        10_000, 12_000, 14_000, 16_000, 18_000, 20_000,
    ]  # fmt: skip
    assert [tier.flags.theme for tier in programme.tiers][-2:] == ["black-gold", "black-gold"]
    model = programme.tier_model
    assert (model.kind, model.window_days, model.grace_days, model.max_levels_down) == (
        "rolling_window", 365, 30, 1,
    )  # fmt: skip
    (plan,) = programme.plans
    assert plan.price.money == Money(8800, "CNY")
    assert plan.term_parts == (1, "Y")
    assert plan.eligibility.min_growth == 1000
    assert [partner.code for partner in programme.partners] == ["MOBILE", "SHOP", "FOOD", "HOTEL"]


def test_the_demo_loader_gives_a_key_to_every_partner_of_the_demo_programme() -> None:
    from tally.demo.loader import PARTNER_SCOPES

    assert [p.code for p in demo().partners] == [code for code, _ in PARTNER_SCOPES]


def test_the_published_schema_is_current() -> None:
    assert (ROOT / "docs" / "programme.schema.json").read_text() == programme_schema(), (
        "docs/programme.schema.json is stale: tally programme schema > docs/programme.schema.json"
    )


def test_the_schema_refuses_numbers_for_money() -> None:
    schema = Programme.model_json_schema(by_alias=True)
    amount = schema["$defs"]["Price"]["properties"]["amount"]
    assert amount["type"] == "string"
    assert "zh-CN" in schema["$defs"]["Names"]["properties"]


def test_no_changes_against_itself() -> None:
    assert changes(demo(), demo()) == ["no changes"]


def test_changes_name_what_moved() -> None:
    old = demo()
    text = (
        DEMO.read_text()
        .replace("threshold: 5000", "threshold: 6000")
        .replace('"1.4"', '"1.5"')
        .replace("grace_days: 30", "grace_days: 60")
        .replace('"88.00"', '"98.00"')
        .replace("  - {code: HOTEL, name: 栖云酒店 Cloudrest Hotels}\n", "")
        .replace("  - {code: hotel, owner: HOTEL}\n", "")
        .replace("support: 5000,", "support: 8000,")
        .replace("default_validity_days: 365", "default_validity_days: 730")
    )
    new = loader.load(text)
    assert changes(old, new) == [
        "currency.default_validity_days: 365 → 730",
        "tier_model.grace_days: 30 → 60",
        "staff.adjustment_limits.support: 5000 → 8000",
        "tier GOLD threshold: 5000 → 6000",
        "tier GOLD earn_multiplier: 1.4 → 1.5",
        "plan VIP88 price.amount: 88.00 → 98.00",
        "partner HOTEL removed from the programme (it stays registered)",
        "namespace hotel removed",
    ]


def test_changes_list_added_and_removed_tiers() -> None:
    old = demo()
    data = old.dump()
    data["tiers"] = data["tiers"][:5]
    data["plans"] = []
    smaller = Programme.model_validate(data)
    assert changes(smaller, old) == [
        "tier BLACK_DIAMOND added (Black Diamond)",
        "plan VIP88 added (88 VIP)",
    ]
    assert changes(old, smaller) == ["tier BLACK_DIAMOND removed", "plan VIP88 removed"]


def test_the_first_version_lists_everything() -> None:
    lines = changes(None, demo())
    assert lines[0] == "currency AIB set: 1 point = 0.01 CNY"
    assert "tier BRONZE added (Bronze)" in lines
    assert "partner MOBILE added (云途移动 Cloudway Mobile)" in lines


def _fields(schema: dict, name: str, seen: set[str]) -> set[str]:  # type: ignore[type-arg]
    """Every property name reachable from ``name`` in the schema's definitions."""
    if name in seen:
        return set()
    seen.add(name)
    found: set[str] = set()
    definition = schema["$defs"].get(name, schema) if name != "Programme" else schema
    for field, spec in definition.get("properties", {}).items():
        found.add(field)
        text = str(spec)
        for ref in schema["$defs"]:
            if f"#/$defs/{ref}'" in text:
                found |= _fields(schema, ref, seen)
    return found


def test_the_documentation_covers_every_field_and_shows_the_demo() -> None:
    doc = (ROOT / "docs" / "programme.md").read_text()
    schema = Programme.model_json_schema(by_alias=True)
    missing = sorted(
        field
        for field in _fields(schema, "Programme", set())
        if f"`{field}`" not in doc and f".{field}`" not in doc
    )
    assert not missing, f"docs/programme.md does not document {missing}"
    assert f"```yaml\n{DEMO.read_text()}```" in doc


def test_benefits_stack_each_kind_once_and_coupon_allowances_add_up() -> None:
    programme = demo()
    gold = programme.tier("GOLD")
    vip = programme.plan("VIP88")
    assert gold is not None
    assert vip is not None
    stacked = stack_benefits(gold.benefits, vip.benefits, vip.benefits)
    assert [benefit.model_dump() for benefit in stacked] == [
        {"kind": "birthday_gift"},
        {"kind": "monthly_coupons", "count": 2 + 8 + 8},
        {"kind": "free_returns"},
        {"kind": "priority_service"},
    ]
    assert stack_benefits() == []
    assert stack_benefits(gold.benefits) == gold.benefits
