"""The tier evaluation job: downgrades, grace periods, catch-up upgrades, programme changes.

Set-based, vectorised and in bounded memory: members are taken in keyset-paginated chunks; in
each chunk's transaction one statement reads their tier rows with their growth summed, the
decisions are column expressions over the whole chunk (:mod:`tally.tiers.decisions`), and the
changes are written by a few set-based statements (:func:`repository.apply_decisions`): no
Python loop and no statement per member. Every change applies only to the row at the
``version`` read: a concurrent run (or an earn that upgraded the member meanwhile) makes it
match no row, and only the run whose update succeeded writes history. A member evaluated at or
after ``as_of`` only ever moves up, so running twice at the same moment changes nothing the
second time.

:func:`preview` reads and decides the same way and writes nothing (``--dry-run``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import polars as pl
from sqlalchemy.orm import Session

from tally.job_failures.service import Failure, isolating, reported
from tally.job_failures.service import record as record_failures
from tally.programme.domain import Programme
from tally.tiers import decisions, domain, repository

UnitOfWork = Callable[[], AbstractContextManager[Session]]
CHUNK = 10_000


@dataclass(frozen=True, slots=True)
class TierReport:
    """What one evaluation run did: members read, changes made by reason, updates lost to a
    concurrent writer."""

    members: int
    changes: dict[str, int] = field(default_factory=dict)
    skipped: int = 0
    # Members the run could not evaluate (passed over, recorded in job_failures).
    failures: tuple[Failure, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "members": self.members,
            "changes": dict(self.changes),
            "skipped": self.skipped,
            **reported(self.failures),
        }


def state_chunks(session: Session, chunk: int = CHUNK) -> Iterator[list[repository.StateRow]]:
    """Every tier row in member order, ``chunk`` rows at a time (keyset pagination)."""
    after = 0
    while rows := repository.state_chunk(session, after, chunk):
        yield rows
        after = rows[-1].member_id


def qualifying_values(
    session: Session, rows: list[repository.StateRow], programme: Programme, as_of: datetime
) -> dict[int, domain.Qualifying]:
    """The qualifying growth of each row's member at ``as_of`` under ``programme``'s tier model,
    summed for the whole chunk by one GROUP BY (none for a lifetime model)."""
    if programme.tier_model.kind == "lifetime":
        return {row.member_id: domain.qualifying(row.lifetime_growth, None) for row in rows}
    found = domain.windows(programme.tier_model, as_of, programme.zone)
    sums = repository.chunk_sums(
        session, rows[0].member_id, rows[-1].member_id, found.current, found.previous
    )
    values = {}
    for row in rows:
        current, previous = sums.get(row.member_id, (0, 0))
        values[row.member_id] = domain.qualifying(
            current, previous if found.previous is not None else None
        )
    return values


def decide(
    session: Session, first: int, last: int, programme: Programme, as_of: datetime
) -> pl.DataFrame:
    """The members ``first..last`` whose evaluation at ``as_of`` changes something, and how
    (:func:`tally.tiers.decisions.decide`; reads only)."""
    model = programme.tier_model
    found = domain.windows(model, as_of, programme.zone)
    states = repository.state_frame(session, first, last, model.kind, as_of, found)
    return decisions.decide(programme, states)


def evaluate(
    unit_of_work: UnitOfWork,
    as_of: datetime,
    programme: Programme,
    chunk: int = CHUNK,
    programme_version: int | None = None,
) -> TierReport:
    """Evaluate every member with a tier row at ``as_of`` (idempotent; safe to run concurrently).

    Each chunk is read, decided and written in one transaction; a chunk that fails is split
    until the members it cannot evaluate stand alone, which are passed over and recorded
    (job_failures)."""
    after = 0
    members = skipped = 0
    counts: Counter[str] = Counter()
    failed: list[Failure] = []
    while True:
        with unit_of_work() as session:
            ids = repository.chunk_ids(session, after, chunk)
        if not ids:
            break
        done, failures = isolating(
            unit_of_work,
            ids,
            lambda session, part: _evaluate(session, part, as_of, programme, programme_version),
            "member",
        )
        for part_counts, part_skipped in done:
            counts.update(part_counts)
            skipped += part_skipped
        failed.extend(failures)
        members += len(ids)
        after = ids[-1]
    record_failures(unit_of_work, "tiers", failed)
    return TierReport(
        members=members,
        changes=dict(sorted(counts.items())),
        skipped=skipped,
        failures=tuple(failed),
    )


def _evaluate(
    session: Session,
    ids: Sequence[int],
    as_of: datetime,
    programme: Programme,
    programme_version: int | None,
) -> tuple[dict[str, int], int]:
    """Evaluate members ``ids`` (in member order) in the caller's transaction: changes made by
    reason, decisions lost to a concurrent writer."""
    decided = decide(session, ids[0], ids[-1], programme, as_of)
    due = as_of + timedelta(days=programme.tier_model.grace_days)
    return repository.apply_decisions(session, decided, as_of, due, programme_version)


@dataclass(frozen=True, slots=True)
class SampleChange:
    """One change a dry run would make."""

    member_id: int
    from_code: str | None
    to_code: str
    reason: str


@dataclass(frozen=True, slots=True)
class TierPreview:
    """What :func:`evaluate` would do at ``as_of``: members read, changes by reason, the first
    few changes."""

    members: int
    changes: dict[str, int]
    sample: tuple[SampleChange, ...]


def preview(
    session: Session, as_of: datetime, programme: Programme, chunk: int = CHUNK, sample: int = 5
) -> TierPreview:
    """The evaluation at ``as_of`` decided chunk by chunk as :func:`evaluate` does, without
    writing anything."""
    members = after = 0
    counts: Counter[str] = Counter()
    first: list[SampleChange] = []
    while ids := repository.chunk_ids(session, after, chunk):
        members += len(ids)
        after = ids[-1]
        decided = decide(session, ids[0], ids[-1], programme, as_of)
        counts.update(dict(decided["reason"].value_counts().iter_rows()))
        first.extend(
            SampleChange(*row)
            for row in decided.head(sample - len(first))
            .select("member_id", "from_code", "to_code", "reason")
            .iter_rows()
        )
    return TierPreview(members, dict(sorted(counts.items())), tuple(first))
