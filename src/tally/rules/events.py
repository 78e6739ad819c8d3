"""Checks of an arriving event against the types a rule book knows: its type declared, its
attributes declared and of their declared types. Pure; the events endpoint and the importer
refuse an event with any problem."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from tally.rules.conditions import FieldType
from tally.rules.rule_book import RuleBook


def _is(kind: FieldType, value: Any) -> bool:
    match kind:
        case FieldType.INT:
            return isinstance(value, int) and not isinstance(value, bool)
        case FieldType.DECIMAL:  # an exact decimal, never a float
            return isinstance(value, Decimal | int) and not isinstance(value, bool)
        case FieldType.STRING:
            return isinstance(value, str)
        case FieldType.BOOL:
            return isinstance(value, bool)
        case FieldType.STRING_LIST:
            return isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)


def event_problems(book: RuleBook, event_type: str, attributes: Mapping[str, Any]) -> list[str]:
    """What is wrong with an event of ``event_type`` carrying ``attributes`` (empty: nothing);
    a missing attribute is allowed (conditions read it as missing)."""
    declared = book.event_types.get(event_type)
    if declared is None:
        return [f"unknown event type {event_type!r}; the types are {', '.join(book.event_types)}"]
    problems = []
    for name, value in attributes.items():
        kind = declared.get(name)
        if kind is None:
            problems.append(f"attribute {name!r} is not declared for {event_type}")
        elif value is not None and not _is(kind, value):
            problems.append(f"attribute {name!r} must be {kind}, not {type(value).__name__}")
    return problems
