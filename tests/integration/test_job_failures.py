"""A job that meets a row it cannot process records it, reports it and goes on: one bad row
never stops expiry, lapses or tier evaluation, and isolating it costs a few transactions (the
failed batch is split in two, again and again), not one per row."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from support.membership_programme import programme_text
from support.policy import policy_of
from tally.config import Settings
from tally.db.session import Database
from tally.flows import enrolment
from tally.job_failures.models import JobFailure
from tally.job_failures.service import isolating
from tally.kit.clock import utcnow
from tally.ledger import holds as ledger_holds
from tally.ledger import jobs as ledger_jobs
from tally.ledger import repository
from tally.ledger import service as ledger
from tally.ledger.domain import Origin
from tally.members.service import Identity
from tally.memberships import jobs as membership_jobs
from tally.memberships import repository as membership_repository
from tally.memberships import service as memberships
from tally.memberships.models import Membership
from tally.partners import service as partners
from tally.programme import service as programme_service
from tally.programme.runtime import default_programme
from tally.tiers import jobs as tier_jobs
from tally.tiers import service as tiers

POLICY = policy_of(Settings())
PROGRAMME = default_programme(Settings())
_serial = itertools.count()


class Counted:
    """A unit of work that counts the transactions it opens."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.opened = 0

    def __call__(self) -> AbstractContextManager[Session]:
        self.opened += 1
        return self.database.write()


def _members_with_points(database: Database, count: int, expires_in: timedelta) -> list[int]:
    now = utcnow()
    with database.write() as session:
        partner = partners.create_partner(session, f"J{next(_serial)}", "j", now)
        origin = Origin(partner_id=partner.id)
        ids = []
        for _ in range(count):
            member_id, _ = enrolment.enrol(session, Identity("t", f"j{next(_serial)}"), {}, now)
            ledger.earn(
                session, origin, member_id, 100, f"e{next(_serial)}", now, POLICY, now + expires_in
            )
            ids.append(member_id)
    return ids


def _break_wallet(database: Database, member_id: int, column: str) -> None:
    """Make the member's wallet disagree with its lots and holds (raw SQL, past every rule):
    the job's entry for it would take the wallet below zero, which is refused."""
    with database.write() as session:
        session.execute(
            text(f"UPDATE wallets SET {column} = 0 WHERE member_id = :m"), {"m": member_id}
        )


def _recorded(database: Database) -> list[tuple[str, str, str, str, int]]:
    with database.read() as session:
        return [
            (row.job, row.row_kind, row.row_id, row.error_code, row.failures)
            for row in session.scalars(select(JobFailure).order_by(JobFailure.id))
        ]


def test_expiry_passes_over_a_member_it_cannot_expire_and_expires_the_rest(
    database: Database,
) -> None:
    members = _members_with_points(database, 16, timedelta(hours=1))
    bad = members[9]
    _break_wallet(database, bad, "available")
    as_of = utcnow() + timedelta(days=1)
    work = Counted(database)

    report = ledger_jobs.expire(work, as_of, batch=100)

    assert (report.members, report.lots, report.points) == (15, 15, 1500)
    [failure] = report.failures
    assert (failure.row_kind, failure.row_id, failure.code) == (
        "member",
        str(bad),
        "insufficient_points",
    )
    # Reading, the failed batch, two halves per level down to the row, recording, lapses: a
    # handful of transactions for 16 members, not one per member.
    assert work.opened <= 2 + 2 * math.ceil(math.log2(16)) + 3
    with database.read() as session:
        for member_id in members:
            wallet = repository.wallet(session, member_id)
            assert wallet is not None
            assert wallet.available == 0
        assert repository.live_lots(session, [bad], utcnow())[bad]  # still there: not expired
    assert _recorded(database) == [("expiry", "member", str(bad), "insufficient_points", 1)]

    # The next run tries it again (and counts one more failure), the rest has nothing to do.
    again = ledger_jobs.expire(database.write, as_of)
    assert (again.members, len(again.failures)) == (0, 1)
    assert _recorded(database) == [("expiry", "member", str(bad), "insufficient_points", 2)]


