"""The one text rule (tally.kit.text), its OpenAPI pattern, and the duplicate-key finder."""

from __future__ import annotations

import json
import re
import sys
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tally.api.intake import duplicate_key
from tally.kit import text


def test_the_ranges_are_exactly_the_refused_categories() -> None:
    refused = {
        code
        for code in range(sys.maxunicode + 1)
        if unicodedata.category(chr(code)) in text.UNSAFE_CATEGORIES
    }
    listed = {code for low, high in text.UNSAFE_RANGES for code in range(low, high + 1)}
    assert listed == refused


@pytest.mark.parametrize(
    "char",
    [
        "\x00",
        "\t",
        "\x1b",
        "\x7f",
        "\x85",
        "\x9b",
        "\xad",
        "\u200b",
        "\u202e",
        "\u2066",
        "\u2028",
        "\u2029",
        "\ufeff",
        "\U000e0001",
        "\U000e0041",
    ],
)
def test_hidden_characters_are_refused(char: str) -> None:
    assert text.unsafe_character(f"ab{char}c") == char
    with pytest.raises(ValueError, match=f"U\\+{ord(char):04X}"):
        text.check(f"ab{char}c")
    assert re.fullmatch(text.PATTERN, f"ab{char}c") is None


@pytest.mark.parametrize("value", ["order-1", "订单 2026/١", "Łukasz 🎉", "a b\u00a0c", ""])
def test_ordinary_text_passes(value: str) -> None:
    assert text.unsafe_character(value) is None
    assert text.check(value) == value
    assert re.fullmatch(text.PATTERN, value) is not None


@given(st.text())
def test_the_pattern_says_what_the_rule_does(value: str) -> None:
    assert (re.fullmatch(text.PATTERN, value) is not None) == (text.unsafe_character(value) is None)


def test_header_text_reads_utf8_bytes_as_characters() -> None:
    sent = "key\u202e1".encode().decode("latin-1")  # as an ASGI server hands it over
    assert text.header_text(sent) == "key\u202e1"
    assert text.header_text("plain") == "plain"
    assert text.header_text("caf\xe9") == "caf\xe9"  # not UTF-8: as it came


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (b'{"points": 1, "points": 2}', "points"),
        (b'{"a": {"b": 1, "b": 2}}', "a.b"),
        (b'{"a": [{"b": 1}, {"c": 1, "c": 2}]}', "a.1.c"),
        (b'[{"x": 1, "x": 1}]', "0.x"),
        (b'{"\\u0070oints": 1, "points": 2}', "points"),
        ('{"points": 1, "points": 2}'.encode("utf-16"), "points"),
    ],
)
def test_a_duplicated_key_is_found_with_its_path(body: bytes, path: str) -> None:
    assert duplicate_key(body) == path


@pytest.mark.parametrize(
    "body",
    [b'{"a": 1, "b": {"a": 1}}', b"[1, 1]", b'{"a": 1', b"\xff\xfe", b"", b'"a"', b"[" * 100_000],
)
def test_no_duplicate_in_valid_or_invalid_json(body: bytes) -> None:
    assert duplicate_key(body) is None


@given(
    st.recursive(
        st.integers() | st.text(), lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner)
    )
)
def test_json_from_a_dict_never_has_a_duplicate(value: object) -> None:
    assert duplicate_key(json.dumps(value).encode()) is None


@pytest.mark.parametrize("char", ["\x00", "\u202e", "\u200b", "\ufeff", "\u2028", "\x85"])
def test_console_reasons_follow_the_rule_but_keep_their_line_breaks(char: str) -> None:
    from tally.errors import ValidationFailed
    from tally.web.console import forms

    assert forms.reason("line one\r\nline\ttwo") == "line one\r\nline\ttwo"
    with pytest.raises(ValidationFailed):
        forms.reason(f"good{char}will")
