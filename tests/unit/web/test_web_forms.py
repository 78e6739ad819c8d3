"""Parsing console form fields."""

from __future__ import annotations

import pytest

from tally.errors import ValidationFailed
from tally.web.console import forms


@pytest.mark.parametrize(
    ("text", "points"),
    [("100", 100), ("+1,000", 1000), ("-50", -50), ("\u221250", -50), (" 7 ", 7), ("1 000", 1000)],
)
def test_points(text: str, points: int) -> None:
    assert forms.points(text) == points


@pytest.mark.parametrize("text", ["", "0", "-0", "abc", "1.5", "1e3", "--5", "9" * 13])
def test_bad_points(text: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        forms.points(text)
    assert refused.value.extra["field"] == "points"


def test_reason_is_trimmed_and_bounded() -> None:
    assert forms.reason("  goodwill\n") == "goodwill"
    assert forms.reason("line one\nline two") == "line one\nline two"
    for bad in ["", "   ", "x" * 501, "nul\x00byte", "bell\x07"]:
        with pytest.raises(ValidationFailed):
            forms.reason(bad)


def test_member_id() -> None:
    assert forms.member_id(" #42 ") == 42
    for bad in ["", "0", "-1", "x", str(2**63)]:
        with pytest.raises(ValidationFailed):
            forms.member_id(bad)
