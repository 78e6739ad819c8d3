"""Housekeeping of sign-ins: expired sessions and stale failure counts are deleted."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from tally.sessions import service as web_sessions
from tally.throttling import service as throttling
from tally.throttling.domain import FORGET_AFTER

Writer = Callable[[], AbstractContextManager[Session]]


@dataclass(frozen=True, slots=True)
class Swept:
    """What one sweep deleted."""

    sessions: int
    throttles: int


def sweep(write: Writer, now: datetime) -> Swept:
    """Delete the sessions past their expiry and the failure counts nothing remembers any more
    (idempotent; safe beside itself and beside sign-ins)."""
    with write() as session:
        return Swept(
            sessions=web_sessions.sweep(session, now),
            throttles=throttling.sweep(session, now, FORGET_AFTER),
        )


def preview(session: Session, now: datetime) -> Swept:
    """What :func:`sweep` would delete at ``now``, counted without deleting (``--dry-run``)."""
    return Swept(
        sessions=web_sessions.expired_count(session, now),
        throttles=throttling.stale_count(session, now, FORGET_AFTER),
    )
