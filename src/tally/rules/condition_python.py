"""Compile a checked condition into Python closures, for online evaluation and explanations.

Every closure is total on an environment that matches the schema: a missing value is None
and flows through as the null semantics of docs/rules-conditions.md say, never as an
exception. Bool-valued closures always return True or False.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Any

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
from tally.rules.condition_types import (
    DECIMAL_LIMIT,
    DECIMAL_PLACES,
    INT_MAX,
    INT_MIN,
    Checked,
    FieldType,
    Type,
    element_of,
)

Env = Mapping[str, Any]
Closure = Callable[[Env], Any]

QUANTUM = Decimal(1).scaleb(-DECIMAL_PLACES)
# Exact for every sum and product the language can form (|int64 × decimal| < 10^34, four
# places); traps off, so no operation in here can raise.
EXACT = Context(prec=60, rounding=ROUND_HALF_EVEN, traps=[])
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_ORDER: Mapping[Comparison, Callable[[Any, Any], bool]] = {
    Comparison.LT: operator.lt,
    Comparison.LE: operator.le,
    Comparison.GT: operator.gt,
    Comparison.GE: operator.ge,
}


def decimal_value(raw: Decimal | int | None) -> Decimal | None:
    """A decimal as the language sees it: four places (rounded half to even, as polars
    does), None when missing, not finite or not below 10^15 in magnitude."""
    if raw is None:
        return None
    # With traps off, quantize never raises: what it cannot represent becomes NaN.
    value = (Decimal(raw) if isinstance(raw, int) else raw).quantize(QUANTUM, context=EXACT)
    return value if value.is_finite() and abs(value) < DECIMAL_LIMIT else None


def lower_ascii(text: str) -> str:
    """CEL's lowerAscii: A-Z to a-z, every other character as it is."""
    return text.lower() if text.isascii() else text.translate(_ASCII_LOWER)


class PythonCompiler:
    """Closures for the nodes of one checked tree; ``closures`` keeps each node's, by id(),
    so that ``explain`` can evaluate the parts of a conjunction."""

    def __init__(self, checked: Checked) -> None:
        self.checked = checked
        self.closures: dict[int, Closure] = {}
        self.root = self.compile(checked.tree)

    def compile(self, node: Expr) -> Closure:
        closure = self._compile(node)
        self.closures[id(node)] = closure
        return closure

    def explain(self, env: Env) -> str | None:
        """None when the condition holds, else the text of its smallest false part: the
        first false operand of a conjunction, looked into; any other node as a whole."""
        if self.root(env):
            return None
        node = self.checked.tree
        while isinstance(node, And):
            node = next(part for part in node.operands if not self.closures[id(part)](env))
        return to_source(node)

    def _compile(self, node: Expr) -> Closure:
        match node:
            case IntLiteral(value) | StringLiteral(value) | BoolLiteral(value):
                return _constant(value)
            case DecimalLiteral(value):
                return _constant(decimal_value(value))
            case Field(path):
                return _field(path, self.checked.type_of(node))
            case ListLiteral(elements):
                return _list([self.compile(element) for element in elements])
            case Not(operand):
                inner = self.compile(operand)
                return lambda env: not inner(env)
            case Negate(operand):
                return _negate(self.compile(operand), self.checked.type_of(node))
            case And(operands):
                return _all([self.compile(operand) for operand in operands])
            case Or(operands):
                return _any([self.compile(operand) for operand in operands])
            case Compare(op, left, right):
                return _compare(op, self.compile(left), self.compile(right), _literal(right))
            case In(element, container):
                return self._in(element, container)
            case Calculate(op, left, right):
                exact = self.checked.type_of(node) is FieldType.INT
                return _calculate(op, self.compile(left), self.compile(right), exact)
            case MethodCall(receiver, name, arguments):
                return _method(name, self.compile(receiver), [self.compile(a) for a in arguments])
            case FunctionCall(_, (argument,)):
                is_list = element_of(self.checked.type_of(argument)) is not None
                return _size(self.compile(argument), is_list=is_list)
            case FunctionCall():
                raise AssertionError("the checker lets only size(x) through")

    def _in(self, element: Expr, container: Expr) -> Closure:
        find, within = self.compile(element), self.compile(container)  # every node has one
        if isinstance(container, ListLiteral):
            members = [_literal(member) for member in container.elements]
            if all(member is not None for member in members):
                known = frozenset(members)  # ints and decimals hash alike when equal
                return lambda env: (value := find(env)) is not None and value in known

        def contains(env: Env) -> bool:
            value = find(env)
            if value is None:
                return False
            values = within(env)
            return values is not None and value in values

        return contains


