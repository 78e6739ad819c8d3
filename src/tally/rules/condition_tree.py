"""The syntax tree of a condition, and its canonical source text.

Nodes are frozen dataclasses compared by structure; ``pos`` (where an error about the node
points: the start of a name or literal, the operator of an operation) takes no part in
equality, so ``parse(to_source(tree)) == tree``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class Position:
    """1-based line and column within the condition's text."""

    line: int
    column: int


START = Position(1, 1)


class Comparison(StrEnum):
    EQ = "=="
    NE = "!="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="


class Arithmetic(StrEnum):
    ADD = "+"
    SUBTRACT = "-"
    MULTIPLY = "*"


@dataclass(frozen=True, slots=True)
class IntLiteral:
    value: int  # never negative: ``-5`` is Negate(IntLiteral(5))
    pos: Position = field(default=START, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class DecimalLiteral:
    value: Decimal  # never negative, as written (``100.00`` keeps its two places)
    pos: Position = field(default=START, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class StringLiteral:
    value: str
    pos: Position = field(default=START, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class BoolLiteral:
    value: bool
    pos: Position = field(default=START, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class ListLiteral:
    elements: tuple[Expr, ...]
    pos: Position = field(default=START, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Field:
    path: str  # dotted: "event.amount"
    pos: Position = field(default=START, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Not:
    operand: Expr
    pos: Position = field(default=START, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Negate:
    operand: Expr
    pos: Position = field(default=START, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class And:
    operands: tuple[Expr, ...]  # two or more; ``a && b && c`` is one And
    pos: Position = field(default=START, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Or:
    operands: tuple[Expr, ...]
    pos: Position = field(default=START, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Compare:
    op: Comparison
    left: Expr
    right: Expr
    pos: Position = field(default=START, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class In:
    element: Expr
    container: Expr
    pos: Position = field(default=START, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Calculate:
    op: Arithmetic
    left: Expr
    right: Expr
    pos: Position = field(default=START, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class MethodCall:
    receiver: Expr
    name: str
    arguments: tuple[Expr, ...]
    pos: Position = field(default=START, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class FunctionCall:
    name: str
    arguments: tuple[Expr, ...]
    pos: Position = field(default=START, compare=False, repr=False)


Expr = (
    IntLiteral
    | DecimalLiteral
    | StringLiteral
    | BoolLiteral
    | ListLiteral
    | Field
    | Not
    | Negate
    | And
    | Or
    | Compare
    | In
    | Calculate
    | MethodCall
    | FunctionCall
)


def children(node: Expr) -> tuple[Expr, ...]:
    """The node's operands, left to right."""
    match node:
        case ListLiteral(elements):
            return elements
        case Not(operand) | Negate(operand):
            return (operand,)
        case And(operands) | Or(operands):
            return operands
        case Compare(_, left, right) | Calculate(_, left, right):
            return (left, right)
        case In(element, container):
            return (element, container)
        case MethodCall(receiver, _, arguments):
            return (receiver, *arguments)
        case FunctionCall(_, arguments):
            return arguments
        case _:
            return ()


def walk(node: Expr) -> Iterator[tuple[Expr, int]]:
    """Every node with its depth (the root is 1), without recursion."""
    stack = [(node, 1)]
    while stack:
        current, depth = stack.pop()
        yield current, depth
        stack.extend((child, depth + 1) for child in reversed(children(current)))


# Binding strength, loosest first; an operand that binds more loosely than its place needs
# parentheses.
_OR, _AND, _RELATION, _SUM, _PRODUCT, _UNARY, _PRIMARY = range(7)


def _strength(node: Expr) -> int:
    match node:
        case Or():
            return _OR
        case And():
            return _AND
        case Compare() | In():
            return _RELATION
        case Calculate(op):
            return _PRODUCT if op is Arithmetic.MULTIPLY else _SUM
        case Not() | Negate():
            return _UNARY
        case _:
            return _PRIMARY


def to_source(node: Expr) -> str:
    """The canonical text of ``node``: single-quoted strings, one space around binary
    operators, parentheses only where needed."""
    match node:
        case IntLiteral(value):
            return str(value)
        case DecimalLiteral(value):
            return format(value, "f")
        case StringLiteral(value):
            return quote(value)
        case BoolLiteral(value):
            return "true" if value else "false"
        case ListLiteral(elements):
            return "[" + ", ".join(to_source(element) for element in elements) + "]"
        case Field(path):
            return path
        case Not(operand):
            return "!" + _operand(operand, _UNARY)
        case Negate(operand):
            return "-" + _operand(operand, _UNARY)
        case And(operands):
            return " && ".join(_operand(operand, _AND + 1) for operand in operands)
        case Or(operands):
            return " || ".join(_operand(operand, _OR + 1) for operand in operands)
        case Compare(op, left, right):
            return f"{_operand(left, _SUM)} {op} {_operand(right, _SUM)}"
        case In(element, container):
            return f"{_operand(element, _SUM)} in {_operand(container, _SUM)}"
        case Calculate(op, left, right):
            strength = _strength(node)
            return f"{_operand(left, strength)} {op} {_operand(right, strength + 1)}"
        case MethodCall(receiver, name, arguments):
            return f"{_operand(receiver, _PRIMARY)}.{name}({_arguments(arguments)})"
        case FunctionCall(name, arguments):
            return f"{name}({_arguments(arguments)})"


def _operand(node: Expr, needed: int) -> str:
    text = to_source(node)
    return f"({text})" if _strength(node) < needed else text


def _arguments(arguments: tuple[Expr, ...]) -> str:
    return ", ".join(to_source(argument) for argument in arguments)


_ESCAPES = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def quote(text: str) -> str:
    """``text`` as a single-quoted literal; control characters as ``\\uXXXX``."""
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return "'" + "".join(out) + "'"
