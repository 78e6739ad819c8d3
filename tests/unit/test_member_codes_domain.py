"""Member code rules and the Code 128 drawing, without a database."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from tally.kit.barcodes import PATTERNS, code128c_modules, code128c_svg, code128c_symbols
from tally.member_codes import domain

NOON = datetime(2027, 3, 1, 4, 0, 0, tzinfo=UTC)


def test_a_new_code_is_sixteen_digits_from_the_whole_range() -> None:
    assert domain.new_code(lambda _limit: 42) == "0000000000000042"
    assert domain.new_code(lambda limit: limit - 1) == "9" * 16
    assert domain.is_well_formed(domain.new_code())


def test_only_sixteen_ascii_digits_are_a_code() -> None:
    assert domain.is_well_formed("0123456789012345")
    for text in ("", "123", "0123456789O12345", "٠١٢٣٤٥٦٧٨٩٠١٢٣٤٥", "01234567890123456"):
        assert not domain.is_well_formed(text)


def test_the_digest_is_keyed() -> None:
    code = "0123456789012345"
    assert domain.digest(code, "a") == domain.digest(code, "a")
    assert domain.digest(code, "a") != domain.digest(code, "b")
    assert code not in domain.digest(code, "a")
    assert len(domain.digest(code, "a")) == 64


def test_grouping_windows_and_timing() -> None:
    assert domain.grouped("0123456789012345") == "0123 4567 8901 2345"
    assert domain.window_of(NOON + timedelta(seconds=59.5)) == NOON
    assert domain.retry_after(NOON + timedelta(seconds=10)) == 50
    assert domain.retry_after(NOON + timedelta(seconds=59.9)) == 1
    assert domain.renew_in(NOON + domain.LIFETIME, NOON) == 45
    assert domain.renew_in(NOON, NOON) == 1


def test_code128_symbols_of_a_known_code() -> None:
    # Start C, 12 34 56 78 90 12 34 56, check (105 + Σ position × value) mod 103, stop.
    assert code128c_symbols("1234567890123456") == [105, 12, 34, 56, 78, 90, 12, 34, 56, 19, 106]
    # The same bars python-barcode draws for this code.
    assert code128c_modules("1234567890123456") == (
        "1101001110010110011100100010110001110001011011000010100110111101101011001110010001"
        "01100011100010110110010111001100011101011"
    )


def test_every_pattern_is_a_well_formed_code128_symbol() -> None:
    assert len(PATTERNS) == 107
    assert len(set(PATTERNS)) == 107
    for pattern in PATTERNS[:-1]:
        assert len(pattern) == 11
        runs = re.findall(r"1+|0+", pattern)
        assert len(runs) == 6
        assert (pattern[0], pattern[-1]) == ("1", "0")
        assert sum(len(run) for run in runs[::2]) % 2 == 0  # even bar modules
    assert PATTERNS[-1] == "1100011101011"


@given(st.text(alphabet="0123456789", min_size=1, max_size=8).map(lambda text: text * 2))
def test_the_drawing_has_one_bar_per_run_of_bar_modules(digits: str) -> None:
    modules = code128c_modules(digits)
    svg = code128c_svg(digits, label="code")
    assert svg.count("h-") == len(re.findall(r"1+", modules))
    assert f'viewBox="0 0 {len(modules) + 20} 60"' in svg


def test_odd_or_non_digit_input_is_refused() -> None:
    for text in ("", "123", "12a4"):
        try:
            code128c_symbols(text)
        except ValueError:
            continue
        raise AssertionError(text)


def test_the_label_is_escaped() -> None:
    svg = code128c_svg("12", label='<b> & "x"')
    assert "aria-label='&lt;b&gt; &amp; \"x\"'" in svg
    assert "<b>" not in svg
