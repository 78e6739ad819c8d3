"""Member codes over the partner API: ``GET /v1/members/lookup?code=…`` answers the member showing
a valid code, ``not_found`` for an unknown or expired one or a frozen or merged member's, and
``rate_limited`` once a partner names too many unknown codes in a minute. The clock is injected."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from apikit import assert_problem, tolerant_client
from sqlalchemy import func, select, update

from conftest import SECRET, Api, PartnerKey, make_partner
from tally.db.session import Database
from tally.errors import MemberFrozen
from tally.member_codes import domain
from tally.member_codes import service as codes
from tally.member_codes.models import MemberCode, MemberCodeMisses
from tally.members import service as members
from tally.members.models import Member, MemberStatus

START = datetime(2027, 3, 1, 4, 0, 10, tzinfo=UTC)


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    found = Clock(START)
    for module in ("tally.api.deps", "tally.api.members", "tally.api.member_codes"):
        monkeypatch.setattr(f"{module}.utcnow", found)
    return found


@pytest.fixture
def api(app: Any, partner: PartnerKey, clock: Clock) -> Iterator[Api]:
    with tolerant_client(app) as client:
        yield Api(client, partner)


def issue(database: Database, member_id: int, now: datetime) -> str:
    with database.write() as session:
        return codes.issue(session, member_id, now, SECRET).code


def lookup(api: Api, code: str) -> Any:
    return api.get("/v1/members/lookup", params={"code": code})


def stored_codes(database: Database) -> list[MemberCode]:
    with database.read() as session:
        return list(session.scalars(select(MemberCode).order_by(MemberCode.created_at)))


def misses(database: Database) -> int:
    with database.read() as session:
        return int(session.scalar(select(func.sum(MemberCodeMisses.misses))) or 0)


def test_a_valid_code_finds_its_member_until_it_expires(
    api: Api, database: Database, clock: Clock
) -> None:
    member = api.enrol("13800000001")
    api.enrol("13800000002")
    code = issue(database, member, clock.now)

    found = lookup(api, code)
    assert found.status_code == 200, found.text
    assert found.json()["id"] == member
    typed = lookup(api, domain.grouped(code))  # as the page shows it, spaces and all
    assert typed.json()["id"] == member

    clock.advance(seconds=59)
    assert lookup(api, code).json()["id"] == member
    clock.advance(seconds=1)
    assert_problem(lookup(api, code), 404, "not_found")


def test_unknown_malformed_and_other_codes_are_not_found(
    api: Api, database: Database, clock: Clock
) -> None:
    member = api.enrol("13800000001")
    code = issue(database, member, clock.now)
    other = "0" * 16 if code != "0" * 16 else "1" * 16

    for wrong in (other, code[:-1], code + "0", "12"):
        assert_problem(lookup(api, wrong), 404, "not_found")
    assert misses(database) == 4
    assert_problem(lookup(api, "12ab"), 422, "validation_error")


def test_a_frozen_or_merged_members_code_does_not_resolve(
    api: Api, database: Database, clock: Clock
) -> None:
    frozen = api.enrol("13800000001")
    code = issue(database, frozen, clock.now)
    with database.write() as session:
        members.freeze(session, frozen, "dispute", clock.now)
    assert_problem(lookup(api, code), 404, "not_found")
    with database.write() as session, pytest.raises(MemberFrozen):
        codes.issue(session, frozen, clock.now, SECRET)

    with database.write() as session:
        members.unfreeze(session, frozen, clock.now)
    assert lookup(api, code).json()["id"] == frozen
    with database.write() as session:
        session.execute(
            update(Member).where(Member.id == frozen).values(status=MemberStatus.MERGED)
        )
    assert_problem(lookup(api, code), 404, "not_found")


def test_too_many_unknown_codes_a_minute_are_refused(
    api: Api, database: Database, clock: Clock
) -> None:
    member = api.enrol("13800000001")
    code = issue(database, member, clock.now)
    for serial in range(domain.MISSES_PER_WINDOW):
        assert_problem(lookup(api, f"{serial:016d}"), 404, "not_found")

    refused = lookup(api, code)  # even a valid code, until the minute is over
    body = assert_problem(refused, 429, "rate_limited")
    assert refused.headers["retry-after"] == "50"
    assert body["retry_after"] == 50
    assert misses(database) == domain.MISSES_PER_WINDOW  # the refusal counts nothing

    other = Api(api.client, make_partner(database, "SHOP"))
    assert other.get("/v1/members/lookup", params={"code": code}).json()["id"] == member

    clock.advance(seconds=50)  # the next minute
    assert lookup(api, code).json()["id"] == member
    assert_problem(lookup(api, "9" * 16), 404, "not_found")
    with database.read() as session:
        windows = session.scalars(
            select(MemberCodeMisses.window).where(MemberCodeMisses.partner_id == api.key.partner_id)
        ).all()
    assert len(windows) == 1  # the older minute was forgotten


def test_only_keyed_digests_are_stored_and_a_member_keeps_two_codes_at_most(
    database: Database,
) -> None:
    with database.write() as session:
        first = members.find_or_create(
            session, members.Identity("phone", "13800000001"), {}, START
        )[0]
        second = members.find_or_create(
            session, members.Identity("phone", "13800000002"), {}, START
        )[0]
    issued = [issue(database, first, START + timedelta(seconds=n)) for n in range(3)]
    other = issue(database, second, START)

    rows = stored_codes(database)
    assert len(issued) == len(set(issued)) == 3
    assert {row.digest for row in rows} == {
        domain.digest(code, SECRET) for code in [*issued[1:], other]
    }
    assert not any(code in row.digest for row in rows for code in issued)

    issue(database, second, START + domain.LIFETIME)  # every expired code goes
    assert {row.member_id for row in stored_codes(database)} == {first, second}
    assert [row.member_id for row in stored_codes(database)].count(second) == 1


def test_a_lookup_names_either_an_identity_or_a_code(api: Api, database: Database) -> None:
    member = api.enrol("13800000001")
    code = issue(database, member, START)
    both = api.get(
        "/v1/members/lookup", params={"code": code, "namespace": "phone", "id": "13800000001"}
    )
    assert_problem(both, 422, "validation_error")
    assert_problem(api.get("/v1/members/lookup"), 422, "validation_error")
    assert_problem(
        api.get("/v1/members/lookup", params={"namespace": "phone"}), 422, "validation_error"
    )
    by_phone = api.get("/v1/members/lookup", params={"namespace": "phone", "id": "13800000001"})
    assert by_phone.json()["id"] == member


def test_a_lookup_without_a_key_is_unauthorized(api: Api, database: Database) -> None:
    assert_problem(
        api.client.get("/v1/members/lookup", params={"code": "1" * 16}), 401, "unauthorized"
    )
    assert misses(database) == 0
