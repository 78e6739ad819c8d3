"""A programme version scheduled on a date: it takes effect at its instant in a running app (the
app's clock injected, no restart, no extra query), can be cancelled before, is refused in the
past or before a version already scheduled; every entry, lot and tier change records the version
that priced it, and a lot what a point was worth."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select

from conftest import Api, PartnerKey
from tally.app import create_app
from tally.config import Settings
from tally.db.session import Database
from tally.errors import Conflict, NotFound, ValidationFailed
from tally.kit.clock import end_of_day, local_date, utcnow
from tally.ledger.models import JournalEntry, Lot
from tally.ledger.verify import verify
from tally.programme import loader, runtime, service
from tally.programme.domain import PointRate, Pricing, Programme
from tally.programme.models import ProgrammeVersion
from tally.tiers.models import TierChange


def variant(
    session: Any,
    *,
    validity: int,
    amount: str = "0.01",
    tiers: list[tuple[str, int]] | None = None,
) -> tuple[Programme, str]:
    """The latest programme with another validity, point value and (optionally) tier ladder."""
    latest = service.latest(session)
    base = (
        runtime.default_programme(Settings())
        if latest is None
        else Programme.model_validate(latest.content)
    )
    content = base.dump()
    content["currency"] = {
        **content["currency"],
        "default_validity_days": validity,
        "point_value": {"amount": amount, "currency": "CNY"},
    }
    if tiers is not None:
        template = content["tiers"][0]
        content["tiers"] = [
            {**template, "code": code, "threshold": threshold, "names": {"zh-CN": code, "en": code}}
            for code, threshold in tiers
        ]
    programme = Programme.model_validate(content)
    return programme, loader.dump(programme)


def schedule(
    database: Database, at: datetime | None, now: datetime, **changes: Any
) -> ProgrammeVersion:
    with database.write() as session:
        programme, text = variant(session, **changes)
        return service.apply(session, programme, text, "ops", now, at)


def expiry(days: int, zone: str = "Asia/Shanghai") -> datetime:
    local = ZoneInfo(zone)
    return end_of_day(local_date(utcnow(), local) + timedelta(days=days), local)


def versions_count(database: Database) -> int:
    with database.read() as session:
        return int(session.scalar(select(func.count()).select_from(ProgrammeVersion)) or 0)


@pytest.fixture
def clock() -> list[datetime]:
    return [utcnow()]


@pytest.fixture
def programme_queries(database: Database) -> Iterator[list[str]]:
    """Every statement that reads ``programme_versions``."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "programme_versions" in statement:
            seen.append(statement)

    event.listen(database.engine, "before_cursor_execute", record)
    yield seen
    event.remove(database.engine, "before_cursor_execute", record)


def app_with_clock(
    settings: Settings, database: Database, clock: list[datetime], refresh: float
) -> Any:
    app = create_app(settings.model_copy(update={"programme_refresh_seconds": refresh}), database)
    app.state.clock = lambda: clock[0]
    return app


def test_a_scheduled_version_takes_effect_at_its_instant_without_a_query(
    settings: Settings,
    database: Database,
    partner: PartnerKey,
    clock: list[datetime],
    programme_queries: list[str],
) -> None:
    start = clock[0]
    now_in_force = schedule(database, None, start, validity=365, tiers=[("BASE", 0), ("TOP", 50)])
    at = start + timedelta(hours=1)
    later = schedule(
        database, at, start, validity=30, amount="0.005", tiers=[("BASE", 0), ("TOP", 50)]
    )
    assert (later.effective_from, later.applied_at) == (at, start)
    app = app_with_clock(settings, database, clock, refresh=3600)
    with TestClient(app) as client:
        api = Api(client, partner)
        member = api.enrol("13900000001")
        before = api.earn(member, 10, growth=0)
        assert before.status_code == 201, before.text
        assert before.json()["programme_version"] == now_in_force.version
        assert before.json()["details"]["expires_at"] == expiry(365).isoformat()
        clock[0] = at - timedelta(microseconds=1)
        assert api.earn(member, 10, growth=0).json()["programme_version"] == now_in_force.version
        read = len(programme_queries)

        clock[0] = at  # the instant: every process switches by its own clock, no query
        after = api.earn(member, 60)
        assert after.status_code == 201, after.text
        assert after.json()["programme_version"] == later.version
        assert after.json()["details"]["expires_at"] == expiry(30).isoformat()
        assert after.json()["details"]["tier"] == "TOP"
        assert len(programme_queries) == read
        assert app.state.programme.version == later.version
        assert app.state.programme.scheduled == []

        history = api.get(f"/v1/members/{member}/transactions").json()["items"]
        assert [item["programme_version"] for item in history] == [
            later.version,
            now_in_force.version,
            now_in_force.version,
        ]

    with database.read() as session:
        lots = session.execute(
            select(
                Lot.points, Lot.programme_version, Lot.value_points, Lot.value_minor,
                Lot.value_currency,
            ).order_by(Lot.id)
        ).all()  # fmt: skip
        assert [tuple(row) for row in lots] == [
            (10, now_in_force.version, 1, 1, "CNY"),  # "0.01" CNY: 1 point = 1 fen
            (10, now_in_force.version, 1, 1, "CNY"),
            (60, later.version, 10, 5, "CNY"),  # "0.005" CNY: 10 points = 5 fen, exactly
        ]
        entries = session.scalars(
            select(JournalEntry.programme_version).order_by(JournalEntry.created_at)
        ).all()
        assert entries == [now_in_force.version, now_in_force.version, later.version]
        changes = session.execute(
            select(TierChange.to_code, TierChange.programme_version).where(
                TierChange.member_id == member, TierChange.to_code == "TOP"
            )
        ).all()
        assert [tuple(row) for row in changes] == [("TOP", later.version)]
        assert verify(session).ok


