"""What all members' redemptions say, computed set-based with polars (pure: frames in,
:class:`~tally.offers.domain.Signals` out).

Item-item similarity is the co-occurrence of two items among the members who redeemed both,
as a cosine over members (``both / sqrt(members of a × members of b)``), shrunk towards 0 when
few members redeemed both (``× both / (both + SHRINK)``), each item keeping its
:data:`NEIGHBOURS` most similar. A member counts once per item, with at most their
:data:`ITEMS_PER_MEMBER` most recently redeemed items, so one heavy redeemer cannot dominate
and the self-join stays bounded. Popularity is the number of members who redeemed an item,
overall and within each tier.
"""

from __future__ import annotations

import polars as pl

from tally.offers.domain import Signals

NEIGHBOURS = 40
ITEMS_PER_MEMBER = 50
SHRINK = 2.0

#: The frame of redemptions :func:`signals_from` reads.
ORDERS_SCHEMA = {
    "member_id": pl.Int64(),
    "item_id": pl.Int64(),
    "created_at": pl.Datetime("us", "UTC"),
    "tier_code": pl.String(),  # the member's tier now; null: the programme's first tier
}
#: Each member's distinct redeemed items (the most recent :data:`ITEMS_PER_MEMBER`).
PAIRS_SCHEMA = {"member_id": pl.Int64(), "item_id": pl.Int64(), "tier_code": pl.String()}
SIMILARITY_SCHEMA = {"item_id": pl.Int64(), "other_id": pl.Int64(), "similarity": pl.Float64()}
POPULARITY_SCHEMA = {"tier_code": pl.String(), "item_id": pl.Int64(), "members": pl.Int64()}


def member_items(orders: pl.DataFrame, cap: int = ITEMS_PER_MEMBER) -> pl.DataFrame:
    """:data:`PAIRS_SCHEMA`: each member's distinct redeemed items, the most recent ``cap``
    of them (on a tie, the lower item id), from redemptions
    (:data:`ORDERS_SCHEMA`). The repository's query does the same in SQL."""
    return (
        orders.lazy()
        .group_by("member_id", "item_id")
        .agg(pl.col("created_at").max().alias("last"), pl.col("tier_code").max())
        .sort(["member_id", "last", "item_id"], descending=[False, True, False])
        .with_columns(pl.int_range(1, pl.len() + 1).over("member_id").alias("recency"))
        .filter(pl.col("recency") <= cap)
        .select("member_id", "item_id", "tier_code")
        .collect()
    )


def similarities(pairs: pl.DataFrame) -> pl.DataFrame:
    """``item_id, other_id, similarity``: every item's :data:`NEIGHBOURS` most similar items
    (best first, then by id), from :func:`member_items`' pairs."""
    counts = pairs.group_by("item_id").agg(pl.len().alias("members"))
    slim = pairs.lazy().select("member_id", "item_id")
    both = (
        slim.join(slim.rename({"item_id": "other_id"}), on="member_id")
        .filter(pl.col("item_id") != pl.col("other_id"))
        .group_by("item_id", "other_id")
        .agg(pl.len().alias("both"))
    )
    counted = counts.lazy()
    return (
        both.join(counted, on="item_id")
        .join(counted.rename({"item_id": "other_id", "members": "other_members"}), on="other_id")
        .with_columns(
            (
                pl.col("both")
                / (pl.col("members") * pl.col("other_members")).cast(pl.Float64).sqrt()
                * pl.col("both")
                / (pl.col("both") + SHRINK)
            )
            .round(9)
            .alias("similarity")
        )
        .sort(["item_id", "similarity", "other_id"], descending=[False, True, False])
        .group_by("item_id", maintain_order=True)
        .head(NEIGHBOURS)
        .select("item_id", "other_id", "similarity")
        .collect()
    )


def signals_from(orders: pl.DataFrame, default_tier: str) -> Signals:
    """The :class:`Signals` of the redemptions ``orders`` (:data:`ORDERS_SCHEMA`; a null tier
    is ``default_tier``)."""
    return signals_from_pairs(member_items(orders), default_tier)


def popularity(pairs: pl.DataFrame, default_tier: str) -> pl.DataFrame:
    """``tier_code, item_id, members``: the members who redeemed each item, within each tier
    (a null tier is ``default_tier``) and overall (tier ``""``)."""
    by_tier = (
        pairs.with_columns(pl.col("tier_code").fill_null(default_tier))
        .group_by("tier_code", "item_id")
        .agg(pl.len().cast(pl.Int64).alias("members"))
    )
    overall = pairs.group_by("item_id").agg(pl.len().cast(pl.Int64).alias("members"))
    return pl.concat(
        [by_tier, overall.select(pl.lit("").alias("tier_code"), "item_id", "members")]
    ).sort("tier_code", "item_id")


def signals_of(similar: pl.DataFrame, popular: pl.DataFrame) -> Signals:
    """:class:`Signals` from :func:`similarities`' and :func:`popularity`'s frames (or the
    rows of them the database keeps)."""
    neighbours: dict[int, list[tuple[int, float]]] = {}
    ordered = similar.sort(["item_id", "similarity", "other_id"], descending=[False, True, False])
    for item_id, other_id, value in ordered.select("item_id", "other_id", "similarity").iter_rows():
        neighbours.setdefault(item_id, []).append((other_id, value))
    overall: dict[int, int] = {}
    tiers: dict[str, dict[int, int]] = {}
    for tier_code, item_id, members in popular.select(
        "tier_code", "item_id", "members"
    ).iter_rows():
        (overall if tier_code == "" else tiers.setdefault(tier_code, {}))[item_id] = members
    return Signals(
        neighbours={key: tuple(value) for key, value in neighbours.items()},
        popularity=overall,
        tier_popularity=tiers,
    )


def signals_from_pairs(pairs: pl.DataFrame, default_tier: str) -> Signals:
    """The :class:`Signals` of members' redeemed items (:data:`PAIRS_SCHEMA`; a null tier is
    ``default_tier``)."""
    return signals_of(similarities(pairs), popularity(pairs, default_tier))
