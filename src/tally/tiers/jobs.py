"""The tier evaluation job: downgrades, grace periods, catch-up upgrades, programme changes.

Set-based and in bounded memory: members are read in keyset-paginated chunks of tier rows, the
growth of a whole chunk is summed by one GROUP BY, the pure domain decides, and each chunk's
changes are written in its own transaction. Every change is a conditional update on the row's
``version``: a concurrent run (or an earn that upgraded the member meanwhile) makes it match no
row, and only the run whose update succeeded writes history. A member evaluated at or after
``as_of`` only ever moves up, so running twice at the same moment changes nothing the second time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

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

    def as_dict(self) -> dict[str, Any]:
        return {"members": self.members, "changes": dict(self.changes), "skipped": self.skipped}


def evaluate(
    unit_of_work: UnitOfWork,
    as_of: datetime,
    programme: Programme,
    chunk: int = CHUNK,
    programme_version: int | None = None,
) -> TierReport:
    """Evaluate every member with a tier row at ``as_of`` (idempotent; safe to run concurrently)."""
    found = domain.windows(programme.tier_model, as_of, programme.zone)
    lifetime = programme.tier_model.kind == "lifetime"
    after = 0
    members = skipped = 0
    counts: Counter[str] = Counter()
    while True:
        with unit_of_work() as session:
            rows = repository.state_chunk(session, after, chunk)
            if not rows:
                break
            sums = (
                {}
                if lifetime
                else repository.chunk_sums(
                    session, rows[0].member_id, rows[-1].member_id, found.current, found.previous
                )
            )
            decided: list[tuple[repository.StateRow, domain.Decision, domain.Qualifying]] = []
            for row in rows:
                if lifetime:
                    value = domain.qualifying(row.lifetime_growth, None)
                else:
                    current, previous = sums.get(row.member_id, (0, 0))
                    value = domain.qualifying(
                        current, previous if found.previous is not None else None
                    )
                state = domain.State(row.tier_code, row.downgrade_at, row.evaluated_at)
                decision = domain.evaluate(programme, state, value, as_of)
                if decision is not None:
                    decided.append((row, decision, value))
            moved = repository.change_states(
                session,
                [
                    repository.StateChange(
                        row.member_id,
                        row.version,
                        decision.tier_code,
                        decision.downgrade_at,
                        as_of if decision.tier_changed else None,
                    )
                    for row, decision, _value in decided
                ],
                as_of,
            )
            skipped += len(decided) - len(moved)
            history: list[dict[str, object]] = []
            for row, decision, value in decided:
                if row.member_id not in moved:
                    continue
                for change in decision.changes:
                    counts[change.reason] += 1
                    growth = value.up if change.reason == domain.UPGRADE else value.keep
                    history.append(
                        history_row(row.member_id, change, growth, as_of, programme_version)
                    )
            repository.insert_changes(session, history)
            members += len(rows)
            after = rows[-1].member_id
    return TierReport(members=members, changes=dict(sorted(counts.items())), skipped=skipped)
