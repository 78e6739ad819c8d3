"""Web sessions: start one at sign-in, find the live one a cookie names, end one or many, sweep.

The cookie holds a random token; the row holds its SHA-256, who signed in, when, from where and
until when. Ending a row ends every copy of the cookie at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tally.errors import LinkAlreadyUsed
from tally.sessions import repository
from tally.sessions.domain import (
    CONSOLE_LIFETIME,
    MEMBER_LIFETIME,
    Lifetime,
    is_live,
    is_token,
    needs_touch,
    short_user_agent,
    token_hash,
)
from tally.sessions.models import EndReason, SessionKind, WebSession

LIFETIMES = {SessionKind.CONSOLE: CONSOLE_LIFETIME, SessionKind.MEMBER: MEMBER_LIFETIME}


@dataclass(frozen=True, slots=True)
class Client:
    """Where a sign-in came from."""

    address: str | None
    user_agent: str | None


def lifetime_of(kind: SessionKind) -> Lifetime:
    """How long sessions of ``kind`` last."""
    return LIFETIMES[kind]


def start(
    session: Session,
    kind: SessionKind,
    token: str,
    now: datetime,
    client: Client,
    *,
    staff_id: int | None = None,
    member_id: int | None = None,
    link_token: str | None = None,
) -> WebSession:
    """A new session for the staff member or the member; ``link_already_used`` for a used link."""
    row = WebSession(
        token_hash=token_hash(token),
        kind=kind,
        staff_id=staff_id,
        member_id=member_id,
        link_hash=None if link_token is None else token_hash(link_token),
        created_at=now,
        last_seen_at=now,
        expires_at=now + lifetime_of(kind).absolute,
        address=client.address[:64] if client.address else None,
        user_agent=short_user_agent(client.user_agent),
    )
    if link_token is None:
        return repository.add(session, row)
    try:
        with session.begin_nested():
            return repository.add(session, row)
    except IntegrityError as exc:
        raise LinkAlreadyUsed("This member link was already used to sign in.") from exc


def live(
    session: Session, kind: SessionKind, token: str | None, now: datetime
) -> WebSession | None:
    """The session ``token`` names, if it is of ``kind`` and still live at ``now``."""
    if token is None or not is_token(token):
        return None
    row = repository.by_token_hash(session, kind, token_hash(token))
    if row is None:
        return None
    alive = is_live(
        ended_at=row.ended_at,
        expires_at=row.expires_at,
        last_seen_at=row.last_seen_at,
        idle=lifetime_of(kind).idle,
        now=now,
    )
    return row if alive else None


def opened_by_link(session: Session, link_token: str) -> WebSession | None:
    """The session a member link opened, if it was used."""
    return repository.by_link_hash(session, token_hash(link_token))


def touch_if_stale(session: Session, row: WebSession, now: datetime) -> bool:
    """Record that the session was used (at most once a minute); whether it wrote."""
    if not needs_touch(row.last_seen_at, now):
        return False
    repository.touch(session, row.id, now)
    return True


def sign_out(session: Session, session_id: int, now: datetime) -> bool:
    """End a session because its owner signed out; ``False`` when it had ended already."""
    return repository.end(session, EndReason.SIGNED_OUT, now, session_id=session_id) == 1


def sign_out_token(session: Session, kind: SessionKind, token: str | None, now: datetime) -> bool:
    """End the live session ``token`` names, if any (a browser signing in afresh over it)."""
    row = live(session, kind, token, now)
    return row is not None and sign_out(session, row.id, now)


def end_of_staff(session: Session, staff_id: int, session_id: int, now: datetime) -> bool:
    """End one of a staff member's own sessions; ``False`` when it is not theirs or has ended."""
    ended = repository.end(session, EndReason.ENDED, now, session_id=session_id, staff_id=staff_id)
    return ended == 1


def end_others_of_staff(session: Session, staff_id: int, keep_id: int, now: datetime) -> int:
    """End every session of a staff member but ``keep_id``; how many ended."""
    return repository.end(session, EndReason.ENDED, now, staff_id=staff_id, keep_id=keep_id)


def open_of_staff(session: Session, staff_id: int, now: datetime) -> Sequence[WebSession]:
    """A staff member's console sessions that may still be used, most recently used first."""
    idle = CONSOLE_LIFETIME.idle
    return [
        row
        for row in repository.open_of_staff(session, staff_id, now)
        if now - row.last_seen_at < idle
    ]


def sweep(session: Session, now: datetime) -> int:
    """Delete the sessions past their expiry; how many went.

    A member session outlives the link that opened it, so a swept row can no longer be replayed.
    """
    return repository.delete_expired(session, now)


def expired_count(session: Session, now: datetime) -> int:
    """How many sessions :func:`sweep` would delete at ``now`` (reads only)."""
    return repository.count_expired(session, now)
