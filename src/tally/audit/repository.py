"""Every query of the audit log (inserts and reads only: the log is append-only)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from tally.audit.domain import AuditFilter
from tally.audit.models import AuditEntry


def insert_entry(
    session: Session,
    *,
    at: datetime,
    actor: str,
    action: str,
    member_id: int | None,
    details: dict[str, Any] | None,
    address: str | None,
) -> None:
    """Append one entry."""
    session.execute(
        insert(AuditEntry).values(
            at=at,
            actor=actor,
            action=action,
            member_id=member_id,
            details=details,
            address=address,
        )
    )


def entries(
    session: Session, where: AuditFilter, *, before_id: int | None, limit: int
) -> Sequence[AuditEntry]:
    """Entries matching ``where``, newest first, older than ``before_id`` when given."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if where.actor is not None:
        query = query.where(AuditEntry.actor == where.actor)
    if where.action is not None:
        query = query.where(AuditEntry.action == where.action)
    if where.member_id is not None:
        query = query.where(AuditEntry.member_id == where.member_id)
    if where.since is not None:
        query = query.where(AuditEntry.at >= where.since)
    if where.until is not None:
        query = query.where(AuditEntry.at < where.until)
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    return session.scalars(query).all()


def actions_in_use(session: Session) -> list[str]:
    """Every distinct action name recorded so far."""
    return sorted(session.scalars(select(AuditEntry.action).distinct()))


def actors_in_use(session: Session) -> list[str]:
    """Every distinct actor recorded so far."""
    return sorted(session.scalars(select(AuditEntry.actor).distinct()))
