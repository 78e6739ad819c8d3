"""Jobs that go on past a row they cannot process: the row is isolated, recorded, reported.

A job works set-based, a batch of rows per transaction. When a batch's transaction fails, the
batch is split in two and each half is done in a transaction of its own, and so on: the rows
that still fail alone are isolated in about ``2 × log2(batch)`` transactions, not one per row,
while every other row is done (and committed) as usual. The rows that fail are recorded in
``job_failures`` (one row per job and row, counting the runs that met it) and reported in the
job's output; the next run tries them again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from tally.db.raw import error_text, is_transient
from tally.errors import TallyError
from tally.job_failures import repository
from tally.kit.clock import utcnow

UnitOfWork = Callable[[], AbstractContextManager[Session]]
K = TypeVar("K")
R = TypeVar("R")
MAX_MESSAGE = 500
log = logging.getLogger("tally.jobs")


@dataclass(frozen=True, slots=True)
class Failure:
    """A row a job could not process, and why (``code``: the error's stable code, or its kind)."""

    row_kind: str
    row_id: str
    code: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.row_kind, "id": self.row_id, "code": self.code, "error": self.message}


def failure_of(row_kind: str, row_id: object, error: Exception) -> Failure:
    """What is recorded of ``error``, met processing one row."""
    if isinstance(error, TallyError):
        code, message = error.code, error.detail
    elif is_transient(error):
        code, message = "database_busy", error_text(error)
    else:
        code, message = type(error).__name__, error_text(error)
    return Failure(row_kind, str(row_id), code, message.strip()[:MAX_MESSAGE])


def isolating(
    unit_of_work: UnitOfWork,
    rows: Sequence[K],
    work: Callable[[Session, Sequence[K]], R],
    row_kind: str,
    row_id: Callable[[K], object] = lambda row: row,
) -> tuple[list[R], list[Failure]]:
    """Do ``work`` over ``rows`` in one transaction; when it fails, over each half in a
    transaction of its own, and so on down to single rows. Returns the results of the
    transactions that committed and the rows that failed alone (named by ``row_id``)."""
    results: list[R] = []
    failures: list[Failure] = []
    pending: list[Sequence[K]] = [rows] if rows else []
    while pending:
        part = pending.pop()
        try:
            with unit_of_work() as session:
                result = work(session, part)
        except Exception as error:
            if len(part) == 1:
                failures.append(failure_of(row_kind, row_id(part[0]), error))
                continue
            middle = len(part) // 2
            pending.extend([part[middle:], part[:middle]])  # the first half first
            continue
        results.append(result)
    return results, failures


def reported(failures: Sequence[Failure], sample: int = 5) -> dict[str, Any]:
    """What a run reports of the rows it could not process (nothing when there were none):
    how many, and the first few."""
    if not failures:
        return {}
    return {"failures": len(failures), "failed": [item.as_dict() for item in failures[:sample]]}


def record(
    unit_of_work: UnitOfWork,
    job: str,
    failures: Sequence[Failure],
    now: datetime | None = None,
) -> None:
    """Record what ``job`` could not process, in a transaction of its own (when: ``now``, by
    default the clock's, whatever moment the job ran for), and log it."""
    if not failures:
        return
    for failure in failures[:10]:
        log.warning(
            "%s could not process %s %s (%s): %s",
            job,
            failure.row_kind,
            failure.row_id,
            failure.code,
            failure.message,
        )
    with unit_of_work() as session:
        repository.record(
            session,
            [
                {
                    "job": job,
                    "row_kind": failure.row_kind,
                    "row_id": failure.row_id,
                    "error_code": failure.code,
                    "message": failure.message,
                }
                for failure in failures
            ],
            now or utcnow(),
        )
