"""Simulation: events replayed through two rule books, the running one and a draft, and the
difference reported per campaign, per rule, per budget and per member's tier. Pure: the
caller reads the events, the members and the growth they stand on, and says how each side
prices a point and which tier a growth value reaches.

    given = replay(book, [(event, member), ...])   # caps and budgets counted in memory, in order
    report = compare(subjects, awarded, given, running_side, draft_side, base_growth)

Caps and budgets start from zero at the first event replayed and are consumed in the order
given, exactly as the online path consumes its counters (:func:`tally.rules.engine.evaluate`
told what each counter has left).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tally.rules import engine, refunds
from tally.rules.rule_book import RuleBook

PROGRESS_EVERY = 1_000  # events between two calls of a replay's ``tick``


@dataclass(frozen=True, slots=True)
class Granted:
    """What one rule gave one event."""

    campaign: str
    rule: str
    points: int
    growth: int


@dataclass(frozen=True, slots=True)
class Given:
    """What one side gave one event: its rules' grants and the counters consumed, or why it
    refused the event (an error code: ``not_found``, ``validation_failed``…)."""

    points: int = 0
    growth: int = 0
    rules: tuple[Granted, ...] = ()
    consumption: Mapping[str, int] = field(default_factory=dict)
    refused: str | None = None

    @classmethod
    def of(cls, outcome: engine.Outcome) -> Given:
        return cls(
            outcome.points,
            outcome.growth,
            tuple(Granted(a.campaign, a.rule, a.points, a.growth) for a in outcome.applied),
            dict(outcome.consumption),
        )

    @classmethod
    def stored(cls, points: int, growth: int, document: Mapping[str, Any]) -> Given:
        """What a stored outcome (``tally.flows.event_intake.outcome_document``) gave."""
        return cls(
            points,
            growth,
            tuple(
                Granted(str(r["campaign"]), str(r["rule"]), int(r["points"]), int(r["growth"]))
                for r in document.get("rules", [])
            ),
            {str(key): int(used) for key, used in document.get("consumption", {}).items()},
        )


@dataclass(frozen=True, slots=True)
class Refunding:
    """A refund of the event at position ``of`` of the same replay: ``refunded`` of its
    ``amount``, both in minor units of the programme's money."""

    of: int
    amount: int
    refunded: int


REFUSED_REFUND = "validation_error"  # the code a refund is refused with online

Replayed = tuple[engine.Event, engine.Member] | Refunding | Given | str


def replay(
    book: RuleBook,
    events: Iterable[Replayed],
    tick: Callable[[int], None] | None = None,
    paused: Sequence[Collection[str]] = (),
) -> list[Given]:
    """Each event through ``book`` in order, caps and budgets counted from zero in memory:
    an event and its member are evaluated; a :class:`Refunding` takes back, in proportion, what
    the side gave the event it refunds and gives its caps and budgets back (refused when that
    event was refused, or more money is refunded than is left); a :class:`Given` stands as it
    is (a refund of an event outside the replay); a string is why the side refuses the event.
    ``paused`` names, for each event, the campaigns paused (empty: none for any event).
    ``tick(n)`` is told every :data:`PROGRESS_EVERY` events replayed."""
    remaining: dict[str, int] = {}
    outcomes: dict[int, engine.Outcome] = {}
    refunded: dict[int, int] = {}
    given: list[Given] = []
    for position, subject in enumerate(events):
        if isinstance(subject, str):
            given.append(Given(refused=subject))
        elif isinstance(subject, Given):
            given.append(subject)
        elif isinstance(subject, Refunding):
            given.append(_refund(subject, outcomes, refunded, remaining))
        else:
            event, member = subject
            for key, limit in engine.counter_limits(book, event, member.id).items():
                remaining.setdefault(key, limit)
            stopped = paused[position] if paused else frozenset()
            outcome = engine.evaluate(book, event, member, remaining, paused=stopped)
            for key, points in outcome.consumption.items():
                remaining[key] -= points
            outcomes[position] = outcome
            given.append(Given.of(outcome))
        if tick is not None and (position + 1) % PROGRESS_EVERY == 0:
            tick(PROGRESS_EVERY)
    if tick is not None and len(given) % PROGRESS_EVERY:
        tick(len(given) % PROGRESS_EVERY)
    return given


