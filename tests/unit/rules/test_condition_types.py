"""The type checker and the schema: every error code, with its position, and the fields a
condition reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from tally.rules.condition_types import FUNCTIONS, METHODS
from tally.rules.conditions import (
    ConditionCode,
    ConditionError,
    FieldType,
    Schema,
    compile_condition,
    default_schema,
)

SCHEMA = default_schema(
    attributes={"color": FieldType.STRING},
    aggregates={"purchases_30d": FieldType.INT, "spend_30d": FieldType.DECIMAL},
    items=True,
)


def refusal(source: str, schema: Schema = SCHEMA) -> ConditionError:
    with pytest.raises(ConditionError) as caught:
        compile_condition(source, schema)
    return caught.value


@pytest.mark.parametrize(
    "source",
    [
        "event.amount >= 100 && member.tier in ['GOLD', 'PLATINUM']",
        "!('color:red' in item.labels) && item.sku != '0001'",
        "event.amount * 2 > member.spend_30d - 1.5 && member.purchases_30d + 1 >= 3",
        "event.weekday in [6, 7] || event.hour in [20.5, 21]",
        "event.attributes.color.lowerAscii() == 'red' && size(member.tags) > 0",
        "member.birthday_today && member.birthday_today == true",
        "item.name.startsWith('A') || item.name.endsWith('z') || item.name.contains(item.sku)",
        "'gold' in member.plans || member.tier < 'M' || -item.quantity < -3",
        "event.amount == 100 && 100.00 == event.amount && item.quantity != 1.5",
    ],
)
def test_well_typed_conditions_compile(source: str) -> None:
    assert compile_condition(source, SCHEMA).source == source


def test_fields_are_the_fields_read() -> None:
    condition = compile_condition(
        "event.amount > 1 && (member.purchases_30d > 2 || 'x' in member.tags)", SCHEMA
    )
    assert condition.fields == {"event.amount", "member.purchases_30d", "member.tags"}


@pytest.mark.parametrize(
    ("source", "code", "column", "message"),
    [
        (
            "event.ammount >= 100",
            ConditionCode.UNKNOWN_FIELD,
            1,
            "unknown field 'event.ammount'; did you mean 'event.amount'?",
        ),
        ("event.x > 1", ConditionCode.UNKNOWN_FIELD, 1, "unknown field 'event.x'"),
        ("event == 1", ConditionCode.UNKNOWN_FIELD, 1, "unknown field 'event'"),
        (
            "member.tier == 1",
            ConditionCode.TYPE,
            13,
            "'==' cannot compare string with int: member.tier == 1",
        ),
        (
            "event.amount < 'a'",
            ConditionCode.TYPE,
            14,
            "'<' cannot compare decimal with string",
        ),
        ("true < false", ConditionCode.TYPE, 6, "'<' cannot compare bool with bool"),
        (
            "event.amount && true",
            ConditionCode.TYPE,
            1,
            "'&&' needs bool, not decimal: event.amount",
        ),
        ("true || 'x'", ConditionCode.TYPE, 9, "'||' needs bool, not string: 'x'"),
        ("!member.tier", ConditionCode.TYPE, 2, "'!' needs bool, not string: member.tier"),
        ("-member.tier == 1", ConditionCode.TYPE, 2, "'-' needs int or decimal, not string"),
        ("item.sku + 1 > 2", ConditionCode.TYPE, 1, "'+' needs int or decimal, not string"),
        (
            "item.sku in item.sku",
            ConditionCode.TYPE,
            13,
            "the right side of 'in' must be a list, not string; for text inside a string use "
            ".contains(): item.sku",
        ),
        ("1 in member.tags", ConditionCode.TYPE, 3, "'in' cannot look for a int in a list<string>"),
        ("'a' in [1, 2]", ConditionCode.TYPE, 5, "'in' cannot look for a string in a list<int>"),
        ("1 in []", ConditionCode.TYPE, 6, "an empty list matches nothing"),
        (
            "'a' in [1, 'a']",
            ConditionCode.TYPE,
            12,
            "the elements of a list must have one type: 1 is int, 'a' is string",
        ),
        ("'a' in [item.labels]", ConditionCode.TYPE, 9, "a list cannot contain a list"),
        (
            "member.tags == member.plans",
            ConditionCode.TYPE,
            13,
            "lists can only be used with 'in' and size(), not '=='",
        ),
        ("event.amount", ConditionCode.TYPE, 1, "a condition must be true or false"),
        ("event.amount + 1", ConditionCode.TYPE, 14, "a condition must be true or false"),
        ("size(event.amount) > 1", ConditionCode.TYPE, 6, "size() needs a string or a list"),
        ("item.quantity.startsWith('1')", ConditionCode.TYPE, 1, "startsWith() needs string"),
        ("item.sku.startsWith(1)", ConditionCode.TYPE, 21, "startsWith() needs string, not int"),
        (
            "item.sku.foo()",
            ConditionCode.UNKNOWN_FUNCTION,
            10,
            "unknown method 'foo'; the methods are contains, endsWith, lowerAscii, startsWith",
        ),
        ("item.sku.size() > 1", ConditionCode.UNKNOWN_FUNCTION, 10, "unknown method 'size'"),
        ("has(item.sku)", ConditionCode.UNKNOWN_FUNCTION, 1, "unknown function 'has'"),
        (
            "startsWith(item.sku, 'a')",
            ConditionCode.UNKNOWN_FUNCTION,
            1,
            "unknown function 'startsWith' (write x.startsWith(...))",
        ),
        ("size(item.sku, 1) > 0", ConditionCode.ARGUMENTS, 1, "size() takes 1 argument, not 2"),
        ("item.sku.endsWith()", ConditionCode.ARGUMENTS, 10, "endsWith() takes 1 argument, not 0"),
        ("item.sku.lowerAscii(1) == ''", ConditionCode.ARGUMENTS, 10, "lowerAscii() takes 0"),
        (
            "item.quantity > 9223372036854775808",
            ConditionCode.LITERAL,
            17,
            "9223372036854775808 is larger than 9223372036854775807",
        ),
        (
            "item.amount > 1.23456",
            ConditionCode.LITERAL,
            15,
            "1.23456 has 5 decimal places; at most 4 are kept",
        ),
        (
            "item.amount > 1000000000000000.0",
            ConditionCode.LITERAL,
            15,
            "1000000000000000.0 is not below 10^15",
        ),
    ],
)
def test_type_errors_say_what_and_where(
    source: str, code: ConditionCode, column: int, message: str
) -> None:
    error = refusal(source)
    assert error.code is code
    assert (error.line, error.column) == (1, column)
    assert error.message.startswith(message)


def test_item_fields_exist_only_where_the_engine_declares_them() -> None:
    error = refusal("item.sku == '1'", default_schema())
    assert error.code is ConditionCode.UNKNOWN_FIELD


def test_an_error_on_a_later_line_of_a_condition() -> None:
    error = refusal("event.amount > 1 &&\n  member.tiers == 'GOLD'")
    assert (error.line, error.column) == (2, 3)
    assert error.message == "unknown field 'member.tiers'; did you mean 'member.tier'?"


def test_a_schema_is_generic() -> None:
    schema = Schema({"order.total": FieldType.DECIMAL, "order.flags": FieldType.STRING_LIST})
    condition = compile_condition("order.total > 1 && 'vip' in order.flags", schema)
    assert condition.fields == {"order.total", "order.flags"}


@pytest.mark.parametrize(
    "fields",
    [
        {"event.in": FieldType.INT},
        {"event.2x": FieldType.INT},
        {"event.amount": FieldType.INT, "event.amount.cents": FieldType.INT},
        {"event..x": FieldType.INT},
    ],
)
def test_a_schema_refuses_names_that_cannot_be_fields(fields: dict[str, FieldType]) -> None:
    with pytest.raises(ValueError, match=r"dotted name|inside field"):
        Schema(fields)


def test_schemas_combine_and_refuse_a_field_declared_with_two_types() -> None:
    both = Schema({"a.x": FieldType.INT}) | Schema({"a.y": FieldType.BOOL})
    assert dict(both.fields) == {"a.x": FieldType.INT, "a.y": FieldType.BOOL}
    with pytest.raises(ValueError, match="different types"):
        _ = Schema({"a.x": FieldType.INT}) | Schema({"a.x": FieldType.BOOL})


def test_an_aggregate_cannot_hide_a_built_in_field() -> None:
    with pytest.raises(ValueError, match="hide"):
        default_schema(aggregates={"tier": FieldType.STRING})


def test_the_language_doc_names_every_error_code_field_and_function() -> None:
    text = (Path(__file__).resolve().parents[3] / "docs" / "rules-conditions.md").read_text()
    names = [code.value for code in ConditionCode]
    names += list(default_schema(items=True).fields)
    missing = [name for name in names if f"`{name}`" not in text]
    missing += [name for name in [*METHODS, *FUNCTIONS] if f"{name}(" not in text]
    assert not missing, f"docs/rules-conditions.md does not name {missing}"
