"""Family accounts under real parallel connections (PostgreSQL; SQLite serialises writers):
monthly limits and the owner's balance hold, a member joins one family at most, a family
never outgrows its seats."""

from __future__ import annotations

import itertools

from sqlalchemy import func, select

from support.race import race
from tally.config import Settings
from tally.db.raw import INTEGRITY_ERRORS
from tally.db.session import Database
from tally.errors import AlreadyInFamily, FamilyFull, FamilyLimitExceeded, InsufficientPoints
from tally.families import repository as family_repository
from tally.families import service as families
from tally.families.domain import FamilyMode
from tally.families.models import Family, FamilyInvitation, FamilyMembership
from tally.flows import enrolment, family_spend
from tally.kit.clock import utcnow
from tally.ledger import repository as ledger_repository
from tally.ledger import service as ledger
from tally.ledger.domain import Origin
from tally.ledger.posting import policy_for
from tally.ledger.verify import verify
from tally.members.service import Identity
from tally.partners import service as partners
from tally.programme.runtime import default_programme

PROGRAMME = default_programme(Settings())
POLICY = policy_for(PROGRAMME, Settings())
RULES = PROGRAMME.family
_serial = itertools.count()


def _members(db: Database, count: int, points: int = 0) -> tuple[Origin, list[int]]:
    now = utcnow()
    with db.write() as session:
        partner = partners.create_partner(session, f"F{next(_serial)}", "f", now)
        origin = Origin(partner_id=partner.id)
        ids = []
        for _ in range(count):
            member_id, _ = enrolment.enrol(session, Identity("t", f"f{next(_serial)}"), {}, now)
            if points:
                ledger.earn(session, origin, member_id, points, f"s{next(_serial)}", now, POLICY)
            ids.append(member_id)
    return origin, ids


def _family(db: Database, owner: int, joined: list[int], mode: FamilyMode) -> int:
    now = utcnow()
    with db.write() as session:
        family = families.create(session, owner, mode, now)
        for member in joined:
            families.invite(session, family, owner, member, now, RULES)
            families.accept(session, family, member, member, now)
    return family


def _sound(db: Database) -> None:
    with db.read() as session:
        report = verify(session)
    assert report.ok, report.problems


def _seats_add_up(db: Database) -> None:
    """Every family's seats are its members plus its pending invitations."""
    with db.read() as session:
        for found in session.scalars(select(Family).where(Family.status == "active")):
            members = session.scalar(
                select(func.count())
                .select_from(FamilyMembership)
                .where(FamilyMembership.family_id == found.id)
            )
            pending = session.scalar(
                select(func.count())
                .select_from(FamilyInvitation)
                .where(FamilyInvitation.family_id == found.id, FamilyInvitation.status == "pending")
            )
            assert found.seats == members + pending <= RULES.max_members, found.id


def test_parallel_share_spends_keep_every_limit_and_never_overdraw(database: Database) -> None:
    origin, (owner,) = _members(database, 1, 400)
    _, spenders = _members(database, 5)
    family = _family(database, owner, spenders, FamilyMode.SHARE)
    with database.write() as session:
        families.change_settings(
            session, family, owner, None, dict.fromkeys(spenders, 100), utcnow()
        )
    attempts = 6  # each member tries 6 × 30 = 180 against a limit of 100

    def spend(index: int) -> object:
        member = spenders[index % len(spenders)]
        with database.write() as session:
            return family_spend.spend(
                session, origin, family, member, 30, f"p{index}", utcnow(), POLICY, PROGRAMME
            )

    outcomes = race(len(spenders) * attempts, spend)
    done = [item for item in outcomes if isinstance(item, family_spend.Spent)]
    refused = [
        item for item in outcomes if isinstance(item, FamilyLimitExceeded | InsufficientPoints)
    ]
    assert len(done) + len(refused) == len(outcomes), [
        item for item in outcomes if isinstance(item, Exception)
    ]
    per_member = dict.fromkeys(spenders, 0)
    for item in done:
        per_member[item.spent_by] += item.points
    assert all(points <= 100 for points in per_member.values()), per_member
    assert sum(per_member.values()) <= 400
    # 5 members × 3 spends fit the limits (450) but the owner has 400: 13 spends succeed.
    assert len(done) == 13
    with database.read() as session:
        wallet = ledger_repository.wallet(session, owner)
        assert wallet is not None
        assert wallet.available == 400 - 13 * 30
        month = done[0].month
        spent = family_repository.month_spent(session, family, month)
        assert {member: spent.get(member, 0) for member in spenders} == per_member
    _sound(database)