def _refund(
    subject: Refunding,
    outcomes: Mapping[int, engine.Outcome],
    refunded: dict[int, int],
    remaining: dict[str, int],
) -> Given:
    original = outcomes.get(subject.of)
    before = refunded.get(subject.of, 0)
    if original is None or subject.refunded > subject.amount - before:
        return Given(refused=REFUSED_REFUND)
    back = refunds.refund(
        original, Decimal(subject.amount), Decimal(subject.refunded), Decimal(before)
    )
    refunded[subject.of] = before + subject.refunded
    for key, points in back.given_back.items():
        remaining[key] = remaining.get(key, 0) + points
    return Given(
        back.points,
        back.growth,
        tuple(Granted(line.campaign, line.rule, line.points, line.growth) for line in back.lines),
        {key: -points for key, points in back.given_back.items()},
    )


@dataclass(frozen=True, slots=True)
class Side:
    """How one side prices: its rule book, what its points are worth (``points`` points are
    worth ``minor_units`` of ``currency``) and the tier a qualifying growth value reaches."""

    book: RuleBook
    rate_points: int
    rate_minor_units: int
    currency: str
    tier_of: Callable[[int], str]

    def cost(self, points: int) -> int:
        """The money ``points`` are worth, in minor units, rounded down."""
        return points * self.rate_minor_units // self.rate_points


@dataclass(frozen=True, slots=True)
class Subject:
    """An event replayed: its key (the stored id or the file's event id), its member, and
    whether the growth it gives counts in the member's tier window now."""

    key: str
    member_id: str
    counts_for_tier: bool = True


@dataclass(frozen=True, slots=True)
class Figures:
    """Points and growth given (net of refunds' take-backs), the events that were given some
    and the members they were given to."""

    points: int = 0
    growth: int = 0
    events: int = 0
    members: int = 0


@dataclass(frozen=True, slots=True)
class Line:
    """A campaign (``rule`` None) or one of its rules, running beside draft."""

    campaign: str
    rule: str | None
    running: Figures
    draft: Figures

    @property
    def delta(self) -> int:
        return self.draft.points - self.running.points


@dataclass(frozen=True, slots=True)
class Budget:
    """A campaign's budget on each side (``None``: none) and what the window used of it."""

    campaign: str
    running_limit: int | None
    running_used: int
    draft_limit: int | None
    draft_used: int


@dataclass(frozen=True, slots=True)
class TierDifference:
    """A member whose qualified tier differs: the growth the window's events counted in the
    tier window gave on each side, the qualifying growth it makes and the tier that reaches."""

    member_id: str
    running_growth: int
    draft_growth: int
    running_qualifying: int
    draft_qualifying: int
    running_tier: str
    draft_tier: str


@dataclass(frozen=True, slots=True)
class EventDifference:
    """An event the draft prices differently."""

    key: str
    member_id: str
    running_points: int
    draft_points: int
    running_growth: int
    draft_growth: int
    running_refused: str | None = None
    draft_refused: str | None = None


@dataclass(frozen=True, slots=True)
class Report:
    """The whole comparison; costs in minor units of each side's currency."""

    events: int
    running: Figures
    draft: Figures
    running_cost: int
    draft_cost: int
    running_currency: str
    draft_currency: str
    running_refused: Mapping[str, int]
    draft_refused: Mapping[str, int]
    campaigns: tuple[Line, ...]
    rules: tuple[Line, ...]
    budgets: tuple[Budget, ...]
    tiers: tuple[TierDifference, ...]
    differences: tuple[EventDifference, ...]


class _Tally:
    """Running sums of one side."""

    def __init__(self) -> None:
        self.points: dict[tuple[str, str | None], int] = {}
        self.growth: dict[tuple[str, str | None], int] = {}
        self.events: dict[tuple[str, str | None], int] = {}
        self.members: dict[tuple[str, str | None], set[str]] = {}
        self.refused: dict[str, int] = {}
        self.member_growth: dict[str, int] = {}
        self.consumed: dict[str, int] = {}

    def add(self, subject: Subject, given: Given) -> None:
        if given.refused is not None:
            self.refused[given.refused] = self.refused.get(given.refused, 0) + 1
            return
        member = subject.member_id
        if subject.counts_for_tier:
            self.member_growth[member] = self.member_growth.get(member, 0) + given.growth
        touched: set[tuple[str, str | None]] = set()
        for granted in given.rules:
            keys: tuple[tuple[str, str | None], ...] = (
                (granted.campaign, granted.rule),
                (granted.campaign, None),
            )
            for key in keys:
                self.points[key] = self.points.get(key, 0) + granted.points
                self.growth[key] = self.growth.get(key, 0) + granted.growth
                if granted.points > 0 or granted.growth > 0:
                    touched.add(key)
        for line in touched:
            self.events[line] = self.events.get(line, 0) + 1
            self.members.setdefault(line, set()).add(member)
        for counter, used in given.consumption.items():
            self.consumed[counter] = self.consumed.get(counter, 0) + used

    def figures(self, key: tuple[str, str | None]) -> Figures:
        return Figures(
            self.points.get(key, 0),
            self.growth.get(key, 0),
            self.events.get(key, 0),
            len(self.members.get(key, ())),
        )


