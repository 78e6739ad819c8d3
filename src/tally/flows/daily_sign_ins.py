"""Daily sign-ins in the intake of events: what each event of a batch sees of its member's
streak (``member.sign_in_streak``, ``member.sign_in_streak_broken``), and a ``sign_in`` that
counts once a day in the programme's zone.

The streaks of a batch's members are read in one statement, walked in the batch's order in
memory (a member's second sign-in of a day in the same batch sees the first), and kept in the
``sign_in_streaks`` table in the batch's transaction, under the wallet locks the batch holds
(a dry run keeps nothing). A sign-in of a day already signed in, or of a day before the latest
one, counts nothing: every rule on it is skipped as ``capped``, and the streak is unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from sqlalchemy.orm import Session

from tally.engagement import repository
from tally.engagement.domain import Day, Streak, step
from tally.rules import engine
from tally.rules.rule_book import RuleBook
from tally.rules.vectorised import Evaluator

SIGN_IN = "sign_in"
STREAK_FIELDS = frozenset({"member.sign_in_streak", "member.sign_in_streak_broken"})
NO_STREAK = Day(0, False)


def days(
    session: Session,
    book: RuleBook,
    events: Sequence[tuple[int, engine.Event]],
    now: datetime,
    *,
    write: bool,
) -> list[Day]:
    """What each ``(member id, event)`` of a batch sees of its member's sign-ins, in order;
    with ``write``, the streaks the batch leaves are kept. A batch without a sign-in, under
    rules that read no streak, reads nothing."""
    if not any(event.type == SIGN_IN for _, event in events) and not reads_streaks(book):
        return [NO_STREAK] * len(events)
    known = repository.streaks(session, [member_id for member_id, _ in events])
    state: dict[int, Streak | None] = dict(known)
    seen = []
    for member_id, event in events:
        day = event.occurred_at.astimezone(book.zone).date()
        state[member_id], view = step(state.get(member_id), day, signs_in=event.type == SIGN_IN)
        seen.append(view)
    if write:
        after = {member: streak for member, streak in state.items() if streak is not None}
        repository.keep(session, known, after, now)
    return seen


def reads_streaks(book: RuleBook) -> bool:
    """Whether a condition of the book reads the member's streak."""
    return any(
        field in STREAK_FIELDS
        for rule in book.rules
        for condition in (rule.when, rule.items)
        if condition is not None
        for field in condition.fields
    )


def evaluate(
    evaluator: Evaluator,
    book: RuleBook,
    events: Sequence[engine.Event],
    members: Sequence[engine.Member],
    days: Sequence[Day],
    remaining: Mapping[str, int],
    paused: frozenset[str],
) -> list[engine.Outcome]:
    """The evaluator's outcomes of ``events`` in order, each member with the streak its event
    sees; a sign-in that does not count is evaluated by no rule (and consumes nothing)."""
    counted = [index for index, day in enumerate(days) if day.repeats is None]
    found = evaluator(
        book,
        [events[index] for index in counted],
        [_with_streak(members[index], days[index]) for index in counted],
        remaining,
        paused,
    )
    outcomes = dict(zip(counted, found, strict=True))
    return [
        outcomes[index]
        if index in outcomes
        else _uncounted(book, events[index], members[index], day)
        for index, day in enumerate(days)
    ]


def _with_streak(member: engine.Member, day: Day) -> engine.Member:
    return replace(member, sign_in_streak=day.streak, sign_in_streak_broken=day.broken)


def _uncounted(
    book: RuleBook, event: engine.Event, member: engine.Member, day: Day
) -> engine.Outcome:
    assert day.repeats is not None
    detail = f"signed in already on {day.repeats.isoformat()}: a sign-in counts once a day"
    skipped = tuple(
        engine.Skipped(rule.campaign.code, rule.spec.code, engine.Reason.CAPPED, detail)
        if event.type in rule.campaign.on
        else engine.Skipped(rule.campaign.code, rule.spec.code, engine.Reason.NOT_THIS_EVENT_TYPE)
        for rule in book.rules
    )
    arms = {c.code: engine.arm_of(member.id, c) for c in book.campaigns if c.is_tested}
    return engine.Outcome((), skipped, {}, arms)
