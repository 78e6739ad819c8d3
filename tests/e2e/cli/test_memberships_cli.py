"""``tally membership`` and ``tally jobs memberships`` against a fresh SQLite file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from e2e.cli.clikit import run
from support.membership_programme import apply_programme
from tally.config import get_settings
from tally.db.engine import build_engine
from tally.db.session import Database
from tally.flows import enrolment
from tally.kit.clock import utcnow
from tally.members.service import Identity
from tally.memberships import service as memberships
from tally.partners import service as partners
from tally.programme.domain import Money
from tally.schema import migrate


@pytest.fixture
def db(tmp_path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'tally.db'}"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TALLY_DATABASE_URL", url)
    monkeypatch.setenv("TALLY_SECRET_KEY", "cli-test-secret-" + "y" * 32)
    get_settings.cache_clear()
    database = Database(build_engine(url))
    migrate(database.engine)
    yield database
    database.dispose()
    get_settings.cache_clear()


def test_list_show_and_expire(db: Database) -> None:
    programme = apply_programme(db)
    now = datetime(2026, 1, 31, 2, 0, tzinfo=UTC)  # the payment is confirmed as it is taken
    with db.write() as session:
        partner = partners.create_partner(session, "PAY", "pay", now)
        member_id, _ = enrolment.enrol(session, Identity("phone", "13700000001"), {}, now)
        row, _ = memberships.subscribe(
            session, memberships.SYSTEM, member_id, "MONTHLY", programme, now
        )
        memberships.pay(
            session,
            memberships.Actor(partner_id=partner.id),
            row.id,
            "cli-1",
            Money(1500, "CNY"),
            datetime(2026, 1, 31, 2, 0, tzinfo=UTC),  # 10:00 on 31 January in Shanghai
            programme,
            now,
        )
    [listed] = json.loads(run("membership", "list", str(member_id)).stdout)
    assert listed["id"] == str(row.id)
    assert listed["plan"] == "MONTHLY"
    assert listed["plan_names"] == {"zh-CN": "月卡", "en": "Monthly"}
    assert listed["status"] == "expired"  # its period ended on 28 February
    assert listed["current_period_end"] == "2026-02-28 02:00:00+00:00"
    assert listed["payments"][0]["amount"]["display"] == "15.00 CNY"

    # A date means through the end of that day in Shanghai: 27 February is too early.
    report = json.loads(run("jobs", "memberships", "--as-of", "2026-02-27").stdout)
    assert (report["expired"], report["abandoned"]) == (0, 0)
    report = json.loads(run("jobs", "memberships", "--as-of", "2026-02-28T02:00:00Z").stdout)
    assert (report["as_of"], report["expired"]) == ("2026-02-28T02:00:00+00:00", 1)
    assert json.loads(run("jobs", "memberships").stdout)["expired"] == 0

    shown = json.loads(run("membership", "show", str(row.id)).stdout)
    assert [event["kind"] for event in shown["history"]] == ["subscribed", "activated", "expired"]
    assert shown["history"][1]["amount"] == {"minor_units": 1500, "currency": "CNY"}
    assert shown["history"][1]["partner_id"] == partner.id


def test_unknown_ids_fail_with_their_code(db: Database) -> None:
    assert "error [not_found]" in run("membership", "list", "42", code=2).stderr
    assert "error [not_found]" in run("membership", "show", "nope", code=2).stderr


def test_demo_members_hold_vip88(db: Database) -> None:
    from tally.demo import loader

    with db.write() as session:
        loader.load(session, get_settings(), member_count=30)
    with db.read() as session:
        holders = [
            member_id
            for member_id in range(1, 31)
            if [
                item.plan_code
                for item in memberships.active_memberships(session, member_id, utcnow())
            ]
            == ["VIP88"]
        ]
    assert len(holders) == 8
    listed = json.loads(run("membership", "list", str(holders[0])).stdout)
    assert listed[0]["status"] == "active"
    assert listed[0]["payments"][0]["amount"]["display"] == "88.00 CNY"


def test_staff_cancel_and_refund_are_recorded(db: Database) -> None:
    from tally.staff import service as staff
    from tally.staff.models import StaffRole

    programme = apply_programme(db)
    now = utcnow()
    with db.write() as session:
        partner = partners.create_partner(session, "PAY", "pay", now)
        support = staff.create(session, "support", "support-pass-1", StaffRole.SUPPORT, "", now)
        staff.create(session, "auditor", "auditor-pass-1", StaffRole.AUDITOR, "", now)
        member_id, _ = enrolment.enrol(session, Identity("phone", "13700000002"), {}, now)
        row, _ = memberships.subscribe(
            session, memberships.SYSTEM, member_id, "MONTHLY", programme, now
        )
        memberships.pay(
            session,
            memberships.Actor(partner_id=partner.id),
            row.id,
            "cli-2",
            Money(1500, "CNY"),
            None,
            programme,
            now,
        )
        support_id = support.id
    target = str(row.id)
    denied = run("membership", "cancel", target, "--staff", "auditor", code=2)
    assert "error [forbidden]" in denied.stderr
    cancelled = json.loads(run("membership", "cancel", target, "--staff", "support").stdout)
    assert (cancelled["status"], cancelled["cancel_at_period_end"]) == ("active", True)
    too_much = run(
        "membership", "refund", target, "--payment", "cli-2", "--minor-units", "1501",
        "--staff", "support", code=2,
    )  # fmt: skip
    assert "error [refund_exceeds_payment]" in too_much.stderr
    partial = run(
        "membership", "refund", target, "--payment", "cli-2", "--minor-units", "500",
        "--staff", "support",
    )  # fmt: skip
    assert json.loads(partial.stdout)["payments"][0]["refunded"]["minor_units"] == 500
    ended = json.loads(
        run("membership", "refund", target, "--payment", "cli-2", "--staff", "support").stdout
    )
    assert ended["status"] == "refunded"
    history = json.loads(run("membership", "show", target).stdout)["history"]
    assert [(item["kind"], item["staff_id"]) for item in history[2:]] == [
        ("cancelled", support_id),
        ("refunded", support_id),
        ("refunded", support_id),
    ]
    assert [item["amount"]["minor_units"] for item in history[3:]] == [500, 1000]
