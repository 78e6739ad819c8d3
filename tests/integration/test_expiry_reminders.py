"""Expiry reminders: one `points.expiring` per member, expiry date and reminder day, emitted
once however often (and by however many workers) the job runs; delivered like any event; the
member pages warn from the programme's first reminder."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from conftest import Api, PartnerKey, make_partner
from support.access import apply
from tally.config import Settings
from tally.db.session import Database
from tally.kit.clock import end_of_day, local_date
from tally.ledger import reminders
from tally.ledger.reminders import due_reminder
from tally.outbox.models import OutboxEvent
from tally.programme import runtime
from tally.programme.domain import ExpiryReminders, Programme
from tally.web.member import views

SCOPES = "members,earn,redeem,read,webhooks"


@pytest.fixture
def programme(database: Database, settings: Settings) -> Programme:
    """The programme in force, reminding 30 and 7 days before points expire."""
    with database.read() as session:
        current = runtime.effective(session, settings)
    content = current.dump()
    found = Programme.model_validate({**content, "reminders": {"expiry": {"days_before": [7, 30]}}})
    with database.write() as session:
        apply(session, found)
    return found


@pytest.fixture
def mobile(database: Database, programme: Programme) -> PartnerKey:
    return make_partner(database, "MOBILE", SCOPES, operator_channel=True)


def last_day(programme: Programme, days: int, now: datetime) -> str:
    """An ``expires_at`` making the points last through the local day ``days`` from now."""
    return end_of_day(
        local_date(now, programme.zone) + timedelta(days=days), programme.zone
    ).isoformat()


def events(database: Database) -> list[dict[str, Any]]:
    with database.read() as session:
        rows = session.scalars(
            select(OutboxEvent)
            .where(OutboxEvent.type == "points.expiring")
            .order_by(OutboxEvent.id)
        ).all()
    return [row.data for row in rows]


def test_the_tightest_reminder_due_is_emitted_once_per_member_and_expiry_date(
    client: Any, mobile: PartnerKey, database: Database, programme: Programme
) -> None:
    api = Api(client, mobile)
    now = datetime.now(UTC)
    member, other = api.enrol("13800000201"), api.enrol("13800000202")
    for who, points, days in (
        (member, 100, 20),
        (member, 40, 20),
        (member, 25, 5),
        (member, 9, 90),
        (other, 7, 30),
    ):
        earned = api.earn(who, points, expires_at=last_day(programme, days, now))
        assert earned.status_code == 201, earned.text
    zone, days = programme.zone, programme.reminders.expiry.days_before
    assert days == [30, 7]

    report = reminders.remind(database.write, now, zone, days)
    assert (report.due, report.emitted) == (3, 3)
    today = local_date(now, zone)
    found = sorted(events(database), key=lambda item: (item["member_id"], item["expires_on"]))
    assert found == sorted(
        [
            {
                "member_id": member,
                "points": 25,
                "expires_on": (today + timedelta(days=5)).isoformat(),
                "days_before": 7,
                "days_left": 5,
            },
            {
                "member_id": member,
                "points": 140,
                "expires_on": (today + timedelta(days=20)).isoformat(),
                "days_before": 30,
                "days_left": 20,
            },
            {
                "member_id": other,
                "points": 7,
                "expires_on": (today + timedelta(days=30)).isoformat(),
                "days_before": 30,
                "days_left": 30,
            },
        ],
        key=lambda item: (item["member_id"], item["expires_on"]),
    )
    # A rerun the same day, or the next day, emits nothing more.
    assert reminders.remind(database.write, now, zone, days).emitted == 0
    assert reminders.remind(database.write, now + timedelta(days=1), zone, days).emitted == 0
    # Two weeks on, the 20-day points are 6 days away: their 7-day reminder is due.
    later = reminders.remind(database.write, now + timedelta(days=14), zone, days)
    assert later.emitted == 1
    assert events(database)[-1]["days_before"] == 7
    assert events(database)[-1]["points"] == 140


def test_concurrent_runs_emit_each_reminder_once(
    client: Any, mobile: PartnerKey, database: Database, programme: Programme
) -> None:
    api = Api(client, mobile)
    now = datetime.now(UTC)
    for number in range(6):
        member = api.enrol(f"138000003{number:02d}")
        assert api.earn(member, 10, expires_at=last_day(programme, 3, now)).status_code == 201
    zone, days = programme.zone, programme.reminders.expiry.days_before
    totals: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            totals.append(reminders.remind(database.write, now, zone, days).emitted)
        except BaseException as exc:  # a lost race would show here
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert sum(totals) == 6
    assert len(events(database)) == 6


def test_a_preview_writes_nothing_and_no_reminders_without_days(
    client: Any, mobile: PartnerKey, database: Database, programme: Programme
) -> None:
    api = Api(client, mobile)
    now = datetime.now(UTC)
    member = api.enrol("13800000401")
    assert api.earn(member, 10, expires_at=last_day(programme, 3, now)).status_code == 201
    with database.read() as session:
        preview = reminders.preview(session, now, programme.zone, [30, 7], 5)
    assert preview.due == 1
    assert preview.sample[0].member_id == member
    assert events(database) == []
    assert reminders.remind(database.write, now, programme.zone, []).emitted == 0
    assert events(database) == []


def test_the_member_pages_warn_from_the_first_reminder(
    client: Any, mobile: PartnerKey, database: Database, programme: Programme
) -> None:
    api = Api(client, mobile)
    now = datetime.now(UTC)
    member = api.enrol("13800000501")
    assert api.earn(member, 10, expires_at=last_day(programme, 45, now)).status_code == 201
    with database.read() as session:
        default = views.my_points(session, member, now, programme.zone)
        wider = views.my_points(session, member, now, programme.zone, [60, 7])
    assert default.expiring_soon == []
    assert [row.points for row in wider.expiring_soon] == [10]


def test_reminder_days_are_checked() -> None:
    assert ExpiryReminders(days_before=[7, 30]).days_before == [30, 7]
    for bad in ([0], [366], [7, 7], list(range(1, 12))):
        with pytest.raises(ValidationError):
            ExpiryReminders(days_before=bad)
    assert due_reminder(20, [30, 7]) == 30
    assert due_reminder(7, [30, 7]) == 7
    assert due_reminder(31, [30, 7]) is None
    assert due_reminder(0, [30, 7]) == 7
