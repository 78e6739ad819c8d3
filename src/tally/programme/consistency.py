"""What a new programme file must also satisfy: values that would trip later code or mislead a
reader, beyond the model's field checks and :func:`~tally.programme.domain.cross_check`.

These are checks of a *file*, run by the loader only: a version applied before a check existed
still reads back (the servers load it on every refresh), so none of them lives on the model.

Pure. Each refusal is a :class:`~tally.programme.domain.Problem` naming the field's path, which
the loader turns into a line of the file.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from decimal import Decimal
from zoneinfo import available_timezones

from tally.kit import text
from tally.programme.domain import THEMES, Amount, Programme
from tally.programme.shapes import Names, Path, Problem, format_path

# Growth and money stay exact integers wherever they go: 64-bit columns, JSON read by
# JavaScript (2**53). A threshold or a price beyond these is a typo, never a real programme.
MAX_GROWTH = 10**15
MAX_MINOR_UNITS = 10**15
MAX_POINTS_PER_MINOR_UNIT = 1_000_000  # a point worth at least a millionth of a fen or cent
#: Ten years, whatever the unit: a period's end must stay a date (P9999Y ended in year 12025).
MAX_TERM = {"D": 3660, "M": 120, "Y": 10}
#: Zone keys that mean something else on each host (its own zone, placeholders).
HOST_ZONES = frozenset({"localtime", "Factory", "posixrules"})

#: Staff roles that never adjust points (``tally.staff.service.ROLE_PERMISSIONS``; a test keeps
#: the two in step): a limit for them means nothing, and as approvers they could approve nothing.
READ_ONLY_ROLES = frozenset({"auditor"})


def check(programme: Programme) -> list[Problem]:
    """Every inconsistency of ``programme``, in the order of the file's sections."""
    return [
        *_zone(programme),
        *_display_texts(programme),
        *_sizes(programme),
        *_themes(programme),
        *_terms(programme),
        *_case_twins(programme),
        *_one_money_currency(programme),
        *_repeated_entries(programme),
        *_staff_limits(programme),
    ]


def _zone(programme: Programme) -> list[Problem]:
    """A zone every host reads the same: not ``localtime`` (the host's own) nor a placeholder."""
    zone = programme.currency.timezone
    if zone not in HOST_ZONES and zone in available_timezones():
        return []
    return [
        Problem(
            ("currency", "timezone"),
            f"{zone!r} is not an IANA time zone name every host reads the same "
            "(e.g. Asia/Shanghai)",
        )
    ]


def _texts(programme: Programme) -> Iterator[tuple[Path, str]]:
    def names(path: Path, of: Names) -> Iterator[tuple[Path, str]]:
        yield (*path, "zh-CN"), of.zh_cn
        yield (*path, "en"), of.en

    yield from names(("currency", "names"), programme.currency.names)
    for index, tier in enumerate(programme.tiers):
        yield from names(("tiers", index, "names"), tier.names)
    for index, plan in enumerate(programme.plans):
        yield from names(("plans", index, "names"), plan.names)
    for index, partner in enumerate(programme.partners):
        yield ("partners", index, "name"), partner.name
    for index, badge in enumerate(programme.badges):
        yield from names(("badges", index, "names"), badge.names)
    for index, campaign in enumerate(programme.campaigns):
        yield from names(("campaigns", index, "names"), campaign.names)


def _display_texts(programme: Programme) -> list[Problem]:
    """Names are read on every page and export: not blank, no control, format or bidi
    characters (the rule of :mod:`tally.kit.text`)."""
    problems = []
    for path, value in _texts(programme):
        if not value.strip():
            problems.append(Problem(path, "must not be blank"))
            continue
        char = text.unsafe_character(value)
        if char is not None:
            problems.append(Problem(path, f"{text.RULE}; found {text.describe(char)}"))
    return problems


def _money(path: Path, amount: Amount) -> list[Problem]:
    if amount.decimal.scaleb(amount.exponent) <= MAX_MINOR_UNITS:
        return []
    largest = Decimal(MAX_MINOR_UNITS).scaleb(-amount.exponent)
    return [Problem((*path, "amount"), f"{amount.amount} is above the largest allowed, {largest}")]


def _sizes(programme: Programme) -> list[Problem]:
    """Growth figures and money that stay exact integers in every column and client."""
    value = programme.currency.point_value
    problems = _money(("currency", "point_value"), value)
    if not problems and value.rate.points > MAX_POINTS_PER_MINOR_UNIT:
        problems.append(
            Problem(
                ("currency", "point_value", "amount"),
                f"a point must be worth at least 1/{MAX_POINTS_PER_MINOR_UNIT} of the "
                f"currency's minor unit; {value.amount} {value.currency} is less",
            )
        )
    too_much = f"at most {MAX_GROWTH}: no member could ever reach more"
    for index, tier in enumerate(programme.tiers):
        if tier.threshold > MAX_GROWTH:
            problems.append(Problem(("tiers", index, "threshold"), too_much))
    for index, plan in enumerate(programme.plans):
        if plan.eligibility.min_growth > MAX_GROWTH:
            problems.append(Problem(("plans", index, "eligibility", "min_growth"), too_much))
        problems += _money(("plans", index, "price"), plan.price)
    return problems


