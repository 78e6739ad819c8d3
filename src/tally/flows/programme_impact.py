"""What applying a programme file would do to members, for ``tally programme plan``.

Read only. Tier rows are read in keyset chunks; each chunk's growth is summed by one GROUP BY
per tier model (the running one and the new one, when they count differently), and the tiers
domain's pure evaluation decides, for every member, where the next evaluation leaves it under
each programme. Members whose tier the file removes are counted with the tier they go to; the
others are counted when the two programmes leave them on different tiers (a threshold or the
tier model changed). Open memberships of removed plans and identities in removed namespaces
are counted by one GROUP BY each.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sqlalchemy.orm import Session

from tally.members import repository as identities_repository
from tally.memberships import repository as memberships
from tally.programme import service as programmes
from tally.programme.domain import Programme
from tally.tiers import domain
from tally.tiers import jobs as tier_jobs
from tally.tiers.repository import StateRow

K = TypeVar("K")


@dataclass(frozen=True, slots=True)
class Outcome:
    """Where the next evaluation leaves a member, and whether it starts a grace period."""

    tier_code: str
    grace: bool


@dataclass(frozen=True, slots=True)
class Impact:
    """The members a new programme moves at the next evaluation.

    ``removed``: for each removed tier, how many of its members go to which tier (a tier an
    earlier version removed, still held until the next evaluation, is counted as removed too).
    ``moved``: ``(tier now, under the running file, under the new file) → members`` for members
    the two files leave on different tiers. ``grace``: members whose grace period starts under
    each file (running, new). ``plans``: open memberships of removed plans, by status.
    ``namespaces``: identities in each removed namespace.
    """

    members: int
    removed: dict[str, dict[str, int]]
    moved: dict[tuple[str, str, str], int]
    grace: tuple[int, int]
    plans: dict[str, dict[str, int]]
    namespaces: dict[str, int]

    def lines(self, new: Programme) -> list[str]:
        """The impact as plan lines (none when the file moves nobody)."""
        lines = []
        for code, targets in self.removed.items():
            held = sum(targets.values())
            if not held:
                lines.append(f"tier {code} removed: no member holds it")
                continue
            where = ", ".join(f"{n} to {target}" for target, n in _by_count(targets))
            verb = "hold" if held != 1 else "holds"
            lines.append(
                f"tier {code} removed: {_members(held)} {verb} it; at the next evaluation {where}"
            )
        if self.moved:
            up = sum(n for key, n in self.moved.items() if _step(new, *key) > 0)
            down = sum(n for key, n in self.moved.items() if _step(new, *key) < 0)
            stay = sum(self.moved.values()) - up - down
            lines.append(
                f"members at the next evaluation: {self.members} evaluated, "
                f"{sum(self.moved.values())} end on another tier than under the running "
                f"programme ({up} move up, {down} move down, {stay} stay)"
            )
            for (now, before, after), n in _by_count(self.moved):
                change = f"stay {now}" if after == now else f"{now} → {after}"
                running = f"stay {now}" if before == now else f"{now} → {before}"
                lines.append(f"  {_members(n)}: {change} (running programme: {running})")
        if self.grace[0] != self.grace[1]:
            lines.append(
                f"grace periods starting at the next evaluation: {self.grace[1]} "
                f"(running programme: {self.grace[0]})"
            )
        for code, statuses in self.plans.items():
            total = sum(statuses.values())
            if not total:
                lines.append(f"plan {code} removed: no open membership")
                continue
            detail = ", ".join(f"{status} {n}" for status, n in sorted(statuses.items()))
            lines.append(
                f"plan {code} removed: {total} open membership{'s' if total != 1 else ''} "
                f"({detail}) stay until they end or are cancelled, without the plan's benefits"
            )
        for code, held in self.namespaces.items():
            if not held:
                lines.append(f"namespace {code} removed: no identity in it")
                continue
            lines.append(
                f"namespace {code} removed: {held} identit{'ies' if held != 1 else 'y'} in it "
                "stay readable but cannot be enrolled, linked or looked up until it is declared "
                "again"
            )
        return lines

    def merged(self, changes: list[str], new: Programme) -> list[str]:
        """The plan's change lines with the impact: a removed tier's or plan's line says what it
        does to members in place; the moves at the next evaluation follow."""
        out = [line for line in changes if line != "no changes"]
        for line in self.lines(new):
            bare = line.split(":", 1)[0]
            if bare in out:
                out[out.index(bare)] = line
            else:
                out.append(line)
        return out or ["no changes"]


def _members(n: int) -> str:
    return f"{n} member{'s' if n != 1 else ''}"


def _by_count(counts: dict[K, int]) -> list[tuple[K, int]]:
    return sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))


def _step(new: Programme, now: str, _before: str, after: str) -> int:
    """Up (> 0) or down (< 0) from the tier held now to the new file's outcome."""
    here, there = domain.index_of(new.tiers, now), domain.index_of(new.tiers, after)
    return 0 if here is None or there is None else there - here


