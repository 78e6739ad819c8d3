"""The condition language of earning rules: a subset of CEL, type-checked against declared
fields, compiled to Python closures (online) and to polars expressions (bulk, simulation).

    schema = default_schema(items=False)
    condition = compile_condition("event.amount >= 100 && member.tier == 'GOLD'", schema)
    condition.evaluate({"event": {"amount": Decimal("120.00")}, "member": {"tier": "GOLD"}})
    frame.select(condition.to_polars())

The language, its types and its null semantics are described in docs/rules-conditions.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tally.rules.condition_errors import ConditionCode, ConditionError
from tally.rules.condition_parser import MAX_DEPTH, MAX_LENGTH, parse
from tally.rules.condition_python import PythonCompiler
from tally.rules.condition_tree import Expr, to_source
from tally.rules.condition_types import FieldType, Schema, check, default_schema

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "MAX_DEPTH",
    "MAX_LENGTH",
    "Condition",
    "ConditionCode",
    "ConditionError",
    "FieldType",
    "Schema",
    "compile_condition",
    "default_schema",
]


class Condition:
    """A condition that parsed and type-checked, ready to evaluate."""

    def __init__(self, source: str, schema: Schema) -> None:
        checked = check(parse(source), schema)
        self.source = source
        self.schema = schema
        self.fields: frozenset[str] = checked.fields  # the dotted fields it reads
        self._checked = checked
        self._python = PythonCompiler(checked)
        self._evaluate = self._python.root

    @property
    def tree(self) -> Expr:
        return self._checked.tree

    def evaluate(self, env: Mapping[str, Any]) -> bool:
        """Whether the condition holds for ``env``: the top-level objects by name
        (``{"event": {"amount": Decimal("152.00"), ...}, "member": {...}}``), a missing key or
        a None being a missing value. Never raises on an environment matching the schema."""
        result: bool = self._evaluate(env)
        return result

    def explain(self, env: Mapping[str, Any]) -> str | None:
        """None when the condition holds; otherwise the canonical text of the smallest part
        that is false (for ``a && b`` with ``b`` false: ``b``)."""
        return self._python.explain(env)

    def to_polars(self) -> pl.Expr:
        """A Boolean polars expression, never null, over columns named by the dotted fields
        (decimals as ``Decimal(38, 4)``, lists as ``List(String)``), equal row by row to
        ``evaluate``."""
        from tally.rules.condition_polars import to_polars

        return to_polars(self._checked, self._python.closures)

    def to_source(self) -> str:
        """The canonical text of the condition (parses back to the same tree)."""
        return to_source(self.tree)

    def __repr__(self) -> str:
        return f"Condition({self.source!r})"


def compile_condition(source: str, schema: Schema) -> Condition:
    """Parse, type-check and compile ``source``; a ConditionError says what is wrong and
    where."""
    return Condition(source, schema)