def _totals(subjects: Sequence[Subject], given: Sequence[Given]) -> Figures:
    touched = [
        (s.member_id, g)
        for s, g in zip(subjects, given, strict=True)
        if g.points > 0 or g.growth > 0
    ]
    return Figures(
        sum(g.points for g in given),
        sum(g.growth for g in given),
        len(touched),
        len({member for member, _ in touched}),
    )


def _keys(running: RuleBook, draft: RuleBook, *tallies: _Tally) -> list[tuple[str, str | None]]:
    """Campaigns and rules in the draft's order, then those only the running book (or the
    stored outcomes) know."""
    keys: dict[tuple[str, str | None], None] = {}
    for book in (draft, running):
        for campaign in book.campaigns:
            keys[(campaign.code, None)] = None
            for rule in campaign.rules:
                keys[(campaign.code, rule.code)] = None
    for tally in tallies:
        keys.update(dict.fromkeys(tally.points))
    return list(keys)


def compare(
    subjects: Sequence[Subject],
    awarded: Sequence[Given],
    simulated: Sequence[Given],
    running: Side,
    draft: Side,
    base_growth: Mapping[str, int],
) -> Report:
    """What the draft gives beside what the running programme gave (``awarded``), event by
    event. A member's qualifying growth on a side is ``base_growth`` (what it stands on without
    the replayed events) plus what that side gave it on the events that count for its tier."""
    before, after = _Tally(), _Tally()
    differences = []
    for subject, old, new in zip(subjects, awarded, simulated, strict=True):
        before.add(subject, old)
        after.add(subject, new)
        if (old.points, old.growth, old.refused) != (new.points, new.growth, new.refused):
            differences.append(
                EventDifference(
                    subject.key,
                    subject.member_id,
                    old.points,
                    new.points,
                    old.growth,
                    new.growth,
                    old.refused,
                    new.refused,
                )
            )
    lines = [
        Line(campaign, rule, before.figures((campaign, rule)), after.figures((campaign, rule)))
        for campaign, rule in _keys(running.book, draft.book, before, after)
    ]
    running_limits = {c.code: c.budget for c in running.book.campaigns}
    draft_limits = {c.code: c.budget for c in draft.book.campaigns}
    budgets = [
        Budget(
            code,
            running_limits.get(code),
            before.consumed.get(engine.budget_key(code), 0),
            draft_limits.get(code),
            after.consumed.get(engine.budget_key(code), 0),
        )
        for code in dict.fromkeys([*draft_limits, *running_limits])
        if running_limits.get(code) is not None or draft_limits.get(code) is not None
    ]
    tiers = []
    for member in sorted({s.member_id for s in subjects}, key=_member_order):
        old_growth = before.member_growth.get(member, 0)
        new_growth = after.member_growth.get(member, 0)
        base = base_growth.get(member, 0)
        old_tier = running.tier_of(base + old_growth)
        new_tier = draft.tier_of(base + new_growth)
        if old_tier != new_tier:
            tiers.append(
                TierDifference(
                    member,
                    old_growth,
                    new_growth,
                    base + old_growth,
                    base + new_growth,
                    old_tier,
                    new_tier,
                )
            )
    old_total, new_total = _totals(subjects, awarded), _totals(subjects, simulated)
    return Report(
        events=len(subjects),
        running=old_total,
        draft=new_total,
        running_cost=running.cost(old_total.points),
        draft_cost=draft.cost(new_total.points),
        running_currency=running.currency,
        draft_currency=draft.currency,
        running_refused=before.refused,
        draft_refused=after.refused,
        campaigns=tuple(line for line in lines if line.rule is None),
        rules=tuple(line for line in lines if line.rule is not None),
        budgets=tuple(budgets),
        tiers=tuple(tiers),
        differences=tuple(differences),
    )


def _member_order(member_id: str) -> tuple[int, str]:
    return (int(member_id), member_id) if member_id.isdigit() else (0, member_id)
