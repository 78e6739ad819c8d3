"""Every query of campaign operations: the paused set in one statement, a pause changed by
a conditional update, a batch's campaign outcomes in one INSERT, results in one GROUP BY."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tally.campaigns.domain import ArmResult, Touch, refund_touched, touched
from tally.campaigns.models import CampaignState
from tally.db.raw import Bulk, Raw

_PAUSED = Raw("SELECT campaign FROM campaign_states WHERE is_paused")
_OPEN = Raw(
    "INSERT INTO campaign_states (campaign, is_paused, changed_at, changed_by)"
    " VALUES (:campaign, :paused, :now, :by) ON CONFLICT (campaign) DO NOTHING"
)
_CHANGE = Raw(
    "UPDATE campaign_states SET is_paused = :paused, changed_at = :now, changed_by = :by"
    " WHERE campaign = :campaign AND is_paused <> :paused"
)
_OUTCOMES = Bulk.insert(
    "campaign_outcomes",
    {
        "event_id": "uuid",
        "campaign": "text",
        "arm": "text",
        "member_id": "bigint",
        "points": "bigint",
        "growth": "bigint",
        "amount_minor": "bigint",
        "is_refund": "boolean",
        "occurred_at": "timestamptz",
    },
)
_RESULTS = Raw(
    "SELECT arm, COUNT(DISTINCT member_id), SUM(CASE WHEN is_refund THEN 0 ELSE 1 END),"
    " COALESCE(SUM(points), 0),"
    " COALESCE(SUM(growth), 0), COALESCE(SUM(amount_minor), 0)"
    " FROM campaign_outcomes WHERE campaign = :campaign GROUP BY arm"
)
_POINTS_BETWEEN = Raw(
    "SELECT campaign, SUM(points) FROM campaign_outcomes"
    " WHERE occurred_at >= :since AND occurred_at < :until GROUP BY campaign"
)


def paused(session: Session) -> frozenset[str]:
    """The codes of the campaigns paused now, in one statement."""
    return frozenset(str(row[0]) for row in _PAUSED.all(session, {}))


def states(session: Session) -> dict[str, CampaignState]:
    """Every campaign's recorded state, by code."""
    return {row.campaign: row for row in session.scalars(select(CampaignState))}


def set_paused(session: Session, campaign: str, *, paused: bool, by: str, now: datetime) -> bool:
    """Pause or resume ``campaign``; whether that changed anything (a campaign never paused is
    running). Never read, then written: the row is created when new, then changed only if it
    was not already so (its row count is the answer)."""
    params = {"campaign": campaign, "paused": paused, "now": now, "by": by}
    if paused:
        created = _OPEN.rowcount(session, params)
        if created:
            return True
    return _CHANGE.rowcount(session, params) == 1


def _row(event: Mapping[str, Any], touch: Touch, *, refund: bool) -> dict[str, Any]:
    amount = event["amount_minor"]
    return {
        "event_id": event["id"],
        "campaign": touch.campaign,
        "arm": touch.arm,
        "member_id": event["member_id"],
        "points": touch.points,
        "growth": touch.growth,
        "amount_minor": -amount if refund and amount is not None else amount,
        "is_refund": refund,
        "occurred_at": event["occurred_at"],
    }


def record_outcomes(session: Session, events: Sequence[Mapping[str, Any]]) -> None:
    """Record what each stored event (rows of ``events``: id, member_id, amount_minor,
    occurred_at, outcome) gave each campaign it touched, in one statement."""
    rows = [
        _row(event, touch, refund=False) for event in events for touch in touched(event["outcome"])
    ]
    _OUTCOMES.execute(session, rows)


def record_refund(
    session: Session, refund: Mapping[str, Any], purchase_outcome: Mapping[str, Any]
) -> None:
    """Record what a stored refund (a row as :func:`record_outcomes` takes) took back from each
    campaign its purchase reached, its amount negative, in one statement."""
    touches = refund_touched(purchase_outcome, refund["outcome"])
    _OUTCOMES.execute(session, [_row(refund, touch, refund=True) for touch in touches])


def results(session: Session, campaign: str) -> dict[str | None, ArmResult]:
    """The campaign's totals per arm recorded so far, in one statement."""
    return {
        arm: ArmResult(arm, int(members), int(events), int(points), int(growth), int(minor))
        for arm, members, events, points, growth, minor in _RESULTS.all(
            session, {"campaign": campaign}
        )
    }


def points_between(session: Session, since: datetime, until: datetime) -> dict[str, int]:
    """Points each campaign gave events that happened from ``since`` to ``until``."""
    rows = _POINTS_BETWEEN.all(session, {"since": since, "until": until})
    return {str(code): int(points) for code, points in rows}
