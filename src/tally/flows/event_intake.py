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
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from sqlalchemy.orm import Session

from tally.campaigns import repository as campaign_ops
from tally.coupons import service as coupons
from tally.coupons.domain import Source
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
from tally.ledger import reversals
from tally.ledger.domain import Origin, Policy, in_rounds
from tally.ledger.models import EntryKind
from tally.ledger.orders import BUSY, Busy, Line, Order
from tally.ledger.posting import Posted, source_key
from tally.members.models import MemberStatus
from tally.programme import runtime
from tally.programme.campaign_rules import rule_book
from tally.programme.domain import CURRENCY_EXPONENTS, Programme
from tally.rules import engine, refunds
from tally.rules.conditions import FieldType
from tally.rules.events import event_problems
from tally.rules.refunds import Refund
from tally.rules.rule_book import RuleBook
from tally.rules.vectorised import Evaluator, evaluate_in_order
from tally.tiers import service as tiers

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
                "coupon": applied.coupon,
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


REFUND = "refund"


def check(event: Reported, programme: Programme, book: RuleBook) -> None:
    """Refuse what the programme cannot price (``validation_failed``, naming the field): an
    unknown event type, an attribute it does not declare or of another type, an amount in
    another currency or with more decimals than that currency has, a refund without the event
    it refunds or the money refunded."""
    if event.type not in book.event_types:
        raise ValidationFailed(f"Unknown event type {event.type!r}.", field="type")
    problems = event_problems(book, event.type, event.attributes)
    if problems:
        raise ValidationFailed(f"{problems[0][:1].upper()}{problems[0][1:]}.", field="attributes")
    if event.type == REFUND:
        if event.refers_to is None:
            raise ValidationFailed("A refund names the event it refunds.", field="refers_to")
        if event.amount is None or event.amount <= 0:
            raise ValidationFailed("A refund states the money refunded.", field="amount")
        if event.items:
            raise ValidationFailed("A refund is of an amount, not of items.", field="items")
    money = programme.currency.point_value.currency
    if event.amount is not None or event.items:
        rates = programme.currency.exchange_rates
        if event.currency != money and event.currency not in rates:
            others = f" or one it has a rate for ({', '.join(sorted(rates))})" if rates else ""
            raise ValidationFailed(
                f"Amounts must be in the programme's currency, {money}{others}.",
                field="amount.currency",
            )
        exponent = CURRENCY_EXPONENTS[event.currency or money]
        amounts = [event.amount] if event.amount is not None else []
        for amount in [*amounts, *(item.amount for item in event.items)]:
            if -int(amount.as_tuple().exponent) > exponent:
                raise ValidationFailed(
                    f"{event.currency} amounts have at most {exponent} decimals.", field="amount"
                )


def in_programme_money(event: Reported, programme: Programme) -> Reported:
    """An event whose amounts are in another currency the programme has a rate for, in the
    programme's money: each amount times the rate, rounded down to the minor unit (what was
    sent is kept in the payload as ``sent_currency`` and ``sent_amount``)."""
    money = programme.currency.point_value.currency
    if event.currency is None or event.currency == money:
        return event
    rate = Decimal(programme.currency.exchange_rates[event.currency])
    unit = Decimal(1).scaleb(-CURRENCY_EXPONENTS[money])

    def convert(amount: Decimal) -> Decimal:
        return (amount * rate).quantize(unit, rounding=ROUND_FLOOR)

    sent = {"sent_currency": event.currency}
    if event.amount is not None:
        sent["sent_amount"] = str(event.amount)
    return replace(
        event,
        amount=None if event.amount is None else convert(event.amount),
        currency=money,
        items=tuple(replace(item, amount=convert(item.amount)) for item in event.items),
        payload={**event.payload, **sent},
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
    evaluator: Evaluator = evaluate_in_order,
    source: str | None = None,
) -> list[Processed | TallyError | Busy]:
    """Each event's outcome, in order (see the module's docstring). A refused event (a member
    that does not exist or is frozen, a currency the programme does not take) is answered
    with its error and writes nothing; without ``wait``, an event whose member's wallet
    another transaction holds is :data:`~tally.ledger.orders.BUSY`. ``evaluator`` evaluates
    the events in order (the bulk importer's is vectorised, with the same outcomes). The
    events are stored under ``source``, by default the origin's (``tally`` for those Tally
    raises itself, whose points the origin funds)."""
    source = source or events.source_of(origin.partner_id)
    reported = list(reported)
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
            else:
                reported[position] = in_programme_money(event, programme)
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
    paused = campaign_ops.paused(session)
    intake = _Intake(
        session,
        origin,
        source,
        now,
        policy,
        programme,
        book,
        write,
        evaluator,
        paused=paused,
        wait=wait,
    )
    # In order: runs of earning events set-based, each refund on its own between them (a
    # refund may take back what an earlier event of the batch earned, and give back its cap).
    run: list[int] = []
    for at in [*todo, None]:
        if at is not None and reported[at].type != REFUND:
            run.append(at)
            continue
        if run:
            results.update(intake.earn({p: reported[p] for p in run}))
            run = []
        if at is not None:
            results[at] = intake.refund(reported[at])
    return [results[position] for position in range(len(reported))]


