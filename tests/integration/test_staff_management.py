"""Staff accounts changed by administrators, on SQLite and PostgreSQL: never oneself, never the
last active administrator — not even when two administrators demote each other at once."""

from __future__ import annotations

import pytest

from support.race import race
from tally.db.session import Database
from tally.errors import Unauthorized, WouldLockOut
from tally.kit.clock import utcnow
from tally.staff import service as staff
from tally.staff.models import StaffRole, StaffUser


def _account(db: Database, username: str, role: StaffRole) -> int:
    with db.write() as session:
        return staff.create(session, username, "a-long-password", role, "", utcnow()).id


def _active_admins(db: Database) -> list[int]:
    with db.read() as session:
        return [
            user.id
            for user in staff.users(session)
            if user.role is StaffRole.ADMIN and user.is_active
        ]


def test_two_administrators_demoting_each_other_leave_one(database: Database) -> None:
    first, second = (
        _account(database, "ann", StaffRole.ADMIN),
        _account(database, "bob", StaffRole.ADMIN),
    )
    pairs = [(first, second), (second, first)]

    def demote(index: int) -> StaffUser:
        actor, target = pairs[index]
        with database.write() as session:
            return staff.change_role(session, target, StaffRole.SUPPORT, by=actor)

    outcomes = race(2, demote)

    assert sum(isinstance(outcome, StaffUser) for outcome in outcomes) == 1
    assert sum(isinstance(outcome, WouldLockOut) for outcome in outcomes) == 1
    assert len(_active_admins(database)) == 1


def test_two_administrators_deactivating_each_other_leave_one(database: Database) -> None:
    first, second = (
        _account(database, "cat", StaffRole.ADMIN),
        _account(database, "dan", StaffRole.ADMIN),
    )
    pairs = [(first, second), (second, first)]

    def deactivate(index: int) -> StaffUser:
        actor, target = pairs[index]
        with database.write() as session:
            return staff.set_active(session, target, False, by=actor)

    outcomes = race(2, deactivate)

    assert sum(isinstance(outcome, WouldLockOut) for outcome in outcomes) == 1
    assert len(_active_admins(database)) == 1


def test_nobody_changes_their_own_role_or_deactivates_themselves(database: Database) -> None:
    me = _account(database, "eve", StaffRole.ADMIN)
    _account(database, "fay", StaffRole.ADMIN)
    with pytest.raises(WouldLockOut), database.write() as session:
        staff.change_role(session, me, StaffRole.SUPPORT, by=me)
    with pytest.raises(WouldLockOut), database.write() as session:
        staff.set_active(session, me, False, by=me)
    assert me in _active_admins(database)


def test_other_accounts_change_freely(database: Database) -> None:
    admin = _account(database, "gus", StaffRole.ADMIN)
    clerk = _account(database, "hal", StaffRole.SUPPORT)
    with database.write() as session:
        staff.change_role(session, clerk, StaffRole.ADMIN, by=admin)
        staff.set_active(session, clerk, False, by=admin)
    with database.read() as session:
        stored = staff.get(session, clerk)
        assert stored is not None
        assert (stored.role, stored.is_active) == (StaffRole.ADMIN, False)
    with pytest.raises(Unauthorized), database.read() as session:
        staff.authenticate(session, "hal", "a-long-password")
