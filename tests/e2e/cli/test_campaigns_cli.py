"""``tally campaign``: list and show the campaigns in force, pause and resume one as a staff
member who may (audited, once per change), refuse one who may not, and read per-arm results."""

from __future__ import annotations

import json

from sqlalchemy import select

from e2e.cli.clikit import database_url, run
from support.campaign_events import purchase, report
from support.event_programme import CAMPAIGNS, apply_campaigns
from tally.audit.models import AuditEntry
from tally.cli.common import open_database
from tally.config import get_settings
from tally.flows.enrolment import enrol
from tally.kit.clock import utcnow
from tally.members.service import Identity
from tally.partners import service as partners
from tally.staff import service as staff
from tally.staff.models import StaffRole

__all__ = ["database_url"]


def _prepare() -> None:
    with open_database() as db:
        apply_campaigns(db, CAMPAIGNS)
        with db.write() as session:
            staff.create(session, "olga", "correct horse 1", StaffRole.OPS, "Olga", utcnow())
            staff.create(session, "sam", "correct horse 2", StaffRole.SUPPORT, "Sam", utcnow())


def _audited() -> list[tuple[str, dict[str, object]]]:
    with open_database() as db, db.read() as session:
        rows = session.execute(
            select(AuditEntry.action, AuditEntry.details)
            .where(AuditEntry.action.like("campaign.%"))
            .order_by(AuditEntry.id)
        )
        return [(action, details) for action, details in rows]


def test_pause_and_resume_a_campaign_from_the_command_line(database_url: str) -> None:
    _prepare()
    listed = json.loads(run("campaign", "list").stdout)
    assert [item["code"] for item in listed] == [item["code"] for item in CAMPAIGNS]
    assert listed[0]["status"] == "running"

    paused = json.loads(run("campaign", "pause", "BASE", "--staff", "olga").stdout)
    again = json.loads(run("campaign", "pause", "BASE", "--staff", "olga").stdout)
    shown = json.loads(run("campaign", "show", "BASE").stdout)
    assert (paused["status"], again["status"], shown["status"]) == ("paused",) * 3
    assert shown["changed_by"].startswith("staff:")

    resumed = json.loads(run("campaign", "resume", "BASE", "--staff", "olga").stdout)
    assert resumed["status"] == "running"
    assert [action for action, _details in _audited()] == ["campaign.pause", "campaign.resume"]
    assert all(details["campaign"] == "BASE" for _action, details in _audited())


def test_refusals_change_nothing(database_url: str) -> None:
    _prepare()
    refused = run("campaign", "pause", "BASE", "--staff", "sam", code=2)
    assert "error [forbidden]" in refused.output
    unknown = run("campaign", "pause", "NOPE", "--staff", "olga", code=2)
    assert "error [not_found]" in unknown.output
    nobody = run("campaign", "pause", "BASE", "--staff", "ghost", code=2)
    assert "error [not_found]" in nobody.output
    assert json.loads(run("campaign", "show", "BASE").stdout)["status"] == "running"
    assert _audited() == []
    assert "error [not_found]" in run("campaign", "results", "NOPE", code=2).output


def test_results_count_the_campaigns_events(database_url: str) -> None:
    _prepare()
    with open_database() as db:
        with db.write() as session:
            partners.create_partner(session, "SHOP", "Shop", utcnow())
            member = enrol(session, Identity("phone", "13800000001"), {}, utcnow())[0]
        report(db, get_settings(), "SHOP", [purchase("bill-1", member, "152.00", utcnow())])

    (arm,) = json.loads(run("campaign", "results", "BASE").stdout)
    assert (arm["members"], arm["events"], arm["points"], arm["amount_minor"]) == (1, 1, 152, 15200)
