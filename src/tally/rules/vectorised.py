"""The rule engine over a whole batch of events at once: each rule of the book, in its order,
computed for every event by polars column expressions, with the same outcomes, event for
event, as :func:`tally.rules.engine.evaluate` run on the events one after another.

Vectorised: event types, schedules, holdouts and arms (with the awards variants give), ``when``
conditions (:meth:`Condition.to_polars`, the explanation of a false one computed once per
distinct value of the fields it reads), ``points_per`` and ``growth_per`` on the amount, fixed
points and growth, ``multiply`` by a factor or the member's tier, badges, ``stop``, per-event
caps, and the budget and per-member caps of a campaign whose one rule asks points, consumed in
event order by running sums clipped at what each counter has left, the finest first (a counter
that cuts a grant has nothing left after it, so nested counters clip in turn). Money and
factors run in integers of ten-thousandths (Int128), never floats.

An event with line items, or on a campaign outside that list (more than one rule asking points
from counters, caps per week and per month together — a week may straddle two months —, a rate
of more than four decimals), is evaluated by the engine itself, in order; so is every event on
a counted campaign such an event is on, so that each counter is consumed by one path only, in
event order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import polars as pl

from tally.rules.condition_polars import column_dtype
from tally.rules.conditions import Condition, FieldType
from tally.rules.engine import (
    HOLDOUT,
    Applied,
    Event,
    Member,
    Outcome,
    Reason,
    Skipped,
    arm_of,
    budget_key,
    counter_limits,
    evaluate,
)
from tally.rules.rule_book import (
    Award,
    Badge,
    CampaignSpec,
    CapPer,
    CompiledRule,
    Coupon,
    FixedGrowth,
    FixedPoints,
    GrowthPer,
    Multiply,
    Period,
    PointsPer,
    RuleBook,
)

SCALE = 10_000  # money and factors in ten-thousandths
#: Evaluates events in order, each seeing what the ones before consumed: the outcomes.
#: ``(book, events, members, remaining, paused campaigns)`` → each event's outcome, in order.
Evaluator = Callable[
    [RuleBook, Sequence[Event], Sequence[Member], Mapping[str, int], frozenset[str]],
    list[Outcome],
]
_I128 = pl.Int128()
_WINDOWS = {Period.DAY: "%Y-%m-%d", Period.WEEK: "%G-W%V", Period.MONTH: "%Y-%m"}


def evaluate_in_order(
    book: RuleBook,
    events: Sequence[Event],
    members: Sequence[Member],
    remaining: Mapping[str, int],
    paused: frozenset[str] = frozenset(),
) -> list[Outcome]:
    """The engine, event after event, each seeing what the ones before it consumed."""
    left = dict(remaining)
    outcomes = []
    for event, member in zip(events, members, strict=True):
        outcome = evaluate(book, event, member, left, paused=paused)
        if outcome.consumption:
            limits = counter_limits(book, event, member.id)
            for key, points in outcome.consumption.items():
                left[key] = left.get(key, limits[key]) - points
        outcomes.append(outcome)
    return outcomes


def evaluate_many(
    book: RuleBook,
    events: Sequence[Event],
    members: Sequence[Member],
    remaining: Mapping[str, int],
    paused: frozenset[str] = frozenset(),
) -> list[Outcome]:
    """Each event's outcome (``members[i]`` is event ``i``'s member; ``remaining`` what each
    counter :func:`~tally.rules.engine.counter_limits` names has left before the first), as
    :func:`evaluate_in_order` gives them. While a campaign of the book is paused (rare), the
    engine evaluates them all."""
    if not events:
        return []
    if paused & {rule.campaign.code for rule in book.rules}:
        return evaluate_in_order(book, events, members, remaining, paused)
    slow = by_the_engine(book, events, members)
    fast = [i for i in range(len(events)) if i not in slow]
    found: dict[int, Outcome] = {}
    if slow:
        order = sorted(slow)
        done = evaluate_in_order(
            book, [events[i] for i in order], [members[i] for i in order], remaining
        )
        found.update(zip(order, done, strict=True))
    if fast:
        frame = _frame(book, [events[i] for i in fast], [members[i] for i in fast])
        found.update(zip(fast, _Vectorised(book, frame, remaining).outcomes(), strict=True))
    return [found[i] for i in range(len(events))]


# -- what is vectorised ---------------------------------------------------------------------------


def _scaled(value: Decimal | None) -> int | None:
    """``value`` in ten-thousandths, or None when it has more decimals than that."""
    if value is None:
        return None
    scaled = value.scaleb(4)
    return int(scaled) if scaled == scaled.to_integral_value() else None


def _points_rules(book: RuleBook, campaign: CampaignSpec) -> int:
    """How many of the campaign's rules ask points (in some arm)."""
    return sum(
        1
        for rule in book.rules
        if rule.campaign.code == campaign.code
        and any(isinstance(a, PointsPer | FixedPoints | Multiply) for _, a in _awards(rule))
    )