def test_a_member_accepting_two_families_at_once_joins_one(database: Database) -> None:
    _, (first_owner, second_owner, member) = _members(database, 3)
    first = _family(database, first_owner, [], FamilyMode.POOL)
    second = _family(database, second_owner, [], FamilyMode.SHARE)
    now = utcnow()
    with database.write() as session:
        families.invite(session, first, first_owner, member, now, RULES)
        families.invite(session, second, second_owner, member, now, RULES)

    def accept(index: int) -> object:
        family = (first, second)[index % 2]
        with database.write() as session:
            families.accept(session, family, member, member, utcnow())
        return family

    outcomes = race(2, accept)
    joined = [item for item in outcomes if isinstance(item, int)]
    assert len(joined) == 1, outcomes
    assert all(
        isinstance(item, (AlreadyInFamily, *INTEGRITY_ERRORS))
        or type(item).__name__ == "InvitationNotPending"
        for item in outcomes
        if not isinstance(item, int)
    ), outcomes
    with database.read() as session:
        rows = session.scalars(
            select(FamilyMembership).where(FamilyMembership.member_id == member)
        ).all()
        assert [row.family_id for row in rows] == joined
    _seats_add_up(database)


def test_creating_and_joining_at_once_leaves_one_membership(database: Database) -> None:
    _, (owner, member) = _members(database, 2)
    family = _family(database, owner, [], FamilyMode.SHARE)
    with database.write() as session:
        families.invite(session, family, owner, member, utcnow(), RULES)

    def act(index: int) -> object:
        with database.write() as session:
            if index % 2:
                return families.create(session, member, FamilyMode.POOL, utcnow())
            families.accept(session, family, member, member, utcnow())
            return family

    outcomes = race(4, act)
    assert sum(1 for item in outcomes if isinstance(item, int)) == 1, outcomes
    with database.read() as session:
        count = session.scalar(
            select(func.count())
            .select_from(FamilyMembership)
            .where(FamilyMembership.member_id == member)
        )
    assert count == 1


def test_parallel_invitations_never_overfill_a_family(database: Database) -> None:
    _, (owner, *invitees) = _members(database, 11)
    family = _family(database, owner, [], FamilyMode.POOL)

    def invite(index: int) -> object:
        with database.write() as session:
            families.invite(session, family, owner, invitees[index], utcnow(), RULES)
        return invitees[index]

    outcomes = race(len(invitees), invite)
    invited = [item for item in outcomes if isinstance(item, int)]
    assert len(invited) == RULES.max_members - 1
    assert all(isinstance(item, FamilyFull) for item in outcomes if not isinstance(item, int))

    def answer(index: int) -> object:
        member = invited[index]
        with database.write() as session:
            if index % 2:
                families.decline(session, family, member, member, utcnow())
            else:
                families.accept(session, family, member, member, utcnow())
        return member

    assert all(isinstance(item, int) for item in race(len(invited), answer))
    _seats_add_up(database)


def test_pool_spends_racing_leaves_never_overdraw(database: Database) -> None:
    origin, (owner, *others) = _members(database, 4, 50)
    family = _family(database, owner, others, FamilyMode.POOL)

    def act(index: int) -> object:
        with database.write() as session:
            if index < len(others):
                member = others[index]
                families.leave(session, family, member, member, utcnow())
                return member
            return family_spend.spend(
                session, origin, family, owner, 40, f"q{index}", utcnow(), POLICY, PROGRAMME
            )

    outcomes = race(len(others) + 6, act)
    unexpected = [
        item
        for item in outcomes
        if isinstance(item, Exception) and not isinstance(item, InsufficientPoints)
    ]
    assert not unexpected, unexpected
    spent = [item for item in outcomes if isinstance(item, family_spend.Spent)]
    assert sum(item.points for item in spent) <= 200
    _sound(database)
    _seats_add_up(database)


def test_a_returned_allowance_is_given_back_once_to_racing_spends(database: Database) -> None:
    from tally.ledger import reversals

    origin, (owner,) = _members(database, 1, 1000)
    _, (member,) = _members(database, 1)
    family = _family(database, owner, [member], FamilyMode.SHARE)
    with database.write() as session:
        families.change_settings(session, family, owner, None, {member: 100}, utcnow())
        first = family_spend.spend(
            session, origin, family, member, 100, "full", utcnow(), POLICY, PROGRAMME
        )
    with database.write() as session:
        reversals.reverse(session, origin, first.entry_id, utcnow(), POLICY)

    def spend(index: int) -> object:
        with database.write() as session:
            return family_spend.spend(
                session, origin, family, member, 20, f"r{index}", utcnow(), POLICY, PROGRAMME
            )

    outcomes = race(12, spend)
    done = [item for item in outcomes if isinstance(item, family_spend.Spent)]
    assert len(done) == 5, outcomes  # the 100 given back, once
    assert all(isinstance(item, (family_spend.Spent, FamilyLimitExceeded)) for item in outcomes)
    with database.read() as session:
        assert family_repository.month_spent(session, family, first.month) == {member: 100}
        wallet = ledger_repository.wallet(session, owner)
        assert wallet is not None
        assert wallet.available == 900
    _sound(database)
