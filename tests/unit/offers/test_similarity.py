"""Item similarity and popularity from all members' redemptions, set-based."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import polars as pl

from tally.offers import similarity
from tally.offers.similarity import ORDERS_SCHEMA, signals_from

T = datetime(2026, 11, 1, tzinfo=UTC)


def frame(rows: list[tuple[int, int, int, str | None]]) -> pl.DataFrame:
    """``(member, item, day, tier)`` rows as the repository's frame."""
    return pl.DataFrame(
        [(member, item, T + timedelta(days=day), tier) for member, item, day, tier in rows],
        schema=ORDERS_SCHEMA,
        orient="row",
    )


def test_similarity_is_a_shrunk_cosine_over_members_and_popularity_counts_members() -> None:
    orders = frame(
        [
            (1, 10, 0, "GOLD"),
            (1, 11, 1, "GOLD"),
            (1, 11, 2, "GOLD"),  # a second redemption of 11 counts the member once
            (2, 10, 0, None),
            (2, 11, 3, None),
            (3, 10, 1, None),
            (3, 12, 2, None),
        ]
    )
    found = signals_from(orders, "BRONZE")
    # 10: 3 members, 11: 2, 12: 1; 10 and 11 together: 2; 10 and 12: 1; 11 and 12: none.
    shrink = similarity.SHRINK
    ten_eleven = 2 / math.sqrt(3 * 2) * 2 / (2 + shrink)
    ten_twelve = 1 / math.sqrt(3 * 1) * 1 / (1 + shrink)
    assert found.neighbours[10] == ((11, round(ten_eleven, 9)), (12, round(ten_twelve, 9)))
    assert found.neighbours[11] == ((10, round(ten_eleven, 9)),)
    assert found.neighbours[12] == ((10, round(ten_twelve, 9)),)
    assert found.popularity == {10: 3, 11: 2, 12: 1}
    assert found.tier_popularity == {"GOLD": {10: 1, 11: 1}, "BRONZE": {10: 2, 11: 1, 12: 1}}
    popular = similarity.popularity(similarity.member_items(orders), "BRONZE")
    assert popular.rows() == [
        ("", 10, 3), ("", 11, 2), ("", 12, 1),
        ("BRONZE", 10, 2), ("BRONZE", 11, 1), ("BRONZE", 12, 1),
        ("GOLD", 10, 1), ("GOLD", 11, 1),
    ]  # fmt: skip


def test_a_member_counts_with_their_most_recent_items_only() -> None:
    many = similarity.ITEMS_PER_MEMBER + 5
    orders = frame([(1, item, item, None) for item in range(1, many + 1)])
    pairs = similarity.member_items(orders)
    assert sorted(pairs["item_id"].to_list()) == list(range(6, many + 1))


def test_neighbours_are_capped_and_no_history_gives_empty_signals() -> None:
    many = similarity.NEIGHBOURS + 10
    orders = frame([(member, item, 0, None) for member in (1, 2) for item in range(many)])
    found = signals_from(orders, "BRONZE")
    assert all(len(value) == similarity.NEIGHBOURS for value in found.neighbours.values())
    first = found.neighbours[0]
    assert [other for other, _ in first] == list(range(1, similarity.NEIGHBOURS + 1))  # ties: id
    empty = signals_from(frame([]), "BRONZE")
    assert (empty.neighbours, empty.popularity, empty.tier_popularity) == ({}, {}, {})