def _supported(book: RuleBook, campaign: CampaignSpec) -> bool:
    if any(cap.times is not None for cap in campaign.caps):
        return False  # a cap of times (events fired on, not points): the engine counts it
    persisted = [c for c in _counters(campaign) if c.persisted]
    if persisted and _points_rules(book, campaign) > 1:
        return False
    periods = {c.period for c in persisted}
    if {Period.WEEK, Period.MONTH} <= periods:  # a week may straddle two months: not nested
        return False
    awards = [a for r in book.rules if r.campaign.code == campaign.code for _, a in _awards(r)]
    return all(_exact(award) for award in awards)


def _exact(award: Award) -> bool:
    """Whether an award's rate or factor is exact in ten-thousandths."""
    if isinstance(award, PointsPer | GrowthPer):
        return bool(_scaled(award.amount))
    if isinstance(award, Multiply) and award.factor is not None:
        return _scaled(award.factor) is not None
    return True


def _applies(campaign: CampaignSpec, event: Event, day: Any) -> bool:
    return (
        event.type in campaign.on
        and (campaign.starts is None or campaign.starts <= day)
        and (campaign.ends is None or day <= campaign.ends)
    )


def by_the_engine(book: RuleBook, events: Sequence[Event], members: Sequence[Member]) -> set[int]:
    """The events the engine evaluates itself: those with items or on a campaign not
    vectorised or with an amount or a tier multiplier of more than four decimals, then every
    event on a counted campaign one of those is on (until no more join)."""
    if not events:
        return set()
    local = pl.Series([e.occurred_at for e in events]).dt.convert_time_zone(book.zone.key)
    days = local.dt.date().to_list()
    unsupported = {c.code for c in book.campaigns if not _supported(book, c)}
    applying = [
        {c.code for c in book.campaigns if _applies(c, event, day)}
        for event, day in zip(events, days, strict=True)
    ]
    slow = {
        index
        for index, (event, member) in enumerate(zip(events, members, strict=True))
        if event.items
        or applying[index] & unsupported
        or (event.amount is not None and _scaled(event.amount) is None)
        or _scaled(member.tier_multiplier) is None
    }
    counted = {c.code for c in book.campaigns if c.budget is not None or c.caps}
    while True:
        shared = {code for index in slow for code in applying[index]} & counted
        more = {i for i, codes in enumerate(applying) if i not in slow and codes & shared}
        if not more:
            return slow
        slow |= more


# -- the frame ----------------------------------------------------------------------------------


