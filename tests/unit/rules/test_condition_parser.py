"""The grammar of conditions: every operator, precedence, literals, and syntax errors with
their positions."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tally.rules.condition_errors import ConditionCode, ConditionError
from tally.rules.condition_parser import MAX_DEPTH, MAX_LENGTH, parse
from tally.rules.condition_tree import (
    And,
    Arithmetic,
    BoolLiteral,
    Calculate,
    Compare,
    Comparison,
    DecimalLiteral,
    Field,
    FunctionCall,
    In,
    IntLiteral,
    ListLiteral,
    MethodCall,
    Negate,
    Not,
    Or,
    Position,
    StringLiteral,
    to_source,
)

a, b, c, d = Field("a"), Field("b"), Field("c"), Field("d")


def test_the_issue_examples_parse_to_their_trees() -> None:
    when = parse("event.amount >= 100 && member.tier in ['GOLD', 'PLATINUM']")
    assert when == And(
        (
            Compare(Comparison.GE, Field("event.amount"), IntLiteral(100)),
            In(
                Field("member.tier"),
                ListLiteral((StringLiteral("GOLD"), StringLiteral("PLATINUM"))),
            ),
        )
    )
    items = parse("!('color:red' in item.labels) && item.sku != '0001'")
    assert items == And(
        (
            Not(In(StringLiteral("color:red"), Field("item.labels"))),
            Compare(Comparison.NE, Field("item.sku"), StringLiteral("0001")),
        )
    )


@pytest.mark.parametrize("op", list(Comparison))
def test_every_comparison(op: Comparison) -> None:
    assert parse(f"a {op} 1") == Compare(op, a, IntLiteral(1))


@pytest.mark.parametrize("op", list(Arithmetic))
def test_every_arithmetic_operator(op: Arithmetic) -> None:
    assert parse(f"a {op} b") == Calculate(op, a, b)


def test_literals() -> None:
    assert parse("[1, 99.50, 'x', \"y\", true, false]") == ListLiteral(
        (
            IntLiteral(1),
            DecimalLiteral(Decimal("99.50")),
            StringLiteral("x"),
            StringLiteral("y"),
            BoolLiteral(value=True),
            BoolLiteral(value=False),
        )
    )


def test_decimal_literals_are_exact_and_keep_their_places() -> None:
    tree = parse("99.50")
    assert isinstance(tree, DecimalLiteral)
    assert tree.value == Decimal("99.50")
    assert to_source(tree) == "99.50"


def test_string_escapes() -> None:
    source = r"'it\'s \"q\" \\ \n\r\t \u00e9 中文'"
    assert parse(source) == StringLiteral('it\'s "q" \\ \n\r\t é 中文')
    assert parse(r'"say \"hi\""') == StringLiteral('say "hi"')


def test_keywords_are_whole_words() -> None:
    assert parse("trueish || index || falsey") == Or(
        (Field("trueish"), Field("index"), Field("falsey"))
    )


def test_not_binds_tighter_than_comparison() -> None:
    assert parse("!a == b") == Compare(Comparison.EQ, Not(a), b)


def test_comparison_binds_tighter_than_and_and_and_than_or() -> None:
    assert parse("a == 1 || b && c < 2") == Or(
        (
            Compare(Comparison.EQ, a, IntLiteral(1)),
            And((b, Compare(Comparison.LT, c, IntLiteral(2)))),
        )
    )


def test_arithmetic_binds_tighter_than_comparison_and_product_than_sum() -> None:
    assert parse("a + b * c >= d - 1") == Compare(
        Comparison.GE,
        Calculate(Arithmetic.ADD, a, Calculate(Arithmetic.MULTIPLY, b, c)),
        Calculate(Arithmetic.SUBTRACT, d, IntLiteral(1)),
    )


def test_arithmetic_is_left_associative() -> None:
    assert parse("a - b - c") == Calculate(
        Arithmetic.SUBTRACT, Calculate(Arithmetic.SUBTRACT, a, b), c
    )


def test_unary_minus_binds_tightest() -> None:
    assert parse("-a * b") == Calculate(Arithmetic.MULTIPLY, Negate(a), b)
    assert parse("--5") == Negate(Negate(IntLiteral(5)))


def test_parentheses_group_and_a_chain_of_and_is_one_node() -> None:
    assert parse("a && b && c") == And((a, b, c))
    assert parse("(a && b) && c") == And((And((a, b)), c))
    assert parse("a && (b || c)") == And((a, Or((b, c))))


def test_in_with_a_list_field_and_with_a_literal() -> None:
    assert parse("'x' in item.labels") == In(StringLiteral("x"), Field("item.labels"))
    assert parse("event.hour in [10, 11]") == In(
        Field("event.hour"), ListLiteral((IntLiteral(10), IntLiteral(11)))
    )


def test_methods_functions_and_dotted_fields() -> None:
    assert parse("event.attributes.color.lowerAscii().startsWith('re')") == MethodCall(
        MethodCall(Field("event.attributes.color"), "lowerAscii", ()),
        "startsWith",
        (StringLiteral("re"),),
    )
    assert parse("size(item.labels) > 0") == Compare(
        Comparison.GT, FunctionCall("size", (Field("item.labels"),)), IntLiteral(0)
    )


def test_positions_point_at_names_literals_and_operators() -> None:
    tree = parse("event.amount >= 100\n  && member.tier == 'GOLD'")
    assert isinstance(tree, And)
    assert tree.pos == Position(2, 3)
    first, second = tree.operands
    assert isinstance(first, Compare)
    assert (first.pos, first.left.pos, first.right.pos) == (
        Position(1, 14),
        Position(1, 1),
        Position(1, 17),
    )
    assert isinstance(second, Compare)
    assert second.right.pos == Position(2, 21)


def test_canonical_source_parses_back_to_the_same_tree() -> None:
    source = "!(a || b) && -(c - 1) * 2 > 3.50 && 'it\\'s'.contains(d) && (a == b) == c"
    text = to_source(parse(source))
    assert text == "!(a || b) && -(c - 1) * 2 > 3.50 && 'it\\'s'.contains(d) && (a == b) == c"
    assert parse(text) == parse(source)


@pytest.mark.parametrize(
    ("source", "column", "message"),
    [
        ("a = 1", 3, "unexpected character '='; did you mean '=='?"),
        ("a & b", 3, "unexpected character '&'; did you mean '&&'?"),
        ("a &&", 5, "the condition ends too early; expected a value"),
        ("(a", 3, "the condition ends too early; expected ')'"),
        ("a < b < c", 7, "unexpected '<'; expected '&&', '||' or the end"),
        ("'open", 1, 'unexpected character "\'": a string that is not closed on its line'),
        (r"'\q'", 2, "invalid escape '\\q' in a string"),
        (r"'\ud800'", 2, "invalid escape '\\u' in a string"),
        ("5.x", 3, "'.x' can only follow a field name"),
        ("[1,", 4, "the condition ends too early; expected a value"),
        ("a.b(", 5, "the condition ends too early; expected a value or ')'"),
        ("", 1, "the condition ends too early; expected a value"),
    ],
)
def test_syntax_errors_say_what_and_where(source: str, column: int, message: str) -> None:
    with pytest.raises(ConditionError) as caught:
        parse(source)
    error = caught.value
    assert error.code is ConditionCode.SYNTAX
    assert (error.line, error.column) == (1, column)
    assert error.message.startswith(message)
    assert str(error).startswith(f"line 1, column {column}: {message}")


def test_a_syntax_error_on_a_later_line() -> None:
    with pytest.raises(ConditionError) as caught:
        parse("a\n  && == b")
    assert (caught.value.line, caught.value.column) == (2, 6)


def test_a_condition_too_long_is_refused() -> None:
    parse("a" * MAX_LENGTH)
    with pytest.raises(ConditionError) as caught:
        parse("a" * (MAX_LENGTH + 1))
    assert caught.value.code is ConditionCode.TOO_LONG


def test_nesting_is_capped_even_where_parentheses_vanish() -> None:
    parse("!" * (MAX_DEPTH - 1) + "a")
    for deep in ("!" * MAX_DEPTH + "a", "(" * 40 + "-a" + " - 1" * 40 + ")" * 40):
        with pytest.raises(ConditionError) as caught:
            parse(deep)
        assert caught.value.code is ConditionCode.TOO_DEEP


def test_a_long_flat_chain_is_not_deep() -> None:
    tree = parse(" || ".join(f"a{n}" for n in range(200)))
    assert isinstance(tree, Or)
    assert len(tree.operands) == 200
