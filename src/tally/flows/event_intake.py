"""Events in: each reported event through the programme's rules to an outcome, stored once, and
the points it earned posted as one earn of a line per rule — for a batch of events at once, in
the caller's one transaction.

A batch is set-based: the members' wallets are locked in one statement, their tiers, plans,
birthdays and windowed aggregates read in one statement each, the counters of the caps and
budgets its events may consume locked in key order in one statement, every event evaluated in
memory in the order given (each sees what the ones before it consumed), the outcomes stored
in one statement, the earns posted through the ledger's set-based path and the counters
added to once. A dry run does all the reading and evaluating, and writes nothing.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from tally.errors import (
    ConcurrentChange,
    MemberFrozen,
    MemberMerged,
    NotFound,
    TallyError,
    ValidationFailed,
)
from tally.events import counters
from tally.events import repository as events
from tally.events.models import StoredEvent
from tally.flows import daily_sign_ins as daily
from tally.flows import referrals
from tally.flows.earning import Earning
from tally.flows.earning import post as post_earnings
from tally.flows.event_members import member_contexts
from tally.kit.ids import uuid7
from tally.ledger import repository as ledger_repository
from tally.ledger.domain import Origin, Policy
from tally.ledger.models import EntryKind
from tally.ledger.orders import BUSY, Busy, Line, Order
from tally.ledger.posting import Posted
from tally.members.models import MemberStatus
from tally.programme import runtime
from tally.programme.campaign_rules import rule_book
from tally.programme.domain import CURRENCY_EXPONENTS, Programme
from tally.rules import engine
from tally.rules.conditions import FieldType
from tally.rules.events import event_problems
from tally.rules.rule_book import RuleBook

_DECIMAL = re.compile(r"-?(0|[1-9][0-9]{0,14})(\.[0-9]{1,4})?")


@dataclass(frozen=True, slots=True)
class Reported:
    """An event as its source reported it, checked for shape (``tally.api.event_schemas``)."""

    type: str
    event_id: str
    member_id: int
    occurred_at: datetime
    amount: Decimal | None = None
    currency: str | None = None
    items: tuple[engine.Item, ...] = ()
    channel: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    refers_to: str | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)  # items and attributes as sent


@dataclass(frozen=True, slots=True)
class Processed:
    """The outcome of an event: stored now (``repeat`` False), found stored (a repeat of the
    first report: it wrote nothing), or evaluated without writing (``stored_id`` None)."""

    stored_id: uuid.UUID | None
    event: Reported
    member_id: int
    points: int
    growth: int
    outcome: dict[str, Any]
    programme_version: int
    transaction_id: uuid.UUID | None = None
    repeat: bool = False


def outcome_document(outcome: engine.Outcome) -> dict[str, Any]:
    """The explanation stored with an event: the rules applied in order, those skipped and why,
    each campaign's arm and the counters consumed."""
    return {
        "rules": [
            {
                "campaign": applied.campaign,
                "rule": applied.rule,
                "points": applied.points,
                "growth": applied.growth,
                "variant": applied.variant,
                "badge": applied.badge,
                "cut": applied.cut,
                "cut_by": applied.cut_by.value if applied.cut_by else None,
                "counters": list(applied.counters),
            }
            for applied in outcome.applied
        ],
        "skipped": [
            {
                "campaign": skipped.campaign,
                "rule": skipped.rule,
                "reason": skipped.reason.value,
                "detail": skipped.detail,
            }
            for skipped in outcome.skipped
        ],
        "arms": dict(outcome.arms),
        "consumption": dict(outcome.consumption),
    }


def check(event: Reported, programme: Programme, book: RuleBook) -> None:
    """Refuse what the programme cannot price (``validation_failed``, naming the field): an
    unknown event type, an attribute it does not declare or of another type, an amount in
    another currency or with more decimals than that currency has, a refund (not taken yet)."""
    if event.type not in book.event_types:
        raise ValidationFailed(f"Unknown event type {event.type!r}.", field="type")
    problems = event_problems(book, event.type, event.attributes)
    if problems:
        raise ValidationFailed(f"{problems[0][:1].upper()}{problems[0][1:]}.", field="attributes")
    if event.type == "refund":
        raise ValidationFailed(
            "Refund events are not taken yet: reverse the purchase's transaction instead.",
            field="type",
        )
    money = programme.currency.point_value.currency
    if event.amount is not None or event.items:
        if event.currency != money:
            raise ValidationFailed(
                f"Amounts must be in the programme's currency, {money}.", field="amount.currency"
            )
        exponent = CURRENCY_EXPONENTS[money]
        amounts = [event.amount] if event.amount is not None else []
        for amount in [*amounts, *(item.amount for item in event.items)]:
            if -int(amount.as_tuple().exponent) > exponent:
                raise ValidationFailed(
                    f"{money} amounts have at most {exponent} decimals.", field="amount"
                )


