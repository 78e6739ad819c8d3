"""Values that each passed validation once and broke later code: each is refused now, naming its
line and its field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tally.programme import consistency, loader
from tally.programme.domain import THEMES, Programme
from tally.programme.loader import InvalidProgramme
from tally.staff.service import ROLE_PERMISSIONS, Permission
from unit.programme.test_programme_loader import GOOD

CSS = Path(__file__).resolve().parents[3] / "src" / "tally" / "web" / "static" / "css" / "tally.css"
STAFF = """\
staff:
  adjustment_limits: {admin: 100000, ops: 10000}
  approver_roles: [admin]
  max_adjustment: 1000000
"""
NAMESPACES = """\
namespaces:
  - {code: phone, shared_with: all}
  - {code: shop, owner: SHOP}
"""
SAMPLE = GOOD + NAMESPACES + STAFF

# (what is wrong, text replaced, replacement, line, field path, part of the message)
REFUSED = [
    # The member pages style only the themes tally.css has.
    ("unknown theme", "theme: black-gold", "theme: gold-black", 23, "tiers[2].flags.theme",
     "no theme 'gold-black'; the member pages have default, black-gold"),
    # Names are shown on every page and export: no controls, bidi overrides or blanks.
    ("control character in a name", "en: Gold}", 'en: "Gold\\0"}', 20, "tiers[2].names.en",
     "U+0000"),
    ("bidi override in a name", "en: Gold}", 'en: "Go\\u202eld"}', 20, "tiers[2].names.en",
     "U+202E (RIGHT-TO-LEFT OVERRIDE)"),
    ("line separator in a name", "zh-CN: 黄金,", 'zh-CN: "黄\\u2028金",', 20,
     "tiers[2].names.zh-CN", "U+2028"),
    ("blank name", "en: Gold}", 'en: "   "}', 20, "tiers[2].names.en", "must not be blank"),
    ("byte-order mark in a partner name", "name: Select Mall}", 'name: "\\ufeffSelect Mall"}', 38,
     "partners[0].name", "U+FEFF"),
    # Codes: a code differing only in case from another names the same thing twice.
    ("tier codes differing in case", "code: GOLD", "code: silver", 19, "tiers[2].code",
     "silver differs from tiers[1].code (SILVER) only in case"),
    ("a code with a newline", "code: GOLD", 'code: "GOLD\\n"', 19, "tiers[2].code", "pattern"),
    # Growth and money stay exact integers in 64-bit columns and in JavaScript.
    ("a threshold no one can reach", "threshold: 5000", "threshold: 10000000000000000", 21,
     "tiers[2].threshold", "at most 1000000000000000"),
    ("min_growth no one can reach", "min_growth: 1000", "min_growth: 10000000000000000", 34,
     "plans[0].eligibility.min_growth", "at most 1000000000000000"),
    ("a price beyond any column", 'amount: "88.00"', 'amount: "100000000000000.00"', 32,
     "plans[0].price.amount", "above the largest allowed, 10000000000000.00"),
    ("a point worth almost nothing", 'amount: "0.01"', 'amount: "0.0000000001"', 4,
     "currency.point_value.amount", "at least 1/1000000 of the currency's minor unit"),
    # Terms: the period's end must be a date (P9999Y ends in year 12025).
    ("a term of 9999 years", "term: P1Y", "term: P9999Y", 33, "plans[0].term",
     "longer than ten years"),
    ("a term of 121 months", "term: P1Y", "term: P121M", 33, "plans[0].term",
     "at most P3660D, P120M or P10Y"),
    # Time zones: the same on every host.
    ("the host's own zone", "Asia/Shanghai", "localtime", 6, "currency.timezone",
     "every host reads the same"),
    ("a placeholder zone", "Asia/Shanghai", "Factory", 6, "currency.timezone",
     "every host reads the same"),
    ("a zone in the right/ tree", "Asia/Shanghai", "right/UTC", 6, "currency.timezone",
     "every host reads the same"),
    # One programme, one money: plans are priced in the currency points are valued in.
    ("plan priced in another currency", 'currency: CNY}\n    term', "currency: USD}\n    term",
     32, "plans[0].price.currency", "USD is not the programme's money currency "
     "(currency.point_value.currency: CNY)"),
    # Namespaces and partners.
    ("a namespace shared with nobody", "shared_with: all", "shared_with: []", 40,
     "namespaces[0].shared_with", 'at least one partner, or is "all"'),
    ("a partner listed twice", "shared_with: all", "shared_with: [SHOP, SHOP]", 40,
     "namespaces[0].shared_with[1]", "SHOP is listed twice"),
    ("a namespace owned by no partner of the file", "owner: SHOP", "owner: FOOD", 41,
     "namespaces[1].owner", "no partner FOOD in partners"),
    ("a seller listed twice", "    term: P1Y\n", "    term: P1Y\n    sellers: [SHOP, SHOP]\n", 34,
     "plans[0].sellers[1]", "SHOP is listed twice"),
    # Staff guardrails.
    ("a limit above the ceiling", "ops: 10000}", "ops: 2000000}", 43,
     "staff.adjustment_limits.ops", "above staff.max_adjustment (1000000)"),
    ("a limit for a role that never adjusts", "ops: 10000}", "auditor: 10000}", 43,
     "staff.adjustment_limits.auditor", "the auditor role never adjusts points"),
    ("an approver that cannot adjust", "approver_roles: [admin]", "approver_roles: [auditor]", 44,
     "staff.approver_roles[0]", "so it cannot approve an adjustment"),
    ("an approver role listed twice", "approver_roles: [admin]", "approver_roles: [admin, admin]",
     44, "staff.approver_roles[1]", "admin is listed twice"),
    ("an API limit above the ceiling", "max_adjustment: 1000000",
     "max_adjustment: 1000000\n  api_adjustment_limit: 1000001", 46,
     "staff.api_adjustment_limit", "above staff.max_adjustment (1000000)"),
    ("requests that never expire", "max_adjustment: 1000000",
     "max_adjustment: 1000000\n  request_ttl_hours: 721", 46,
     "staff.request_ttl_hours", "less than or equal to 720"),
    ("requests that expire at once", "max_adjustment: 1000000",
     "max_adjustment: 1000000\n  request_ttl_hours: 0", 46,
     "staff.request_ttl_hours", "greater than or equal to 1"),
]  # fmt: skip


def test_the_sample_is_valid() -> None:
    assert loader.errors_of(SAMPLE) == []


@pytest.mark.parametrize(
    ("old", "new", "line", "path", "fragment"),
    [case[1:] for case in REFUSED],
    ids=[case[0] for case in REFUSED],
)
def test_a_value_later_code_would_trip_on_is_refused(
    old: str, new: str, line: int, path: str, fragment: str
) -> None:
    assert old in SAMPLE
    text = SAMPLE.replace(old, new, 1)

    with pytest.raises(InvalidProgramme) as caught:
        loader.load(text)

    errors = [(error.line, error.path, error.message) for error in caught.value.errors]
    assert len(errors) == 1, errors
    [(found_line, found_path, message)] = errors
    assert (found_line, found_path) == (line, path), errors
    assert fragment in message, message


def test_the_read_only_roles_are_the_ones_without_the_adjust_permission() -> None:
    never = {
        role.value for role, allowed in ROLE_PERMISSIONS.items() if Permission.ADJUST not in allowed
    }
    assert never == consistency.READ_ONLY_ROLES


def test_the_themes_are_the_ones_the_member_pages_style() -> None:
    styled = set(re.findall(r"\.theme-([a-z0-9-]+)", CSS.read_text(encoding="utf-8")))
    assert set(THEMES) == styled | {"default"}


@pytest.mark.parametrize("term", ["P3660D", "P120M", "P10Y"])
def test_ten_years_is_the_longest_term(term: str) -> None:
    assert loader.errors_of(SAMPLE.replace("term: P1Y", f"term: {term}")) == []


def test_a_version_applied_before_a_check_existed_still_reads_back() -> None:
    # The servers re-read the version in force from its stored content: the checks above are
    # the file's, not the model's, so an older version with such a value keeps working.
    programme = loader.load(SAMPLE)
    content = programme.dump()
    content["tiers"][2]["flags"]["theme"] = "gold"
    content["plans"][0]["term"] = "P9999Y"
    content["currency"]["timezone"] = "localtime"

    stored = Programme.model_validate(content)

    assert (stored.tiers[2].flags.theme, stored.plans[0].term) == ("gold", "P9999Y")
    assert [problem.path for problem in consistency.check(stored)] == [
        ("currency", "timezone"),
        ("tiers", 2, "flags", "theme"),
        ("plans", 0, "term"),
    ]
