"""Paid memberships under real parallel connections: a payment reference buys one period however
many callbacks race, renewals serialise, subscriptions stay single, expiry runs once."""

from __future__ import annotations

import itertools
import uuid
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from conftest import PartnerKey, make_partner
from support.membership_programme import programme_text
from support.race import race
from tally.db.session import Database
from tally.flows import enrolment
from tally.kit.clock import utcnow
from tally.members.service import Identity
from tally.memberships import jobs
from tally.memberships import service as memberships
from tally.memberships.models import Membership, MembershipEvent, MembershipPayment
from tally.programme import service as programme_service
from tally.programme.domain import Money, Programme

THREADS = 12
MONTHLY = Money(1500, "CNY")


def _setup(db: Database, members: int) -> tuple[Programme, int, list[uuid.UUID]]:
    text = programme_text()
    programme = programme_service.validate(text)
    now = utcnow()
    partner = make_partner(db, "PAY", "members,read")
    ids = []
    with db.write() as session:
        programme_service.apply(session, programme, text, "tests", now)
        for index in range(members):
            member_id, _ = enrolment.enrol(session, Identity("t", f"m{index}"), {}, now)
            row, _ = memberships.subscribe(
                session, memberships.SYSTEM, member_id, "MONTHLY", programme, now
            )
            ids.append(row.id)
    return programme, partner.partner_id, ids


def _count(db: Database, model: Any, *where: Any) -> int:
    with db.read() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def test_racing_callbacks_with_one_reference_buy_one_period(database: Database) -> None:
    programme, partner_id, (membership,) = _setup(database, 1)
    actor = memberships.Actor(partner_id=partner_id)

    def pay(_index: int) -> object:
        with database.write() as session:
            _row, payment, created = memberships.pay(
                session, actor, membership, "same-ref", MONTHLY, None, programme, utcnow()
            )
            return created, payment.id

    outcomes = race(THREADS, pay)
    assert not [item for item in outcomes if isinstance(item, Exception)], outcomes
    assert sorted(created for created, _id in outcomes) == [False] * (THREADS - 1) + [True]  # type: ignore[misc]
    assert len({payment_id for _created, payment_id in outcomes}) == 1  # type: ignore[misc]
    assert _count(database, MembershipPayment) == 1
    assert _count(database, MembershipEvent, MembershipEvent.kind == "activated") == 1


def test_racing_renewals_each_add_one_term(database: Database) -> None:
    programme, partner_id, (membership,) = _setup(database, 1)
    actor = memberships.Actor(partner_id=partner_id)

    def pay(index: int) -> object:
        with database.write() as session:
            return memberships.pay(
                session, actor, membership, f"ref-{index}", MONTHLY, None, programme, utcnow()
            )

    outcomes = race(6, pay)
    assert not [item for item in outcomes if isinstance(item, Exception)], outcomes
    with database.read() as session:
        payments = session.scalars(
            select(MembershipPayment).order_by(MembershipPayment.period_start)
        ).all()
        row = session.get(Membership, membership)
        assert row is not None
    # Six consecutive periods, each starting where the one before ended.
    assert len(payments) == 6
    for before, after in itertools.pairwise(payments):
        assert after.period_start == before.period_end
    assert row.current_period_end == payments[-1].period_end
    assert row.current_period_start == payments[0].period_start


def test_racing_callbacks_over_http_with_different_idempotency_keys(
    app: Any, database: Database, partner: PartnerKey
) -> None:
    programme, _partner_id, (membership,) = _setup(database, 1)
    del programme
    body = {"reference": "http-ref", "amount": {"minor_units": 1500, "currency": "CNY"}}
    with TestClient(app) as client:

        def post(index: int) -> object:
            return client.post(
                f"/v1/memberships/{membership}/payments",
                json=body,
                headers=partner.headers(f"key-{index}"),
            )

        responses = race(8, post)
    statuses = sorted(response.status_code for response in responses)  # type: ignore[attr-defined]
    assert statuses == [200] * 7 + [201], [r.text for r in responses]  # type: ignore[attr-defined]
    periods = {str(r.json()["payment"]["period"]) for r in responses}  # type: ignore[attr-defined]
    assert len(periods) == 1
    assert _count(database, MembershipPayment) == 1