def typed_attributes(book: RuleBook, event_type: str, sent: Mapping[str, Any]) -> dict[str, Any]:
    """An event's attributes as its type declares them: a decimal is sent as an exact decimal
    string ("1.50") and read as a ``Decimal``; anything else is left for :func:`check`."""
    declared = book.event_types.get(event_type, {})
    return {
        name: Decimal(value)
        if declared.get(name) is FieldType.DECIMAL
        and isinstance(value, str)
        and _DECIMAL.fullmatch(value)
        else value
        for name, value in sent.items()
    }


def book_for(programme: Programme) -> RuleBook:
    """The programme's compiled rule book, compiled once per programme object (a version)."""
    cached = _BOOKS.get(id(programme))
    if cached is None or cached[0] is not programme:
        if len(_BOOKS) >= 8:
            _BOOKS.clear()
        cached = _BOOKS[id(programme)] = (programme, rule_book(programme))
    return cached[1]


_BOOKS: dict[int, tuple[Programme, RuleBook]] = {}


def windows_of(programme: Programme) -> list[events.Window]:
    """The member aggregates the programme declares, as windows over stored events."""
    return [
        events.Window(spec.code, (spec.of,), spec.measure, spec.days)
        for spec in programme.aggregates
    ]


def minor_units(amount: Decimal | None, currency: str | None) -> int | None:
    """An exact amount in its currency's minor units."""
    if amount is None or currency is None:
        return None
    return int(amount.scaleb(CURRENCY_EXPONENTS[currency]))


def process(
    session: Session,
    origin: Origin,
    reported: Sequence[Reported],
    now: datetime,
    policy: Policy,
    programme: Programme,
    book: RuleBook,
    *,
    write: bool = True,
    wait: bool = True,
    source: str | None = None,
) -> list[Processed | TallyError | Busy]:
    """Each event's outcome, in order (see the module's docstring). A refused event (a member
    that does not exist or is frozen, a currency the programme does not take) is answered
    with its error and writes nothing; without ``wait``, an event whose member's wallet
    another transaction holds is :data:`~tally.ledger.orders.BUSY`. The events are stored
    under ``source``, by default the origin's (``tally`` for those Tally raises itself, whose
    points the origin funds)."""
    source = source or events.source_of(origin.partner_id)
    results: dict[int, Processed | TallyError | Busy] = {}
    stored = events.find(session, source, [event.event_id for event in reported])
    repeats = events.by_ids(session, list(stored.values()))
    first_of: dict[str, int] = {}
    for position, event in enumerate(reported):
        if event.event_id in stored:
            results[position] = _repeat(repeats[stored[event.event_id]], event)
        elif event.event_id in first_of:
            results[position] = BUSY  # the same event twice in a batch: a repeat once stored
        else:
            first_of[event.event_id] = position
            try:
                check(event, programme, book)
            except TallyError as error:
                results[position] = error
    todo = [position for position in range(len(reported)) if position not in results]
    member_ids = sorted({reported[position].member_id for position in todo})
    if write:
        wallets, statuses = ledger_repository.lock_wallets(session, member_ids, wait=wait)
    else:
        wallets, statuses = ledger_repository.wallet_states(session, member_ids)
    for position in todo:
        member_id = reported[position].member_id
        if member_id not in wallets:
            known = ledger_repository.wallet_states(session, [member_id])[1]
            results[position] = BUSY if member_id in known else _unknown(member_id)
        elif statuses[member_id] is not MemberStatus.ACTIVE:
            results[position] = _inactive(member_id, statuses[member_id])
    todo = [position for position in todo if position not in results]
    members = member_contexts(
        session,
        sorted({reported[p].member_id for p in todo}),
        programme,
        windows_of(programme),
        now,
    )
    happened = [(position, _engine_event(reported[position], origin)) for position in todo]
    limits: dict[str, int] = {}
    for position, happening in happened:
        limits.update(engine.counter_limits(book, happening, str(reported[position].member_id)))
    used = counters.lock(session, limits, now) if write else counters.used(session, limits)
    remaining = {key: max(0, limit - used.get(key, 0)) for key, limit in limits.items()}
    consumed: dict[str, int] = {}
    version = programme_version(session, now)
    done: dict[int, Processed] = {}
    member_of = [(reported[position].member_id, happening) for position, happening in happened]
    days = daily.days(session, book, member_of, now, write=write)
    for (position, happening), day in zip(happened, days, strict=True):
        report = reported[position]
        outcome = daily.evaluate(book, happening, members[report.member_id], remaining, day)
        for key, points in outcome.consumption.items():
            remaining[key] = remaining.get(key, limits.get(key, 0)) - points
            consumed[key] = consumed.get(key, 0) + points
        done[position] = Processed(
            uuid7() if write else None,
            report,
            report.member_id,
            outcome.points,
            outcome.growth,
            outcome_document(outcome),
            version,
        )
    if write and done:
        done = _store_and_post(session, origin, source, done, consumed, now, policy, programme)
        referrals.complete(
            session, programme, book, [*done.values()], now, policy, process, wait=wait
        )
    results.update(done)
    return [results[position] for position in range(len(reported))]


