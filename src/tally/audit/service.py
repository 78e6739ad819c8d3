"""The audit log's use cases: record an action (in the caller's transaction) and browse it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from tally.audit import repository
from tally.audit.domain import (
    PAGE_SIZE,
    AuditFilter,
    check_action,
    clean_address,
    clean_details,
    parse_actor,
)
from tally.audit.models import AuditEntry


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    member_id: int | None = None,
    details: dict[str, object] | None = None,
    address: str | None = None,
    now: datetime,
) -> None:
    """Append an entry in the same transaction as the action it records (flushed, not committed).

    ``actor`` is ``"staff:<id>"``, ``"partner:<id>"``, ``"member:<id>"`` or ``"system"``;
    ``action`` a dotted name such as ``member.freeze``.
    """
    parse_actor(actor)
    repository.insert_entry(
        session,
        at=now,
        actor=actor,
        action=check_action(action),
        member_id=member_id,
        details=clean_details(details),
        address=clean_address(address),
    )


@dataclass(frozen=True, slots=True)
class AuditPage:
    """One page of the log, newest first; ``next_before`` continues it (``None``: the end)."""

    entries: Sequence[AuditEntry]
    next_before: int | None


def browse(
    session: Session,
    where: AuditFilter,
    *,
    before_id: int | None = None,
    limit: int = PAGE_SIZE,
) -> AuditPage:
    """The entries matching ``where``, newest first, ``limit`` at a time."""
    found = repository.entries(session, where, before_id=before_id, limit=limit + 1)
    page = found[:limit]
    more = len(found) > limit
    return AuditPage(page, page[-1].id if more and page else None)


def actions_in_use(session: Session) -> list[str]:
    """Every action name recorded so far (for the filter)."""
    return repository.actions_in_use(session)


def actors_in_use(session: Session) -> list[str]:
    """Every actor recorded so far (for the filter)."""
    return repository.actors_in_use(session)
