"""Shapes the programme file's models share: the strict base model, codes, decimal strings,
bilingual names, and the problems checks report by path."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

Path = tuple[str | int, ...]
CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
DECIMAL_TEXT = re.compile(r"^[0-9]+(\.[0-9]+)?$")


def decimal_text(value: Any) -> str:
    """A non-negative decimal given as a string ("0.01"); numbers are refused (floats drift)."""
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError(
            f'must be a quoted decimal string such as "1.5", not {type(value).__name__} {value!r}'
        )
    if not DECIMAL_TEXT.match(value):
        raise ValueError(f'must be a decimal such as "1.5", got {value!r}')
    return value


DecimalText = Annotated[str, Field(json_schema_extra={"pattern": DECIMAL_TEXT.pattern})]
Code = Annotated[str, Field(pattern=CODE_PATTERN)]


class Strict(BaseModel):
    """Unknown keys are refused; strings are not coerced to numbers nor numbers to strings."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)


class Names(Strict):
    """A display name in each language the programme ships."""

    zh_cn: str = Field(alias="zh-CN", min_length=1, max_length=100)
    en: str = Field(min_length=1, max_length=100)


@dataclass(frozen=True, slots=True)
class Problem:
    """A refused field: its path in the file and why; ``text_line`` is the 1-based line
    within the field's own text (a condition) that the problem is on."""

    path: Path
    message: str
    text_line: int | None = None


def format_path(path: Path) -> str:
    """``("tiers", 2, "threshold")`` → ``tiers[2].threshold``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "programme"
