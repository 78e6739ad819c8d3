"""Choosing the visitor's language."""

from __future__ import annotations

import pytest

from tally.web import i18n


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("en", "en"),
        ("en-US", "en"),
        ("EN_gb", "en"),
        ("zh", "zh-CN"),
        ("zh-CN", "zh-CN"),
        ("zh_Hans_CN", "zh-CN"),
        ("zh-TW", "zh-CN"),
        ("fr", None),
        ("", None),
        (None, None),
        ("  ", None),
    ],
)
def test_normalise(tag: str | None, expected: str | None) -> None:
    assert i18n.normalise(tag) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("en-US,en;q=0.9,zh-CN;q=0.8", "en"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh-CN"),
        ("fr-FR, de;q=0.9, en;q=0.5, zh;q=0.7", "zh-CN"),
        ("en;q=0, zh;q=0.1", "zh-CN"),
        ("en;q=oops, zh;q=0.5", "zh-CN"),
        ("fr, de", None),
        ("*", None),
        ("", None),
        (None, None),
    ],
)
def test_accept_language(header: str | None, expected: str | None) -> None:
    assert i18n.from_accept_language(header) == expected


def test_the_explicit_choice_wins_then_the_cookie_then_the_browser_then_the_default() -> None:
    assert i18n.negotiate("en", "zh-CN", "zh", "zh-CN") == "en"
    assert i18n.negotiate(None, "en", "zh", "zh-CN") == "en"
    assert i18n.negotiate("klingon", "bogus", "en", "zh-CN") == "en"
    assert i18n.negotiate(None, None, None, "en") == "en"
    assert i18n.negotiate(None, None, None, "xx") == "zh-CN"
