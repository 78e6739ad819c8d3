"""The tier evaluation of many members at once, as column expressions (polars): the same
decisions as :func:`tally.tiers.domain.evaluate`, one row per member, without a Python loop
per member. A differential test keeps the two equal.

The input has a row per member with the columns of :data:`STATE_SCHEMA`; instants are already
compared with the moment evaluated (the database does that, in the query that reads the rows),
so no timestamp crosses into the frame. The output (:func:`decide`) has a row per member whose
evaluation changes something: the one history line that explains it and the state to write.
"""

from __future__ import annotations

import polars as pl

from tally.programme.domain import Programme
from tally.tiers.domain import DOWNGRADE, GRACE_CLEARED, GRACE_STARTED, PROGRAMME_CHANGE, UPGRADE

STATE_SCHEMA: dict[str, pl.DataType] = {
    "member_id": pl.Int64(),
    "version": pl.Int64(),
    "tier_code": pl.String(),
    "in_grace": pl.Boolean(),  # a downgrade is due (``downgrade_at`` is set)
    "grace_running": pl.Boolean(),  # ... and later than the moment evaluated
    "evaluated_since": pl.Boolean(),  # evaluated at or after the moment evaluated
    "up": pl.Int64(),  # qualifying growth for upgrades
    "keep": pl.Int64(),  # qualifying growth for keeping a tier
}

DECISION_COLUMNS = (
    "member_id",
    "version",
    "from_code",
    "to_code",
    "reason",
    "growth",
    "grace",  # the decision starts a grace period: ``downgrade_at`` becomes the due date
    "changed",  # the tier itself changes: ``since`` becomes the moment evaluated
)


def _qualified(programme: Programme, value: pl.Expr) -> pl.Expr:
    """The index of the highest tier ``value`` reaches (thresholds ascend from 0)."""
    steps = [(value >= tier.threshold).cast(pl.Int64) for tier in programme.tiers[1:]]
    return pl.sum_horizontal(steps) if steps else pl.lit(0, pl.Int64)


def decide(programme: Programme, states: pl.DataFrame) -> pl.DataFrame:
    """The members of ``states`` whose evaluation changes something, with the columns of
    :data:`DECISION_COLUMNS`, in the order of ``states`` (see
    :func:`tally.tiers.domain.evaluate` for the rules)."""
    codes = [tier.code for tier in programme.tiers]
    model = programme.tier_model
    current = pl.col("tier_code").replace_strict(
        codes, list(range(len(codes))), default=None, return_dtype=pl.Int64
    )
    reach = _qualified(programme, pl.col("up"))
    keeps = _qualified(programme, pl.col("keep"))
    remap = current.is_null()
    upgrade = ~remap & (reach > current)
    kept = ~remap & ~upgrade & (keeps >= current)
    clear = kept & pl.col("in_grace")
    below = ~remap & ~upgrade & ~kept & ~pl.col("evaluated_since")
    start_grace = below & ~pl.col("in_grace") if model.grace_days > 0 else pl.lit(False)
    down = below & ~start_grace & ~(pl.col("in_grace") & pl.col("grace_running"))
    lowest = pl.max_horizontal(current - model.max_levels_down, keeps)
    decided = states.with_columns(
        reason=pl.when(remap)
        .then(pl.lit(PROGRAMME_CHANGE))
        .when(upgrade)
        .then(pl.lit(UPGRADE))
        .when(clear)
        .then(pl.lit(GRACE_CLEARED))
        .when(start_grace)
        .then(pl.lit(GRACE_STARTED))
        .when(down)
        .then(pl.lit(DOWNGRADE))
        .otherwise(None),
        to_index=pl.when(remap)
        .then(keeps)
        .when(upgrade)
        .then(reach)
        .when(down)
        .then(lowest)
        .otherwise(current),
        growth=pl.when(upgrade).then(pl.col("up")).otherwise(pl.col("keep")),
        grace=start_grace,
        changed=remap | upgrade | down,
    ).filter(pl.col("reason").is_not_null())
    return decided.select(
        "member_id",
        "version",
        pl.col("tier_code").alias("from_code"),
        pl.col("to_index")
        .replace_strict(list(range(len(codes))), codes, return_dtype=pl.String)
        .alias("to_code"),
        "reason",
        "growth",
        "grace",
        "changed",
    )
