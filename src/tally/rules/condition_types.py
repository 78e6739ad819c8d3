"""Types of the condition language, the schema of declared fields, and the type checker."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import NoReturn

from tally.rules.condition_errors import ConditionCode, ConditionError
from tally.rules.condition_tree import (
    And,
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

INT_MIN, INT_MAX = -(2**63), 2**63 - 1  # ints are 64-bit; a result outside is null
DECIMAL_PLACES = 4  # every decimal has exactly four places (polars Decimal(38, 4))
DECIMAL_DIGITS = 15  # |decimal| < 10^15, or it is null (so that int64 × decimal fits)
DECIMAL_LIMIT = Decimal(10**DECIMAL_DIGITS)


class FieldType(StrEnum):
    """The type of a declared field."""

    INT = "int"
    DECIMAL = "decimal"
    STRING = "string"
    BOOL = "bool"
    STRING_LIST = "list<string>"


@dataclass(frozen=True, slots=True)
class ListOf:
    """The type of a list literal (``[1, 2]`` is ``ListOf(INT)``)."""

    element: FieldType

    def __str__(self) -> str:
        return f"list<{self.element}>"


Type = FieldType | ListOf
NUMBERS = (FieldType.INT, FieldType.DECIMAL)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_RESERVED = {"true", "false", "null", "in"}


@dataclass(frozen=True)
class Schema:
    """The fields a condition may read, by dotted name (``event.amount``), with their types.

    The engine builds one per context (``item.*`` exists only in ``items:`` conditions).
    A field's dotted name is also its path in the evaluation environment and its column name
    in a DataFrame; no field may be the prefix of another.
    """

    fields: Mapping[str, FieldType]

    def __post_init__(self) -> None:
        fields = dict(self.fields)
        for name, kind in fields.items():
            parts = name.split(".")
            if not all(_NAME.match(part) and part not in _RESERVED for part in parts):
                raise ValueError(f"{name!r} is not a dotted name of identifiers")
            if not isinstance(kind, FieldType):
                raise TypeError(f"{name!r} has type {kind!r}, not a FieldType")
            for end in range(1, len(parts)):
                if ".".join(parts[:end]) in fields:
                    raise ValueError(f"{name!r} is inside field {'.'.join(parts[:end])!r}")
        object.__setattr__(self, "fields", MappingProxyType(fields))

    def __or__(self, other: Schema) -> Schema:
        clash = sorted(
            name
            for name in self.fields.keys() & other.fields.keys()
            if self.fields[name] != other.fields[name]
        )
        if clash:
            raise ValueError(f"fields declared twice with different types: {clash}")
        return Schema({**self.fields, **other.fields})

    def suggest(self, name: str) -> str | None:
        """The declared name nearest to ``name``, if one is near."""
        found = difflib.get_close_matches(name, list(self.fields), n=1, cutoff=0.6)
        return found[0] if found else None


EVENT_FIELDS: Mapping[str, FieldType] = {
    "event.type": FieldType.STRING,
    "event.partner": FieldType.STRING,
    "event.channel": FieldType.STRING,
    "event.amount": FieldType.DECIMAL,
    "event.currency": FieldType.STRING,
    "event.weekday": FieldType.INT,  # 1 (Monday) to 7, in the programme's zone
    "event.hour": FieldType.INT,  # 0 to 23, in the programme's zone
}
MEMBER_FIELDS: Mapping[str, FieldType] = {
    "member.tier": FieldType.STRING,
    "member.plans": FieldType.STRING_LIST,
    "member.tags": FieldType.STRING_LIST,
    "member.days_since_enrolment": FieldType.INT,
    "member.birthday_today": FieldType.BOOL,
    "member.sign_in_streak": FieldType.INT,
    "member.sign_in_streak_broken": FieldType.BOOL,
}
ITEM_FIELDS: Mapping[str, FieldType] = {
    "item.sku": FieldType.STRING,
    "item.name": FieldType.STRING,
    "item.category": FieldType.STRING,
    "item.labels": FieldType.STRING_LIST,
    "item.quantity": FieldType.INT,
    "item.amount": FieldType.DECIMAL,
}


def default_schema(
    *,
    attributes: Mapping[str, FieldType] | None = None,
    aggregates: Mapping[str, FieldType] | None = None,
    items: bool = False,
) -> Schema:
    """The built-in fields of issue 11: ``event.*`` and ``member.*``, the event type's
    declared ``attributes`` as ``event.attributes.<name>``, the member ``aggregates`` the
    engine loads (``{"purchases_30d": INT}`` gives ``member.purchases_30d``), and ``item.*``
    when ``items`` (an ``items:`` condition)."""
    fields = {**EVENT_FIELDS, **MEMBER_FIELDS}
    for name, kind in (attributes or {}).items():
        fields[f"event.attributes.{name}"] = kind
    for name, kind in (aggregates or {}).items():
        if f"member.{name}" in fields:
            raise ValueError(f"aggregate {name!r} would hide the built-in field member.{name}")
        fields[f"member.{name}"] = kind
    if items:
        fields.update(ITEM_FIELDS)
    return Schema(fields)


# Methods on strings: name → (argument types, result type).
METHODS: Mapping[str, tuple[tuple[FieldType, ...], FieldType]] = {
    "startsWith": ((FieldType.STRING,), FieldType.BOOL),
    "endsWith": ((FieldType.STRING,), FieldType.BOOL),
    "contains": ((FieldType.STRING,), FieldType.BOOL),
    "lowerAscii": ((), FieldType.STRING),
}
FUNCTIONS = ("size",)


@dataclass(frozen=True)
class Checked:
    """A tree that type-checked: the type of each of its nodes, and the fields it reads."""

    tree: Expr
    types: Mapping[int, Type] = field(repr=False)  # by id() of the node in ``tree``
    fields: frozenset[str]

    def type_of(self, node: Expr) -> Type:
        return self.types[id(node)]


def check(tree: Expr, schema: Schema) -> Checked:
    """Type-check ``tree`` against ``schema``; the whole must be a bool."""
    checker = _Checker(schema)
    kind = checker.type_of(tree)
    if kind is not FieldType.BOOL:
        _fail(ConditionCode.TYPE, tree, f"a condition must be true or false, but this is {kind}")
    return Checked(tree, checker.types, frozenset(checker.fields))


def _fail(code: ConditionCode, node: Expr, message: str) -> NoReturn:
    raise ConditionError(code, message, node.pos.line, node.pos.column)


def _shown(node: Expr) -> str:
    text = to_source(node)
    return text if len(text) <= 60 else text[:57] + "..."


def element_of(kind: Type) -> FieldType | None:
    """The element type of a list type, None for a scalar."""
    if isinstance(kind, ListOf):
        return kind.element
    return FieldType.STRING if kind is FieldType.STRING_LIST else None


def comparable(left: Type, right: Type) -> bool:
    """Whether ``==`` may compare the two (int and decimal compare as numbers)."""
    if left in NUMBERS and right in NUMBERS:
        return True
    return left == right and element_of(left) is None


class _Checker:
    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.types: dict[int, Type] = {}
        self.fields: set[str] = set()

    def type_of(self, node: Expr) -> Type:
        kind = self._type(node)
        self.types[id(node)] = kind
        return kind

    def _expect(self, node: Expr, wanted: tuple[FieldType, ...], what: str) -> Type:
        kind = self.type_of(node)
        if kind not in wanted:
            names = " or ".join(str(want) for want in wanted)
            _fail(ConditionCode.TYPE, node, f"{what} needs {names}, not {kind}: {_shown(node)}")
        return kind

    def _type(self, node: Expr) -> Type:
        match node:
            case IntLiteral(value):
                if value > INT_MAX:
                    _fail(ConditionCode.LITERAL, node, f"{value} is larger than {INT_MAX}")
                return FieldType.INT
            case DecimalLiteral(value):
                places = -int(value.as_tuple().exponent)
                if places > DECIMAL_PLACES:
                    _fail(
                        ConditionCode.LITERAL,
                        node,
                        f"{_shown(node)} has {places} decimal places; at most "
                        f"{DECIMAL_PLACES} are kept",
                    )
                if value >= DECIMAL_LIMIT:
                    _fail(ConditionCode.LITERAL, node, f"{_shown(node)} is not below 10^15")
                return FieldType.DECIMAL
            case StringLiteral():
                return FieldType.STRING
            case BoolLiteral():
                return FieldType.BOOL
            case Field(path):
                return self._field(node, path)
            case ListLiteral(elements):
                return self._list(node, elements)
            case Not(operand):
                self._expect(operand, (FieldType.BOOL,), "'!'")
                return FieldType.BOOL
            case Negate(operand):
                return self._expect(operand, NUMBERS, "'-'")
            case And(operands) | Or(operands):
                op = "'&&'" if isinstance(node, And) else "'||'"
                for operand in operands:
                    self._expect(operand, (FieldType.BOOL,), op)
                return FieldType.BOOL
            case Compare(op, left, right):
                self._compare(node, op, self.type_of(left), self.type_of(right))
                return FieldType.BOOL
            case In(element, container):
                self._in(node, self.type_of(element), container)
                return FieldType.BOOL
            case Calculate(op, left, right):
                kinds = {self._expect(left, NUMBERS, f"'{op}'")}
                kinds.add(self._expect(right, NUMBERS, f"'{op}'"))
                return FieldType.INT if kinds == {FieldType.INT} else FieldType.DECIMAL
            case MethodCall(receiver, name, arguments):
                return self._method(node, receiver, name, arguments)
            case FunctionCall(name, arguments):
                return self._function(node, name, arguments)

    def _field(self, node: Expr, path: str) -> Type:
        kind = self.schema.fields.get(path)
        if kind is None:
            message = f"unknown field {path!r}"
            nearest = self.schema.suggest(path)
            if nearest:
                message += f"; did you mean {nearest!r}?"
            _fail(ConditionCode.UNKNOWN_FIELD, node, message)
        self.fields.add(path)
        return kind

    def _list(self, node: Expr, elements: tuple[Expr, ...]) -> Type:
        if not elements:
            _fail(ConditionCode.TYPE, node, "an empty list matches nothing; remove the test")
        kinds = [self.type_of(element) for element in elements]
        for element, kind in zip(elements, kinds, strict=True):
            if element_of(kind) is not None:
                _fail(ConditionCode.TYPE, element, "a list cannot contain a list")
        if all(kind in NUMBERS for kind in kinds):
            numbers = FieldType.INT if set(kinds) == {FieldType.INT} else FieldType.DECIMAL
            return ListOf(numbers)
        for element, kind in zip(elements, kinds, strict=True):
            if kind != kinds[0]:
                _fail(
                    ConditionCode.TYPE,
                    element,
                    f"the elements of a list must have one type: {_shown(elements[0])} is "
                    f"{kinds[0]}, {_shown(element)} is {kind}",
                )
        first = kinds[0]
        assert isinstance(first, FieldType)  # lists were refused above
        return ListOf(first)

    def _compare(self, node: Expr, op: Comparison, left: Type, right: Type) -> None:
        if element_of(left) is not None or element_of(right) is not None:
            _fail(
                ConditionCode.TYPE, node, f"lists can only be used with 'in' and size(), not '{op}'"
            )
        if op in (Comparison.EQ, Comparison.NE):
            allowed = comparable(left, right)
        else:
            allowed = (left in NUMBERS and right in NUMBERS) or (
                left is FieldType.STRING and right is FieldType.STRING
            )
        if not allowed:
            _fail(
                ConditionCode.TYPE,
                node,
                f"'{op}' cannot compare {left} with {right}: {_shown(node)}",
            )

    def _in(self, node: Expr, element: Type, container: Expr) -> None:
        kind = self.type_of(container)
        inner = element_of(kind)
        if inner is None:
            hint = "; for text inside a string use .contains()" if kind is FieldType.STRING else ""
            _fail(
                ConditionCode.TYPE,
                container,
                f"the right side of 'in' must be a list, not {kind}{hint}: {_shown(container)}",
            )
        if element_of(element) is not None or not comparable(element, inner):
            _fail(ConditionCode.TYPE, node, f"'in' cannot look for a {element} in a {kind}")

    def _method(self, node: Expr, receiver: Expr, name: str, arguments: tuple[Expr, ...]) -> Type:
        signature = METHODS.get(name)
        if signature is None:
            hint = " (write size(x))" if name == "size" else ""
            _fail(
                ConditionCode.UNKNOWN_FUNCTION,
                node,
                f"unknown method {name!r}{hint}; the methods are {', '.join(sorted(METHODS))}",
            )
        self._expect(receiver, (FieldType.STRING,), f"{name}()")
        parameters, result = signature
        self._arguments(node, name, arguments, parameters)
        return result

    def _function(self, node: Expr, name: str, arguments: tuple[Expr, ...]) -> Type:
        if name not in FUNCTIONS:
            hint = f" (write x.{name}(...))" if name in METHODS else ""
            _fail(
                ConditionCode.UNKNOWN_FUNCTION,
                node,
                f"unknown function {name!r}{hint}; the functions are {', '.join(FUNCTIONS)}",
            )
        if len(arguments) != 1:
            _fail(ConditionCode.ARGUMENTS, node, f"size() takes 1 argument, not {len(arguments)}")
        kind = self.type_of(arguments[0])
        if kind is not FieldType.STRING and element_of(kind) is None:
            _fail(
                ConditionCode.TYPE,
                arguments[0],
                f"size() needs a string or a list, not {kind}: {_shown(arguments[0])}",
            )
        return FieldType.INT

    def _arguments(
        self,
        node: Expr,
        name: str,
        arguments: tuple[Expr, ...],
        parameters: tuple[FieldType, ...],
    ) -> None:
        if len(arguments) != len(parameters):
            count = f"{len(parameters)} argument" + ("" if len(parameters) == 1 else "s")
            _fail(ConditionCode.ARGUMENTS, node, f"{name}() takes {count}, not {len(arguments)}")
        for argument, parameter in zip(arguments, parameters, strict=True):
            self._expect(argument, (parameter,), f"{name}()")
