"""Web sessions on both databases: a member link opens one session even when raced, and a
session is live only until it ends, idles or expires."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from support.race import race
from tally.api.member_links import LINK_LIFETIME
from tally.db.session import Database
from tally.errors import LinkAlreadyUsed
from tally.flows import enrolment
from tally.members.service import Identity
from tally.sessions import service as web_sessions
from tally.sessions.domain import CONSOLE_LIFETIME, MEMBER_LIFETIME, new_token
from tally.sessions.models import SessionKind, WebSession

T0 = datetime(2026, 12, 3, 1, 0, tzinfo=UTC)
CLIENT = web_sessions.Client("192.0.2.1", "test")


def _member(db: Database) -> int:
    with db.write() as session:
        member, _created = enrolment.enrol(session, Identity("phone", "13800000009"), {}, T0)
    return member


def test_a_raced_member_link_opens_exactly_one_session(database: Database) -> None:
    member, link = _member(database), new_token()

    def work(_index: int) -> bool:
        try:
            with database.write() as session:
                web_sessions.start(
                    session,
                    SessionKind.MEMBER,
                    new_token(),
                    T0,
                    CLIENT,
                    member_id=member,
                    link_token=link,
                )
        except LinkAlreadyUsed:
            return False
        return True

    outcomes = race(6, work)
    assert outcomes.count(True) == 1, outcomes
    with database.read() as session:
        assert session.scalar(select(func.count()).select_from(WebSession)) == 1
        assert web_sessions.opened_by_link(session, link) is not None


def test_a_session_is_live_until_it_ends_idles_or_expires(database: Database) -> None:
    member, token = _member(database), new_token()
    with database.write() as session:
        row = web_sessions.start(session, SessionKind.MEMBER, token, T0, CLIENT, member_id=member)
    with database.read() as session:
        assert web_sessions.live(session, SessionKind.MEMBER, token, T0) is not None
        assert web_sessions.live(session, SessionKind.CONSOLE, token, T0) is None  # another kind
        assert web_sessions.live(session, SessionKind.MEMBER, new_token(), T0) is None
        assert web_sessions.live(session, SessionKind.MEMBER, "not a token", T0) is None
        expiry = T0 + MEMBER_LIFETIME.absolute
        assert web_sessions.live(session, SessionKind.MEMBER, token, expiry) is None
    with database.write() as session:
        assert web_sessions.sign_out(session, row.id, T0 + timedelta(minutes=1))
        assert not web_sessions.sign_out(session, row.id, T0 + timedelta(minutes=2))
    with database.read() as session:
        assert web_sessions.live(session, SessionKind.MEMBER, token, T0) is None


def test_member_sessions_outlive_the_links_that_open_them() -> None:
    """A swept member session can never make its link usable again: the link expired first."""
    assert MEMBER_LIFETIME.absolute > LINK_LIFETIME
    assert CONSOLE_LIFETIME.idle < CONSOLE_LIFETIME.absolute