@dataclass(slots=True)
class _Intake:
    """What one call of :func:`process` works with."""

    session: Session
    origin: Origin
    source: str
    now: datetime
    policy: Policy
    programme: Programme
    book: RuleBook
    write: bool
    evaluator: Evaluator = evaluate_in_order
    wait: bool = True
    version: int | None = None
    paused: frozenset[str] = frozenset()  # the campaigns paused now (read once per call)

    def programme_version(self) -> int:
        if self.version is None:
            self.version = programme_version(self.session, self.now)
        return self.version

    def earn(self, reported: dict[int, Reported]) -> dict[int, Processed]:
        """Evaluate earning events in order and, when writing, store and post them."""
        session, now, book = self.session, self.now, self.book
        members = member_contexts(
            session,
            sorted({event.member_id for event in reported.values()}),
            self.programme,
            windows_of(self.programme),
            now,
        )
        happened = [
            (position, _engine_event(event, self.origin)) for position, event in reported.items()
        ]
        limits: dict[str, int] = {}
        for position, happening in happened:
            limits.update(engine.counter_limits(book, happening, str(reported[position].member_id)))
        used = counters.lock(session, limits, now) if self.write else counters.used(session, limits)
        remaining = {key: max(0, limit - used.get(key, 0)) for key, limit in limits.items()}
        consumed: dict[str, int] = {}
        version = self.programme_version()
        done: dict[int, Processed] = {}
        member_of = [(reported[position].member_id, happening) for position, happening in happened]
        outcomes = daily.evaluate(
            self.evaluator,
            book,
            [happening for _, happening in happened],
            [members[reported[position].member_id] for position, _ in happened],
            daily.days(session, book, member_of, now, write=self.write),
            remaining,
            self.paused,
        )
        for (position, _happening), outcome in zip(happened, outcomes, strict=True):
            report = reported[position]
            for key, points in outcome.consumption.items():
                consumed[key] = consumed.get(key, 0) + points
            done[position] = Processed(
                uuid7() if self.write else None,
                report,
                report.member_id,
                outcome.points,
                outcome.growth,
                outcome_document(outcome),
                version,
            )
        if self.write and done:
            done = _store_and_post(
                session, self.origin, self.source, done, consumed, now, self.policy, self.programme
            )
            referrals.complete(
                session,
                self.programme,
                book,
                done.values(),
                now,
                self.policy,
                process,
                wait=self.wait,
            )
        return done

    def refund(self, event: Reported) -> Processed | TallyError:
        """Take back, in proportion to the money refunded, what the purchase it refers to
        earned (points, growth), and give back the caps and budgets it used."""
        session = self.session
        assert event.refers_to is not None
        if self.write:
            found = events.lock_referred(session, self.source, [event.refers_to])
        else:
            ids = events.find(session, self.source, [event.refers_to])
            rows = events.by_ids(session, list(ids.values()))
            found = {event_id: rows[stored_id] for event_id, stored_id in ids.items()}
        purchase = found.get(event.refers_to)
        try:
            taken = _taken_back(event, purchase)
        except TallyError as error:
            return error
        assert purchase is not None
        refunded = minor_units(event.amount, event.currency) or 0
        document = {
            "refund_of": purchase.event_id,
            "rules": [
                {
                    "campaign": line.campaign,
                    "rule": line.rule,
                    "points": line.points,
                    "growth": line.growth,
                }
                for line in taken.lines
            ],
            "skipped": [],
            "arms": dict(purchase.outcome.get("arms", {})),
            "consumption": {key: -points for key, points in sorted(taken.given_back.items())},
        }
        processed = Processed(
            uuid7() if self.write else None,
            event,
            event.member_id,
            taken.points,
            taken.growth,
            document,
            self.programme_version(),
        )
        if not self.write:
            return processed
        transaction_id = None
        if purchase.transaction_id is not None and taken.points < 0:
            try:
                transaction_id = reversals.take_back(
                    session,
                    self.origin,
                    purchase.transaction_id,
                    -taken.points,
                    self.now,
                    reference=f"event:{event.event_id}",
                    source_key=source_key(
                        EntryKind.CLAWBACK, self.origin, f"event:{event.event_id}"
                    ),
                    details={"refund_of": purchase.event_id, "refunded_minor": refunded},
                ).entry_id
            except TallyError as error:
                return error
        if taken.growth < 0:
            tiers.take_back(
                session,
                purchase.member_id,
                -taken.growth,
                purchase.received_at,
                self.now,
                journal_entry_id=transaction_id,
                partner_id=self.origin.partner_id,
            )
        processed = replace(processed, transaction_id=transaction_id)
        row = _row(self.source, self.origin, processed, self.now)
        row["transaction_id"] = transaction_id
        if processed.stored_id not in events.insert(session, [row]):
            raise ConcurrentChange("A concurrent report of the same event was stored first; retry.")
        campaign_ops.record_refund(session, row, purchase.outcome)
        events.add_refunded(session, {purchase.id: refunded})
        counters.add(session, {key: -points for key, points in taken.given_back.items()}, self.now)
        return processed