def test_a_new_or_cancelled_version_is_seen_at_the_next_check(
    settings: Settings, database: Database, partner: PartnerKey, clock: list[datetime]
) -> None:
    start = clock[0]
    first = schedule(database, None, start, validity=300)
    at = start + timedelta(hours=1)
    app = app_with_clock(settings, database, clock, refresh=0)
    with TestClient(app) as client:
        api = Api(client, partner)
        member = api.enrol("13900000002")
        assert api.earn(member, 5).json()["programme_version"] == first.version
        scheduled = schedule(database, at, start, validity=30)
        assert api.earn(member, 5).json()["programme_version"] == first.version
        assert [item.version for item in app.state.programme.scheduled] == [scheduled.version]
        with database.write() as session:
            service.cancel(session, scheduled.version, "ops", start + timedelta(minutes=1))
        clock[0] = at + timedelta(minutes=1)
        late = api.earn(member, 5)
        assert late.json()["programme_version"] == first.version
        assert late.json()["details"]["expires_at"] == expiry(300).isoformat()
        assert app.state.programme.scheduled == []


def test_refusals_write_nothing(database: Database) -> None:
    now = utcnow()
    first = schedule(database, None, now, validity=365)
    with database.write() as session:
        programme, text = variant(session, validity=100)
        for moment, refusal in (
            (now - timedelta(minutes=2), ValidationFailed),  # in the past, beyond the skew
            (datetime(2030, 1, 1), ValidationFailed),  # noqa: DTZ001 - naive: no offset
        ):
            with pytest.raises(refusal):
                service.apply(session, programme, text, "ops", now, moment)
    assert versions_count(database) == 1

    # Within the skew a moment just past counts as now.
    almost = schedule(database, now - timedelta(seconds=30), now, validity=200)
    assert almost.effective_from == now

    day = now + timedelta(days=1)
    second = schedule(database, day, now, validity=100)
    for moment in (None, now + timedelta(hours=1), day):  # not after the scheduled one
        with pytest.raises(Conflict, match="must take effect after"):
            schedule(database, moment, now, validity=50)
    with pytest.raises(Conflict, match="identical to the scheduled"):
        schedule(database, day + timedelta(days=1), now, validity=100)
    third = schedule(database, day + timedelta(days=1), now, validity=50)
    assert versions_count(database) == 4

    for number, refusal, message in (
        (second.version, Conflict, f"Version {third.version} is scheduled after"),
        (almost.version, Conflict, "cannot be cancelled"),
        (first.version, Conflict, "cannot be cancelled"),
        (99, NotFound, "no programme version 99"),
    ):
        with database.write() as session, pytest.raises(refusal, match=message):
            service.cancel(session, number, "ops", now)
    with database.write() as session:
        service.cancel(session, third.version, "bob", now)
    with database.write() as session, pytest.raises(Conflict, match="cancelled already"):
        service.cancel(session, third.version, "ops", now)
    with database.write() as session:
        service.cancel(session, second.version, "bob", now)  # now the latest scheduled

    with database.read() as session:
        rows = {row.version: row for row in service.versions(session)}
        assert rows[third.version].cancelled_by == "bob"
        assert [row.version for row in service.scheduled(session, now)] == []
        current = service.in_force(session, now)
        assert current is not None
        assert current.version == almost.version
        # A version cancelled frees its slot: the next can take effect at any later moment.
        assert service.latest(session) == current
    schedule(database, now + timedelta(hours=2), now, validity=10)


def test_the_programme_in_force_at_an_instant(settings: Settings, database: Database) -> None:
    now = utcnow()
    with database.read() as session:
        assert runtime.in_force(session, settings, now)[0] is None
        assert runtime.pricing(session, now) == Pricing(None, PointRate(1, 1, "CNY"))
    first = schedule(database, None, now, validity=365)
    at = now + timedelta(days=3)
    second = schedule(database, at, now, validity=30, amount="0.02")
    with database.read() as session:
        assert runtime.version_in_force(session, now) == first.version
        assert runtime.version_in_force(session, at - timedelta(seconds=1)) == first.version
        assert runtime.version_in_force(session, at) == second.version
        # What jobs run --as-of use: the programme in force at that moment.
        assert runtime.effective(session, settings, at).currency.default_validity_days == 30
        assert session.info[runtime.PRICING] == Pricing(second.version, PointRate(1, 2, "CNY"))
    with database.read() as session:
        assert runtime.pricing(session, now) == Pricing(first.version, PointRate(1, 1, "CNY"))


def test_the_cache_switches_by_its_clock(settings: Settings, database: Database) -> None:
    now = utcnow()
    clock = [now]
    first = schedule(database, None, now, validity=365)
    second = schedule(database, now + timedelta(minutes=5), now, validity=30)
    cache = runtime.ProgrammeCache(settings, refresh_seconds=3600, clock=lambda: clock[0])
    with database.read() as session:
        assert cache.get(session).currency.default_validity_days == 365
        assert cache.version == first.version
        assert [(item.version, item.effective_from) for item in cache.scheduled] == [
            (second.version, second.effective_from)
        ]
    clock[0] = now + timedelta(minutes=5)
    assert cache.current.currency.default_validity_days == 30  # no session, no query
    assert cache.version == second.version
    assert cache.scheduled == []
