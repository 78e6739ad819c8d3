"""Read a programme file, naming the line and the field of every mistake.

The YAML is composed into nodes (which keep their positions) and built into plain values by hand,
so that duplicate keys are refused and every validation error can be traced back to its line:
``programme.yaml:14: tiers[2].threshold: must be greater than tiers[1].threshold (5000)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from tally.errors import ValidationFailed
from tally.programme import campaign_checks, consistency
from tally.programme.domain import Programme, cross_check
from tally.programme.shapes import Path, Problem, format_path

DEFAULT_SOURCE = "programme.yaml"
MAX_NODES = 100_000  # aliases may repeat a node; refuse files that expand beyond this
_MESSAGES = {
    "extra_forbidden": "unknown field",
    "missing": "required field is missing",
}


@dataclass(frozen=True, slots=True)
class FileError:
    """One mistake in a programme file."""

    source: str
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.path}: {self.message}"


class InvalidProgramme(ValidationFailed):
    """A programme file that does not validate; ``errors`` has each mistake."""

    def __init__(self, errors: list[FileError]) -> None:
        super().__init__("\n".join(str(error) for error in errors), field="programme")
        self.errors = errors


class _Located:
    """A YAML node tree with the line of every key and item."""

    def __init__(self, root: yaml.Node) -> None:
        self.root = root

    def line_of(self, path: Path) -> tuple[int, Path]:
        """The 1-based line of ``path`` (of its nearest existing parent when it is missing)
        and the path as it appears in the file (discriminator tags dropped)."""
        node = self.root
        line = node.start_mark.line + 1
        shown: list[str | int] = []
        for position, part in enumerate(path):
            last = position == len(path) - 1
            if isinstance(node, yaml.MappingNode):
                found = next(((key, value) for key, value in node.value if key.value == part), None)
                if found is None:
                    if last or not isinstance(part, str):
                        shown.append(part)
                    continue  # a union's tag inside pydantic's path, or a missing field
                key, node = found
                line = key.start_mark.line + 1
                shown.append(part)
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                if part >= len(node.value):
                    shown.append(part)
                    break
                node = node.value[part]
                line = node.start_mark.line + 1
                shown.append(part)
            else:
                shown.append(part)
                break
        return line, tuple(shown)

    def text_line(self, path: Path, line: int) -> int | None:
        """The file's line of ``line`` (1-based) of the text at ``path``, a scalar value: a
        block scalar (``|``, ``>``) starts on the line after its indicator."""
        node: yaml.Node | None = self.root
        for part in path:
            if isinstance(node, yaml.MappingNode):
                node = next((value for key, value in node.value if key.value == part), None)
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                node = node.value[part] if part < len(node.value) else None
            else:
                node = None
        if not isinstance(node, yaml.ScalarNode):
            return None
        block = 1 if node.style in ("|", ">") else 0
        return node.start_mark.line + 1 + block + line - 1


def _build(
    node: yaml.Node, constructor: yaml.SafeLoader, errors: list[FileError], source: str, path: Path
) -> Any:
    """Plain Python values from ``node``; duplicate or non-scalar keys are recorded."""
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                errors.append(FileError(source, line, format_path(path), "a key must be a name"))
                continue
            key = key_node.value  # as written: YAML 1.1 would read ``on:`` as true
            if key in result:
                where = format_path((*path, str(key)))
                errors.append(FileError(source, line, where, f"duplicate key {key!r}"))
                continue
            result[key] = _build(value_node, constructor, errors, source, (*path, str(key)))
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _build(item, constructor, errors, source, (*path, index))
            for index, item in enumerate(node.value)
        ]
    return constructor.construct_object(node)


def _size(node: yaml.Node, limit: int) -> int:
    """How many nodes ``node`` expands to (aliases counted each time), stopping past ``limit``."""
    count = 0
    stack = [node]
    while stack and count <= limit:
        current = stack.pop()
        count += 1
        if isinstance(current, yaml.MappingNode):
            stack.extend(item for pair in current.value for item in pair)
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)
    return count


def _message(error: ErrorDetails) -> str:
    message = _MESSAGES.get(error["type"], error["msg"])
    return message.removeprefix("Value error, ")


def load(text: str, source: str = DEFAULT_SOURCE) -> Programme:
    """The validated programme in ``text``, or :class:`InvalidProgramme` listing every error."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        reason = exc.problem or exc.context or "unreadable"
        raise InvalidProgramme([FileError(source, line, "programme", f"YAML: {reason}")]) from None
    except yaml.YAMLError as exc:
        raise InvalidProgramme([FileError(source, 1, "programme", f"YAML: {exc}")]) from None
    if root is None:
        raise InvalidProgramme([FileError(source, 1, "programme", "the file is empty")])
    size = _size(root, MAX_NODES)
    if size > MAX_NODES:
        raise InvalidProgramme(
            [FileError(source, 1, "programme", f"more than {MAX_NODES} values once expanded")]
        )
    duplicates: list[FileError] = []
    data = _build(root, yaml.SafeLoader(""), duplicates, source, ())
    if duplicates:
        raise InvalidProgramme(duplicates)
    located = _Located(root)

    def at(path: Path, message: str, text_line: int | None = None) -> FileError:
        line, shown = located.line_of(path)
        if text_line is not None:
            line = located.text_line(path, text_line) or line
        return FileError(source, line, format_path(shown), message)

    try:
        programme = Programme.model_validate(data)
    except ValidationError as exc:
        raise InvalidProgramme(
            sorted(
                (at(tuple(error["loc"]), _message(error)) for error in exc.errors()),
                key=lambda error: error.line,
            )
        ) from None
    problems: list[Problem] = cross_check(programme) + consistency.check(programme)
    problems += campaign_checks.check(programme)
    if problems:
        raise InvalidProgramme(
            [at(problem.path, problem.message, problem.text_line) for problem in problems]
        )
    return programme


def errors_of(text: str, source: str = DEFAULT_SOURCE) -> list[FileError]:
    """Every mistake in ``text`` (empty when it is valid)."""
    try:
        load(text, source)
    except InvalidProgramme as invalid:
        return invalid.errors
    return []


def dump(programme: Programme) -> str:
    """YAML text that loads back to ``programme``."""
    return yaml.safe_dump(
        programme.dump(), allow_unicode=True, sort_keys=False, default_flow_style=False
    )