def _taken_back(event: Reported, purchase: StoredEvent | None) -> Refund:
    """What a refund takes back of the purchase it refers to, or why it cannot."""
    if purchase is None:
        raise ValidationFailed(
            f"Event {event.refers_to!r} was not reported by this source.", field="refers_to"
        )
    if purchase.type == REFUND:
        raise ValidationFailed(
            "A refund refers to what was bought, not to a refund.", field="refers_to"
        )
    if purchase.member_id != event.member_id:
        raise ValidationFailed(
            f"Event {purchase.event_id!r} is another member's.", field="member_id"
        )
    refunded = minor_units(event.amount, event.currency) or 0
    if purchase.amount_minor is None or purchase.currency != event.currency:
        raise ValidationFailed(
            f"Event {purchase.event_id!r} has no amount in {event.currency} to refund.",
            field="refers_to",
        )
    left = purchase.amount_minor - purchase.refunded_minor
    if refunded > left:
        raise ValidationFailed(
            f"The refund exceeds what is left to refund of {purchase.event_id!r}: "
            f"{_decimal(left, event.currency)} {event.currency}.",
            field="amount",
        )
    return refunds.refund(
        _outcome_of(purchase.outcome),
        Decimal(purchase.amount_minor),
        Decimal(refunded),
        Decimal(purchase.refunded_minor),
    )


def _outcome_of(document: Mapping[str, Any]) -> engine.Outcome:
    """The applied rules of a stored outcome, as the engine gave them (for refunds)."""
    return engine.Outcome(
        applied=tuple(
            engine.Applied(
                rule["campaign"],
                rule["rule"],
                rule["points"],
                rule.get("growth", 0),
                counters=tuple(rule.get("counters", ())),
            )
            for rule in document.get("rules", [])
        ),
        skipped=(),
        consumption={},
        arms={},
    )


def _decimal(minor: int, currency: str | None) -> Decimal:
    return Decimal(minor).scaleb(-CURRENCY_EXPONENTS[currency or ""])


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
    done = _issue_coupons(session, done, now)
    rows = {position: _row(source, origin, processed, now) for position, processed in done.items()}
    inserted = events.insert(session, list(rows.values()))
    lost = [position for position, row in rows.items() if row["id"] not in inserted]
    if lost:
        # Lost the race to a concurrent report of the same events: roll back and answer alone.
        raise ConcurrentChange("A concurrent report of the same event was stored first; retry.")
    earning = [position for position, processed in done.items() if processed.points > 0]
    growing = [
        position
        for position, processed in done.items()
        if not processed.points and processed.growth
    ]
    in_rounds(
        [
            tiers.EarnedGrowth(done[p].member_id, done[p].growth, None, origin.partner_id)
            for p in growing
        ],
        lambda credit: credit.member_id,
        lambda distinct: tiers.credit_earns(session, distinct, now, programme),
    )
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
    campaign_ops.record_outcomes(session, list(rows.values()))
    counters.add(session, consumed, now)
    return done


def _issue_coupons(
    session: Session, done: dict[int, Processed], now: datetime
) -> dict[int, Processed]:
    """Issue the coupons the rules gave, in the events' transaction, once per stored event and
    rule; each event's outcome lists them under ``coupons`` (the code issued, or why none
    was). Dry runs and the simulator never get here: their outcomes only name the template
    each rule would give (``rules[].coupon``)."""
    asked = [
        (
            position,
            coupons.Grant(
                processed.member_id,
                rule["coupon"],
                f"rule:{processed.stored_id}:{rule['campaign']}/{rule['rule']}",
            ),
        )
        for position, processed in done.items()
        for rule in processed.outcome["rules"]
        if rule.get("coupon")
    ]
    if not asked:
        return done
    issued: dict[int, list[dict[str, Any]]] = {}
    granted = coupons.grant(session, [item for _position, item in asked], Source.RULE, now)
    for (position, _grant), result in zip(asked, granted, strict=True):
        issued.setdefault(position, []).append(
            {
                "template": result.grant.template,
                "coupon_id": result.coupon_id,
                "refused": result.refused,
            }
        )
    return {
        position: replace(processed, outcome={**processed.outcome, "coupons": issued[position]})
        if position in issued
        else processed
        for position, processed in done.items()
    }


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
