"""Plan, apply, versions and export on SQLite and PostgreSQL; applying is atomic."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tally.db.session import Database
from tally.errors import Conflict, NotFound, ValidationFailed
from tally.kit.clock import utcnow
from tally.partners import service as partners
from tally.partners.models import Partner
from tally.programme import loader, service
from tally.programme.models import ProgrammeVersion

DEMO = Path(__file__).resolve().parents[3] / "src" / "tally" / "demo" / "programme.yaml"


def demo_text() -> str:
    return DEMO.read_text()


def test_nothing_runs_before_the_first_apply(database: Database) -> None:
    with database.read() as session:
        assert service.running(session) is None
        assert service.versions(session) == []
        with pytest.raises(NotFound):
            service.export(session)


def test_apply_records_a_version_and_registers_partners(database: Database) -> None:
    programme = service.validate(demo_text())
    now = utcnow()
    with database.write() as session:
        plan = service.plan(session, programme)
        assert "partner MOBILE is new: it will be registered" in plan
        version = service.apply(session, programme, demo_text(), "ops", now)
        assert version.version == 1

    with database.read() as session:
        assert service.running(session) == programme
        (stored,) = service.versions(session)
        assert (stored.version, stored.applied_by, stored.applied_at) == (1, "ops", now)
        assert stored.source_text == demo_text()
        assert stored.content_hash == service.content_hash(programme)
        assert [p.code for p in partners.partners(session)] == ["MOBILE", "SHOP", "FOOD", "HOTEL"]
        assert service.plan(session, programme) == ["no changes"]


def test_an_identical_programme_is_not_applied_twice(database: Database) -> None:
    programme = service.validate(demo_text())
    with database.write() as session:
        service.apply(session, programme, demo_text(), "ops", utcnow())
    reformatted = "# same content, other layout\n" + loader.dump(programme)
    with database.write() as session, pytest.raises(Conflict, match="running version 1"):
        service.apply(session, service.validate(reformatted), reformatted, "ops", utcnow())
    with database.read() as session:
        assert len(service.versions(session)) == 1


def test_versions_accumulate_and_export_round_trips(database: Database) -> None:
    first = service.validate(demo_text())
    changed_text = demo_text().replace('"2.0"', '"2.5"')
    second = service.validate(changed_text)
    start = utcnow()
    with database.write() as session:
        service.apply(session, first, demo_text(), "alice", start)
    with database.write() as session:
        assert service.plan(session, second) == ["tier BLACK_DIAMOND earn_multiplier: 2.0 → 2.5"]
        service.apply(session, second, changed_text, "bob", start + timedelta(minutes=5))

    with database.read() as session:
        assert [(v.version, v.applied_by) for v in service.versions(session)] == [
            (1, "alice"),
            (2, "bob"),
        ]
        exported = service.export(session, start + timedelta(minutes=5))
    assert exported.startswith("# Tally programme, version 2, applied by bob")
    assert service.validate(exported) == second


def test_an_existing_partner_is_kept(database: Database) -> None:
    with database.write() as session:
        partners.create_partner(session, "SHOP", "Old name", utcnow())
    programme = service.validate(demo_text())
    with database.write() as session:
        plan = service.plan(session, programme)
        assert "partner SHOP is new: it will be registered" not in plan
        service.apply(session, programme, demo_text(), "ops", utcnow())
    with database.read() as session:
        assert partners.partner_by_code(session, "SHOP").name == "Old name"
        assert session.scalar(select(func.count()).select_from(Partner)) == 4


def test_a_failing_apply_leaves_no_version_and_no_partner(database: Database) -> None:
    # Registration refusing the last partner fails the apply after three partners were added.
    text = (
        demo_text()
        .replace("  - {code: HOTEL, name: 栖云酒店 Cloudrest Hotels}\n", "")
        .replace("  - {code: hotel, owner: HOTEL}\n", "")
    )
    text += "  - {code: " + "X" * 64 + ", name: Too long to register}\n"
    programme = service.validate(text)
    original = partners.create_partner

    def failing(session, code, name, now):  # type: ignore[no-untyped-def]
        if code.startswith("X"):
            raise ValidationFailed("refused", field="code")
        return original(session, code, name, now)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(partners, "create_partner", failing)
        with pytest.raises(ValidationFailed), database.write() as session:
            service.apply(session, programme, text, "ops", utcnow())

    with database.read() as session:
        assert session.scalar(select(func.count()).select_from(ProgrammeVersion)) == 0
        assert session.scalar(select(func.count()).select_from(Partner)) == 0


def test_concurrent_applies_are_serialised(database: Database) -> None:
    import threading

    texts = [demo_text().replace('"2.0"', f'"2.{n}"') for n in range(1, 5)]
    outcomes: list[object] = []
    barrier = threading.Barrier(len(texts))

    def one(text: str) -> None:
        programme = service.validate(text)
        barrier.wait()
        try:
            with database.write() as session:
                outcomes.append(service.apply(session, programme, text, "ops", utcnow()).version)
        except Conflict as conflict:
            outcomes.append(conflict)

    threads = [threading.Thread(target=one, args=(text,)) for text in texts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == [1, 2, 3, 4]  # type: ignore[type-var]
    with database.read() as session:
        assert [v.version for v in service.versions(session)] == [1, 2, 3, 4]
        assert session.scalar(select(func.count()).select_from(Partner)) == 4
