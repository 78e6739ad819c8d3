"""Random well-typed conditions over random rows: the Python closures and the polars
expression agree on every row, missing values included; neither raises; the canonical text
parses back to the same tree; and an explanation is itself false on the row."""

from __future__ import annotations

from decimal import Decimal
from functools import cache
from typing import Any

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from tally.rules.condition_parser import parse
from tally.rules.condition_polars import column_dtype
from tally.rules.condition_tree import (
    And,
    Arithmetic,
    BoolLiteral,
    Calculate,
    Compare,
    Comparison,
    DecimalLiteral,
    Expr,
    Field,
    FunctionCall,
    In,
    IntLiteral,
    ListLiteral,
    MethodCall,
    Negate,
    Not,
    Or,
    StringLiteral,
    to_source,
)
from tally.rules.condition_types import INT_MAX, INT_MIN, FieldType, Schema
from tally.rules.conditions import compile_condition

INT, DECIMAL, STRING, BOOL, LIST = (
    FieldType.INT,
    FieldType.DECIMAL,
    FieldType.STRING,
    FieldType.BOOL,
    FieldType.STRING_LIST,
)
SCHEMA = Schema(
    {
        "event.amount": DECIMAL,
        "event.fee": DECIMAL,
        "event.hour": INT,
        "event.count": INT,
        "event.channel": STRING,
        "event.attributes.color": STRING,
        "event.flag": BOOL,
        "item.labels": LIST,
        "item.sku": STRING,
        "member.tags": LIST,
        "member.vip": BOOL,
        "member.days": INT,
    }
)
FIELDS = {kind: [name for name, of in SCHEMA.fields.items() if of is kind] for kind in FieldType}
SETTINGS = settings(max_examples=300, deadline=None)

# A small alphabet, so that literals and values often meet: cases, accents, CJK, quotes,
# backslashes and control characters.
TEXT = st.text(st.sampled_from(list("aAbBzZé中 '\"\\\n\t\x00")), max_size=4)
EDGE_INTS = [0, 1, -1, 2, 100, 2**31, INT_MAX, INT_MIN, INT_MAX - 1]
EDGE_DECIMALS = [
    "0",
    "-0.0001",
    "99.995",
    "100",
    "100.00",
    "0.00005",
    "0.00015",
    "-0.00025",
    "2.5",
    "999999999999999.9999",
    "-999999999999999.9999",
    "999999999999999.99995",
    "1000000000000000",
    "12345678901234567.5",
]

Node = st.SearchStrategy[Expr]


def int_literals() -> Node:
    return st.builds(IntLiteral, st.sampled_from([0, 1, 2, 3, 100, INT_MAX]) | st.integers(0, 1000))


def decimal_literals() -> Node:
    values = st.sampled_from(["0.5", "99.995", "100.00", "0.0001", "999999999999999.9999", "2.5"])
    return st.builds(DecimalLiteral, values.map(Decimal) | st.decimals(0, 1000, places=4))


@cache
def leaves(kind: FieldType) -> Node:
    fields = st.sampled_from(FIELDS[kind]).map(Field)
    literals: dict[FieldType, Node] = {
        INT: int_literals(),
        DECIMAL: decimal_literals(),
        STRING: st.builds(StringLiteral, TEXT),
        BOOL: st.builds(BoolLiteral, st.booleans()),
    }
    return fields | literals[kind] if kind in literals else fields


