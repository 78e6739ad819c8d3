"""Accounts on both databases: every partner and system account's striped balance follows its
postings through earns, redemptions, reversals, adjustments and expiry; verify names a
tampered balance and orphans; a posting to an account without a row refuses its write; the
liability is valued exactly; and on PostgreSQL many concurrent earns by one partner leave its
issued balance exactly equal to its postings."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from conftest import _empty
from support.policy import policy_of
from support.race import race
from tally.accounts import service as accounts
from tally.accounts.domain import STRIPES
from tally.accounts.models import Account, AccountStripe
from tally.accounts.repository import UnknownAccount
from tally.config import Settings
from tally.db.session import Database
from tally.flows import enrolment
from tally.kit.clock import utcnow
from tally.ledger import jobs, reversals
from tally.ledger import service as ledger
from tally.ledger.domain import Leg, Origin
from tally.ledger.liability import liability
from tally.ledger.models import EntryKind, JournalEntry, Posting
from tally.ledger.posting import post
from tally.ledger.verify import verify
from tally.members.service import Identity
from tally.partners import service as partners
from tally.programme.domain import Money

POLICY = policy_of(Settings())
_serial = itertools.count()


def _partner(db: Database, code: str) -> Origin:
    with db.write() as session:
        return Origin(partner_id=partners.create_partner(session, code, code, utcnow()).id)


def _members(db: Database, count: int) -> list[int]:
    with db.write() as session:
        return [
            enrolment.enrol(session, Identity("phone", f"139{next(_serial):08d}"), {}, utcnow())[0]
            for _ in range(count)
        ]


def _striped(db: Database) -> dict[str, int]:
    with db.read() as session:
        return {
            code: int(total)
            for code, total in session.execute(
                select(Account.code, func.sum(AccountStripe.balance))
                .join(AccountStripe, AccountStripe.account_id == Account.id)
                .group_by(Account.code)
            )
        }


def _posted(db: Database) -> dict[str, int]:
    with db.read() as session:
        return {
            code: int(total)
            for code, total in session.execute(
                select(Posting.account, func.sum(Posting.amount))
                .where(~Posting.account.like("member:%"))
                .group_by(Posting.account)
            )
            if total
        }


def _sound(db: Database) -> None:
    with db.read() as session:
        report = verify(session)
    assert report.ok, report.problems


def test_striped_balances_follow_every_kind_of_entry(database: Database) -> None:
    shop, food = _partner(database, "SHOP"), _partner(database, "FOOD")
    one, two = _members(database, 2)
    now = utcnow()
    with database.write() as session:
        earned = ledger.earn(session, shop, one, 100, "e1", now, POLICY)
        ledger.earn(session, food, two, 50, "e2", now, POLICY, now + timedelta(days=1))
        ledger.redeem(session, food, one, 30, "r1", now, POLICY)
        ledger.adjust(session, Origin(staff_id=1), one, -5, "typo", now, POLICY)
    with database.write() as session:
        reversals.reverse(session, shop, earned.entry_id, now, POLICY)  # 65 are left
    jobs.expire(database.write, now + timedelta(days=2))

    shop_id, food_id = shop.partner_id, food.partner_id
    assert _striped(database) == {
        f"partner:{shop_id}:issued": -100 + 65,
        f"partner:{food_id}:issued": -50,
        f"partner:{food_id}:redeemed": 30,
        "system:adjustments": 5,
        "system:expired": 50,
    }
    assert _striped(database) == _posted(database)
    with database.read() as session:
        totals = accounts.of_partners(session)
        system = {item.account.code: item.balance for item in accounts.of_system(session)}
    assert (totals[shop_id].issued, totals[shop_id].accepted) == (35, 0)
    assert (totals[food_id].issued, totals[food_id].accepted, totals[food_id].net) == (50, 30, 20)
    assert system == {"system:expired": 50, "system:adjustments": 5, "system:breakage": 0}
    _sound(database)


def test_every_member_and_partner_has_its_accounts(database: Database) -> None:
    origin = _partner(database, "SHOP")
    (member,) = _members(database, 1)

    with database.read() as session:
        codes = set(session.scalars(select(Account.code)))
    assert codes == {
        "system:expired",
        "system:adjustments",
        "system:breakage",
        f"partner:{origin.partner_id}:issued",
        f"partner:{origin.partner_id}:redeemed",
        f"member:{member}:available",
        f"member:{member}:held",
    }


def test_verify_names_a_tampered_balance_and_orphans(database: Database) -> None:
    origin = _partner(database, "SHOP")
    (member,) = _members(database, 1)
    with database.write() as session:
        ledger.earn(session, origin, member, 40, "e1", utcnow(), POLICY)
        session.execute(
            text(
                "UPDATE account_stripes SET balance = balance + 3 WHERE account_id ="
                " (SELECT id FROM accounts WHERE code = :code)"
            ),
            {"code": f"partner:{origin.partner_id}:issued"},
        )
        session.execute(
            text(
                "INSERT INTO accounts (code, owner_type, owner_id, kind, unit)"
                " VALUES ('partner:999:issued', 'partner', 999, 'issued', 'points')"
            )
        )

    with database.read() as session:
        report = verify(session)

    assert report.problems == [
        f"account partner:{origin.partner_id}:issued's balance -37 differs from its postings -40",
        "account partner:999:issued is owned by no partner",
    ]
    assert report.accounts == 8


def test_a_posting_to_an_account_without_a_row_writes_nothing(database: Database) -> None:
    (member,) = _members(database, 1)
    before = _count_entries(database)

    def earn_from_an_unknown_partner() -> None:
        with database.write() as session:
            post(
                session,
                kind=EntryKind.EARN,
                legs=[Leg(f"member:{member}:available", 5), Leg("partner:77:issued", -5)],
                origin=Origin(partner_id=77),
                member_id=member,
                now=utcnow(),
            )

    with pytest.raises(UnknownAccount, match="partner:77:issued"):
        earn_from_an_unknown_partner()

    assert _count_entries(database) == before
    assert _striped(database) == {}


def _count_entries(db: Database) -> int:
    with db.read() as session:
        return int(session.scalar(select(func.count()).select_from(JournalEntry)) or 0)


def test_the_liability_values_unspent_points_at_their_issuance(database: Database) -> None:
    origin = _partner(database, "SHOP")
    one, two = _members(database, 2)
    now = utcnow()
    with database.write() as session:
        ledger.earn(session, origin, one, 1200, "e1", now, POLICY)
        ledger.earn(session, origin, two, 3, "e2", now, POLICY)
        ledger.earn(session, origin, two, 9, "e3", now, POLICY, now + timedelta(days=1))
        ledger.redeem(session, origin, one, 200, "r1", now, POLICY)
        # Lot e2 was issued when 10 points were worth 5 fen; the others at 1 point = 1 fen.
        session.execute(
            text(
                "UPDATE lots SET value_points = 10, value_minor = 5 WHERE entry_id ="
                " (SELECT id FROM journal_entries WHERE reference = 'e2')"
            )
        )

    with database.read() as session:
        owed = liability(session, now + timedelta(days=2))  # e3 has expired by then

    assert owed.points == 1000 + 3
    assert [(item.points, item.value) for item in owed.outstanding] == [
        (1003, Money(1000 + 2, "CNY"))  # 1,000 fen + 1.5 fen, rounded half to even
    ]
    assert (owed.held, owed.unvalued) == (0, 0)


@pytest.mark.postgres
def test_verify_reads_one_read_only_snapshot_on_postgresql(postgres_database: Database) -> None:
    with postgres_database.read() as session:
        verify(session)
        isolation = session.execute(text("SHOW transaction_isolation")).scalar()
        read_only = session.execute(text("SHOW transaction_read_only")).scalar()
    assert (isolation, read_only) == ("repeatable read", "on")


@pytest.mark.postgres
def test_concurrent_earns_by_one_partner_stay_exact(postgres_database: Database) -> None:
    """16 threads, each on its own connection, each committing 10 batches of 5 earns by the
    same partner: the partner's issued balance is its postings exactly, spread over stripes."""
    _empty(postgres_database)
    db = postgres_database
    origin = _partner(db, "BUSY")
    members = _members(db, 16 * 5)
    threads, batches, per_batch = 16, 10, 5

    def earn(index: int) -> object:
        for batch in range(batches):
            with db.write() as session:
                for slot in range(per_batch):
                    member = members[index * per_batch + slot]
                    reference = f"b{index}-{batch}-{slot}"
                    ledger.earn(session, origin, member, 7, reference, utcnow(), POLICY)
        return None

    outcomes = race(threads, earn)

    assert [item for item in outcomes if item is not None] == []
    issued = f"partner:{origin.partner_id}:issued"
    assert _striped(db) == _posted(db) == {issued: -7 * threads * batches * per_batch}
    with db.read() as session:
        stripes = session.scalar(
            select(func.count())
            .select_from(AccountStripe)
            .join(Account, Account.id == AccountStripe.account_id)
            .where(Account.code == issued)
        )
    assert stripes is not None
    assert 1 < stripes <= STRIPES
    _sound(db)