def test_racing_subscriptions_make_one_membership(database: Database) -> None:
    programme, _partner_id, _ids = _setup(database, 0)
    with database.write() as session:
        member_id, _ = enrolment.enrol(session, Identity("t", "solo"), {}, utcnow())

    def subscribe(_index: int) -> object:
        with database.write() as session:
            row, _created = memberships.subscribe(
                session, memberships.SYSTEM, member_id, "MONTHLY", programme, utcnow()
            )
            return row.id

    outcomes = race(THREADS, subscribe)
    won = [item for item in outcomes if isinstance(item, uuid.UUID)]
    # Losers of the race fail on the unique index (the API retries them into a 200).
    assert len(set(won)) == 1
    assert _count(database, Membership) == 1


def test_the_expiry_job_racing_itself_expires_each_membership_once(database: Database) -> None:
    programme, partner_id, ids = _setup(database, 20)
    actor = memberships.Actor(partner_id=partner_id)
    now = utcnow()
    with database.write() as session:
        for index, membership in enumerate(ids):
            memberships.pay(session, actor, membership, f"e{index}", MONTHLY, None, programme, now)
    later = now + timedelta(days=40)
    reports = race(4, lambda _index: jobs.expire(database.write, later, batch=3))
    assert not [item for item in reports if isinstance(item, Exception)], reports
    assert sum(report.expired for report in reports) == 20  # type: ignore[attr-defined]
    assert _count(database, MembershipEvent, MembershipEvent.kind == "expired") == 20


def test_the_scheduler_runs_the_membership_job(database: Database) -> None:
    from tally.config import Settings
    from tally.programme.runtime import ProgrammeCache
    from tally.scheduler import Scheduler

    programme, partner_id, _ = _setup(database, 0)
    paid_at = utcnow() - timedelta(days=40)  # subscribed and paid then: long over now
    with database.write() as session:
        member_id, _ = enrolment.enrol(session, Identity("t", "sched"), {}, paid_at)
        row, _ = memberships.subscribe(
            session, memberships.SYSTEM, member_id, "MONTHLY", programme, paid_at
        )
        membership = row.id
        memberships.pay(
            session,
            memberships.Actor(partner_id=partner_id),
            membership,
            "sched-1",
            MONTHLY,
            paid_at,
            programme,
            paid_at,
        )
    settings = Settings()
    Scheduler(database, settings, ProgrammeCache(settings, 0), interval=3600).run_once()
    with database.read() as session:
        row = session.get(Membership, membership)
        assert row is not None
        assert row.status == "expired"
    assert _count(database, MembershipEvent, MembershipEvent.kind == "expired") == 1


def test_racing_subscriptions_over_http_answer_one_membership(
    app: Any, database: Database, partner: PartnerKey
) -> None:
    _setup(database, 0)
    with database.write() as session:
        member_id, _ = enrolment.enrol(session, Identity("t", "http-solo"), {}, utcnow())
    with TestClient(app) as client:

        def post(index: int) -> object:
            return client.post(
                f"/v1/members/{member_id}/memberships",
                json={"plan": "MONTHLY"},
                headers=partner.headers(f"sub-{index}"),
            )

        responses = race(8, post)
    statuses = sorted(response.status_code for response in responses)  # type: ignore[attr-defined]
    assert statuses == [200] * 7 + [201], [r.text for r in responses]  # type: ignore[attr-defined]
    assert len({r.json()["id"] for r in responses}) == 1  # type: ignore[attr-defined]
    assert _count(database, Membership) == 1
