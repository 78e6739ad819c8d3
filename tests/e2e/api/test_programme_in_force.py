"""The ledger obeys the programme in force: validity and time zone come from the applied file."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient

from conftest import Api, PartnerKey
from tally.app import create_app
from tally.config import Settings
from tally.db.session import Database
from tally.kit.clock import end_of_day, local_date, utcnow
from tally.programme import runtime, service

DEMO = Path(__file__).resolve().parents[3] / "src" / "tally" / "demo" / "programme.yaml"


def _apply(database: Database, validity: int, zone: str) -> None:
    text = (
        DEMO.read_text()
        .replace("default_validity_days: 365", f"default_validity_days: {validity}")
        .replace("timezone: Asia/Shanghai", f"timezone: {zone}")
    )
    with database.write() as session:
        service.apply(session, service.validate(text), text, "test", utcnow())


def _expected_expiry(days: int, zone: str) -> datetime:
    local = ZoneInfo(zone)
    return end_of_day(local_date(utcnow(), local) + timedelta(days=days), local)


def test_earned_points_take_validity_and_zone_from_the_applied_programme(
    settings: Settings, database: Database, partner: PartnerKey
) -> None:
    app = create_app(settings.model_copy(update={"programme_refresh_seconds": 0}), database)
    with TestClient(app) as client:
        api = Api(client, partner)
        member = api.enrol("13900000001")
        before = api.earn(member, 10)
        assert datetime.fromisoformat(before.json()["details"]["expires_at"]) == (
            _expected_expiry(365, "Asia/Shanghai")
        )
        _apply(database, 30, "America/New_York")
        after = api.earn(member, 10)
        assert datetime.fromisoformat(after.json()["details"]["expires_at"]) == (
            _expected_expiry(30, "America/New_York")
        )


def test_a_server_sees_a_new_version_once_its_cache_is_stale(
    settings: Settings, database: Database
) -> None:
    cache = runtime.ProgrammeCache(settings, refresh_seconds=3600)
    with database.read() as session:
        assert cache.get(session).tiers[0].code == "MEMBER"  # the default programme
    _apply(database, 30, "UTC")
    with database.read() as session:
        assert cache.get(session).tiers[0].code == "MEMBER"  # still within its refresh period
        fresh = runtime.ProgrammeCache(settings, refresh_seconds=0)
        programme = fresh.get(session)
    assert [tier.code for tier in programme.tiers][:2] == ["BRONZE", "SILVER"]
    assert programme.currency.default_validity_days == 30
    assert fresh.version == 1
    assert fresh.zone == ZoneInfo("UTC")
