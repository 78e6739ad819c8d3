"""Checks across a programme's sections that :func:`~tally.programme.domain.cross_check` leaves
out: values each valid alone that together would trip later code or mislead a reader.

Pure. Each refusal is a :class:`~tally.programme.domain.Problem` naming the field's path, which
the loader turns into a line of the file.
"""

from __future__ import annotations

from collections.abc import Sequence

from tally.programme.domain import Path, Problem, Programme, format_path

#: Staff roles that never adjust points (``tally.staff.service.ROLE_PERMISSIONS``; a test keeps
#: the two in step): a limit for them means nothing, and as approvers they could approve nothing.
READ_ONLY_ROLES = frozenset({"auditor"})


def check(programme: Programme) -> list[Problem]:
    """Every inconsistency of ``programme``, in the order of the file's sections."""
    return [
        *_case_twins(programme),
        *_one_money_currency(programme),
        *_repeated_entries(programme),
        *_staff_limits(programme),
    ]


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
    problems += [
        Problem(
            ("staff", "approver_roles", position),
            f"the {role} role never adjusts points, so it cannot approve an adjustment",
        )
        for position, role in enumerate(staff.approver_roles)
        if role in READ_ONLY_ROLES
    ]
    return problems