@cache
def expressions(kind: FieldType, depth: int) -> Node:
    if depth == 0:
        return leaves(kind)

    def sub(of: FieldType) -> Node:
        return expressions(of, depth - 1)

    numbers = st.sampled_from([INT, DECIMAL]).flatmap(sub)
    options: list[Node] = [leaves(kind)]
    if kind is INT:
        options += [
            st.builds(Negate, sub(INT)),
            st.builds(Calculate, st.sampled_from(list(Arithmetic)), sub(INT), sub(INT)),
            st.builds(FunctionCall, st.just("size"), st.tuples(sub(STRING) | sub(LIST))),
            st.builds(FunctionCall, st.just("size"), st.tuples(_lists(sub(STRING)))),
        ]
    elif kind is DECIMAL:
        options += [
            st.builds(Negate, sub(DECIMAL)),
            st.builds(Calculate, st.sampled_from(list(Arithmetic)), sub(DECIMAL), numbers),
            st.builds(Calculate, st.sampled_from(list(Arithmetic)), numbers, sub(DECIMAL)),
        ]
    elif kind is STRING:
        options.append(st.builds(MethodCall, sub(STRING), st.just("lowerAscii"), st.just(())))
    elif kind is BOOL:
        options += [
            st.builds(Not, sub(BOOL)),
            st.builds(And, st.lists(sub(BOOL), min_size=2, max_size=3).map(tuple)),
            st.builds(Or, st.lists(sub(BOOL), min_size=2, max_size=3).map(tuple)),
            st.builds(Compare, st.sampled_from(list(Comparison)), numbers, numbers),
            st.builds(Compare, st.sampled_from(list(Comparison)), sub(STRING), sub(STRING)),
            st.builds(
                Compare, st.sampled_from([Comparison.EQ, Comparison.NE]), sub(BOOL), sub(BOOL)
            ),
            st.builds(In, sub(STRING), sub(LIST)),
            st.builds(In, sub(STRING), _lists(sub(STRING))),
            st.builds(In, numbers, _lists(numbers)),
            st.builds(In, sub(BOOL), _lists(sub(BOOL))),
            st.builds(
                MethodCall,
                sub(STRING),
                st.sampled_from(["startsWith", "endsWith", "contains"]),
                st.tuples(sub(STRING)),
            ),
        ]
    return st.one_of(options)


def _lists(elements: Node) -> Node:
    return st.builds(ListLiteral, st.lists(elements, min_size=1, max_size=3).map(tuple))


def values(kind: FieldType) -> st.SearchStrategy[Any]:
    of_kind: dict[FieldType, st.SearchStrategy[Any]] = {
        INT: st.sampled_from(EDGE_INTS) | st.integers(INT_MIN, INT_MAX) | st.integers(-5, 200),
        DECIMAL: st.sampled_from(EDGE_DECIMALS).map(Decimal)
        | st.decimals(-(10**16), 10**16, places=6)
        | st.decimals(-200, 200, places=2),
        STRING: TEXT,
        BOOL: st.booleans(),
        LIST: st.lists(TEXT, max_size=3),
    }
    return st.none() | of_kind[kind]


ROWS = st.lists(
    st.fixed_dictionaries({name: values(k) for name, k in SCHEMA.fields.items()}),
    min_size=1,
    max_size=25,
)
CONDITIONS = expressions(BOOL, 3)


def env_of(row: dict[str, Any]) -> dict[str, Any]:
    """The nested environment of a flat row: {"event.attributes.color": x} → event/attributes."""
    env: dict[str, Any] = {}
    for name, value in row.items():
        *path, last = name.split(".")
        target = env
        for part in path:
            target = target.setdefault(part, {})
        target[last] = value
    return env


def frame_of(rows: list[dict[str, Any]], decimal_scale: int) -> pl.DataFrame:
    dtypes = {
        name: pl.Decimal(38, decimal_scale) if kind is DECIMAL else column_dtype(kind)
        for name, kind in SCHEMA.fields.items()
    }
    return pl.DataFrame(rows, schema=dtypes)


@SETTINGS
@given(tree=CONDITIONS)
def test_the_canonical_source_parses_back_to_the_same_tree(tree: Expr) -> None:
    assert parse(to_source(tree)) == tree


@SETTINGS
@given(tree=CONDITIONS, rows=ROWS, decimal_scale=st.sampled_from([4, 6]))
def test_python_and_polars_agree_on_every_row(
    tree: Expr, rows: list[dict[str, Any]], decimal_scale: int
) -> None:
    condition = compile_condition(to_source(tree), SCHEMA)
    assert condition.tree == tree
    envs = [env_of(row) for row in rows]
    online = [condition.evaluate(env) for env in envs]
    assert all(type(result) is bool for result in online)
    frame = frame_of(rows, decimal_scale)
    bulk = frame.with_columns(matches=condition.to_polars())["matches"].to_list()
    assert bulk == online, to_source(tree)
    for env, result in zip(envs, online, strict=True):
        reason = condition.explain(env)
        if result:
            assert reason is None
        else:
            assert reason is not None
            assert not compile_condition(reason, SCHEMA).evaluate(env)


@SETTINGS
@given(tree=CONDITIONS)
def test_evaluate_is_total_on_an_empty_environment(tree: Expr) -> None:
    condition = compile_condition(to_source(tree), SCHEMA)
    assert type(condition.evaluate({})) is bool
