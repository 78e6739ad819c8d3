"""The one error of the condition language: what is wrong, where, and a stable code."""

from __future__ import annotations

from enum import StrEnum


class ConditionCode(StrEnum):
    """Why a condition was refused (stable: the programme validator shows and tests them)."""

    SYNTAX = "condition_syntax"
    TOO_LONG = "condition_too_long"
    TOO_DEEP = "condition_too_deep"
    LITERAL = "condition_literal"
    UNKNOWN_FIELD = "condition_unknown_field"
    UNKNOWN_FUNCTION = "condition_unknown_function"
    ARGUMENTS = "condition_arguments"
    TYPE = "condition_type"


class ConditionError(ValueError):
    """A condition that does not parse or does not type-check.

    ``line`` and ``column`` are 1-based, within the condition's own text; the programme loader
    adds the line the condition starts on in the file.
    """

    def __init__(self, code: ConditionCode, message: str, line: int, column: int) -> None:
        super().__init__(f"line {line}, column {column}: {message}")
        self.code = code
        self.message = message
        self.line = line
        self.column = column
