"""Coupons under real parallel connections (and on SQLite): a code is used once, a template's
total and a member's limit are never exceeded, a rollback gives one use back once; what
validation says is what a redemption does."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from support.race import race
from tally.coupons import service as coupons
from tally.coupons.domain import Cart, Kind, Line, Reason, Scope, Source
from tally.coupons.models import Coupon, CouponMemberUse, CouponRedemption, CouponTemplate
from tally.db.session import Database
from tally.errors import CouponNotApplicable
from tally.flows import enrolment
from tally.kit.clock import utcnow
from tally.members.service import Identity

THREADS = 12
SHOP = coupons.Checkout(partner_id=1, partner_code="SHOP")
NAMES = {"zh-CN": "券", "en": "Coupon"}


def _template(db: Database, **fields: Any) -> CouponTemplate:
    spec = coupons.TemplateSpec(
        code=f"T{os.urandom(4).hex().upper()}",
        kind=fields.pop("kind", Kind.AMOUNT),
        value=fields.pop("value", 500),
        names=NAMES,
        **fields,
    )
    with db.write() as session:
        return coupons.create_template(session, spec, "CNY", utcnow())


def _members(db: Database, count: int) -> list[int]:
    with db.write() as session:
        return [
            enrolment.enrol(session, Identity("t", os.urandom(6).hex()), {}, utcnow())[0]
            for _ in range(count)
        ]


def _count(db: Database, model: Any, *where: Any) -> int:
    with db.read() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def _redeem(db: Database, code: str, member: int | None = None, amount: int = 1000) -> object:
    with db.write() as session:
        return coupons.redeem(session, coupons.Ask(code, Cart(amount), member), SHOP, utcnow())


def _outcomes(results: list[object]) -> tuple[int, list[str]]:
    unexpected = [
        r for r in results if isinstance(r, Exception) and not isinstance(r, CouponNotApplicable)
    ]
    assert not unexpected, unexpected
    refused = [str(r.extra["reason"]) for r in results if isinstance(r, CouponNotApplicable)]
    return len(results) - len(refused), refused


def test_one_code_raced_is_used_once(database: Database) -> None:
    made = _template(database)
    (member,) = _members(database, 1)
    with database.write() as session:
        row = coupons.template(session, made.code)
        ((_id, code, _m),) = coupons.issue(
            session, row, coupons.Issuer(), utcnow(), member_ids=[member]
        )

    used, refused = _outcomes(race(THREADS, lambda _i: _redeem(database, code, member)))

    assert used == 1
    assert set(refused) == {"already_used"}
    assert _count(database, CouponRedemption) == 1


def test_a_shared_codes_total_limit_holds_under_a_burst(database: Database) -> None:
    made = _template(database, shared_code=True, total_limit=5)

    used, refused = _outcomes(race(THREADS, lambda _i: _redeem(database, made.code)))

    assert used == 5
    assert refused == ["limit_reached"] * (THREADS - 5)
    assert _count(database, CouponRedemption) == 5
    with database.read() as session:
        assert coupons.template(session, made.code).redeemed == 5


def test_a_members_limit_holds_under_a_burst(database: Database) -> None:
    made = _template(database, shared_code=True, per_member_limit=2)
    one, two = _members(database, 2)

    used, refused = _outcomes(
        race(THREADS, lambda index: _redeem(database, made.code, one if index % 2 else two))
    )

    assert used == 4
    assert refused == ["limit_reached"] * (THREADS - 4)
    for member in (one, two):
        assert _count(database, CouponRedemption, CouponRedemption.member_id == member) == 2
    with database.read() as session:
        uses = session.scalars(select(CouponMemberUse.used)).all()
    assert sorted(uses) == [2, 2]


def test_racing_rollbacks_give_the_use_back_once(database: Database) -> None:
    made = _template(database, shared_code=True, total_limit=1, per_member_limit=1)
    (member,) = _members(database, 1)
    done = _redeem(database, made.code, member)
    assert isinstance(done, coupons.Redeemed)

    def roll(_index: int) -> object:
        with database.write() as session:
            found = coupons.redemption(session, str(done.redemption.id))
            return coupons.roll_back(session, found, utcnow()).status

    results = race(THREADS, roll)

    assert [str(item) for item in results] == ["rolled_back"] * THREADS
    with database.read() as session:
        row = coupons.template(session, made.code)
        assert (row.redeemed, row.rolled_back) == (0, 1)
        assert session.scalar(select(CouponMemberUse.used)) == 0
    assert isinstance(_redeem(database, made.code, member), coupons.Redeemed)


def test_racing_issues_never_pass_the_total(database: Database) -> None:
    made = _template(database, total_limit=50)

    def issue(_index: int) -> object:
        with database.write() as session:
            row = coupons.template(session, made.code)
            return len(coupons.issue(session, row, coupons.Issuer(), utcnow(), count=7))

    results = race(THREADS, issue)

    issued = sum(item for item in results if isinstance(item, int))
    assert issued == 49
    assert _count(database, Coupon) == 49


def test_grants_are_issued_once_however_often_asked(database: Database) -> None:
    made = _template(database)
    members = _members(database, 3)
    grants = [coupons.Grant(member, made.code, f"test:{member}") for member in members]

    def grant(_index: int) -> object:
        with database.write() as session:
            return coupons.grant(session, grants, Source.RULE, utcnow())

    for outcome in race(4, grant):
        assert not isinstance(outcome, Exception), outcome
    assert _count(database, Coupon) == 3
    with database.write() as session:
        again = coupons.grant(session, grants, Source.RULE, utcnow())
        unknown = coupons.grant(
            session, [coupons.Grant(members[0], "NOPE", "x:1")], Source.RULE, utcnow()
        )
    assert [item.repeat for item in again] == [True, True, True]
    assert unknown[0].refused == "unknown_template"
    with database.read() as session:
        assert coupons.template(session, made.code).issued == 3


carts = st.lists(
    st.tuples(
        st.sampled_from(["A", "B", "C"]), st.sampled_from(["food", "toys"]), st.integers(0, 50_000)
    ),
    max_size=4,
)


@pytest.mark.parametrize("kind", [Kind.PERCENT, Kind.AMOUNT])
@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    items=carts,
    extra=st.integers(0, 20_000),
    value=st.integers(1, 10_000),
    min_spend=st.none() | st.integers(1, 30_000),
)
def test_validate_says_what_redeem_does(
    database: Database,
    kind: Kind,
    items: list[tuple[str, str, int]],
    extra: int,
    value: int,
    min_spend: int | None,
) -> None:
    made = _template(database, kind=kind, value=value, cap=2_000 if kind is Kind.PERCENT else None,
                     min_spend=min_spend, scope=Scope(categories=("food",)), shared_code=True,
                     valid_until=utcnow() + timedelta(days=1))  # fmt: skip
    lines = tuple(Line(sku, amount, category) for sku, category, amount in items)
    ask = coupons.Ask(made.code, Cart(sum(line.amount for line in lines) + extra, lines))
    with database.read() as session:
        said = coupons.assess(session, ask, SHOP, utcnow())
    try:
        with database.write() as session:
            done: coupons.Redeemed | Reason = coupons.redeem(session, ask, SHOP, utcnow())
    except CouponNotApplicable as refusal:
        done = Reason(refusal.extra["reason"])
    if said.quote is None:
        assert done == said.reason
    else:
        assert isinstance(done, coupons.Redeemed)
        assert done.quote == said.quote
        assert done.redemption.discount == said.quote.discount <= said.quote.eligible
