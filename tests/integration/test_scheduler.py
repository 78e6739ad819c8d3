"""The scheduler inside `tally serve` runs the expiry job on its own."""

from __future__ import annotations

import time
from datetime import timedelta

from support.policy import policy_of
from tally.config import Settings
from tally.db.session import Database
from tally.flows import enrolment
from tally.kit.clock import utcnow
from tally.ledger import repository
from tally.ledger import service as ledger
from tally.ledger.domain import Origin
from tally.members.service import Identity
from tally.partners import service as partners
from tally.programme.runtime import ProgrammeCache
from tally.scheduler import Scheduler

SETTINGS = Settings()
POLICY = policy_of(SETTINGS)


def test_scheduler_expires_due_points_without_being_asked(database: Database) -> None:
    earned_at = utcnow() - timedelta(days=2)
    with database.write() as session:
        partner = partners.create_partner(session, "S1", "s", earned_at)
        member, _ = enrolment.enrol(session, Identity("t", "sched"), {}, earned_at)
        ledger.earn(
            session,
            Origin(partner_id=partner.id),
            member,
            40,
            "e",
            earned_at,
            POLICY,
            earned_at + timedelta(days=1),
        )
    scheduler = Scheduler(database, SETTINGS, ProgrammeCache(SETTINGS, 0), interval=1)
    scheduler.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with database.read() as session:
                wallet = repository.wallet(session, member)
                assert wallet is not None
                if wallet.available == 0:
                    break
            time.sleep(0.2)
    finally:
        scheduler.stop()
    assert wallet.available == 0
