"""The programme in force: the highest version not cancelled whose ``effective_from`` has come,
or a one-tier default built from settings before any file is applied (ADR 5, ADR 11).

Servers read it through a :class:`ProgrammeCache`, which looks for new or cancelled versions at
most every ``programme_refresh_seconds`` and switches to a scheduled version at its instant by
its clock alone; commands and jobs read it afresh with :func:`effective`.

Whoever reads the programme for a transaction also stamps that transaction's session with the
:class:`~tally.programme.domain.Pricing` it read (the version and a point's value), which the
ledger writes on every entry and lot (:func:`pricing`); a transaction that never read it gets
the version in force at the instant it writes, read once.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tally.config import Settings
from tally.kit.clock import Clock, as_utc, utcnow
from tally.programme.domain import PointRate, Pricing, Programme
from tally.programme.models import ProgrammeVersion

PRICING = "tally.programme.pricing"  # the key of the stamp in ``Session.info``
#: A point's value under the built-in default programme ("0.01" CNY: 1 point = 1 fen).
DEFAULT_RATE = PointRate(1, 1, "CNY")


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


def version_in_force(session: Session, at: datetime) -> int | None:
    """The number of the version in force at ``at`` (``None``: the built-in default)."""
    return session.scalar(
        select(func.max(ProgrammeVersion.version)).where(
            ProgrammeVersion.cancelled_at.is_(None), ProgrammeVersion.effective_from <= at
        )
    )


def _content(session: Session, version: int) -> Programme:
    content = session.scalar(
        select(ProgrammeVersion.content).where(ProgrammeVersion.version == version)
    )
    return Programme.model_validate(content)


def pricing_of(version: int | None, programme: Programme) -> Pricing:
    return Pricing(version, programme.currency.point_value.rate)


def stamp(session: Session, found: Pricing) -> None:
    """Record on ``session`` that its transaction runs under ``found`` (see :func:`pricing`)."""
    session.info[PRICING] = found


def pricing(session: Session, at: datetime) -> Pricing:
    """What prices the rows this transaction writes: the programme the transaction read (its
    stamp), or else the version in force at ``at``, read once and stamped."""
    found = session.info.get(PRICING)
    if isinstance(found, Pricing):
        return found
    version = version_in_force(session, as_utc(at))
    rate = DEFAULT_RATE if version is None else _content(session, version).currency.point_value.rate
    found = Pricing(version, rate)
    session.info[PRICING] = found
    return found


def in_force(
    session: Session, settings: Settings, at: datetime | None = None
) -> tuple[int | None, Programme]:
    """``(version, programme)`` in force at ``at`` (now by default), read afresh."""
    version = version_in_force(session, as_utc(at or utcnow()))
    return version, default_programme(settings) if version is None else _content(session, version)


def effective(session: Session, settings: Settings, at: datetime | None = None) -> Programme:
    """The programme in force at ``at`` (now by default), read afresh; the session's writes are
    priced by it."""
    version, programme = in_force(session, settings, at)
    stamp(session, pricing_of(version, programme))
    return programme


@dataclass(frozen=True, slots=True)
class Scheduled:
    """A version known to take effect at ``effective_from``."""

    version: int
    effective_from: datetime
    programme: Programme


def _change_mark(session: Session) -> tuple[int | None, int]:
    """What changes when a version is applied or cancelled: one indexed aggregate query."""
    row = session.execute(
        select(func.max(ProgrammeVersion.version), func.count(ProgrammeVersion.cancelled_at))
    ).one()
    return (None if row[0] is None else int(row[0])), int(row[1])


def _timeline(session: Session, at: datetime) -> list[Scheduled]:
    """The version in force at ``at`` and every live version after it, in version order."""
    current = version_in_force(session, at)
    rows = session.execute(
        select(ProgrammeVersion.version, ProgrammeVersion.effective_from, ProgrammeVersion.content)
        .where(ProgrammeVersion.cancelled_at.is_(None))
        .where(ProgrammeVersion.version >= (current or 0))
        .order_by(ProgrammeVersion.version)
    ).all()
    return [
        Scheduled(int(version), as_utc(effective_from), Programme.model_validate(content))
        for version, effective_from, content in rows
    ]


class ProgrammeCache:
    """The programme in force, re-read when a version has been applied or cancelled.

    A version applied or cancelled by another process (``tally programme apply``) is seen
    within ``refresh_seconds``; a scheduled version it has seen takes effect at its instant by
    ``clock`` alone, with no query.
    """

    def __init__(self, settings: Settings, refresh_seconds: float, clock: Clock = utcnow) -> None:
        self._settings = settings
        self._refresh = refresh_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._checked = float("-inf")
        self._mark: tuple[int | None, int] | None = None
        self._default = default_programme(settings)
        self._timeline: list[Scheduled] = []
        self._stale = False  # the timeline was re-read: pick the version in force again
        self._version: int | None = None
        self._programme = self._default
        self._pricing = pricing_of(None, self._default)
        self._next_at: datetime | None = None

    def get(self, session: Session) -> Programme:
        """The programme in force, checking for new versions if the last check is stale; the
        session's writes are priced by it."""
        if time.monotonic() - self._checked >= self._refresh:
            mark = _change_mark(session)
            with self._lock:
                if mark != self._mark:
                    self._timeline = _timeline(session, as_utc(self._clock()))
                    self._mark = mark
                    self._stale = True
                self._checked = time.monotonic()
        with self._lock:
            self._advance()
            programme, found = self._programme, self._pricing
        stamp(session, found)
        return programme

    def _advance(self) -> None:
        """Switch to the version in force at the clock's now (called under the lock)."""
        if not self._stale and (self._next_at is None or as_utc(self._clock()) < self._next_at):
            return
        now = as_utc(self._clock())
        due = [item for item in self._timeline if item.effective_from <= now]
        chosen = max(due, key=lambda item: item.version) if due else None
        self._stale = False
        self._version = None if chosen is None else chosen.version
        self._programme = self._default if chosen is None else chosen.programme
        self._pricing = pricing_of(self._version, self._programme)
        later = [item.effective_from for item in self._timeline if item.effective_from > now]
        self._next_at = min(later) if later else None

    @property
    def fresh(self) -> Programme | None:
        """The programme in force when the versions were checked within ``refresh_seconds``
        (no query); ``None`` when a check is due, which only ``get`` makes."""
        if time.monotonic() - self._checked >= self._refresh:
            return None
        return self.current

    @property
    def current(self) -> Programme:
        """The programme in force by the clock, among the versions last read (no query)."""
        with self._lock:
            self._advance()
            return self._programme

    @property
    def zone(self) -> ZoneInfo:
        """The programme's time zone."""
        return self.current.zone

    @property
    def version(self) -> int | None:
        """The version in force among those last read (``None``: the default programme)."""
        self.current  # noqa: B018 - switches at a scheduled instant that has come
        return self._version

    @property
    def scheduled(self) -> list[Scheduled]:
        """The versions last read that are still to take effect, soonest first."""
        now = as_utc(self._clock())
        with self._lock:
            return [item for item in self._timeline if item.effective_from > now]