def _frame(book: RuleBook, events: Sequence[Event], members: Sequence[Member]) -> pl.DataFrame:
    """One row per event: the fields the conditions read (by dotted name), the local day, the
    amount and the member's tier multiplier in ten-thousandths, the member's arms."""
    local = pl.Series([e.occurred_at for e in events]).dt.convert_time_zone(book.zone.key)
    frame = pl.DataFrame(
        {
            "_member": pl.Series([m.id for m in members], dtype=pl.String),
            "_day": local.dt.date(),
            "_amount4": pl.Series([_scaled(e.amount) for e in events], dtype=_I128),
            "_tier4": pl.Series([_scaled(m.tier_multiplier) for m in members], dtype=_I128),
            "_type": pl.Series([e.type for e in events], dtype=pl.String),
            "event.weekday": local.dt.weekday().cast(pl.Int64),
            "event.hour": local.dt.hour().cast(pl.Int64),
        }
    )
    fields: dict[str, FieldType] = {}
    for rule in book.rules:
        if rule.when is not None:
            fields.update({name: rule.when.schema.fields[name] for name in rule.when.fields})
    read = {
        name: pl.Series(name, [_field(name, e, m) for e, m in zip(events, members, strict=True)],
                        dtype=column_dtype(kind))
        for name, kind in fields.items()
        if name not in frame.columns
    }  # fmt: skip
    by_id = {m.id: m for m in members}
    for campaign in book.campaigns:
        if campaign.is_tested:
            arms = {member_id: arm_of(member_id, campaign) for member_id in by_id}
            name = f"_arm:{campaign.code}"
            read[name] = pl.Series(name, [arms[m.id] for m in members], dtype=pl.String)
    return frame.with_columns(list(read.values())) if read else frame


def _field(name: str, event: Event, member: Member) -> Any:
    """The value of field ``name`` for an event, as the engine's environment has it."""
    scope, _, rest = name.partition(".")
    if scope == "event":
        if rest.startswith("attributes."):
            return event.attributes.get(rest.removeprefix("attributes."))
        return getattr(event, rest, None)
    match rest:
        case "plans" | "tags":
            return list(getattr(member, rest))
        case (
            "tier"
            | "days_since_enrolment"
            | "birthday_today"
            | "sign_in_streak"
            | "sign_in_streak_broken"
        ):
            return getattr(member, rest)
        case _:
            return member.aggregates.get(rest)


# -- the rules, one after another, every event at once -------------------------------------------


# The persisted counters from the finest groups to the coarsest (a budget is one group).
_FINEST = {Period.DAY: 0, Period.WEEK: 1, Period.MONTH: 1, Period.CAMPAIGN: 2, None: 3}


@dataclass(frozen=True, slots=True)
class _Counter:
    """A counter of a campaign as the engine orders them (budget, then caps by index):
    ``name`` is the frame column of what a per-event cap has left, or of a persisted
    counter's key (``period`` None: the budget)."""

    name: str
    reason: Reason
    persisted: bool
    limit: int
    prefix: str = ""  # of a persisted counter's keys
    period: Period | None = None


def _counters(campaign: CampaignSpec) -> list[_Counter]:
    code = campaign.code
    found = []
    if campaign.budget is not None:
        key = budget_key(code)
        found.append(_Counter(f"_key:{key}", Reason.BUDGET_EXHAUSTED, True, campaign.budget, key))
    for index, cap in enumerate(campaign.caps):
        if cap.points is None:
            continue  # a cap of times: its campaign is the engine's (see _supported)
        if cap.per is CapPer.EVENT:
            found.append(_Counter(f"_left:{code}:{index}", Reason.CAPPED, False, cap.points))
        else:
            prefix = f"cap:{code}:{index}:"
            found.append(
                _Counter(f"_key:{prefix}", Reason.CAPPED, True, cap.points, prefix, cap.period)
            )
    return found


def _key(counter: _Counter) -> pl.Expr:
    """A persisted counter's key, row by row, as the engine names it."""
    if counter.period is None:
        return pl.lit(counter.prefix)
    window = (
        pl.lit("campaign")
        if counter.period is Period.CAMPAIGN
        else pl.col("_day").dt.strftime(_WINDOWS[counter.period])
    )
    return pl.format(f"{counter.prefix}{{}}:{{}}", pl.col("_member"), window)