def test_lapses_pass_over_a_hold_they_cannot_lapse_and_lapse_the_rest(database: Database) -> None:
    members = _members_with_points(database, 3, timedelta(days=30))
    now = utcnow()
    holds = []
    with database.write() as session:
        for member_id in members:
            origin = Origin(partner_id=1)
            hold, _posted = ledger_holds.create_hold(
                session, origin, member_id, 40, f"h{member_id}", 60, now, POLICY
            )
            holds.append(hold.id)
    _break_wallet(database, members[1], "held")

    report = ledger_jobs.expire(database.write, now + timedelta(hours=1))

    assert report.holds_lapsed == 2
    [failure] = report.failures
    assert (failure.row_kind, failure.row_id) == ("hold", str(holds[1]))
    with database.read() as session:
        statuses = [repository.hold(session, hold_id).status.value for hold_id in holds]  # type: ignore[union-attr]
    assert statuses == ["lapsed", "active", "lapsed"]
    assert [row[:3] for row in _recorded(database)] == [("lapses", "hold", str(holds[1]))]


def test_tier_evaluation_passes_over_a_member_it_cannot_evaluate(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = utcnow()
    members = _members_with_points(database, 5, timedelta(days=30))
    with database.write() as session:
        for member_id in members:
            tiers.adjust(session, member_id, 10, "seed", now, PROGRAMME)
    bad = members[2]
    real_decide = tier_jobs.decide

    def refusing(session: Session, first: int, last: int, programme, as_of):  # type: ignore[no-untyped-def]
        if first <= bad <= last:
            raise RuntimeError(f"member {bad} has a tier row the job cannot read")
        return real_decide(session, first, last, programme, as_of)

    monkeypatch.setattr(tier_jobs, "decide", refusing)
    report = tier_jobs.evaluate(database.write, now, PROGRAMME, chunk=4)

    assert report.members == 5
    [failure] = report.failures
    assert (failure.row_id, failure.code) == (str(bad), "RuntimeError")
    assert "cannot read" in failure.message
    assert report.as_dict()["failures"] == 1
    assert _recorded(database) == [("tiers", "member", str(bad), "RuntimeError", 1)]


def test_isolating_splits_a_failed_batch_down_to_its_failing_rows(database: Database) -> None:
    done: list[list[int]] = []

    def work(_session: Session, part: Sequence[int]) -> int:
        if 5 in part or 11 in part:
            raise ValueError("bad row")
        done.append(list(part))
        return len(part)

    work_unit = Counted(database)
    results, failures = isolating(work_unit, list(range(16)), work, "row")

    assert [failure.row_id for failure in failures] == ["5", "11"]
    assert sum(results) == 14
    assert sorted(row for part in done for row in part) == [
        row for row in range(16) if row not in (5, 11)
    ]
    assert work_unit.opened < 16  # halves, not one transaction per row
    assert isolating(work_unit, [], work, "row") == ([], [])


def test_membership_expiry_passes_over_a_membership_it_cannot_close(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = programme_text()
    programme = programme_service.validate(source)
    now = utcnow()
    ids = []
    with database.write() as session:
        programme_service.apply(session, programme, source, "tests", now)
        for index in range(4):
            member_id, _ = enrolment.enrol(session, Identity("t", f"jm{index}"), {}, now)
            row, _ = memberships.subscribe(
                session, memberships.SYSTEM, member_id, "MONTHLY", programme, now
            )
            ids.append(row.id)
    bad = ids[1]
    real_insert = membership_repository.insert_event

    def refusing(session: Session, values: dict) -> None:  # type: ignore[type-arg]
        if values["membership_id"] == bad:
            raise ValueError("this membership's history cannot be written")
        real_insert(session, values)

    monkeypatch.setattr(membership_repository, "insert_event", refusing)
    report = membership_jobs.expire(database.write, now + timedelta(days=2), batch=10)

    assert report.abandoned == 3
    [failure] = report.failures
    assert (failure.row_kind, failure.row_id, failure.code) == (
        "membership",
        str(bad),
        "ValueError",
    )
    with database.read() as session:
        statuses = {item: session.get(Membership, item).status for item in ids}  # type: ignore[union-attr]
    assert [statuses[item] for item in ids] == ["abandoned", "pending", "abandoned", "abandoned"]
    assert [row[:3] for row in _recorded(database)] == [("memberships", "membership", str(bad))]
