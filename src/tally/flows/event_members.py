"""What the rules read of the members of a batch of events, in one statement per kind of fact:
tier and its multiplier, paid plans, days since enrolment, birthday, windowed aggregates."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy.orm import Session

from tally.db.raw import Raw, as_datetime
from tally.events import repository as events
from tally.programme.domain import CURRENCY_EXPONENTS, Programme
from tally.rules import engine
from tally.tiers import service as tiers

_ENROLMENTS = Raw(
    "SELECT m.id, m.created_at, p.birthday FROM members m"
    " LEFT JOIN member_profiles p ON p.member_id = m.id WHERE m.id = ANY(:ms)"
)
_PLANS = Raw(
    "SELECT member_id, plan_code FROM memberships WHERE member_id = ANY(:ms)"
    " AND status = 'active' AND current_period_end > :now ORDER BY member_id, plan_code"
)


def member_contexts(
    session: Session,
    member_ids: Sequence[int],
    programme: Programme,
    windows: Sequence[events.Window],
    now: datetime,
) -> dict[int, engine.Member]:
    """The members as the rules see them at ``now`` (the programme's zone for days)."""
    if not member_ids:
        return {}
    ids = sorted(set(member_ids))
    zone = programme.zone
    today = now.astimezone(zone).date()
    current = tiers.current_tiers(session, ids, programme)
    plans: dict[int, list[str]] = {member_id: [] for member_id in ids}
    for member_id, plan in _PLANS.all(session, {"ms": ids, "now": now}):
        plans[int(member_id)].append(str(plan))
    facts = {int(row[0]): row for row in _ENROLMENTS.all(session, {"ms": ids})}
    totals = events.aggregates(session, ids, windows, now)
    exponent = Decimal(10) ** -_exponent(programme)
    found: dict[int, engine.Member] = {}
    for member_id in ids:
        _id, enrolled, birthday = facts[member_id]
        enrolled_day = as_datetime(enrolled).astimezone(zone).date()
        born = _as_date(birthday)
        found[member_id] = engine.Member(
            id=str(member_id),
            tier=current[member_id].code,
            tier_multiplier=Decimal(current[member_id].earn_multiplier),
            plans=tuple(plans[member_id]),
            days_since_enrolment=(today - enrolled_day).days,
            birthday_today=born is not None and (born.month, born.day) == (today.month, today.day),
            aggregates={
                window.code: (
                    totals[member_id][window.code]
                    if window.measure == "count"
                    else Decimal(totals[member_id][window.code]) * exponent
                )
                for window in windows
            },
        )
    return found


def _exponent(programme: Programme) -> int:
    return CURRENCY_EXPONENTS[programme.currency.point_value.currency]


def _as_date(value: object) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value))
