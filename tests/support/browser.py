"""Headless Chromium for browser tests.

Playwright cannot download its own browsers here, so tests drive the system Chromium
(Debian package ``chromium``) at ``/usr/bin/chromium``; set ``TALLY_CHROMIUM`` to use
another binary. CJK pages need the ``fonts-noto-cjk`` package.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Playwright

__all__ = ["CHROMIUM_ARGS", "DEFAULT_CHROMIUM", "chromium_path", "launch_chromium"]

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
