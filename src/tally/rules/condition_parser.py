"""Parse a condition's text into its syntax tree (lark, LALR, our own grammar).

The tree is built by callbacks while the LALR parser runs, so nothing recurses on the input;
the depth of the finished tree is then capped, which bounds every later pass.
"""

from __future__ import annotations

from decimal import Decimal
from functools import cache
from typing import Any, cast

from lark import Lark, Token, Transformer, UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from tally.rules.condition_errors import ConditionCode, ConditionError
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
    Position,
    StringLiteral,
    walk,
)

MAX_LENGTH = 2000  # characters
MAX_DEPTH = 32  # nested operations

GRAMMAR = r"""
?start: or_expr

?or_expr: and_expr (OR and_expr)*
?and_expr: relation (AND relation)*
?relation: sum
         | sum REL_OP sum     -> compare
         | sum IN sum         -> membership
?sum: product ((PLUS | MINUS) product)*
?product: unary (STAR unary)*
?unary: postfix
      | NOT unary             -> not_
      | MINUS unary           -> negate
?postfix: primary
        | postfix "." NAME                      -> select
        | postfix "." NAME "(" [arguments] ")"  -> method
?primary: "(" or_expr ")"
        | NAME "(" [arguments] ")"  -> call
        | NAME                      -> name
        | LBRACKET [arguments] "]"  -> list_
        | INT                       -> int_
        | DECIMAL                   -> decimal
        | STRING                    -> string
        | TRUE                      -> true
        | FALSE                     -> false
arguments: or_expr ("," or_expr)*

OR: "||"
AND: "&&"
NOT: "!"
REL_OP: "==" | "!=" | "<=" | ">=" | "<" | ">"
IN: "in"
PLUS: "+"
MINUS: "-"
STAR: "*"
LBRACKET: "["
TRUE: "true"
FALSE: "false"
NAME: /[A-Za-z_][A-Za-z0-9_]*/
DECIMAL.2: /[0-9]+\.[0-9]+/
INT: /[0-9]+/
STRING: /'(?:[^'\\\r\n]|\\.)*'/ | /"(?:[^"\\\r\n]|\\.)*"/

%ignore /[ \t\r\n]+/
"""

_VALUE_STARTS = {"NAME", "INT", "DECIMAL", "STRING", "TRUE", "FALSE", "NOT", "MINUS"}
_VALUE_STARTS |= {"LPAR", "LBRACKET"}
_SHOWN = {
    "OR": "'||'",
    "AND": "'&&'",
    "REL_OP": "a comparison",
    "IN": "'in'",
    "PLUS": "'+'",
    "MINUS": "'-'",
    "STAR": "'*'",
    "RPAR": "')'",
    "RSQB": "']'",
    "COMMA": "','",
    "DOT": "'.'",
    "LPAR": "'('",
    "$END": "the end",
}
_HINTS = {"=": "'=='", "&": "'&&'", "|": "'||'"}
_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "r": "\r", "t": "\t"}


def parse(source: str) -> Expr:
    """The syntax tree of ``source``; a ConditionError when it is too long, does not parse,
    or nests deeper than MAX_DEPTH."""
    if len(source) > MAX_LENGTH:
        raise ConditionError(
            ConditionCode.TOO_LONG,
            f"a condition may have at most {MAX_LENGTH} characters, this one has {len(source)}",
            1,
            1,
        )
    try:
        tree = cast("Expr", _parser().parse(source))
    except UnexpectedInput as error:
        raise _syntax_error(error, source) from None
    for node, depth in walk(tree):
        if depth > MAX_DEPTH:
            raise ConditionError(
                ConditionCode.TOO_DEEP,
                f"the condition nests more than {MAX_DEPTH} operations deep; simplify it",
                node.pos.line,
                node.pos.column,
            )
    return tree


@cache
def _parser() -> Lark:
    return Lark(GRAMMAR, parser="lalr", transformer=_Build(), maybe_placeholders=True)


def _at(token: Token) -> Position:
    return Position(token.line or 1, token.column or 1)


