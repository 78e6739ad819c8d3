"""The programme in force: the latest applied version, or a one-tier default built from settings.

Servers read it through a :class:`ProgrammeCache`, which looks for a newer version at most every
``programme_refresh_seconds``; commands and jobs read it afresh with :func:`effective`.
"""

from __future__ import annotations

import threading
import time
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tally.config import Settings
from tally.programme.domain import Programme
from tally.programme.models import ProgrammeVersion


def default_programme(settings: Settings) -> Programme:
    """The programme before any file is applied: the configured currency and a single tier."""
    return Programme.model_validate(
        {
            "currency": {
                "code": settings.currency_code,
                "names": {"zh-CN": settings.currency_name_zh, "en": settings.currency_name_en},
                "point_value": {"amount": "0.01", "currency": "CNY"},
                "default_validity_days": settings.points_validity_days,
                "timezone": settings.timezone,
            },
            "tiers": [
                {
                    "code": "MEMBER",
                    "names": {"zh-CN": "会员", "en": "Member"},
                    "threshold": 0,
                    "earn_multiplier": "1",
                }
            ],
            "tier_model": {"kind": "lifetime"},
        }
    )


def _latest_version(session: Session) -> int | None:
    return session.scalar(select(func.max(ProgrammeVersion.version)))


def _content(session: Session, version: int) -> Programme:
    content = session.scalar(
        select(ProgrammeVersion.content).where(ProgrammeVersion.version == version)
    )
    return Programme.model_validate(content)


def effective(session: Session, settings: Settings) -> Programme:
    """The programme in force now (read afresh)."""
    version = _latest_version(session)
    return default_programme(settings) if version is None else _content(session, version)


class ProgrammeCache:
    """The programme in force, re-read when a newer version has been applied.

    A version applied by another process (``tally programme apply``) takes effect within
    ``refresh_seconds``.
    """

    def __init__(self, settings: Settings, refresh_seconds: float) -> None:
        self._settings = settings
        self._refresh = refresh_seconds
        self._lock = threading.Lock()
        self._checked = float("-inf")
        self._version: int | None = None
        self._programme = default_programme(settings)

    def get(self, session: Session) -> Programme:
        """The programme in force, checking for a new version if the last check is stale."""
        if time.monotonic() - self._checked < self._refresh:
            return self._programme
        version = _latest_version(session)
        with self._lock:
            if version != self._version:
                self._programme = (
                    default_programme(self._settings)
                    if version is None
                    else _content(session, version)
                )
                self._version = version
            self._checked = time.monotonic()
            return self._programme

    @property
    def current(self) -> Programme:
        """The programme last read (without looking for a newer one)."""
        return self._programme

    @property
    def zone(self) -> ZoneInfo:
        """The programme's time zone."""
        return self._programme.zone

    @property
    def version(self) -> int | None:
        """The version last read (``None``: the default programme)."""
        return self._version
