"""The per-installation secret file: private from its first byte, one secret however many
processes create it at once."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tally.config import installation_secret

RACERS = 8
# Each racer waits for the start file (polled: processes share no clock to inject), then asks
# for the secret at once.
RACER = """
import sys, time
from pathlib import Path
from tally.config import installation_secret
start = Path(sys.argv[2])
deadline = time.monotonic() + 30
while not start.exists():
    if time.monotonic() > deadline:
        raise SystemExit("no start")
    time.sleep(0.001)
print(installation_secret(Path(sys.argv[1])))
"""


def test_the_secret_is_made_once_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "var" / "secret.key"
    first = installation_secret(path)
    assert len(first) >= 40
    assert installation_secret(path) == first
    assert path.read_text() == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(item.name for item in path.parent.iterdir()) == ["secret.key"]


def test_the_secret_is_private_and_whole_before_it_has_its_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "secret.key"
    seen: list[tuple[int, str]] = []
    real_link = os.link

    def spy(source: str, target: Path) -> None:
        seen.append((stat.S_IMODE(os.stat(source).st_mode), Path(source).read_text()))
        real_link(source, target)

    monkeypatch.setattr(os, "link", spy)
    old_umask = os.umask(0)  # even a careless umask gives no one else a look
    try:
        secret = installation_secret(path)
    finally:
        os.umask(old_umask)
    assert seen == [(0o600, secret)]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_processes_starting_at_once_end_with_one_secret(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    start = tmp_path / "start"
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(path), str(start)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(RACERS)
    ]
    start.touch()
    secrets = {racer.communicate(timeout=60)[0].strip() for racer in racers}
    assert all(racer.returncode == 0 for racer in racers)
    assert secrets == {path.read_text()}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(item.name for item in tmp_path.iterdir()) == ["secret.key", "start"]


def test_an_empty_secret_file_is_refused_not_used(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    path.write_text("")
    with pytest.raises(RuntimeError, match="empty"):
        installation_secret(path)
