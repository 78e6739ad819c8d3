"""Expiry reminders: a ``points.expiring`` event per member, expiry date and reminder day,
emitted once (a unique key per event), set-based over every member with points about to expire.

A member is reminded ``d`` days before points expire for each ``d`` of the programme's
``reminders.expiry.days_before``: on a day when the points' last valid day is at most ``d`` days
away, the tightest such ``d`` is due. A run that missed days catches up with the reminder due
now, not with every one it missed (points 5 days from expiry get the 7-day reminder, not the
30-day one too). Reruns and concurrent runs emit nothing more.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from tally.db.raw import Raw, as_datetime
from tally.kit.clock import end_of_day, local_date
from tally.outbox import repository as outbox
from tally.outbox.domain import Event, EventType

CHUNK = 5000
# Live lots expiring within the window, by member and instant, after a keyset position.
_DUE = Raw(
    "SELECT member_id, expires_at, SUM(remaining) FROM lots"
    " WHERE remaining > 0 AND expires_at > :now AND expires_at <= :until"
    " AND (member_id > :after_member OR (member_id = :after_member AND expires_at > :after_at))"
    " GROUP BY member_id, expires_at ORDER BY member_id, expires_at LIMIT :n"
)


@dataclass(frozen=True, slots=True)
class Reminder:
    member_id: int
    expires_on: date  # the last day the points can be used
    points: int
    days_before: int
    days_left: int

    @property
    def key(self) -> str:
        return f"points.expiring:{self.member_id}:{self.expires_on.isoformat()}:{self.days_before}"


@dataclass
class Report:
    due: int = 0
    emitted: int = 0
    sample: list[Reminder] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "due": self.due,
            "emitted": self.emitted,
            "sample": [
                {
                    "member_id": item.member_id,
                    "expires_on": item.expires_on.isoformat(),
                    "points": item.points,
                    "days_before": item.days_before,
                }
                for item in self.sample
            ],
        }


def due_reminder(days_left: int, days_before: list[int]) -> int | None:
    """The reminder day due for points ``days_left`` days from their last day, if any."""
    fitting = [day for day in days_before if days_left <= day]
    return min(fitting) if fitting else None


def _rows(session: Session, now: datetime, until: datetime) -> Iterator[tuple[int, datetime, int]]:
    after_member, after_at = 0, now
    while True:
        rows = _DUE.all(
            session,
            {
                "now": now,
                "until": until,
                "after_member": after_member,
                "after_at": after_at,
                "n": CHUNK,
            },
        )
        for member_id, expires_at, points in rows:
            yield int(member_id), as_datetime(expires_at), int(points)
        if len(rows) < CHUNK:
            return
        after_member, after_at = int(rows[-1][0]), as_datetime(rows[-1][1])


def reminders(
    session: Session, now: datetime, zone: ZoneInfo, days_before: list[int]
) -> Iterator[list[Reminder]]:
    """The reminders due at ``now``, in chunks, one per member and expiry date."""
    if not days_before:
        return
    today = local_date(now, zone)
    until = end_of_day(today + timedelta(days=max(days_before)), zone)
    pending: dict[tuple[int, date], int] = {}
    chunk: list[Reminder] = []

    def flush_member(member_id: int) -> None:
        for (member, expires_on), points in sorted(pending.items()):
            if member != member_id:
                continue
            days_left = (expires_on - today).days
            day = due_reminder(days_left, days_before)
            if day is not None:
                chunk.append(Reminder(member, expires_on, points, day, days_left))
        for key in [key for key in pending if key[0] == member_id]:
            del pending[key]

    current: int | None = None
    for member_id, expires_at, points in _rows(session, now, until):
        if current is not None and member_id != current:
            flush_member(current)
            if len(chunk) >= CHUNK:
                yield chunk
                chunk = []
        current = member_id
        expires_on = local_date(expires_at - timedelta(microseconds=1), zone)
        pending[(member_id, expires_on)] = pending.get((member_id, expires_on), 0) + points
    if current is not None:
        flush_member(current)
    if chunk:
        yield chunk


def event_of(reminder: Reminder, now: datetime) -> Event:
    return Event(
        type=EventType.POINTS_EXPIRING,
        data={
            "member_id": reminder.member_id,
            "points": reminder.points,
            "expires_on": reminder.expires_on.isoformat(),
            "days_before": reminder.days_before,
            "days_left": reminder.days_left,
        },
        occurred_at=now,
        member_id=reminder.member_id,
        dedupe_key=reminder.key,
    )


def remind(
    write: Callable[[], AbstractContextManager[Session]],
    now: datetime,
    zone: ZoneInfo,
    days_before: list[int],
) -> Report:
    """Emit the reminders due at ``now`` (each once, whoever runs it how often)."""
    report = Report()
    with write() as session:
        for chunk in reminders(session, now, zone, days_before):
            report.due += len(chunk)
            report.emitted += outbox.emit(session, [event_of(item, now) for item in chunk], now)
    return report


def preview(
    session: Session, now: datetime, zone: ZoneInfo, days_before: list[int], sample: int
) -> Report:
    """What :func:`remind` would find due (emitted before or not), writing nothing."""
    report = Report()
    for chunk in reminders(session, now, zone, days_before):
        report.due += len(chunk)
        room = sample - len(report.sample)
        report.sample.extend(chunk[:room])
    return report
