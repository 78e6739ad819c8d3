"""What the CLI suites share: a fresh SQLite file the commands use, and running a command."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from tally.cli.main import app as cli
from tally.config import get_settings


def run(*args: str, code: int = 0) -> Result:
    """Run ``tally ARGS`` in-process and check its exit code."""
    result = CliRunner().invoke(cli, list(args), prog_name="tally")
    assert result.exit_code == code, (args, result.exit_code, result.output, result.exception)
    return result


@pytest.fixture
def database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh SQLite file the commands use (``TALLY_DATABASE_URL``), the cwd a temp dir."""
    url = f"sqlite:///{tmp_path / 'tally.db'}"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TALLY_DATABASE_URL", url)
    monkeypatch.setenv("TALLY_SECRET_KEY", "cli-test-secret-" + "y" * 32)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def jobs_clock(monkeypatch: pytest.MonkeyPatch, now: datetime) -> None:
    """Make ``tally jobs`` take ``now`` for the present (a job may not run ahead of the clock)."""
    monkeypatch.setattr("tally.cli.jobs.utcnow", lambda: now)