class _Build(Transformer[Token, Expr]):
    """The callbacks that turn each reduced rule into a node."""

    def or_expr(self, children: list[Any]) -> Or:
        return Or(tuple(children[::2]), _at(children[1]))

    def and_expr(self, children: list[Any]) -> And:
        return And(tuple(children[::2]), _at(children[1]))

    def compare(self, children: list[Any]) -> Compare:
        left, op, right = children
        return Compare(Comparison(str(op)), left, right, _at(op))

    def membership(self, children: list[Any]) -> In:
        element, op, container = children
        return In(element, container, _at(op))

    def sum(self, children: list[Any]) -> Expr:
        return _fold(children)

    def product(self, children: list[Any]) -> Expr:
        return _fold(children)

    def not_(self, children: list[Any]) -> Not:
        op, operand = children
        return Not(operand, _at(op))

    def negate(self, children: list[Any]) -> Negate:
        op, operand = children
        return Negate(operand, _at(op))

    def select(self, children: list[Any]) -> Field:
        receiver, name = children
        if not isinstance(receiver, Field):
            raise ConditionError(
                ConditionCode.SYNTAX,
                f"'.{name}' can only follow a field name",
                name.line or 1,
                name.column or 1,
            )
        return Field(f"{receiver.path}.{name}", receiver.pos)

    def method(self, children: list[Any]) -> MethodCall:
        receiver, name, arguments = children
        return MethodCall(receiver, str(name), arguments or (), _at(name))

    def call(self, children: list[Any]) -> FunctionCall:
        name, arguments = children
        return FunctionCall(str(name), arguments or (), _at(name))

    def name(self, children: list[Any]) -> Field:
        (token,) = children
        return Field(str(token), _at(token))

    def list_(self, children: list[Any]) -> ListLiteral:
        bracket, elements = children
        return ListLiteral(elements or (), _at(bracket))

    def arguments(self, children: list[Any]) -> tuple[Expr, ...]:
        return tuple(children)

    def int_(self, children: list[Any]) -> IntLiteral:
        (token,) = children
        return IntLiteral(int(token), _at(token))

    def decimal(self, children: list[Any]) -> DecimalLiteral:
        (token,) = children
        return DecimalLiteral(Decimal(str(token)), _at(token))

    def string(self, children: list[Any]) -> StringLiteral:
        (token,) = children
        return StringLiteral(_unescape(token), _at(token))

    def true(self, children: list[Any]) -> BoolLiteral:
        return BoolLiteral(value=True, pos=_at(children[0]))

    def false(self, children: list[Any]) -> BoolLiteral:
        return BoolLiteral(value=False, pos=_at(children[0]))


def _fold(children: list[Any]) -> Expr:
    """``a + b - c`` as ``(a + b) - c``."""
    tree: Expr = children[0]
    for op, right in zip(children[1::2], children[2::2], strict=True):
        tree = Calculate(Arithmetic(str(op)), tree, right, _at(op))
    return tree


def _unescape(token: Token) -> str:
    """The value of a quoted literal: ``\\\\ \\' \\" \\n \\r \\t \\uXXXX``."""
    text = str(token)[1:-1]
    out: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char != "\\":
            out.append(char)
            index += 1
            continue
        code = text[index + 1]
        if code in _ESCAPES:
            out.append(_ESCAPES[code])
            index += 2
            continue
        digits = text[index + 2 : index + 6]
        point = int(digits, 16) if code == "u" and _is_hex(digits) else -1
        if not (0 <= point < 0xD800 or point >= 0xE000):  # -1: not a \u escape
            raise ConditionError(
                ConditionCode.SYNTAX,
                f"invalid escape '\\{code}' in a string: use \\\\, \\', \\\", \\n, \\r, \\t "
                "or \\u followed by four hex digits (not a surrogate)",
                token.line or 1,
                (token.column or 1) + 1 + index,
            )
        out.append(chr(point))
        index += 6
    return "".join(out)


def _is_hex(digits: str) -> bool:
    return len(digits) == 4 and all(char in "0123456789abcdefABCDEF" for char in digits)


def _syntax_error(error: UnexpectedInput, source: str) -> ConditionError:
    line, column = error.line, error.column
    if isinstance(error, UnexpectedCharacters):
        char = source[error.pos_in_stream or 0 :][:1]
        message = f"unexpected character {char!r}"
        if char in _HINTS:
            message += f"; did you mean {_HINTS[char]}?"
        elif char in "'\"":
            message += ": a string that is not closed on its line"
    elif isinstance(error, UnexpectedToken) and error.token.type == "$END":
        message = "the condition ends too early" + _expected(error.accepts or error.expected)
        lines = source.split("\n")
        line, column = len(lines), len(lines[-1]) + 1
    elif isinstance(error, UnexpectedToken):
        message = f"unexpected {str(error.token)!r}" + _expected(error.accepts or error.expected)
    else:
        message = "the condition does not parse"
    return ConditionError(ConditionCode.SYNTAX, message, max(line, 1), max(column, 1))


def _expected(terminals: set[str]) -> str:
    shown = sorted({_SHOWN.get(name, name) for name in terminals - _VALUE_STARTS})
    if terminals & {"INT", "STRING"}:
        shown.insert(0, "a value")
    elif "MINUS" in terminals:  # the binary minus, where no value may start
        shown = sorted([*shown, "'-'"])
    if not shown:
        return ""
    if len(shown) == 1:
        return f"; expected {shown[0]}"
    return "; expected " + ", ".join(shown[:-1]) + " or " + shown[-1]
