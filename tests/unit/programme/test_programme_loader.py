"""Programme files with every kind of mistake: each error names its line and its field."""

from __future__ import annotations

import pytest

from tally.programme import loader
from tally.programme.loader import InvalidProgramme

GOOD = """\
currency:
  code: AIB
  names: {zh-CN: AI豆, en: AI Beans}
  point_value: {amount: "0.01", currency: CNY}
  default_validity_days: 365
  timezone: Asia/Shanghai
tiers:
  - code: BRONZE
    names: {zh-CN: 青铜, en: Bronze}
    threshold: 0
    earn_multiplier: "1.0"
  - code: SILVER
    names: {zh-CN: 白银, en: Silver}
    threshold: 1000
    earn_multiplier: "1.2"
    benefits:
      - kind: monthly_coupons
        count: 2
  - code: GOLD
    names: {zh-CN: 黄金, en: Gold}
    threshold: 5000
    earn_multiplier: "1.5"
    flags: {mall_exclusive: true, theme: black-gold}
tier_model:
  kind: rolling_window
  window_days: 365
  grace_days: 30
  max_levels_down: 1
plans:
  - code: VIP88
    names: {zh-CN: 88会员, en: 88 VIP}
    price: {amount: "88.00", currency: CNY}
    term: P1Y
    eligibility: {min_growth: 1000, min_tier: SILVER}
    benefits:
      - kind: free_returns
partners:
  - {code: SHOP, name: Select Mall}
"""

# (what is wrong, text replaced, replacement, line, field path, part of the message)
BROKEN = [
    ("wrong type", "threshold: 1000", "threshold: lots", 14, "tiers[1].threshold", "integer"),
    ("number as text", "threshold: 1000", 'threshold: "1000"', 14, "tiers[1].threshold",
     "integer"),
    ("bool as number", "max_levels_down: 1", "max_levels_down: true", 28,
     "tier_model.max_levels_down", "integer"),
    ("out of range", "max_levels_down: 1", "max_levels_down: 0", 28,
     "tier_model.max_levels_down", "greater than or equal to 1"),
    ("float money", 'amount: "88.00"', "amount: 88.00", 32, "plans[0].price.amount",
     "quoted decimal string"),
    ("float point value", 'amount: "0.01"', "amount: 0.01", 4, "currency.point_value.amount",
     "quoted decimal string"),
    ("float multiplier", 'earn_multiplier: "1.5"', "earn_multiplier: 1.5", 22,
     "tiers[2].earn_multiplier", "quoted decimal string"),
    ("integer multiplier", 'earn_multiplier: "1.5"', "earn_multiplier: 2", 22,
     "tiers[2].earn_multiplier", "quoted decimal string"),
    ("negative money", 'amount: "88.00"', 'amount: "-88.00"', 32, "plans[0].price.amount",
     "must be a decimal"),
    ("price finer than the currency", 'amount: "88.00"', 'amount: "88.001"', 32,
     "plans[0].price", "more decimals than CNY allows"),
    ("multiplier finer than basis points", '"1.5"', '"1.00001"', 22,
     "tiers[2].earn_multiplier", "basis points"),
    ("missing field", "  default_validity_days: 365\n", "", 1,
     "currency.default_validity_days", "required field is missing"),
    ("missing field in a benefit", "        count: 2\n", "", 17, "tiers[1].benefits[0].count",
     "required field is missing"),
    ("unknown key", "grace_days: 30", "grace_day: 30", 27, "tier_model.grace_day",
     "unknown field"),
    ("unknown key in a name", "en: Gold}", "en: Gold, fr: Or}", 20, "tiers[2].names.fr",
     "unknown field"),
    ("duplicate key", "    threshold: 1000\n", "    threshold: 1000\n    threshold: 2000\n", 15,
     "tiers[1].threshold", "duplicate key 'threshold'"),
    ("non-increasing thresholds", "threshold: 5000", "threshold: 1000", 21,
     "tiers[2].threshold", "must be greater than tiers[1].threshold (1000)"),
    ("first threshold not 0", "threshold: 0", "threshold: 10", 10, "tiers[0].threshold",
     "must be 0"),
    ("duplicate tier code", "code: GOLD", "code: SILVER", 19, "tiers[2].code",
     "SILVER is already used by tiers[1]"),
    ("unknown min_tier", "min_tier: SILVER", "min_tier: PLATINUM", 34,
     "plans[0].eligibility.min_tier", "no tier PLATINUM"),
    ("bad timezone", "Asia/Shanghai", "Asia/Atlantis", 6, "currency.timezone",
     "not an IANA time zone"),
    ("bad currency code", 'currency: CNY}\n    term', 'currency: RMB}\n    term', 32,
     "plans[0].price.currency", "'RMB' is not a known ISO 4217 currency code"),
    ("lower-case currency code", 'currency: CNY}\n  default', 'currency: cny}\n  default', 4,
     "currency.point_value.currency", "pattern"),
    ("bad term", "term: P1Y", "term: P1W", 33, "plans[0].term", "pattern"),
    ("unknown benefit", "kind: free_returns", "kind: spa", 36, "plans[0].benefits[0]",
     "'spa'"),
    ("window on a lifetime model", "kind: rolling_window", "kind: lifetime", 24, "tier_model",
     "window_days applies only to rolling_window"),
    ("bad YAML syntax", "  code: AIB\n", "  code: AIB: x\n", 2, "programme", "YAML:"),
    ("unclosed flow mapping", "en: Bronze}", "en: Bronze", 10, "programme", "YAML:"),
]  # fmt: skip


