"""Documentation that a test keeps in step with the code."""

from __future__ import annotations

from pathlib import Path

from tally.cli.reference import render
from tally.config import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs"
README = DOCS.parent / "README.md"


def test_cli_reference_is_current() -> None:
    assert (DOCS / "cli.md").read_text() == render(), (
        "docs/cli.md is stale: python -m tally.cli.reference > docs/cli.md"
    )


def test_every_setting_is_documented_in_the_readme() -> None:
    text = README.read_text()
    missing = [
        f"TALLY_{name.upper()}"
        for name in Settings.model_fields
        if f"TALLY_{name.upper()}" not in text
    ]
    assert not missing, f"README lacks {missing}"


def test_readme_opens_with_the_two_setup_commands() -> None:
    lines = [line for line in README.read_text().splitlines() if line.strip()]
    block = lines[lines.index("```sh") + 1 : lines.index("```")]
    assert [line.split("#")[0].strip() for line in block] == ["make demo", "make test"]
