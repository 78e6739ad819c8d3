"""The tier evaluation job: downgrades, grace periods, catch-up upgrades, programme changes.

Set-based and in bounded memory: members are read in keyset-paginated chunks of tier rows, the
growth of a whole chunk is summed by one GROUP BY, the pure domain decides, and each chunk's
changes are written in its own transaction. Every change is a conditional update on the row's
``version``: a concurrent run (or an earn that upgraded the member meanwhile) makes it match no
row, and only the run whose update succeeded writes history. A member evaluated at or after
``as_of`` only ever moves up, so running twice at the same moment changes nothing the second time.

:func:`preview` reads and decides the same way and writes nothing (``--dry-run``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from tally.job_failures.service import Failure, isolating, reported
from tally.job_failures.service import record as record_failures
from tally.programme.domain import Programme
from tally.tiers import domain, repository
from tally.tiers.service import history_row

UnitOfWork = Callable[[], AbstractContextManager[Session]]
CHUNK = 2000


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


@dataclass(frozen=True, slots=True)
class Decided:
    """One member the evaluation would change: its row, the decision and the growth it used."""

    row: repository.StateRow
    decision: domain.Decision
    value: domain.Qualifying


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
    session: Session, rows: list[repository.StateRow], programme: Programme, as_of: datetime
) -> list[Decided]:
    """The members of ``rows`` whose evaluation at ``as_of`` changes something (reads only)."""
    values = qualifying_values(session, rows, programme, as_of)
    decided = []
    for row in rows:
        state = domain.State(row.tier_code, row.downgrade_at, row.evaluated_at)
        value = values[row.member_id]
        decision = domain.evaluate(programme, state, value, as_of)
        if decision is not None:
            decided.append(Decided(row, decision, value))
    return decided


def evaluate(
    unit_of_work: UnitOfWork,
    as_of: datetime,
    programme: Programme,
    chunk: int = CHUNK,
    programme_version: int | None = None,
) -> TierReport:
    """Evaluate every member with a tier row at ``as_of`` (idempotent; safe to run concurrently).

    Each chunk is written in one transaction; a chunk that fails is split until the members it
    cannot evaluate stand alone, which are passed over and recorded (job_failures)."""
    after = 0
    members = skipped = 0
    counts: Counter[str] = Counter()
    failed: list[Failure] = []
    while True:
        with unit_of_work() as session:
            rows = repository.state_chunk(session, after, chunk)
        if not rows:
            break
        done, failures = isolating(
            unit_of_work,
            rows,
            lambda session, part: _evaluate(session, part, as_of, programme, programme_version),
            "member",
            lambda row: row.member_id,
        )
        for part_counts, part_skipped in done:
            counts.update(part_counts)
            skipped += part_skipped
        failed.extend(failures)
        members += len(rows)
        after = rows[-1].member_id
    record_failures(unit_of_work, "tiers", failed)
    return TierReport(
        members=members,
        changes=dict(sorted(counts.items())),
        skipped=skipped,
        failures=tuple(failed),
    )


def _evaluate(
    session: Session,
    rows: Sequence[repository.StateRow],
    as_of: datetime,
    programme: Programme,
    programme_version: int | None,
) -> tuple[Counter[str], int]:
    """Evaluate ``rows`` in the caller's transaction: changes made by reason, updates lost."""
    counts: Counter[str] = Counter()
    decided = decide(session, list(rows), programme, as_of)
    moved = repository.change_states(
        session,
        [
            repository.StateChange(
                item.row.member_id,
                item.row.version,
                item.decision.tier_code,
                item.decision.downgrade_at,
                as_of if item.decision.tier_changed else None,
            )
            for item in decided
        ],
        as_of,
    )
    skipped = len(decided) - len(moved)
    history: list[dict[str, object]] = []
    for item in decided:
        if item.row.member_id not in moved:
            continue
        for change in item.decision.changes:
            counts[change.reason] += 1
            growth = item.value.up if change.reason == domain.UPGRADE else item.value.keep
            history.append(
                history_row(item.row.member_id, change, growth, as_of, programme_version)
            )
    repository.insert_changes(session, history)
    return counts, skipped


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
    members = 0
    counts: Counter[str] = Counter()
    first: list[SampleChange] = []
    for rows in state_chunks(session, chunk):
        members += len(rows)
        for item in decide(session, rows, programme, as_of):
            for change in item.decision.changes:
                counts[change.reason] += 1
                if len(first) < sample:
                    first.append(
                        SampleChange(
                            item.row.member_id, change.from_code, change.to_code, change.reason
                        )
                    )
    return TierPreview(members, dict(sorted(counts.items())), tuple(first))