class _Vectorised:
    """The evaluation of every event of a frame, rule by rule."""

    def __init__(self, book: RuleBook, frame: pl.DataFrame, remaining: Mapping[str, int]) -> None:
        self.book = book
        self.remaining = remaining
        state = [pl.lit(0, pl.Int64).alias("_accrued"), pl.lit(False).alias("_stopped")]
        for campaign in book.campaigns:
            for counter in _counters(campaign):
                if counter.persisted:
                    state.append(_key(counter).alias(counter.name))
                else:
                    state.append(pl.lit(counter.limit, pl.Int64).alias(counter.name))
        self.frame = frame.with_columns(state)
        for index, rule in enumerate(book.rules):
            self._rule(index, rule)

    def _rule(self, index: int, rule: CompiledRule) -> None:
        campaign, spec = rule.campaign, rule.spec
        frame = self.frame
        arm = pl.col(f"_arm:{campaign.code}") if campaign.is_tested else pl.lit(None, pl.String)
        day = pl.col("_day")
        in_schedule = pl.lit(True)
        if campaign.starts is not None:
            in_schedule = in_schedule & (day >= campaign.starts)
        if campaign.ends is not None:
            in_schedule = in_schedule & (day <= campaign.ends)
        steps: list[tuple[pl.Expr, Reason, pl.Expr | None]] = [
            (~pl.col("_type").is_in(list(campaign.on)), Reason.NOT_THIS_EVENT_TYPE, None),
            (~in_schedule, Reason.OUTSIDE_SCHEDULE, day.dt.strftime("%Y-%m-%d")),
            (pl.col("_stopped"), Reason.STOPPED_BY_HIGHER_RULE, None),
            ((arm == HOLDOUT).fill_null(False), Reason.HOLDOUT, None),
        ]
        reached = ~pl.any_horizontal([condition for condition, _, _ in steps])
        if rule.when is not None:
            frame = self._explained(frame, rule.when, reached, f"_why{index}")
            steps.append((~rule.when.to_polars(), Reason.CONDITION_FALSE, pl.col(f"_why{index}")))
        if rule.items is not None:  # no event here has items
            steps.append(
                (pl.lit(True), Reason.CONDITION_FALSE, pl.lit("items: the event has no items"))
            )
        on_amount = _by_arm(rule, arm, lambda a: pl.lit(isinstance(a, PointsPer | GrowthPer)))
        steps.append((pl.col("_amount4").is_null() & on_amount, Reason.CONDITION_FALSE,
                      pl.lit("the event has no amount")))  # fmt: skip
        reason: pl.Expr = pl.lit(None, pl.String)
        detail: pl.Expr = pl.lit(None, pl.String)
        for condition, why, text in reversed(steps):
            reason = pl.when(condition).then(pl.lit(why.value)).otherwise(reason)
            detail = (
                pl.when(condition)
                .then(text if text is not None else pl.lit(None, pl.String))
                .otherwise(detail)
            )
        frame = frame.with_columns(reason.alias("_reason"), detail.alias("_detail"))
        fires = pl.col("_reason").is_null()
        asked = _by_arm(rule, arm, lambda a: _award(a)[0])
        growth = _by_arm(rule, arm, lambda a: _award(a)[1])
        badge = _by_arm(rule, arm, lambda a: pl.lit(a.code if isinstance(a, Badge) else None))
        coupon = _by_arm(rule, arm, lambda a: pl.lit(a.template if isinstance(a, Coupon) else None))
        frame = frame.with_columns(
            pl.when(fires).then(asked).otherwise(0).cast(pl.Int64).alias("_asked"),
            pl.when(fires).then(growth).otherwise(0).cast(pl.Int64).alias("_growth"),
            (pl.col("_stopped") | (fires & spec.stop)).alias("_stopped"),
        )
        frame = self._granted(frame, campaign)
        granted = pl.col("_granted")
        capped = (pl.col("_asked") > 0) & (granted == 0)
        persisted = [pl.col(c.name) for c in _counters(campaign) if c.persisted]
        keys = pl.concat_list(persisted) if persisted else pl.lit(None, pl.List(pl.String))
        frame = frame.with_columns(
            pl.when(fires & capped)
            .then(pl.col("_cut_by"))
            .otherwise(pl.col("_reason"))
            .alias(f"r{index}_reason"),
            pl.when(fires & capped)
            .then(pl.format("asked {}, 0 left", pl.col("_asked")))
            .otherwise(pl.col("_detail"))
            .alias(f"r{index}_detail"),
            granted.alias(f"r{index}_points"),
            pl.col("_growth").alias(f"r{index}_growth"),
            (pl.col("_asked") - granted).alias(f"r{index}_cut"),
            pl.col("_cut_by").alias(f"r{index}_cut_by"),
            pl.when(granted > 0).then(keys).otherwise(None).alias(f"r{index}_keys"),
            arm.alias(f"r{index}_arm"),
            badge.cast(pl.String).alias(f"r{index}_badge"),
            coupon.cast(pl.String).alias(f"r{index}_coupon"),
            (pl.col("_accrued") + granted).alias("_accrued"),
        )  # fmt: skip
        self.frame = frame

    def _explained(
        self, frame: pl.DataFrame, when: Condition, reached: pl.Expr, name: str
    ) -> pl.DataFrame:
        """``frame`` with column ``name``: why ``when`` is false (``when: <part>``) where it
        is, computed once per distinct value of the fields it reads."""
        fields = sorted(when.fields)
        key = pl.struct(fields).struct.json_encode() if fields else pl.lit("")
        frame = frame.with_columns(key.alias("_values"))
        false = frame.filter(reached & ~when.to_polars()).unique("_values")
        texts = [
            f"when: {when.explain(_env(row))}" for row in false.select(fields).to_dicts()
        ] if fields else [f"when: {when.explain({})}"] * false.height  # fmt: skip
        why = pl.DataFrame(
            {"_values": false["_values"], name: pl.Series(texts, dtype=pl.String)},
            schema={"_values": pl.String, name: pl.String},
        )
        return frame.join(why, on="_values", how="left", maintain_order="left").drop("_values")

    def _granted(self, frame: pl.DataFrame, campaign: CampaignSpec) -> pl.DataFrame:
        """The points granted (``_granted``) and what cut them (``_cut_by``): the ask cut to
        what each counter has left, in the engine's order; a persisted counter's left is its
        remaining less the running sum, in event order, of what was granted before."""
        counters = _counters(campaign)
        asked = pl.col("_asked")
        pre: pl.Expr = asked
        for counter in counters:  # the engine never lets one event take more than a limit
            left = pl.col(counter.name) if not counter.persisted else pl.lit(counter.limit)
            pre = pl.min_horizontal(pre, left)
        persisted = sorted((c for c in counters if c.persisted), key=lambda c: _FINEST[c.period])
        # A counter that cuts a grant has nothing left after it, so cutting by the nested
        # counters in turn, finest first, each a running sum clipped at its start, grants
        # what the engine grants event after event.
        frame = frame.with_columns(pre.alias("_pre"))
        for number, counter in enumerate(persisted):
            frame = frame.with_columns(self._start(counter).alias(f"_start{number}"))
            total = pl.col("_pre").cum_sum().over(counter.name)
            start = pl.col(f"_start{number}")
            clipped = pl.min_horizontal(total, start) - pl.min_horizontal(
                total - pl.col("_pre"), start
            )
            frame = frame.with_columns(clipped.clip(lower_bound=0).alias("_pre"))
        lefts = {}
        for number, counter in enumerate(persisted):
            before = pl.col("_pre").cum_sum().over(counter.name) - pl.col("_pre")
            left = pl.min_horizontal(pl.col(f"_start{number}") - before, pl.lit(counter.limit))
            lefts[counter.name] = left.clip(lower_bound=0)
        granted: pl.Expr = asked
        cut_by: pl.Expr = pl.lit(None, pl.String)
        for counter in counters:
            left = lefts[counter.name] if counter.persisted else pl.col(counter.name)
            cut_by = pl.when(left < granted).then(pl.lit(counter.reason.value)).otherwise(cut_by)
            granted = pl.min_horizontal(granted, left)
        frame = frame.with_columns(granted.alias("_granted"), cut_by.alias("_cut_by"))
        spent = [
            (pl.col(c.name) - pl.col("_granted")).alias(c.name) for c in counters if not c.persisted
        ]
        return frame.with_columns(spent) if spent else frame

    def _start(self, counter: _Counter) -> pl.Expr:
        """What a persisted counter had left before the batch, row by row (never below 0;
        the engine cuts each event's use of it to its limit, see :meth:`_granted`)."""
        known = {
            k: v
            for k, v in self.remaining.items()
            if (k.startswith(counter.prefix) if counter.period else k == counter.prefix)
        }
        start = pl.lit(counter.limit, pl.Int64)
        if known:
            start = pl.col(counter.name).replace_strict(
                known, default=counter.limit, return_dtype=pl.Int64
            )
        return start.clip(lower_bound=0)

    def outcomes(self) -> list[Outcome]:
        """Each row's outcome, as the engine builds it."""
        rules = self.book.rules
        tested = [c.code for c in self.book.campaigns if c.is_tested]
        names = [f"r{i}_{part}" for i in range(len(rules)) for part in _PARTS]
        arms = [f"_arm:{code}" for code in tested]
        found = []
        for row in self.frame.select(*names, *arms).iter_rows():
            applied: list[Applied] = []
            skipped: list[Skipped] = []
            consumption: dict[str, int] = {}
            for index, rule in enumerate(rules):
                reason, detail, points, growth, cut, cut_by, keys, arm, badge, coupon = row[
                    index * len(_PARTS) : (index + 1) * len(_PARTS)
                ]
                code = rule.campaign.code
                if reason is not None:
                    skipped.append(Skipped(code, rule.spec.code, Reason(reason), detail))
                    continue
                for key in keys or ():
                    consumption[key] = consumption.get(key, 0) + points
                applied.append(
                    Applied(
                        campaign=code,
                        rule=rule.spec.code,
                        points=points,
                        growth=growth,
                        variant=arm,
                        badge=badge,
                        coupon=coupon,
                        cut=cut,
                        cut_by=None if cut_by is None else Reason(cut_by),
                        counters=tuple(keys or ()),
                    )
                )
            found.append(
                Outcome(
                    tuple(applied),
                    tuple(skipped),
                    consumption,
                    dict(zip(tested, row[len(names) :], strict=True)),
                )
            )
        return found