def with_repeats(
    reported: Sequence[Reported], results: Sequence[Processed | TallyError | Busy]
) -> list[Processed | TallyError]:
    """The results of a request's events, an event repeated within the request (passed over by
    :func:`process`) answered as a repeat of its first report."""
    first: dict[str, Processed | TallyError] = {}
    answered: list[Processed | TallyError] = []
    for event, result in zip(reported, results, strict=True):
        if isinstance(result, Busy):
            earlier = first[event.event_id]
            answer = replace(earlier, repeat=True) if isinstance(earlier, Processed) else earlier
        else:
            answer = result
        first.setdefault(event.event_id, answer)
        answered.append(answer)
    return answered


def programme_version(session: Session, now: datetime) -> int:
    """The version of the programme that prices what this transaction writes (0: none yet)."""
    return runtime.pricing(session, now).version or 0


def _engine_event(event: Reported, origin: Origin) -> engine.Event:
    return engine.Event(
        type=event.type,
        occurred_at=event.occurred_at,
        partner=None if origin.partner_id is None else str(origin.partner_id),
        channel=event.channel,
        amount=event.amount,
        currency=event.currency,
        items=event.items,
        attributes=event.attributes,
    )


def _repeat(row: StoredEvent, event: Reported) -> Processed:
    return Processed(
        row.id,
        event,
        row.member_id,
        row.points,
        row.growth,
        row.outcome,
        row.programme_version,
        row.transaction_id,
        repeat=True,
    )


def _unknown(member_id: int) -> TallyError:
    return NotFound(f"Member {member_id} does not exist.")


def _inactive(member_id: int, status: MemberStatus) -> TallyError:
    if status is MemberStatus.MERGED:
        return MemberMerged(f"Member {member_id} was merged into another member.")
    return MemberFrozen(f"Member {member_id} is frozen.")


def _store_and_post(
    session: Session,
    origin: Origin,
    source: str,
    done: dict[int, Processed],
    consumed: dict[str, int],
    now: datetime,
    policy: Policy,
    programme: Programme,
) -> dict[int, Processed]:
    """Store the outcomes (a report another transaction stored first is answered as its
    repeat), post the points as earns with one line per rule, add to the counters."""
    rows = {position: _row(source, origin, processed, now) for position, processed in done.items()}
    inserted = events.insert(session, list(rows.values()))
    lost = [position for position, row in rows.items() if row["id"] not in inserted]
    if lost:
        # Lost the race to a concurrent report of the same events: roll back and answer alone.
        raise ConcurrentChange("A concurrent report of the same event was stored first; retry.")
    earning = [position for position, processed in done.items() if processed.points > 0]
    posted = post_earnings(
        session,
        [_earning(origin, done[position]) for position in earning],
        now,
        policy,
        programme,
    )
    transactions: dict[uuid.UUID, uuid.UUID] = {}
    for position, result in zip(earning, posted, strict=True):
        if not isinstance(result, Posted) or result.entry_id is None:
            # Nothing of the batch may stand without its earn: roll back, and answer alone.
            raise result if isinstance(result, TallyError) else ConcurrentChange("retry")
        stored_id = done[position].stored_id
        assert stored_id is not None
        transactions[stored_id] = result.entry_id
        done[position] = replace(done[position], transaction_id=result.entry_id)
    events.set_transactions(session, transactions)
    counters.add(session, consumed, now)
    return done


def _earning(origin: Origin, processed: Processed) -> Earning:
    """The earn of an event's points: a line per rule that gave points, named by it."""
    lines = tuple(
        Line(rule["points"], None, f"{rule['campaign']}/{rule['rule']}")
        for rule in processed.outcome["rules"]
        if rule["points"] > 0
    )
    order = Order(
        EntryKind.EARN,
        origin,
        processed.member_id,
        processed.points,
        f"event:{processed.event.event_id}",
        lines=lines if len(lines) > 1 else (),
    )
    return Earning(order, processed.growth)


def _row(source: str, origin: Origin, processed: Processed, now: datetime) -> dict[str, Any]:
    event = processed.event
    return {
        "id": processed.stored_id,
        "source": source,
        "event_id": event.event_id,
        "partner_id": origin.partner_id,
        "type": event.type,
        "member_id": processed.member_id,
        "occurred_at": event.occurred_at,
        "received_at": now,
        "amount_minor": minor_units(event.amount, event.currency),
        "currency": event.currency,
        "channel": event.channel,
        "refers_to": event.refers_to,
        "payload": dict(event.payload),
        "points": processed.points,
        "growth": processed.growth,
        "outcome": processed.outcome,
        "transaction_id": None,
        "programme_version": processed.programme_version,
        "refunded_minor": 0,
    }
