"""Offline evaluation of the offers ranking: hit rate at 10 and MRR on held-out redemptions,
Tally's ranking beside popularity.

It builds a synthetic mall history set-based with polars (no loop per row): items in
categories, each category split into a few "styles" (tastes finer than a category, which only
co-occurrence can see), priced from 100 to 20,000 points, a few reserved to the top tiers
(exclusive), to tiers from GOLD up or to a paid plan; members in the demo programme's six
tiers with balances that grow with the tier, each with two favourite categories and a
favourite style in each; orders drawn from those tastes and the items' popularity (a Zipf
law), some of them repeats of the member's previous order, over the year before the
evaluation, kept only when the member could buy the item (eligible, affordable).

Each member's latest redemption is held out. With only the other redemptions (the signals are
computed from all members' remaining redemptions by :mod:`tally.offers.similarity`, the same
code the service runs), each member's items are ranked as of the held-out moment by:

* ``popularity``: the members who redeemed an item, among the items the member may buy;
* ``popularity, affordable first``: the same, items within the member's balance first;
* ``tally, no balance``: :func:`tally.offers.domain.rank` ignoring the balance;
* ``tally``: :func:`tally.offers.domain.rank` as the API runs it.

A member whose only redemption is held out is a new member to the ranking (the fallback:
popularity in the tier, then overall). The figures are the held-out item's presence in the
first 10 (hit rate at 10) and the mean of 1/its rank (MRR). The verdict: Tally's ranking beats
popularity on both. It also times the signals' computation over the whole history, in memory
and read from a SQLite database through the job's query (what one `tally jobs offers` costs).

    .venv/bin/python bench/offers_eval.py                # 10,000 members, ~60,000 orders
    .venv/bin/python bench/offers_eval.py --smoke        # 300 members, seconds, no verdict
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(0, str(REPO_DIR / "src"))

import verdicts  # noqa: E402
from tally.mall.domain import Eligibility, ItemKind, Pricing  # noqa: E402
from tally.offers import similarity  # noqa: E402
from tally.offers.domain import Offerable, Past, Shopper, rank  # noqa: E402
from verdicts import Row, check, render_table  # noqa: E402

NOW = datetime(2026, 12, 1, tzinfo=UTC)
ZONE = ZoneInfo("Asia/Shanghai")
CATEGORIES = (
    "books", "travel", "food", "digital", "telecom", "beauty",
    "sports", "kids", "home", "electronics", "coupons", "charity",
)  # fmt: skip
STYLES = 3
#: The demo programme's tiers: (code, share of members, balance factor, mall_exclusive).
TIERS = (
    ("BRONZE", 0.45, 1.0, False),
    ("SILVER", 0.25, 1.5, False),
    ("GOLD", 0.15, 2.0, False),
    ("PLATINUM", 0.09, 3.0, False),
    ("DIAMOND", 0.045, 4.0, True),
    ("BLACK_DIAMOND", 0.015, 6.0, True),
)
PLAN = "VIP88"
MEAN_ORDERS = 7.0
REPEAT_SHARE = 0.15
K = 10


def uniform(seed: int, *columns: str) -> pl.Expr:
    """A deterministic uniform in [0, 1) from ``columns`` and ``seed`` (a hash)."""
    return (pl.struct(columns).hash(seed) % 1_000_003).cast(pl.Float64) / 1_000_003


def make_items(count: int) -> pl.DataFrame:
    """``item_id, code, category, second, style, weight, points, rule``: the catalog."""
    return (
        pl.DataFrame({"item_id": pl.int_range(1, count + 1, eager=True)})
        .with_columns(
            code=pl.format("I{}", pl.col("item_id").cast(pl.String).str.zfill(4)),
            category=(uniform(1, "item_id") * len(CATEGORIES)).cast(pl.Int64),
            second=pl.when(uniform(2, "item_id") < 0.3)
            .then((uniform(3, "item_id") * len(CATEGORIES)).cast(pl.Int64))
            .otherwise(None),
            style=(uniform(4, "item_id") * STYLES).cast(pl.Int64),
            # A Zipf law over a random order of the items.
            weight=1.0 / (1.0 + uniform(5, "item_id") * count) ** 0.9,
            points=((100 * (200.0 ** uniform(6, "item_id"))) / 10).round() * 10,
            rule=pl.when(uniform(7, "item_id") < 0.05)
            .then(pl.lit("exclusive"))
            .when(uniform(7, "item_id") < 0.09)
            .then(pl.lit("gold_up"))
            .when(uniform(7, "item_id") < 0.12)
            .then(pl.lit("plan"))
            .otherwise(pl.lit("")),
        )
        .with_columns(pl.col("points").cast(pl.Int64))
    )


def make_members(count: int) -> pl.DataFrame:
    """``member_id, tier, exclusive, plan, balance, fav1, fav2``."""
    edges: list[float] = []
    total = 0.0
    for _code, share, _factor, _exclusive in TIERS:
        total += share
        edges.append(total)
    u = uniform(11, "member_id")
    tier = pl.lit(TIERS[-1][0])
    factor = pl.lit(TIERS[-1][2])
    for (code, _share, tier_factor, _exclusive), edge in reversed(
        list(zip(TIERS, edges, strict=True))
    ):
        tier = pl.when(u < edge).then(pl.lit(code)).otherwise(tier)
        factor = pl.when(u < edge).then(pl.lit(tier_factor)).otherwise(factor)
    exclusive_tiers = [code for code, _s, _f, exclusive in TIERS if exclusive]
    return (
        pl.DataFrame({"member_id": pl.int_range(1, count + 1, eager=True)})
        .with_columns(tier=tier, factor=factor)
        .with_columns(
            exclusive=pl.col("tier").is_in(exclusive_tiers),
            plan=uniform(12, "member_id") < 0.05 + 0.05 * pl.col("factor"),
            balance=(300 * 100.0 ** uniform(13, "member_id") * pl.col("factor"))
            .round()
            .cast(pl.Int64),
            fav1=(uniform(14, "member_id") * len(CATEGORIES)).cast(pl.Int64),
            fav2=(uniform(15, "member_id") * len(CATEGORIES)).cast(pl.Int64),
            orders=(1 - (MEAN_ORDERS * (1 - uniform(16, "member_id")).log()).floor())
            .clip(1, 40)
            .cast(pl.Int64),
        )
        .drop("factor")
    )


def make_orders(items: pl.DataFrame, members: pl.DataFrame) -> pl.DataFrame:
    """``member_id, item_id, created_at, seq``: the redemptions, set-based."""
    # Each item in each (category, style) group it belongs to, with its cumulative share.
    groups = (
        pl.concat(
            [
                items.select("item_id", "category", "style", "weight"),
                items.filter(pl.col("second").is_not_null()).select(
                    "item_id", pl.col("second").alias("category"), "style", "weight"
                ),
            ]
        )
        .sort("category", "style", "item_id")
        .with_columns(
            cum=(pl.col("weight").cum_sum() / pl.col("weight").sum()).over("category", "style")
        )
        .select("category", "style", "cum", "item_id")
    )
    slots = (
        members.select("member_id", "fav1", "fav2", "orders")
        .with_columns(seq=pl.int_ranges(0, pl.col("orders")))
        .explode("seq")
        .with_columns(
            u_cat=uniform(21, "member_id", "seq"),
            u_random_cat=uniform(22, "member_id", "seq"),
            u_style=uniform(23, "member_id", "seq"),
            u_item=uniform(24, "member_id", "seq"),
            u_repeat=uniform(25, "member_id", "seq"),
            u_time=uniform(26, "member_id", "seq"),
        )
        .with_columns(
            category=pl.when(pl.col("u_cat") < 0.5)
            .then(pl.col("fav1"))
            .when(pl.col("u_cat") < 0.8)
            .then(pl.col("fav2"))
            .otherwise((pl.col("u_random_cat") * len(CATEGORIES)).cast(pl.Int64))
        )
        .with_columns(
            style=pl.when(pl.col("u_style") < 0.75)
            .then((uniform(27, "member_id", "category") * STYLES).cast(pl.Int64))
            .otherwise((uniform(28, "member_id", "seq") * STYLES).cast(pl.Int64))
        )
    )
    picked = (
        slots.sort("u_item")
        .join_asof(  # both sides sorted on their key within each group
            groups.sort("cum"),
            left_on="u_item",
            right_on="cum",
            by=["category", "style"],
            strategy="forward",
            check_sortedness=False,
        )
        .filter(pl.col("item_id").is_not_null())  # no item of that taste: nothing bought
        .sort("member_id", "seq")
        .with_columns(previous=pl.col("item_id").shift(1).over("member_id"))
        .with_columns(
            item_id=pl.when((pl.col("u_repeat") < REPEAT_SHARE) & pl.col("previous").is_not_null())
            .then(pl.col("previous"))
            .otherwise(pl.col("item_id"))
        )
        .with_columns(
            created_at=pl.lit(NOW - timedelta(days=365))
            + pl.duration(
                seconds=((pl.col("seq") + pl.col("u_time")) / pl.col("orders") * 364 * 86_400).cast(
                    pl.Int64
                )
            )
        )
    )
    with_facts = picked.join(items.select("item_id", "points", "rule"), on="item_id").join(
        members.select("member_id", "tier", "exclusive", "plan", "balance"), on="member_id"
    )
    allowed = (
        (pl.col("points") <= pl.col("balance"))
        & ((pl.col("rule") != "exclusive") | pl.col("exclusive"))
        & ((pl.col("rule") != "gold_up") | ~pl.col("tier").is_in(["BRONZE", "SILVER"]))
        & ((pl.col("rule") != "plan") | pl.col("plan"))
    )
    return (
        with_facts.filter(allowed)
        .select("member_id", "item_id", "created_at", "seq", "tier")
        .with_columns(pl.col("created_at").dt.replace_time_zone("UTC"))
        .sort("member_id", "created_at", "seq")
    )


def offerables(items: pl.DataFrame) -> list[Offerable]:
    """The catalog as the ranking reads it (every item in stock, no window)."""
    found = []
    for row in items.iter_rows(named=True):
        categories = {CATEGORIES[row["category"]]}
        if row["second"] is not None:
            categories.add(CATEGORIES[row["second"]])
        rule = {
            "exclusive": Eligibility(exclusive=True),
            "gold_up": Eligibility(tiers=("GOLD", "PLATINUM", "DIAMOND", "BLACK_DIAMOND")),
            "plan": Eligibility(plans=(PLAN,)),
        }.get(row["rule"], Eligibility())
        found.append(
            Offerable(
                item_id=row["item_id"],
                code=row["code"],
                kind=ItemKind.DONATION,
                names={"zh-CN": row["code"], "en": row["code"]},
                categories=tuple(sorted(categories)),
                pricing=Pricing(row["points"], {}, None),
                eligibility=rule,
            )
        )
    return found


@dataclass
class Score:
    hits: int = 0
    reciprocal: float = 0.0
    count: int = 0

    def add(self, position: int | None) -> None:
        self.count += 1
        if position is not None:
            self.hits += position <= K
            self.reciprocal += 1.0 / position

    @property
    def hit_rate(self) -> float:
        return self.hits / self.count if self.count else 0.0

    @property
    def mrr(self) -> float:
        return self.reciprocal / self.count if self.count else 0.0


def _position(codes: list[str], wanted: str) -> int | None:
    try:
        return codes.index(wanted) + 1
    except ValueError:
        return None


def evaluate(
    items: pl.DataFrame, members: pl.DataFrame, orders: pl.DataFrame
) -> tuple[dict[str, Score], dict[str, Score], float]:
    """The four rankers' scores on every member's held-out latest redemption (all members, and
    those with earlier redemptions only), and the seconds the signals took."""
    orders = orders.with_columns(latest=pl.col("seq") == pl.col("seq").max().over("member_id"))
    held = orders.filter(pl.col("latest"))
    training = orders.filter(~pl.col("latest"))
    started = time.perf_counter()
    signals = similarity.signals_from(
        training.select("member_id", "item_id", "created_at", pl.col("tier").alias("tier_code")),
        TIERS[0][0],
    )
    signal_seconds = time.perf_counter() - started
    catalog = offerables(items)
    codes = dict(items.select("item_id", "code").iter_rows())
    categories = {item.item_id: item.categories for item in catalog}
    histories: dict[int, list[Past]] = {}
    for member_id, item_id, at in training.select("member_id", "item_id", "created_at").iter_rows():
        histories.setdefault(member_id, []).append(
            Past(item_id, codes[item_id], categories[item_id], at)
        )
    facts = {row["member_id"]: row for row in members.iter_rows(named=True)}
    names = ("popularity", "popularity, affordable first", "tally, no balance", "tally")
    everyone = {name: Score() for name in names}
    returning = {name: Score() for name in names}
    for member_id, item_id, at in held.select("member_id", "item_id", "created_at").iter_rows():
        member = facts[member_id]
        shopper = Shopper(
            member_id=member_id,
            tier_code=member["tier"],
            tier_is_exclusive=member["exclusive"],
            plans=frozenset({PLAN}) if member["plan"] else frozenset(),
            balance=member["balance"],
            history=tuple(histories.get(member_id, ())),
        )
        wanted = codes[item_id]
        ranked = rank(catalog, shopper, signals, at, ZONE, None)
        blind = rank(catalog, shopper, signals, at, ZONE, None, use_balance=False)
        eligible = sorted(
            ranked, key=lambda o: (-signals.popularity.get(o.item.item_id, 0), o.item.code)
        )
        affordable = sorted(eligible, key=lambda o: o.points > shopper.balance)
        positions = {
            "popularity": _position([o.item.code for o in eligible], wanted),
            "popularity, affordable first": _position([o.item.code for o in affordable], wanted),
            "tally, no balance": _position([o.item.code for o in blind], wanted),
            "tally": _position([o.item.code for o in ranked], wanted),
        }
        for name, position in positions.items():
            everyone[name].add(position)
            if shopper.history:
                returning[name].add(position)
    return everyone, returning, signal_seconds


def time_signals_from_sqlite(orders: pl.DataFrame) -> float:
    """Seconds to read ``orders`` as members' redeemed items from a SQLite file through the
    job's query and compute the signals (what one ``tally jobs offers`` computes)."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from tally.offers import repository
    from tally.schema import metadata

    with tempfile.TemporaryDirectory() as folder:
        engine = create_engine(f"sqlite:///{folder}/offers.db")
        metadata().create_all(engine)  # foreign keys are not enforced: orders stand alone
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.executemany(
                "INSERT INTO mall_orders (id, member_id, item_id, item_code, kind,"
                " accepting_partner_id, channel, quantity, unit_points, points,"
                " discount_points, is_sale, payment_status, fulfilment_status,"
                " refunded_points, refunded_quantity, version, created_at, updated_at)"
                " VALUES (?, ?, ?, 'I', 'donation', 1, 'api', 1, 1, 1, 0, 0, 'paid',"
                " 'delivered', 0, 0, 1, ?, ?)",
                [
                    (f"{n:032x}", member, item, at.isoformat(" "), at.isoformat(" "))
                    for n, (member, item, at) in enumerate(
                        orders.select("member_id", "item_id", "created_at").iter_rows()
                    )
                ],
            )
            tiers = orders.select("member_id", "tier").unique("member_id")
            cursor.executemany(
                "INSERT INTO member_tiers (member_id, tier_code, lifetime_growth, version)"
                " VALUES (?, ?, 0, 0)",
                tiers.iter_rows(),
            )
            raw.commit()
        finally:
            raw.close()
        with Session(engine) as session:
            started = time.perf_counter()
            pairs = repository.redeemed_pairs(
                session, NOW - timedelta(days=365), NOW, similarity.ITEMS_PER_MEMBER
            )
            similarity.signals_from_pairs(pairs, TIERS[0][0])
            seconds = time.perf_counter() - started
            expected = similarity.member_items(orders.rename({"tier": "tier_code"}))
            assert pairs.sort("member_id", "item_id").equals(
                expected.sort("member_id", "item_id")
            ), "the SQL pairs differ from similarity.member_items'"
        engine.dispose()
        return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--items", type=int, default=300)
    parser.add_argument("--smoke", action="store_true", help="300 members, 60 items, no verdict")
    args = parser.parse_args()
    members_count, items_count = (300, 60) if args.smoke else (args.members, args.items)
    started = time.perf_counter()
    items = make_items(items_count)
    members = make_members(members_count)
    orders = make_orders(items, members)
    built = time.perf_counter() - started
    everyone, returning, signal_seconds = evaluate(items, members, orders)
    sqlite_seconds = time_signals_from_sqlite(orders)
    evaluated = time.perf_counter() - started - built
    print(
        f"{members_count} members, {items_count} items, {orders.height} redemptions "
        f"(built in {built:.1f} s, evaluated in {evaluated:.1f} s)"
    )
    rows: list[Row] = []
    for label, scores in (("all members", everyone), ("with earlier redemptions", returning)):
        for name, score in scores.items():
            rows.append(
                Row(
                    label,
                    f"{name}: hit rate at {K} / MRR ({score.count} held out)",
                    f"{score.hit_rate:.3f} / {score.mrr:.3f}",
                    "",
                    "info",
                )
            )
    tally, popular = everyone["tally"], everyone["popularity"]
    beats = tally.hit_rate > popular.hit_rate and tally.mrr > popular.mrr
    rows.append(
        Row(
            "all members",
            "tally beats popularity (hit rate at 10 and MRR)",
            f"{tally.hit_rate / max(popular.hit_rate, 1e-9):.2f}x / "
            f"{tally.mrr / max(popular.mrr, 1e-9):.2f}x",
            "> 1x both",
            "info" if args.smoke else check(beats),
        )
    )
    rows.append(
        Row("memory", "signals over the training history", f"{signal_seconds:.2f} s", "", "info")
    )
    rows.append(
        Row(
            "sqlite",
            f"the job's read and signals over {orders.height} redemptions",
            f"{sqlite_seconds:.2f} s",
            "",
            "info",
        )
    )
    print(render_table(rows))
    checks_passed = all(not math.isnan(s.mrr) for s in everyone.values())
    verdict = verdicts.overall(rows) if checks_passed else "FAIL (a score is not a number)"
    print(f"verdict: {verdict}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
