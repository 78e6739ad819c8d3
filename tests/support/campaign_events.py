"""Events reported straight through the intake (as ``POST /v1/events`` does), for the console's
campaign and event pages over the demo programme."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from support.policy import policy_of
from tally.config import Settings
from tally.db.session import Database
from tally.flows import event_intake
from tally.flows.event_intake import Processed, Reported
from tally.kit.clock import utcnow
from tally.ledger.domain import Origin
from tally.partners import service as partners
from tally.programme import runtime


def purchase(event_id: str, member_id: int, amount: str, at: datetime) -> Reported:
    return Reported(
        type="purchase",
        event_id=event_id,
        member_id=member_id,
        occurred_at=at,
        amount=Decimal(amount),
        currency="CNY",
        payload={"amount": {"value": amount, "currency": "CNY"}},
    )


def report(
    db: Database, settings: Settings, partner: str, events: list[Reported]
) -> list[Processed]:
    """Report ``events`` as ``partner`` now, in one transaction; each one's outcome."""
    now = utcnow()
    with db.write() as session:
        programme = runtime.effective(session, settings, now)
        origin = Origin(partner_id=partners.partner_by_code(session, partner).id)
        results = event_intake.process(
            session,
            origin,
            events,
            now,
            policy_of(settings),
            programme,
            event_intake.book_for(programme),
        )
    processed = [result for result in results if isinstance(result, Processed)]
    assert len(processed) == len(events), results
    return processed