_PARTS = (
    "reason", "detail", "points", "growth", "cut", "cut_by", "keys", "arm", "badge", "coupon",
)  # fmt: skip


def _awards(rule: CompiledRule) -> list[tuple[str | None, Award]]:
    """The rule's award in each arm that changes it (by variant code), then its own (None)."""
    found: list[tuple[str | None, Award]] = [
        (variant.code, variant.awards[rule.spec.code])
        for variant in rule.campaign.variants
        if rule.spec.code in variant.awards
    ]
    return [*found, (None, rule.spec.award)]


def _by_arm(rule: CompiledRule, arm: pl.Expr, value: Callable[[Award], pl.Expr]) -> pl.Expr:
    """``value`` of the award of each row's arm."""
    *changed, (_, own) = _awards(rule)
    expr = value(own)
    for code, award in reversed(changed):
        expr = pl.when(arm == code).then(value(award)).otherwise(expr)
    return expr


def _award(award: Award) -> tuple[pl.Expr, pl.Expr]:
    """The points asked and the growth given, as expressions (before caps and budgets)."""
    amount = pl.col("_amount4").fill_null(0)
    zero = pl.lit(0, pl.Int64)
    match award:
        case PointsPer(unit, points):
            per = (amount * points) // _scaled(unit)
            return pl.when(amount > 0).then(per).otherwise(0), zero
        case GrowthPer(unit, growth):
            per = (amount * growth) // _scaled(unit)
            return zero, pl.when(amount > 0).then(per).otherwise(0)
        case FixedPoints(points):
            return pl.lit(points, pl.Int64), zero
        case FixedGrowth(growth):
            return zero, pl.lit(growth, pl.Int64)
        case Multiply(factor):
            scaled = pl.col("_tier4") if factor is None else pl.lit(_scaled(factor), _I128)
            accrued = pl.col("_accrued").cast(_I128)
            return ((accrued * scaled) // SCALE - accrued).clip(lower_bound=0), zero
        case _:  # a badge or a coupon
            return zero, zero


def _env(values: Mapping[str, Any]) -> dict[str, Any]:
    """The engine's environment of dotted field values."""
    env: dict[str, Any] = {}
    for name, value in values.items():
        *path, last = name.split(".")
        place = env
        for part in path:
            place = place.setdefault(part, {})
        place[last] = value
    return env
