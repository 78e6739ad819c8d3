"""Headless Chromium for browser tests.

Playwright cannot download its own browsers here, so tests drive the system Chromium
(Debian package ``chromium``) at ``/usr/bin/chromium``; set ``TALLY_CHROMIUM`` to use
another binary. CJK pages need the ``fonts-noto-cjk`` package.

A second sync Playwright cannot start in a process while one runs, and on pytest-xdist's
workers any browser test may follow any other: every browser test takes the process's one
Chromium from :func:`shared_chromium` (and a fresh context of its own).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Playwright

__all__ = [
    "CHROMIUM_ARGS",
    "DEFAULT_CHROMIUM",
    "chromium_path",
    "launch_chromium",
    "shared_chromium",
]

DEFAULT_CHROMIUM = "/usr/bin/chromium"

#: Flags for running as root in a container, without GPU, network chatter or /dev/shm.
CHROMIUM_ARGS: tuple[str, ...] = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


def _configured_path() -> str:
    return os.environ.get("TALLY_CHROMIUM") or DEFAULT_CHROMIUM


def chromium_path() -> str | None:
    """Return the Chromium executable to use, or None when it is not installed."""
    path = Path(_configured_path())
    return str(path) if path.is_file() and os.access(path, os.X_OK) else None


def launch_chromium(playwright: Playwright) -> Browser:
    """Launch headless Chromium with the system binary and test-friendly flags."""
    executable = chromium_path()
    if executable is None:
        raise FileNotFoundError(
            f"Chromium not found at {_configured_path()}; install the Debian 'chromium' "
            "package or set TALLY_CHROMIUM"
        )
    return playwright.chromium.launch(
        executable_path=executable,
        headless=True,
        args=list(CHROMIUM_ARGS),
    )


#: The process's one Playwright and Chromium, and how many users hold them.
_SHARED: dict[str, Any] = {}


@contextmanager
def shared_chromium() -> Iterator[Browser]:
    """The process's one headless Chromium: started by its first user, stopped when the last
    one lets go (a session fixture holds it to the end of the session)."""
    from playwright.sync_api import sync_playwright

    if not _SHARED:
        playwright = sync_playwright().start()
        try:
            _SHARED.update(playwright=playwright, browser=launch_chromium(playwright), users=0)
        except BaseException:
            playwright.stop()
            raise
    _SHARED["users"] += 1
    try:
        yield _SHARED["browser"]
    finally:
        _SHARED["users"] -= 1
        if not _SHARED["users"]:
            shared = dict(_SHARED)
            _SHARED.clear()
            shared["browser"].close()
            shared["playwright"].stop()
