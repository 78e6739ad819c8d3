"""Pure rules of growth value and tiers (no I/O): windows, the qualified tier, evaluation.

Windows are whole days of the programme's time zone: growth counts on the local date of its
``counted_at``. The qualifying value has two readings:

* ``up``: what upgrades use (the rolling window, this calendar year, or all growth);
* ``keep``: what evaluation uses to decide whether a member keeps a tier. For a calendar year it
  is the larger of this year's and last year's growth (status earned in a year lasts through the
  next year); for the other models it equals ``up``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from tally.kit.clock import end_of_day, local_date
from tally.programme.domain import Programme, Tier, TierModel

UPGRADE = "upgrade"
DOWNGRADE = "downgrade"
GRACE_STARTED = "grace_started"
GRACE_CLEARED = "grace_cleared"
PROGRAMME_CHANGE = "programme_change"


def start_of_day(day: date, zone: ZoneInfo) -> datetime:
    """The first instant of ``day`` in ``zone``, in UTC."""
    return end_of_day(day - timedelta(days=1), zone)


@dataclass(frozen=True, slots=True)
class Window:
    """Growth with ``start <= counted_at < end`` counts (``None``: unbounded on that side)."""

    start: datetime | None
    end: datetime | None


@dataclass(frozen=True, slots=True)
class Windows:
    """The windows counted at one moment: ``current`` for upgrades, ``previous`` (calendar year
    only) for keeping a tier."""

    current: Window
    previous: Window | None


def windows(model: TierModel, now: datetime, zone: ZoneInfo) -> Windows:
    """The windows of ``model`` at ``now``, aligned to local midnight in ``zone``."""
    today = local_date(now, zone)
    if model.kind == "rolling_window":
        assert model.window_days is not None
        first = today - timedelta(days=model.window_days - 1)
        return Windows(Window(start_of_day(first, zone), end_of_day(today, zone)), None)
    if model.kind == "calendar_year":
        this_year = start_of_day(date(today.year, 1, 1), zone)
        next_year = start_of_day(date(today.year + 1, 1, 1), zone)
        last_year = start_of_day(date(today.year - 1, 1, 1), zone)
        return Windows(Window(this_year, next_year), Window(last_year, this_year))
    return Windows(Window(None, None), None)


def in_window(window: Window, counted_at: datetime) -> bool:
    return (window.start is None or counted_at >= window.start) and (
        window.end is None or counted_at < window.end
    )


@dataclass(frozen=True, slots=True)
class Qualifying:
    """Growth that counts now: ``up`` for upgrades, ``keep`` for keeping a tier (``keep >= up``
    unless last year's growth was negative)."""

    up: int
    keep: int


def qualifying(current: int, previous: int | None) -> Qualifying:
    """The qualifying values from the current window's sum and, for a calendar year, last
    year's."""
    return Qualifying(current, current if previous is None else max(current, previous))


def qualified_index(tiers: list[Tier], value: int) -> int:
    """The highest tier whose threshold ``value`` reaches (the first tier at least)."""
    index = 0
    for position, tier in enumerate(tiers):
        if value >= tier.threshold:
            index = position
    return index


def index_of(tiers: list[Tier], code: str | None) -> int | None:
    """The position of ``code`` on the ladder; no code is the first tier; ``None`` when the
    code is no longer in the programme."""
    if code is None:
        return 0
    return next((position for position, tier in enumerate(tiers) if tier.code == code), None)


@dataclass(frozen=True, slots=True)
class State:
    """A member's tier state (``tier_code`` ``None``: no row yet, the first tier)."""

    tier_code: str | None
    downgrade_at: datetime | None = None
    evaluated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """One line of tier history."""

    from_code: str | None
    to_code: str
    reason: str
    downgrade_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """The state to write and the history lines that explain it."""

    tier_code: str
    downgrade_at: datetime | None
    tier_changed: bool
    changes: tuple[Change, ...]


def upgrade(programme: Programme, state: State, value: Qualifying) -> Decision | None:
    """The immediate move when growth arrives: up to the qualified tier (skipping levels), or
    off a tier the programme no longer has. Never down otherwise."""
    tiers = programme.tiers
    current = index_of(tiers, state.tier_code)
    if current is None:
        return _remap(programme, state, value)
    target = qualified_index(tiers, value.up)
    if target <= current:
        return None
    code = tiers[target].code
    return Decision(code, None, True, (Change(state.tier_code, code, UPGRADE),))


def _remap(programme: Programme, state: State, value: Qualifying) -> Decision:
    code = programme.tiers[qualified_index(programme.tiers, value.keep)].code
    return Decision(code, None, True, (Change(state.tier_code, code, PROGRAMME_CHANGE),))


def evaluate(
    programme: Programme, state: State, value: Qualifying, now: datetime
) -> Decision | None:
    """The evaluation of one member at ``now``; ``None`` when nothing changes.

    Upgrades catch up; a member below its tier starts a grace period (``grace_days`` > 0) or,
    once the grace has run out (or with no grace), moves down at most ``max_levels_down``
    levels and never below the tier it qualifies for. A member that requalifies during its
    grace keeps its tier. Downward steps happen at most once per moment: a member already
    evaluated at or after ``now`` only moves up, so re-running an evaluation changes nothing.
    """
    tiers = programme.tiers
    model = programme.tier_model
    current = index_of(tiers, state.tier_code)
    if current is None:
        return _remap(programme, state, value)
    here = tiers[current].code
    moved_up = upgrade(programme, state, value)
    if moved_up is not None:
        return moved_up
    keep = qualified_index(tiers, value.keep)
    if keep >= current:
        if state.downgrade_at is None:
            return None
        return Decision(here, None, False, (Change(here, here, GRACE_CLEARED),))
    if state.evaluated_at is not None and state.evaluated_at >= now:
        return None
    if model.grace_days > 0 and state.downgrade_at is None:
        due = now + timedelta(days=model.grace_days)
        return Decision(here, due, False, (Change(here, here, GRACE_STARTED, due),))
    if state.downgrade_at is not None and now < state.downgrade_at:
        return None
    target = max(current - model.max_levels_down, keep)
    code = tiers[target].code
    return Decision(code, None, True, (Change(here, code, DOWNGRADE),))


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a member stands on the ladder."""

    tier_index: int
    next_index: int | None
    to_next: int | None
    to_keep: int


def progress(programme: Programme, tier_code: str | None, value: Qualifying) -> Progress:
    """The member's tier (a tier no longer in the programme reads as the qualified one), the
    next tier and the growth still needed for it, and the growth needed to keep the tier."""
    tiers = programme.tiers
    index = index_of(tiers, tier_code)
    if index is None:
        index = qualified_index(tiers, value.keep)
    following = index + 1 if index + 1 < len(tiers) else None
    to_next = None if following is None else max(0, tiers[following].threshold - value.up)
    return Progress(index, following, to_next, max(0, tiers[index].threshold - value.keep))
