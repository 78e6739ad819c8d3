"""Compile a checked condition into a polars expression, for bulk evaluation and simulation.

The expression reads a DataFrame whose columns are the dotted field names; it gives, row by
row, exactly what the Python closures give (a differential test holds the two together):
decimals are ``Decimal(38, 4)`` (a column of another scale is rounded half to even, as
``decimal_value`` rounds), int arithmetic runs in Int128 and is range-checked back to 64 bits,
and every bool-valued part is null-free.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from functools import reduce
from string import ascii_lowercase, ascii_uppercase

import polars as pl

from tally.rules.condition_python import Closure
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
    children,
)
from tally.rules.condition_types import (
    DECIMAL_DIGITS,
    DECIMAL_PLACES,
    Checked,
    FieldType,
    Type,
    element_of,
)

DECIMAL = pl.Decimal(38, DECIMAL_PLACES)
_BELOW_LIMIT = pl.Decimal(DECIMAL_DIGITS + DECIMAL_PLACES, DECIMAL_PLACES)  # |x| < 10^15
_DTYPES: dict[FieldType, pl.DataType] = {
    FieldType.INT: pl.Int64(),
    FieldType.DECIMAL: DECIMAL,
    FieldType.STRING: pl.String(),
    FieldType.BOOL: pl.Boolean(),
}


def to_polars(checked: Checked, closures: Mapping[int, Closure]) -> pl.Expr:
    """The condition as a null-free Boolean expression over columns named by field.

    A part that reads no field is one value for every row: it is computed once by its Python
    closure (from ``closures``, by id() of the node) and becomes a literal. (This also keeps
    clear of polars computing some literal-only expressions as one-row columns that do not
    broadcast.)"""
    return _Compiler(checked, closures).expr(checked.tree)


def column_dtype(kind: FieldType) -> pl.DataType:
    """The dtype a DataFrame column of a field of ``kind`` should have."""
    return pl.List(pl.String()) if kind is FieldType.STRING_LIST else _DTYPES[kind]


def _decimal(expr: pl.Expr) -> pl.Expr:
    """A decimal value, null unless its magnitude is below 10^15 (what fits in
    Decimal(19, 4): a non-strict cast nulls the rest)."""
    return expr.cast(_BELOW_LIMIT, strict=False).cast(DECIMAL)


def _false_if_null(expr: pl.Expr) -> pl.Expr:
    return expr.fill_null(value=False)


def _constants(tree: Expr) -> set[int]:
    """The ids of the nodes whose value is the same on every row: those that read no field,
    and the size of a list literal (list literals aside: they have no dtype)."""
    found: set[int] = set()

    def visit(node: Expr) -> bool:
        constant = [visit(child) for child in children(node)]
        is_size_of_list = isinstance(node, FunctionCall) and isinstance(
            node.arguments[0], ListLiteral
        )
        is_constant = is_size_of_list or (not isinstance(node, Field) and all(constant))
        if is_constant and not isinstance(node, ListLiteral):
            found.add(id(node))
        return is_constant

    visit(tree)
    return found


class _Compiler:
    def __init__(self, checked: Checked, closures: Mapping[int, Closure]) -> None:
        self.checked = checked
        self.closures = closures
        self.constants = _constants(checked.tree)

    def kind(self, node: Expr) -> Type:
        return self.checked.type_of(node)

    def expr(self, node: Expr) -> pl.Expr:
        if id(node) in self.constants:
            kind = self.kind(node)
            assert isinstance(kind, FieldType)
            return pl.lit(self.closures[id(node)]({}), dtype=_DTYPES[kind])
        match node:
            case Field(path):
                return self._field(path, self.kind(node))
            case Not(operand):
                return ~self.expr(operand)
            case Negate(operand):
                if self.kind(node) is FieldType.INT:
                    return _int_range(
                        pl.lit(0, dtype=pl.Int128) - self.expr(operand).cast(pl.Int128)
                    )
                return pl.lit(0, dtype=DECIMAL) - self.expr(operand)
            case And(operands):
                return reduce(lambda x, y: x & y, (self.expr(o) for o in operands))
            case Or(operands):
                return reduce(lambda x, y: x | y, (self.expr(o) for o in operands))
            case Compare(op, left, right):
                return self._compare(op, left, right)
            case In(element, container):
                return self._in(element, container)
            case Calculate(op, left, right):
                return self._calculate(node, op, left, right)
            case MethodCall(receiver, name, arguments):
                return self._method(name, self.expr(receiver), [self.expr(a) for a in arguments])
            case FunctionCall(_, (argument,)):
                if element_of(self.kind(argument)) is None:
                    return self.expr(argument).str.len_chars().cast(pl.Int64)
                return self.expr(argument).list.len().cast(pl.Int64).fill_null(0)
            case _:
                raise AssertionError(f"literals are folded, lists are compiled by 'in': {node}")

    def _field(self, path: str, kind: Type) -> pl.Expr:
        column = pl.col(path)
        if kind is FieldType.DECIMAL:
            return _decimal(column.cast(DECIMAL))
        if kind is FieldType.INT:
            return column.cast(pl.Int64)
        if kind is FieldType.BOOL:
            return _false_if_null(column)  # a missing bool is false
        return column

    def _numbers(self, left: Expr, right: Expr) -> tuple[pl.Expr, pl.Expr]:
        """Both operands, as decimals when either is one."""
        if FieldType.DECIMAL in (self.kind(left), self.kind(right)):
            return self._as(left, FieldType.DECIMAL), self._as(right, FieldType.DECIMAL)
        return self.expr(left), self.expr(right)

    def _as(self, node: Expr, kind: FieldType) -> pl.Expr:
        """The node's expression in the dtype of ``kind`` (an int promoted to decimal)."""
        expr = self.expr(node)
        return expr if self.kind(node) is kind else expr.cast(_DTYPES[kind])

    def _compare(self, op: Comparison, left: Expr, right: Expr) -> pl.Expr:
        x, y = self._numbers(left, right)
        match op:
            case Comparison.EQ:
                return _false_if_null(x == y)
            case Comparison.NE:
                return ~_false_if_null(x == y)
            case Comparison.LT:
                return _false_if_null(x < y)
            case Comparison.LE:
                return _false_if_null(x <= y)
            case Comparison.GT:
                return _false_if_null(x > y)
            case Comparison.GE:
                return _false_if_null(x >= y)

    def _in(self, element: Expr, container: Expr) -> pl.Expr:
        if not isinstance(container, ListLiteral):  # a list<string> field
            value = self.expr(element)
            return _false_if_null(value.is_not_null() & self.expr(container).list.contains(value))
        inner = element_of(self.kind(container))
        wanted = FieldType.DECIMAL if self.kind(element) is FieldType.DECIMAL else inner
        assert wanted is not None
        value = self._as(element, wanted)
        members = container.elements
        constants = [_constant(member) for member in members]
        if all(constant is not None for constant in constants):
            if wanted is FieldType.DECIMAL:
                constants = [Decimal(c) if isinstance(c, int) else c for c in constants]
            known = pl.Series(constants, dtype=_DTYPES[wanted]).implode()
            return _false_if_null(value.is_in(known))
        matches = (_false_if_null(value == self._as(member, wanted)) for member in members)
        return reduce(lambda x, y: x | y, matches)

    def _calculate(self, node: Expr, op: Arithmetic, left: Expr, right: Expr) -> pl.Expr:
        if self.kind(node) is FieldType.INT:
            x, y = self.expr(left).cast(pl.Int128), self.expr(right).cast(pl.Int128)
            return _int_range(_apply(op, x, y))
        x, y = self._numbers(left, right)
        return _decimal(_apply(op, x, y))  # polars rounds a product half to even

    def _method(self, name: str, receiver: pl.Expr, arguments: list[pl.Expr]) -> pl.Expr:
        if name == "lowerAscii":
            return receiver.str.replace_many(list(ascii_uppercase), list(ascii_lowercase))
        (argument,) = arguments
        if name == "startsWith":
            return _false_if_null(receiver.str.starts_with(argument))
        if name == "endsWith":
            return _false_if_null(receiver.str.ends_with(argument))
        return _false_if_null(receiver.str.contains(argument, literal=True))


def _apply(op: Arithmetic, x: pl.Expr, y: pl.Expr) -> pl.Expr:
    if op is Arithmetic.ADD:
        return x + y
    if op is Arithmetic.SUBTRACT:
        return x - y
    return x * y


def _int_range(expr: pl.Expr) -> pl.Expr:
    """An Int128 result as Int64, null unless it fits (a non-strict cast nulls the rest)."""
    return expr.cast(pl.Int64, strict=False)


def _constant(node: Expr) -> int | Decimal | str | bool | None:
    match node:
        case IntLiteral(value) | DecimalLiteral(value) | StringLiteral(value) | BoolLiteral(value):
            return value
        case _:
            return None
