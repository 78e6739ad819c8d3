"""Gates that keep the code base honest: lint, types, import layers, migrations in step."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command

from tally.db.session import Database
from tally.schema import alembic_config

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    "tool",
    [
        ["ruff", "check", "src", "tests", "bench"],
        ["ruff", "format", "--check", "src", "tests", "bench"],
        ["lint-imports"],
        ["mypy"],
    ],
    ids=["ruff", "ruff-format", "import-layers", "mypy"],
)
def test_static_checks_pass(tool: list[str]) -> None:
    result = subprocess.run(
        [str(BIN / tool[0]), *tool[1:]], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_models_and_migrations_agree(database: Database) -> None:
    """`alembic check`: the newest migration creates exactly what the models declare."""
    command.check(alembic_config(database.engine))
