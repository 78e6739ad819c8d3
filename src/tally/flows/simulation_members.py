"""Members as the rules saw them when each stored event was taken in, for a simulation: the
contexts of now (``tally.flows.event_members``) with the tier, its multiplier, the windowed
aggregates and the days since enrolment put back to the moment the event was received.

Set-based: the members' tier changes in one statement, their events of the aggregates' types in
one, the windows counted for every event at once with polars. Paid plans and the birthday stay
those of now.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

import polars as pl
from sqlalchemy.orm import Session

from tally.events import repository as events
from tally.events.models import StoredEvent
from tally.flows.event_intake import REFUND, windows_of
from tally.flows.event_members import member_contexts
from tally.programme.domain import CURRENCY_EXPONENTS, Programme
from tally.rules import engine
from tally.tiers import repository as tier_repository


def at_their_moments(
    session: Session,
    rows: Sequence[StoredEvent],
    member_ids: Sequence[int],
    programme: Programme,
    now: datetime,
) -> list[engine.Member | None]:
    """For each row, its member as ``programme`` reads them at the row's ``received_at``
    (``None``: a member no longer known); ``member_ids`` are the members still known."""
    windows = windows_of(programme)
    current = member_contexts(session, member_ids, programme, windows, now)
    runs = _runs(rows)
    tiers = _tiers_at(session, rows, member_ids)
    totals = _aggregates_at(session, rows, runs, member_ids, windows)
    unit = Decimal(10) ** -CURRENCY_EXPONENTS[programme.currency.point_value.currency]
    first = programme.tiers[0]
    today = now.astimezone(programme.zone).date()
    found: list[engine.Member | None] = []
    for position, row in enumerate(rows):
        member = current.get(row.member_id)
        if member is None:
            found.append(None)
            continue
        code = tiers[position]
        tier = programme.tier(code) or first if code is not None else None
        day = row.received_at.astimezone(programme.zone).date()
        found.append(
            replace(
                member,
                tier=member.tier if tier is None else tier.code,
                tier_multiplier=member.tier_multiplier
                if tier is None
                else Decimal(tier.earn_multiplier),
                days_since_enrolment=None
                if member.days_since_enrolment is None
                else member.days_since_enrolment - (today - day).days,
                aggregates={
                    window.code: totals[window.code][position]
                    if window.measure == "count"
                    else Decimal(totals[window.code][position]) * unit
                    for window in windows
                },
            )
        )
    return found


def _runs(rows: Sequence[StoredEvent]) -> list[int]:
    """Each row's run within the batch it came in (rows taken in at one moment): a batch is
    evaluated in runs of earning events, a refund on its own between them, each run seeing
    what the runs before it stored — so the refunds before a row in its batch count its run."""
    found: list[int] = []
    moment, refunds = None, 0
    for row in rows:
        if row.received_at != moment:
            moment, refunds = row.received_at, 0
        if row.type == REFUND:
            refunds += 1
        found.append(refunds)
    return found


def _tiers_at(
    session: Session, rows: Sequence[StoredEvent], member_ids: Sequence[int]
) -> list[str | None]:
    """Each row's member's tier code just before its ``received_at`` (a change made at that
    moment came from its batch, after it was evaluated — unless a refund split the batch and
    an earlier run moved the member: not told apart); ``None``: no change since, the tier of
    now stands."""
    changes: dict[int, list[tuple[datetime, str | None, str]]] = {}
    for member, before, after, at in tier_repository.changes_of(session, member_ids):
        changes.setdefault(member, []).append((at, before, after))
    found: list[str | None] = []
    for row in rows:
        history = changes.get(row.member_id)
        if not history:
            found.append(None)
            continue
        moments = [at for at, _, _ in history]
        index = bisect.bisect_left(moments, row.received_at)  # changes strictly before
        if index == len(history):
            found.append(None)
        elif index == 0:
            found.append(history[0][1] or "")  # before the first change: where it started
        else:
            found.append(history[index - 1][2])
    return found


def _aggregates_at(
    session: Session,
    rows: Sequence[StoredEvent],
    runs: Sequence[int],
    member_ids: Sequence[int],
    windows: Sequence[events.Window],
) -> dict[str, list[int]]:
    """Each window's value for each row: the member's events of its types that occurred in
    the ``days`` before the row was received and were stored before its run (taken in before
    it, or by an earlier run of its batch): a count, or the amounts less what was refunded
    since."""
    if not windows:
        return {}
    types = sorted({kind for window in windows for kind in window.types})
    found = events.of_members(session, member_ids, types)
    replayed = {(row.member_id, row.type, row.received_at, row.occurred_at): run
                for row, run in zip(rows, runs, strict=True)}  # fmt: skip
    history = pl.DataFrame(
        [(*event, replayed.get(event[:4], 0)) for event in found],
        schema={
            "member_id": pl.Int64,
            "type": pl.String,
            "occurred_at": pl.Datetime("us", "UTC"),
            "received_at": pl.Datetime("us", "UTC"),
            "spent": pl.Int64,
            "stored_run": pl.Int64,
        },
        orient="row",
    )
    subjects = pl.DataFrame(
        {
            "position": range(len(rows)),
            "member_id": [row.member_id for row in rows],
            "at": [row.received_at for row in rows],
            "run": list(runs),
        },
        schema={
            "position": pl.Int64,
            "member_id": pl.Int64,
            "at": pl.Datetime("us", "UTC"),
            "run": pl.Int64,
        },
    )
    totals: dict[str, list[int]] = {}
    for window in windows:
        counted = (
            subjects.join(history.filter(pl.col("type").is_in(window.types)), on="member_id")
            .filter(
                (pl.col("occurred_at") > pl.col("at") - timedelta(days=window.days))
                & (pl.col("occurred_at") <= pl.col("at"))
                & (
                    (pl.col("received_at") < pl.col("at"))
                    | (
                        (pl.col("received_at") == pl.col("at"))
                        & (pl.col("stored_run") < pl.col("run"))
                    )
                )
            )
            .group_by("position")
            .agg(pl.len().alias("count") if window.measure == "count" else pl.col("spent").sum())
        )
        value = "count" if window.measure == "count" else "spent"
        column = dict(zip(counted["position"], counted[value], strict=True))
        totals[window.code] = [int(column.get(position, 0)) for position in range(len(rows))]
    return totals