def _literal(node: Expr) -> Any:
    """The value of a literal operand, None for anything else."""
    match node:
        case IntLiteral(value) | DecimalLiteral(value) | StringLiteral(value) | BoolLiteral(value):
            return value
        case _:
            return None


def _constant(value: Any) -> Closure:
    return lambda env: value


def _negate(operand: Closure, kind: Type) -> Closure:
    if kind is FieldType.INT:
        return lambda env: None if (x := operand(env)) is None or -x > INT_MAX else -x
    return lambda env: None if (x := operand(env)) is None else EXACT.minus(x)


def _field(path: str, kind: Type) -> Closure:
    read = _reader(path.split("."))
    if kind is FieldType.BOOL:
        return lambda env: read(env) is True  # a missing bool is false
    if kind is FieldType.DECIMAL:
        return lambda env: decimal_value(read(env))
    return read


def _reader(parts: list[str]) -> Closure:
    if len(parts) == 2:  # the common case: event.amount
        top, name = parts

        def read_two(env: Env) -> Any:
            try:
                return env[top][name]
            except (LookupError, TypeError):
                return None

        return read_two

    def read(env: Env) -> Any:
        value: Any = env
        try:
            for part in parts:
                value = value[part]
        except (LookupError, TypeError):
            return None
        return value

    return read


def _list(elements: list[Closure]) -> Closure:
    return lambda env: [element(env) for element in elements]


def _all(operands: list[Closure]) -> Closure:
    if len(operands) == 2:
        first, second = operands
        return lambda env: first(env) and second(env)

    def every(env: Env) -> bool:
        return all(operand(env) for operand in operands)

    return every


def _any(operands: list[Closure]) -> Closure:
    if len(operands) == 2:
        first, second = operands
        return lambda env: first(env) or second(env)

    def some(env: Env) -> bool:
        return any(operand(env) for operand in operands)

    return some


def _compare(op: Comparison, left: Closure, right: Closure, constant: Any) -> Closure:
    """``==`` holds when both sides are present and equal, ``!=`` is its negation, and an
    ordering with a missing side is false."""
    if op in (Comparison.EQ, Comparison.NE):
        negated = op is Comparison.NE
        if constant is not None:
            return lambda env: (left(env) == constant) is not negated

        def equal(env: Env) -> bool:
            x, y = left(env), right(env)
            return (x is not None and y is not None and x == y) is not negated

        return equal
    order = _ORDER[op]
    if constant is not None:
        return lambda env: (x := left(env)) is not None and order(x, constant)

    def ordered(env: Env) -> bool:
        x, y = left(env), right(env)
        return x is not None and y is not None and order(x, y)

    return ordered


def _calculate(op: Arithmetic, left: Closure, right: Closure, exact: bool) -> Closure:
    """Int arithmetic, or decimal (an int operand promoted); a missing operand or a result
    out of range is None."""
    if exact:
        apply = {Arithmetic.ADD: operator.add, Arithmetic.SUBTRACT: operator.sub}.get(
            op, operator.mul
        )

        def integer(env: Env) -> int | None:
            x, y = left(env), right(env)
            if x is None or y is None:
                return None
            result: int = apply(x, y)
            return result if INT_MIN <= result <= INT_MAX else None

        return integer

    def decimal(env: Env) -> Decimal | None:
        x, y = left(env), right(env)
        if x is None or y is None:
            return None
        if op is Arithmetic.ADD:
            result = EXACT.add(x, y)
        elif op is Arithmetic.SUBTRACT:
            result = EXACT.subtract(x, y)
        else:
            result = EXACT.multiply(x, y).quantize(QUANTUM, context=EXACT)
        return result if abs(result) < DECIMAL_LIMIT else None

    return decimal


def _method(name: str, receiver: Closure, arguments: list[Closure]) -> Closure:
    if name == "lowerAscii":
        return lambda env: None if (text := receiver(env)) is None else lower_ascii(text)
    (argument,) = arguments
    test: Callable[[str, str], bool] = {
        "startsWith": str.startswith,
        "endsWith": str.endswith,
        "contains": str.__contains__,
    }[name]

    def method(env: Env) -> bool:
        text, other = receiver(env), argument(env)
        return text is not None and other is not None and test(text, other)

    return method


def _size(argument: Closure, *, is_list: bool) -> Closure:
    if is_list:  # a missing list is empty
        return lambda env: 0 if (values := argument(env)) is None else len(values)
    return lambda env: None if (text := argument(env)) is None else len(text)