def _themes(programme: Programme) -> list[Problem]:
    """Only themes the member pages style (a test keeps THEMES in step with tally.css)."""
    return [
        Problem(
            ("tiers", index, "flags", "theme"),
            f"no theme {tier.flags.theme!r}; the member pages have {', '.join(THEMES)}",
        )
        for index, tier in enumerate(programme.tiers)
        if tier.flags.theme not in THEMES
    ]


def _terms(programme: Programme) -> list[Problem]:
    problems = []
    for index, plan in enumerate(programme.plans):
        count, unit = plan.term_parts
        if count > MAX_TERM[unit]:
            problems.append(
                Problem(
                    ("plans", index, "term"),
                    f"{plan.term} is longer than ten years (at most P{MAX_TERM['D']}D, "
                    f"P{MAX_TERM['M']}M or P{MAX_TERM['Y']}Y)",
                )
            )
    return problems


def _case_twins(programme: Programme) -> list[Problem]:
    """Codes that differ only in case (``gold`` and ``GOLD``) name one thing twice: people and
    partners' systems read them as the same code. Exact repeats are cross_check's."""
    sections: dict[str, Sequence[str]] = {
        "tiers": [tier.code for tier in programme.tiers],
        "plans": [plan.code for plan in programme.plans],
        "partners": [partner.code for partner in programme.partners],
    }
    problems = []
    for section, codes in sections.items():
        seen: dict[str, int] = {}
        for index, code in enumerate(codes):
            first = seen.setdefault(code.casefold(), index)
            if first != index and codes[first] != code:
                where = format_path((section, first))
                problems.append(
                    Problem(
                        (section, index, "code"),
                        f"{code} differs from {where}.code ({codes[first]}) only in case",
                    )
                )
    return problems


def _one_money_currency(programme: Programme) -> list[Problem]:
    """Plans are priced in the currency a point is valued in: one programme, one money."""
    money = programme.currency.point_value.currency
    return [
        Problem(
            ("plans", index, "price", "currency"),
            f"{plan.price.currency} is not the programme's money currency "
            f"(currency.point_value.currency: {money})",
        )
        for index, plan in enumerate(programme.plans)
        if plan.price.currency != money
    ]


def _repeats(path: Path, values: Sequence[str]) -> list[Problem]:
    seen: set[str] = set()
    problems = []
    for position, value in enumerate(values):
        if value in seen:
            problems.append(Problem((*path, position), f"{value} is listed twice"))
        seen.add(value)
    return problems


def _repeated_entries(programme: Programme) -> list[Problem]:
    """Lists of partners or roles name each at most once."""
    problems = []
    for index, plan in enumerate(programme.plans):
        problems += _repeats(("plans", index, "sellers"), plan.sellers)
    for index, spec in enumerate(programme.namespaces):
        if spec.shared_with == []:
            problems.append(
                Problem(
                    ("namespaces", index, "shared_with"),
                    'lists at least one partner, or is "all"',
                )
            )
        if isinstance(spec.shared_with, list):
            problems += _repeats(("namespaces", index, "shared_with"), spec.shared_with)
    problems += _repeats(("staff", "approver_roles"), programme.staff.approver_roles)
    return problems


def _staff_limits(programme: Programme) -> list[Problem]:
    """A role's limit above ``max_adjustment`` could never be reached: nobody may adjust that
    much, alone or approved. Roles that never adjust get no limit and approve nothing: requests
    waiting for them alone would wait for ever."""
    staff = programme.staff
    problems = [
        Problem(
            ("staff", "adjustment_limits", role),
            f"{limit} is above staff.max_adjustment ({staff.max_adjustment}), the largest "
            "adjustment allowed"
            if role not in READ_ONLY_ROLES
            else f"the {role} role never adjusts points: it has no limit",
        )
        for role, limit in staff.adjustment_limits.items()
        if limit > staff.max_adjustment or role in READ_ONLY_ROLES
    ]
    if staff.api_adjustment_limit > staff.max_adjustment:
        problems.append(
            Problem(
                ("staff", "api_adjustment_limit"),
                f"{staff.api_adjustment_limit} is above staff.max_adjustment "
                f"({staff.max_adjustment}), the largest adjustment allowed",
            )
        )
    problems += [
        Problem(
            ("staff", "approver_roles", position),
            f"the {role} role never adjusts points, so it cannot approve an adjustment",
        )
        for position, role in enumerate(staff.approver_roles)
        if role in READ_ONLY_ROLES
    ]
    return problems