def _outcome(
    programme: Programme, row: StateRow, value: domain.Qualifying, now: datetime
) -> Outcome:
    state = domain.State(row.tier_code, row.downgrade_at, row.evaluated_at)
    decision = domain.evaluate(programme, state, value, now)
    if decision is None:
        return Outcome(row.tier_code, False)
    grace = any(change.reason == domain.GRACE_STARTED for change in decision.changes)
    return Outcome(decision.tier_code, grace)


def impact(
    session: Session,
    running: Programme,
    new: Programme,
    now: datetime,
    chunk: int = tier_jobs.CHUNK,
) -> Impact:
    """What the next evaluation at ``now`` would do differently under ``new`` than under
    ``running``, and the open memberships of the plans ``new`` removes (reads only)."""
    same_model = running.tier_model == new.tier_model and running.zone == new.zone
    removed: dict[str, Counter[str]] = {
        tier.code: Counter() for tier in running.tiers if new.tier(tier.code) is None
    }
    moved: Counter[tuple[str, str, str]] = Counter()
    grace = [0, 0]
    members = 0
    for rows in tier_jobs.state_chunks(session, chunk):
        members += len(rows)
        after = tier_jobs.qualifying_values(session, rows, new, now)
        before = after if same_model else tier_jobs.qualifying_values(session, rows, running, now)
        for row in rows:
            outcome = _outcome(new, row, after[row.member_id], now)
            if new.tier(row.tier_code) is None:
                removed.setdefault(row.tier_code, Counter())[outcome.tier_code] += 1
                continue
            previous = _outcome(running, row, before[row.member_id], now)
            grace[0] += previous.grace
            grace[1] += outcome.grace
            if previous.tier_code != outcome.tier_code:
                moved[(row.tier_code, previous.tier_code, outcome.tier_code)] += 1
    gone = [plan.code for plan in running.plans if new.plan(plan.code) is None]
    found = memberships.open_by_plan(session, gone) if gone else {}
    dropped = [spec.code for spec in running.namespaces if new.namespace(spec.code) is None]
    identities = identities_repository.identity_counts(session, dropped) if dropped else {}
    return Impact(
        members=members,
        removed={code: dict(targets) for code, targets in removed.items()},
        moved=dict(moved),
        grace=(grace[0], grace[1]),
        plans={code: found.get(code, {}) for code in gone},
        namespaces={code: identities.get(code, 0) for code in dropped},
    )


def plan(session: Session, running: Programme, new: Programme, now: datetime) -> list[str]:
    """``tally programme plan``'s lines: what applying ``new`` over the programme in force
    (``running``) changes, with its impact on members at ``now`` (reads only)."""
    changes = programmes.plan(session, new)
    return impact(session, running, new, now).merged(changes, new)
