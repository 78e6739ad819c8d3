"""Pauses on PostgreSQL with real parallel connections: racing pauses (and resumes) of one
campaign change it once and write one audit entry each way; an event racing a pause is either
priced by the campaign or skipped as paused, never half of each."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select

from support.event_programme import CAMPAIGNS, apply_campaigns
from support.race import race
from tally.audit.models import AuditEntry
from tally.campaigns import service as campaigns
from tally.campaigns.domain import Status
from tally.campaigns.models import CampaignOutcome, CampaignState
from tally.config import Settings
from tally.db.session import Database
from tally.flows import event_intake
from tally.flows.enrolment import enrol
from tally.flows.event_intake import Processed, Reported
from tally.ledger.domain import Origin
from tally.ledger.posting import policy_for
from tally.members.service import Identity
from tally.partners import service as partners
from tally.programme.domain import Programme

NOW = datetime(2026, 12, 4, 4, 0, tzinfo=UTC)


@pytest.fixture
def programme(dialect: str, database: Database) -> Programme:
    if dialect != "postgresql":
        pytest.skip("SQLite has one writer at a time: nothing races")
    return apply_campaigns(database, CAMPAIGNS)


def _set(database: Database, programme: Programme, paused: bool, who: int) -> Status:
    with database.write() as session:
        view = campaigns.set_paused(
            session,
            programme,
            event_intake.book_for(programme),
            "BASE",
            paused=paused,
            actor=f"staff:{who + 1}",
            now=NOW,
        )
        return view.status


def _audited(database: Database) -> list[str]:
    with database.read() as session:
        return list(
            session.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.action.like("campaign.%"))
                .order_by(AuditEntry.id)
            )
        )


def test_racing_pauses_change_the_campaign_once(database: Database, programme: Programme) -> None:
    paused = race(8, lambda i: _set(database, programme, True, i))
    resumed = race(8, lambda i: _set(database, programme, False, i))

    assert paused == [Status.PAUSED] * 8, paused
    assert resumed == [Status.RUNNING] * 8, resumed
    assert _audited(database) == ["campaign.pause", "campaign.resume"]
    with database.read() as session:
        state = session.get(CampaignState, "BASE")
        assert state is not None
        assert not state.is_paused


def test_an_event_racing_a_pause_is_priced_whole(
    database: Database, settings: Settings, programme: Programme
) -> None:
    with database.write() as session:
        shop = partners.create_partner(session, "SHOP", "Shop", NOW).id
        members = [
            enrol(session, Identity("phone", f"1380000{i:04d}"), {}, NOW)[0] for i in range(6)
        ]
    policy = policy_for(programme, settings)

    def report(index: int) -> object:
        if index == 0:
            return _set(database, programme, True, 0)
        sent = Reported("purchase", f"e-{index}", members[index], NOW, Decimal("10.00"), "CNY")
        with database.write() as session:
            return event_intake.process(
                session,
                Origin(partner_id=shop),
                [sent],
                NOW,
                policy,
                programme,
                event_intake.book_for(programme),
            )[0]

    results = race(6, report)

    processed = [result for result in results[1:] if isinstance(result, Processed)]
    assert len(processed) == 5, results
    for done in processed:
        base = {rule["rule"]: rule["points"] for rule in done.outcome["rules"]}
        skipped = {s["rule"] for s in done.outcome["skipped"] if s["campaign"] == "BASE"}
        assert (base, skipped) in (
            ({"per-yuan": 10, "growth": 0}, set()),
            ({}, {"per-yuan", "growth"}),
        )
    with database.read() as session:
        counted = len(
            session.scalars(select(CampaignOutcome).where(CampaignOutcome.campaign == "BASE")).all()
        )
    assert counted == sum(1 for done in processed if done.points)
