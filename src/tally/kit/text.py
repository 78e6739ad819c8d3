"""The one rule for text that names or explains something (references, identities, keys,
reasons): no invisible or layout characters.

Refused are the control characters (C0, DEL, C1 — NEL U+0085 among them), the format
characters (Unicode category Cf: bidirectional overrides and isolates such as U+202E and U+2066,
zero-width characters such as U+200B, the byte-order mark U+FEFF, …) and the line and paragraph
separators U+2028 and U+2029. Each can make two different strings look the same, reorder what a
reader sees, or break a log line or a CSV export.
"""

from __future__ import annotations

import unicodedata
from typing import Any

UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})
RULE = (
    "text may not contain control, format or bidirectional characters "
    "(such as U+0000-U+001F, U+007F-U+009F, U+200B, U+202E, U+2028, U+FEFF)"
)


def unsafe_character(value: str) -> str | None:
    """The first character of ``value`` the rule refuses, or ``None`` when it has none."""
    if value.isascii():  # the common case: only the ASCII controls can be refused
        for char in value:
            if char < " " or char == "\x7f":
                return char
        return None
    for char in value:
        if unicodedata.category(char) in UNSAFE_CATEGORIES:
            return char
    return None


def describe(char: str) -> str:
    """``U+202E (RIGHT-TO-LEFT OVERRIDE)``: a refused character, readable in an error."""
    name = unicodedata.name(char, "")
    code = f"U+{ord(char):04X}"
    return f"{code} ({name})" if name else code


def check(value: str) -> str:
    """``value`` unchanged if the rule allows it; otherwise :class:`ValueError` naming the
    character (pydantic turns it into a validation error of the field)."""
    char = unsafe_character(value)
    if char is not None:
        raise ValueError(f"{RULE}; found {describe(char)}")
    return value


def header_text(value: str) -> str:
    """The characters an HTTP header value means: servers hand its bytes over as ISO-8859-1,
    clients mostly send UTF-8; read as UTF-8 when the bytes are (so that an RLO or a BOM sent as
    UTF-8 is seen as what it is), else as they came."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value


# The characters the rule refuses, as code point ranges (Unicode 14, Python 3.11's
# unicodedata; a unit test keeps them in step): for the OpenAPI document's patterns.
UNSAFE_RANGES: tuple[tuple[int, int], ...] = (
    (0x0000, 0x001F),
    (0x007F, 0x009F),
    (0x00AD, 0x00AD),
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x2028, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x13438),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
)


def _class_member(code: int) -> str:
    # Escapes inside the Basic Multilingual Plane read the same in ECMA-262 and Python; beyond
    # it the character itself (ECMA has no escape for it without the ``u`` flag).
    return f"\\u{code:04x}" if code <= 0xFFFF else chr(code)


#: A JSON Schema ``pattern`` (ECMA-262 and Python alike) for text the rule allows.
PATTERN = (
    "^[^"
    + "".join(
        _class_member(low) if low == high else f"{_class_member(low)}-{_class_member(high)}"
        for low, high in UNSAFE_RANGES
    )
    + "]*$"
)


def state_the_text_rule(schema: dict[str, Any]) -> None:
    """Give every free-text property of a request body's JSON schema the pattern of the text
    rule (:data:`PATTERN`), so that the OpenAPI document says what the server refuses."""
    for field in schema.get("properties", {}).values():
        for option in (field, *field.get("anyOf", ()), field.get("items", {})):
            fixed = {"pattern", "format", "enum", "const"} & option.keys()
            if option.get("type") == "string" and not fixed:
                option["pattern"] = PATTERN
