"""Accounts without a database: codes, parsing, the net change a group commit adds to each
account, a partner's totals, and the exact value of unspent points."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tally.accounts.domain import (
    SYSTEM_ACCOUNTS,
    Account,
    AccountKind,
    Balance,
    OwnerType,
    member_accounts,
    parse,
    partner_accounts,
    partner_totals,
    striped_deltas,
)
from tally.ledger import domain as ledger
from tally.ledger.liability import Outstanding, valued
from tally.programme.domain import Money


def test_codes_are_the_ones_postings_use() -> None:
    assert [a.code for a in member_accounts(7)] == [
        ledger.member_available(7),
        ledger.member_held(7),
    ]
    assert [a.code for a in partner_accounts(5)] == [
        ledger.partner_issued(5),
        ledger.partner_redeemed(5),
    ]
    assert [a.code for a in SYSTEM_ACCOUNTS] == [
        ledger.SYSTEM_EXPIRED,
        ledger.SYSTEM_ADJUSTMENTS,
        "system:breakage",
    ]
    assert partner_accounts(5)[1] == Account(
        "partner:5:redeemed", OwnerType.PARTNER, 5, AccountKind.ACCEPTED
    )


def test_parse_reads_back_every_account_and_nothing_else() -> None:
    for account in [*member_accounts(3), *partner_accounts(4), *SYSTEM_ACCOUNTS]:
        assert parse(account.code) == account
    for code in (
        "partner:4:accepted",  # the kind's name, not the code's
        "partner:4:available",
        "member:x:held",
        "member:3:issued",
        "system:lost",
        "system:1:expired",
        "member:03:held",
        "",
    ):
        assert parse(code) is None, code


def test_a_group_commit_adds_one_net_change_per_partner_or_system_account() -> None:
    legs = [
        ("partner:1:issued", -100),
        ("member:7:available", 100),
        ("partner:1:issued", -40),
        ("member:8:available", 40),
        ("member:7:available", -30),
        ("partner:2:redeemed", 30),
        ("partner:2:redeemed", -5),  # a refund in the same batch
        ("member:7:available", 5),
        ("system:adjustments", 10),
        ("system:adjustments", -10),  # nets to zero: nothing to write
    ]

    assert striped_deltas(legs) == [("partner:1:issued", -140), ("partner:2:redeemed", 25)]
    assert striped_deltas([]) == []


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["partner:1:issued", "partner:2:redeemed", "system:expired"]),
            st.integers(-(10**9), 10**9),
        )
    )
)
def test_the_net_changes_sum_to_the_legs(legs: list[tuple[str, int]]) -> None:
    deltas = dict(striped_deltas(legs))
    for code in {code for code, _amount in legs}:
        assert deltas.get(code, 0) == sum(amount for name, amount in legs if name == code)
    assert all(deltas.values())


def test_a_partner_s_totals_read_its_contra_account_as_positive() -> None:
    issued, accepted = partner_accounts(5)

    totals = partner_totals([Balance(accepted, 300), Balance(issued, -1500)])

    assert (totals.issued, totals.accepted, totals.net) == (1500, 300, 1200)
    assert [item.account.kind for item in totals.accounts] == [
        AccountKind.ISSUED,
        AccountKind.ACCEPTED,
    ]
    assert partner_totals([]).net == 0


def test_unspent_points_are_valued_exactly_then_rounded_once() -> None:
    groups = [
        # 0.01 CNY a point: 1 point = 1 fen
        ("CNY", 1, 1200, 1200 * 1),
        # 0.005 CNY a point: 10 points = 5 fen; 3 points are 1.5 fen, 5 points 2.5 fen
        ("CNY", 10, 3, 3 * 5),
        ("CNY", 10, 5, 5 * 5),
        ("USD", 100, 150, 150 * 1),  # 1.5 cents
    ]

    assert valued(groups) == [
        Outstanding(1208, Money(1204, "CNY")),  # 1200 + 1.5 + 2.5 = 1204 exactly
        Outstanding(150, Money(2, "USD")),  # 1.5 rounds half to even
    ]
    assert valued([]) == []
