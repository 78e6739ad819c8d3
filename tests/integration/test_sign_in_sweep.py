"""The scheduler sweeps expired sessions and forgotten failure counts, and nothing else."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from tally.config import Settings
from tally.db.session import Database
from tally.kit.clock import utcnow
from tally.programme.runtime import ProgrammeCache
from tally.scheduler import Scheduler
from tally.sessions import service as web_sessions
from tally.sessions.domain import new_token
from tally.sessions.models import SessionKind, WebSession
from tally.staff import service as staff_service
from tally.staff.models import StaffRole
from tally.throttling import service as throttling
from tally.throttling.models import SignInThrottle

SETTINGS = Settings()
CLIENT = web_sessions.Client("192.0.2.1", "test")


def _start(db: Database, staff_id: int, at: datetime) -> int:
    with db.write() as session:
        row = web_sessions.start(
            session, SessionKind.CONSOLE, new_token(), at, CLIENT, staff_id=staff_id
        )
        return row.id


def test_the_scheduler_sweeps_expired_sessions_and_stale_counts(database: Database) -> None:
    now = utcnow()
    with database.write() as session:
        staff = staff_service.create(
            session, "ada", "a long password", StaffRole.ADMIN, "Ada", now - timedelta(days=2)
        )
    expired = _start(database, staff.id, now - timedelta(hours=13))
    live = _start(database, staff.id, now - timedelta(minutes=5))
    with database.write() as session:
        web_sessions.sign_out(session, live, now)  # ended, not expired: kept until it expires
    rules = throttling.throttles_for(SETTINGS)
    for moment, username in ((now - timedelta(hours=2), "stale"), (now, "fresh")):
        with database.write() as session:
            throttling.admit(session, rules.keys(username, None), moment)

    Scheduler(database, SETTINGS, ProgrammeCache(SETTINGS, 0), interval=1).run_once()

    with database.read() as session:
        assert session.scalars(select(WebSession.id)).all() == [live]
        assert session.scalars(select(SignInThrottle.key)).all() == ["account:fresh"]
    assert expired != live
