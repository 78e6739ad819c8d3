"""``tally jobs coupons``: each active member's monthly allowance (its tier's and its paid
plans', by template) issued once per month, however often and however many workers run it."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from support.coupon_programme import TEMPLATE, apply_coupon_programme
from support.race import race
from tally.coupons.models import Coupon
from tally.db.session import Database
from tally.flows import coupon_allowances, enrolment
from tally.members import service as members
from tally.members.service import Identity
from tally.memberships import service as memberships
from tally.partners import service as partners
from tally.programme.domain import Money

NOW = datetime(2026, 12, 4, 10, tzinfo=UTC)
NEXT_MONTH = datetime(2026, 12, 31, 17, tzinfo=UTC)  # 2027-01-01 01:00 in Asia/Shanghai


def _wallets(db: Database) -> dict[int, int]:
    with db.read() as session:
        rows = session.execute(
            select(Coupon.member_id, func.count()).group_by(Coupon.member_id)
        ).all()
    return {int(member): int(count) for member, count in rows}


def test_the_month_is_issued_once_by_racing_workers(database: Database) -> None:
    programme = apply_coupon_programme(database, NOW)
    with database.write() as session:
        plain, subscriber, frozen = (
            enrolment.enrol(session, Identity("phone", f"1370000000{i}"), {}, NOW)[0]
            for i in range(3)
        )
        members.freeze(session, frozen, "test", NOW)
        pay = partners.create_partner(session, "PAY", "pay", NOW)
        row, _ = memberships.subscribe(
            session, memberships.SYSTEM, subscriber, "MONTHLY", programme, NOW
        )
        memberships.pay(
            session, memberships.Actor(partner_id=pay.id), row.id, "r-1", Money(1500, "CNY"),
            None, programme, NOW,
        )  # fmt: skip

    reports = race(4, lambda _i: coupon_allowances.issue_allowances(database.write, NOW, programme))

    assert not [item for item in reports if isinstance(item, Exception)], reports
    assert sum(item.issued for item in reports) == 5  # type: ignore[attr-defined]
    assert _wallets(database) == {plain: 2, subscriber: 3}
    again = coupon_allowances.issue_allowances(database.write, NOW, programme)
    assert (again.month, again.members, again.issued, again.repeats) == ("2026-12", 2, 0, 5)
    with database.read() as session:
        preview = coupon_allowances.preview(session, NEXT_MONTH, programme)
    assert (preview.month, preview.issued, preview.repeats) == ("2027-01", 5, 0)
    assert _wallets(database) == {plain: 2, subscriber: 3}
    january = coupon_allowances.issue_allowances(database.write, NEXT_MONTH, programme)
    assert (january.month, january.issued) == ("2027-01", 5)  # the plan runs to 4 January
    assert _wallets(database) == {plain: 4, subscriber: 6}
    with database.read() as session:
        keys = session.scalars(select(Coupon.grant_key).where(Coupon.member_id == plain)).all()
    assert sorted(keys) == [
        f"monthly:{month}:{TEMPLATE}:{plain}:{n}"
        for month in ("2026-12", "2027-01")
        for n in (0, 1)
    ]
