"""Checks of the campaigns across fields: unique codes, known event types, tiers, plans and
badges, exact amounts, schedules, A/B arms, and every condition parsed and type-checked
against the fields its campaign declares (a ConditionError names its line in the file).

Pure. Each refusal is a :class:`~tally.programme.shapes.Problem`; run by the loader.
"""

from __future__ import annotations

from tally.programme.campaign_rules import aggregate_types, attribute_types
from tally.programme.campaigns import Award, Campaign, task_cap
from tally.programme.domain import CURRENCY_EXPONENTS, Programme
from tally.programme.shapes import Path, Problem, format_path
from tally.rules.condition_tree import (
    Compare,
    Comparison,
    Expr,
    Field,
    In,
    ListLiteral,
    StringLiteral,
    walk,
)
from tally.rules.conditions import ConditionError, compile_condition
from tally.rules.engine import HOLDOUT
from tally.rules.rule_book import BUILT_IN_EVENT_TYPES, RAISED_BY_TALLY, campaign_schema


def check(programme: Programme) -> list[Problem]:
    """Every problem of the event types, aggregates, badges and campaigns."""
    problems = [
        *_duplicates(("event_types",), [spec.code for spec in programme.event_types]),
        *_duplicates(("aggregates",), [spec.code for spec in programme.aggregates]),
        *_duplicates(("badges",), [spec.code for spec in programme.badges]),
        *_duplicates(("campaigns",), [campaign.code for campaign in programme.campaigns]),
    ]
    known_types = {*BUILT_IN_EVENT_TYPES, *(spec.code for spec in programme.event_types)}
    for index, aggregate in enumerate(programme.aggregates):
        if aggregate.of not in known_types:
            problems.append(_unknown_type(("aggregates", index, "of"), aggregate.of))
    try:
        campaign_schema((), {}, aggregate_types(programme), items=False)
    except ValueError as error:
        return [*problems, Problem(("aggregates",), str(error))]
    for index, campaign in enumerate(programme.campaigns):
        problems += _campaign(programme, ("campaigns", index), campaign, known_types)
    if programme.referral is not None:
        for index, code in enumerate(programme.referral.qualifying):
            where: Path = ("referral", "qualifying", index)
            if code not in known_types:
                problems.append(_unknown_type(where, code))
            elif code in RAISED_BY_TALLY:
                problems.append(Problem(where, f"{code} is raised by Tally: it cannot qualify"))
    return problems


def _duplicates(path: Path, codes: list[str]) -> list[Problem]:
    seen: dict[str, int] = {}
    problems = []
    for index, code in enumerate(codes):
        if code in seen:
            first = format_path((*path, seen[code]))
            problems.append(Problem((*path, index, "code"), f"{code} is already used by {first}"))
        seen.setdefault(code, index)
    return problems


def _unknown_type(path: Path, code: str) -> Problem:
    return Problem(
        path,
        f"no event type {code}: the built-in types are {', '.join(BUILT_IN_EVENT_TYPES)}; "
        "declare others in event_types",
    )


def _campaign(
    programme: Programme, path: Path, campaign: Campaign, known_types: set[str]
) -> list[Problem]:
    problems = _duplicates((*path, "rules"), [rule.code for rule in campaign.rules])
    problems += _duplicates((*path, "variants"), [variant.code for variant in campaign.variants])
    for position, code in enumerate(campaign.on):
        if code not in known_types:
            problems.append(_unknown_type((*path, "on", position), code))
    schedule = campaign.schedule
    if schedule and schedule.from_ and schedule.until and schedule.from_ > schedule.until:
        problems.append(
            Problem((*path, "schedule", "until"), f"is before schedule.from ({schedule.from_})")
        )
    problems += _task(path, campaign)
    rule_codes = {rule.code for rule in campaign.rules}
    for position, variant in enumerate(campaign.variants):
        if variant.code == HOLDOUT:
            problems.append(
                Problem((*path, "variants", position, "code"), "holdout is the held-out arm")
            )
        for code, override in variant.rules_override.items():
            where = (*path, "variants", position, "rules_override", code)
            if code not in rule_codes:
                problems.append(Problem(where, f"no rule {code} in this campaign"))
            problems += _award(programme, (*where, "award"), override.award)
    for position, rule in enumerate(campaign.rules):
        problems += _award(programme, (*path, "rules", position, "award"), rule.award)
    if problems:
        return problems  # conditions are checked against a campaign that holds together
    return _conditions(programme, path, campaign)


