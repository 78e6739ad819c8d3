"""An earn of several lines: one transaction, one lot per line with its own expiry and reason,
bound into the entry's hash; lines that do not add up are refused and write nothing."""

from __future__ import annotations

import uuid

from apikit import assert_problem
from sqlalchemy import func, select

from conftest import Api
from tally.db.session import Database
from tally.ledger.models import JournalEntry, Lot, Posting
from tally.ledger.verify import verify


def _entries(database: Database) -> int:
    with database.read() as session:
        return int(session.scalar(select(func.count()).select_from(JournalEntry)) or 0)


def test_an_earn_of_two_lines_makes_two_lots_in_one_transaction(
    api: Api, database: Database
) -> None:
    member = api.enrol("13700000001")
    answer = api.earn(
        member,
        150,
        "order-7",
        lines=[
            {"points": 100, "reason": "points on spend"},
            {"points": 50, "expires_at": "2027-01-31T16:00:00Z", "reason": "double weekend"},
        ],
    )

    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["balance"]["available"] == 150
    lines = body["details"]["lines"]
    assert [(line["points"], line["reason"]) for line in lines] == [
        (100, "points on spend"),
        (50, "double weekend"),
    ]
    assert lines[1]["expires_at"] == "2027-01-31T16:00:00+00:00"
    assert {item["points"] for item in body["balance"]["expiring"]} == {100, 50}
    with database.read() as session:
        entry = session.get(JournalEntry, uuid.UUID(body["transaction_id"]))
        assert entry is not None
        assert [line["reason"] for line in entry.details["lines"]] == [
            "points on spend",
            "double weekend",
        ]
        lots = session.execute(
            select(Lot.points, Lot.expires_at).where(Lot.entry_id == entry.id).order_by(Lot.points)
        ).all()
        assert [points for points, _expires in lots] == [50, 100]
        postings = session.execute(
            select(Posting.account, Posting.amount).where(Posting.entry_id == entry.id)
        ).all()
        # One funding leg (the partner's issuance account debited once) and one member leg.
        assert sorted(amount for _account, amount in postings) == [-150, 150]
        report = verify(session)
    assert report.ok, report.problems


def test_lines_that_do_not_add_up_are_refused_and_write_nothing(
    api: Api, database: Database
) -> None:
    member = api.enrol("13700000002")
    before = _entries(database)

    short = api.earn(member, 150, "order-8", lines=[{"points": 100}, {"points": 40}])
    assert_problem(short, 422, "validation_error")
    too_many = api.earn(member, 21, "order-9", lines=[{"points": 1}] * 21)
    assert too_many.status_code == 422, too_many.text
    past = api.earn(
        member, 10, "order-10", lines=[{"points": 10, "expires_at": "2001-01-01T00:00:00Z"}]
    )
    assert_problem(past, 422, "validation_error")

    assert _entries(database) == before
    assert api.balance(member)["available"] == 0


def test_a_tier_multiplier_applies_to_each_line(api: Api) -> None:
    """Without a multiplier above 1 (the default programme's single tier) the lines stand as
    given; the answer names the multiplier and the base points."""
    member = api.enrol("13700000003")
    answer = api.earn(
        member,
        30,
        "order-11",
        apply_tier_multiplier=True,
        lines=[{"points": 10}, {"points": 20}],
    )

    assert answer.status_code == 201, answer.text
    details = answer.json()["details"]
    assert details["base_points"] == 30
    assert [line["points"] for line in details["lines"]] == [10, 20]
    assert details["points"] == 30