def test_the_sample_is_valid() -> None:
    programme = loader.load(GOOD)
    assert [tier.code for tier in programme.tiers] == ["BRONZE", "SILVER", "GOLD"]


@pytest.mark.parametrize(
    ("old", "new", "line", "path", "fragment"),
    [case[1:] for case in BROKEN],
    ids=[case[0] for case in BROKEN],
)
def test_a_broken_file_names_the_line_and_the_field(
    old: str, new: str, line: int, path: str, fragment: str
) -> None:
    assert old in GOOD
    text = GOOD.replace(old, new, 1)

    with pytest.raises(InvalidProgramme) as caught:
        loader.load(text)

    errors = caught.value.errors
    assert len(errors) == 1, [str(error) for error in errors]
    (error,) = errors
    assert (error.line, error.path) == (line, path), str(error)
    assert fragment in error.message
    assert str(error) == f"programme.yaml:{line}: {path}: {error.message}"


def test_every_error_is_reported_at_once() -> None:
    text = GOOD.replace("Asia/Shanghai", "Nowhere").replace("term: P1Y", "term: yearly")
    errors = loader.errors_of(text, "ops/programme.yaml")
    assert [(error.source, error.line, error.path) for error in errors] == [
        ("ops/programme.yaml", 6, "currency.timezone"),
        ("ops/programme.yaml", 33, "plans[0].term"),
    ]


def test_threshold_message_is_the_documented_one() -> None:
    text = GOOD.replace("threshold: 5000", "threshold: 1000")
    assert [str(error) for error in loader.errors_of(text)] == [
        "programme.yaml:21: tiers[2].threshold: must be greater than tiers[1].threshold (1000)"
    ]


@pytest.mark.parametrize("text", ["", "# nothing\n", "- a list\n", "just text\n"])
def test_an_empty_or_non_mapping_file_is_refused(text: str) -> None:
    errors = loader.errors_of(text)
    assert errors
    assert errors[0].line == 1


def test_a_duplicate_key_at_the_top_is_refused() -> None:
    text = GOOD + "partners: []\n"
    assert [str(error) for error in loader.errors_of(text)] == [
        "programme.yaml:39: partners: duplicate key 'partners'"
    ]


def test_dump_loads_back_to_the_same_model() -> None:
    programme = loader.load(GOOD)
    assert loader.load(loader.dump(programme)) == programme


def test_aliases_work_but_cannot_explode() -> None:
    text = GOOD.replace(
        "    benefits:\n      - kind: free_returns\n", "    benefits: *coupons\n"
    ).replace(
        "    benefits:\n      - kind: monthly_coupons",
        "    benefits: &coupons\n      - kind: monthly_coupons",
    )
    programme = loader.load(text)
    assert programme.plans[0].benefits == programme.tiers[1].benefits

    names = "abcdefg"
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for level in range(1, 7):
        items = ", ".join([f"*{names[level - 1]}"] * 10)
        bomb += f"{names[level]}: &{names[level]} [{items}]\n"
    errors = loader.errors_of(bomb)
    assert [error.message for error in errors] == ["more than 100000 values once expanded"]