def _task(path: Path, campaign: Campaign) -> list[Problem]:
    """A task counts through a per-member times cap of its period, of at least its goal."""
    task = campaign.task
    if task is None or task_cap(campaign) is not None:
        return []
    return [
        Problem(
            (*path, "task"),
            f"a task counts through a times cap of its period: add caps: [{{per: member, "
            f"period: {task.period}, times: {task.goal}}}] (times at least the goal)",
        )
    ]


def _award(programme: Programme, path: Path, award: Award) -> list[Problem]:
    if award.badge is not None and award.badge not in {b.code for b in programme.badges}:
        return [Problem((*path, "badge"), f"no badge {award.badge} in badges")]
    exponent = CURRENCY_EXPONENTS[programme.currency.point_value.currency]
    for name, per in (("points_per", award.points_per), ("growth_per", award.growth_per)):
        if per is not None and _exponent(per.amount) > exponent:
            return [
                Problem(
                    (*path, name, "amount"),
                    f"{per.amount} is not an exact amount of "
                    f"{programme.currency.point_value.currency} ({exponent} decimals)",
                )
            ]
    return []


def _exponent(text: str) -> int:
    return len(text.partition(".")[2])


def _conditions(programme: Programme, path: Path, campaign: Campaign) -> list[Problem]:
    attributes, aggregates = attribute_types(programme), aggregate_types(programme)
    try:
        campaign_schema(campaign.on, attributes, aggregates, items=False)
    except ValueError as error:
        return [Problem((*path, "on"), str(error))]
    problems = []
    for position, rule in enumerate(campaign.rules):
        for field, source, items in (("when", rule.when, False), ("items", rule.items, True)):
            if source is None:
                continue
            where = (*path, "rules", position, field)
            schema = campaign_schema(campaign.on, attributes, aggregates, items=items)
            try:
                condition = compile_condition(source, schema)
            except ConditionError as error:
                message = f"{error.message} ({error.code}, column {error.column})"
                problems.append(Problem(where, message, error.line))
                continue
            problems += [
                Problem(where, message, line)
                for message, line in _unknown_codes(programme, condition.tree)
            ]
    return problems


def _strings(node: Expr) -> list[StringLiteral]:
    if isinstance(node, StringLiteral):
        return [node]
    if isinstance(node, ListLiteral):
        return [element for element in node.elements if isinstance(element, StringLiteral)]
    return []


def _unknown_codes(programme: Programme, tree: Expr) -> list[tuple[str, int]]:
    """Tier codes a condition compares ``member.tier`` with, and plan codes it looks for in
    ``member.plans``, that the programme does not have (with their lines)."""
    known = {
        "tier": [tier.code for tier in programme.tiers],
        "plan": [plan.code for plan in programme.plans],
    }
    named: list[tuple[str, StringLiteral]] = []
    for node, _ in walk(tree):
        match node:
            case Compare(Comparison.EQ | Comparison.NE, left, right):
                for field, other in ((left, right), (right, left)):
                    if field == Field("member.tier"):
                        named += [("tier", literal) for literal in _strings(other)]
            case In(element, container):
                if element == Field("member.tier"):
                    named += [("tier", literal) for literal in _strings(container)]
                if container == Field("member.plans"):
                    named += [("plan", literal) for literal in _strings(element)]
    return [
        (
            f"no {kind} {literal.value!r}; the {kind}s are {', '.join(known[kind]) or 'none'}",
            literal.pos.line,
        )
        for kind, literal in named
        if literal.value not in known[kind]
    ]
