"""Every query of web sessions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.orm import Session

from tally.sessions.models import EndReason, SessionKind, WebSession


def add(session: Session, row: WebSession) -> WebSession:
    """Insert a new session (flushed, so its id is known and the unique hashes are checked)."""
    session.add(row)
    session.flush()
    return row


def by_token_hash(session: Session, kind: SessionKind, token_hash: str) -> WebSession | None:
    """The session of this kind whose token hashes to ``token_hash``."""
    return session.scalar(
        select(WebSession).where(WebSession.token_hash == token_hash, WebSession.kind == kind)
    )


def by_link_hash(session: Session, link_hash: str) -> WebSession | None:
    """The session a member link opened."""
    return session.scalar(select(WebSession).where(WebSession.link_hash == link_hash))


def touch(session: Session, session_id: int, now: datetime) -> None:
    """Bring ``last_seen_at`` up to date (of a session that has not ended)."""
    session.execute(
        update(WebSession)
        .where(WebSession.id == session_id, WebSession.ended_at.is_(None))
        .values(last_seen_at=now)
    )


def end(
    session: Session,
    reason: EndReason,
    now: datetime,
    *,
    session_id: int | None = None,
    staff_id: int | None = None,
    keep_id: int | None = None,
) -> int:
    """End the sessions that have not ended yet, by id and/or staff member; how many ended."""
    query = update(WebSession).where(WebSession.ended_at.is_(None))
    if session_id is not None:
        query = query.where(WebSession.id == session_id)
    if staff_id is not None:
        query = query.where(WebSession.staff_id == staff_id)
    if keep_id is not None:
        query = query.where(WebSession.id != keep_id)
    result = session.execute(query.values(ended_at=now, end_reason=reason))
    return int(result.rowcount)  # type: ignore[attr-defined]


def open_of_staff(session: Session, staff_id: int, now: datetime) -> Sequence[WebSession]:
    """A staff member's console sessions that have neither ended nor expired, newest first."""
    return session.scalars(
        select(WebSession)
        .where(
            WebSession.staff_id == staff_id,
            WebSession.kind == SessionKind.CONSOLE,
            WebSession.ended_at.is_(None),
            WebSession.expires_at > now,
        )
        .order_by(WebSession.last_seen_at.desc(), WebSession.id.desc())
    ).all()


def delete_expired(session: Session, now: datetime) -> int:
    """Delete every session past its expiry (ended or not); how many went."""
    result = session.execute(delete(WebSession).where(_expired(now)))
    return int(result.rowcount)  # type: ignore[attr-defined]


def _expired(now: datetime) -> ColumnElement[bool]:
    return WebSession.expires_at <= now


def count_expired(session: Session, now: datetime) -> int:
    """How many sessions :func:`delete_expired` would delete (for a dry run)."""
    query = select(func.count()).select_from(WebSession).where(_expired(now))
    return int(session.scalar(query) or 0)
