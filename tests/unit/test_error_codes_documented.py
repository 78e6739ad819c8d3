"""Every error code Tally can answer with is in docs/api.md's error table, with its status."""

from __future__ import annotations

import re
from pathlib import Path

from tally.errors import ALL_ERRORS

API_DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
ROW = re.compile(r"^\| (\d{3}) \| (.+?) \|", re.MULTILINE)
CODE = re.compile(r"`([a-z_]+)`")


def documented() -> dict[str, set[int]]:
    """The codes of the error table, each with the statuses its rows give it."""
    found: dict[str, set[int]] = {}
    for status, cell in ROW.findall(API_DOC.read_text(encoding="utf-8")):
        for code in CODE.findall(cell):
            found.setdefault(code, set()).add(int(status))
    return found


def test_every_error_code_is_in_the_error_table_with_its_status() -> None:
    table = documented()
    missing = sorted(error.code for error in ALL_ERRORS if error.code not in table)
    assert not missing, f"docs/api.md's error table lacks {missing}"
    wrong = sorted(
        f"{error.code} ({error.status})"
        for error in ALL_ERRORS
        if error.status not in table[error.code]
    )
    assert not wrong, f"docs/api.md gives these codes another status: {wrong}"


def test_the_table_names_no_code_that_does_not_exist() -> None:
    known = {error.code for error in ALL_ERRORS}
    assert set(documented()) <= known, sorted(set(documented()) - known)
