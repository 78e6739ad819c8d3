"""Every query of job failures."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from tally.job_failures.models import JobFailure


def record(session: Session, rows: Sequence[dict[str, Any]], now: datetime) -> None:
    """Record failures (``job``, ``row_kind``, ``row_id``, ``error_code``, ``message``): a row
    already recorded for the job counts one more failure and keeps the latest error."""
    if not rows:
        return
    values = [{**row, "failures": 1, "first_failed_at": now, "last_failed_at": now} for row in rows]
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(JobFailure).values(values)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["job", "row_kind", "row_id"],
            set_={
                "error_code": statement.excluded.error_code,
                "message": statement.excluded.message,
                "failures": JobFailure.failures + 1,
                "last_failed_at": statement.excluded.last_failed_at,
            },
        )
    )


def recent(session: Session, limit: int = 100, job: str | None = None) -> list[JobFailure]:
    """The failures last seen most recently first (of ``job`` when given)."""
    query = select(JobFailure).order_by(JobFailure.last_failed_at.desc(), JobFailure.id.desc())
    if job is not None:
        query = query.where(JobFailure.job == job)
    return list(session.scalars(query.limit(limit)))
