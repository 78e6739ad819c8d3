"""Simulation of a draft programme: the events of a period — those stored, or a file's — replayed
through the draft's rules beside what the running programme gave them, in one read-only
transaction that writes nothing (``tally.rules.simulation`` does the comparing).

What it reads, set-based: the period's stored events in one statement (in the order they were
taken in), the members' states in one, their contexts for the rules once for all of them —
for stored events as of the moment each was taken in (``tally.flows.simulation_members``),
for a file's as of now (``tally.flows.event_members``) — and their qualifying growth in one.
Approximations, stated in ``docs/rules.md``: paid plans and birthdays are those of now; caps
and budgets start from zero at the period's first event; a stored event's growth counts for
the tier if it was taken in within the running tier window of now, a file's events as if
taken in now.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.orm import Session

from tally.campaigns import repository as campaign_ops
from tally.config import Settings
from tally.engagement.domain import Streak, step
from tally.errors import TallyError, ValidationFailed
from tally.events import repository as events
from tally.events.importing import EventFile
from tally.events.models import StoredEvent
from tally.flows import simulation_files
from tally.flows.daily_sign_ins import SIGN_IN
from tally.flows.event_intake import (
    REFUND,
    Reported,
    book_for,
    check,
    in_programme_money,
    minor_units,
    typed_attributes,
    windows_of,
)
from tally.flows.event_members import member_contexts
from tally.flows.simulation_members import at_their_moments
from tally.kit.clock import as_utc, end_of_day
from tally.ledger import repository as ledger_repository
from tally.members.models import MemberStatus
from tally.programme import runtime
from tally.programme.campaign_rules import rule_book
from tally.programme.domain import CURRENCY_EXPONENTS, Money, Programme
from tally.rules import engine, simulation
from tally.rules.rule_book import RuleBook
from tally.tiers import domain as tier_domain
from tally.tiers import service as tiers
from tally.tiers.domain import start_of_day

STORED = "stored"
FILE = "file"


class Progress(Protocol):
    """Told how many replays there are, then how many are done."""

    def start(self, total: int) -> None: ...

    def advance(self, count: int) -> None: ...


@dataclass(frozen=True, slots=True)
class Period:
    """Events that occurred at or after ``since`` and before ``until`` (``None``: unbounded)."""

    since: datetime | None = None
    until: datetime | None = None

    def holds(self, moment: datetime) -> bool:
        return (self.since is None or moment >= self.since) and (
            self.until is None or moment < self.until
        )


def read_only(session: Session) -> None:
    """Make the session's transaction refuse every write (PostgreSQL: ``SET TRANSACTION READ
    ONLY``, its first statement); on SQLite the reading transaction is rolled back anyway."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET TRANSACTION READ ONLY"))


def period_of(since: str | None, until: str | None, zone: ZoneInfo) -> Period:
    """``--since`` and ``--until``: ISO dates in the programme's zone, both days included
    (``validation_failed`` for a date that cannot be read, or a period that ends before it
    starts)."""

    def day(value: str | None, name: str) -> date | None:
        if value is None or not value.strip():
            return None
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            raise ValidationFailed(
                f"--{name} {value!r} is not an ISO-8601 date (2026-05-01).", field=name
            ) from None

    first, last = day(since, "since"), day(until, "until")
    if first is not None and last is not None and first > last:
        raise ValidationFailed(
            f"--since {first.isoformat()} is after --until {last.isoformat()}.", field="since"
        )
    return Period(
        None if first is None else start_of_day(first, zone),
        None if last is None else end_of_day(last, zone),
    )


@dataclass(frozen=True, slots=True)
class Simulation:
    """A report and what it was computed on."""

    report: simulation.Report
    source: str  # STORED or FILE
    period: Period
    running_version: int | None  # None: the built-in default programme
    now: datetime


def stored(
    session: Session,
    settings: Settings,
    draft: Programme,
    period: Period,
    now: datetime,
    progress: Progress | None = None,
) -> Simulation:
    """The period's stored events through ``draft``, beside the outcomes stored with them."""
    version, running = runtime.in_force(session, settings, now)
    draft_book = rule_book(draft)
    rows = events.in_period(session, period.since, period.until)
    member_ids = sorted({row.member_id for row in rows})
    _, statuses = ledger_repository.wallet_states(session, member_ids)
    contexts = at_their_moments(session, rows, sorted(statuses), draft, now)
    window = tier_domain.windows(running.tier_model, now, running.zone).current
    subjects = [
        simulation.Subject(
            str(row.id), str(row.member_id), tier_domain.in_window(window, as_utc(row.received_at))
        )
        for row in rows
    ]
    awarded = [simulation.Given.stored(row.points, row.growth, row.outcome) for row in rows]
    counted = dict.fromkeys(member_ids, 0)
    for subject, row in zip(subjects, rows, strict=True):
        if subject.counts_for_tier:
            counted[row.member_id] += row.growth
    drafted = _stored_replays(rows, draft, draft_book, contexts)
    if progress is not None:
        progress.start(len(rows))
    pauses = [  # as they stood when each event was taken in (its stored skips say)
        frozenset(
            str(skip["campaign"])
            for skip in row.outcome.get("skipped", [])
            if skip.get("reason") == engine.Reason.PAUSED
        )
        for row in rows
    ]
    drafted = _with_streaks(drafted, draft.zone)
    simulated = simulation.replay(draft_book, drafted, _tick(progress), pauses)
    base = _base_growth(session, member_ids, running, now, counted)
    report = simulation.compare(
        subjects,
        awarded,
        simulated,
        _side(running, book_for(running)),
        _side(draft, draft_book),
        base,
    )
    return Simulation(report, STORED, period, version, now)


def from_file(
    session: Session,
    settings: Settings,
    draft: Programme,
    file: EventFile,
    period: Period,
    now: datetime,
    progress: Progress | None = None,
) -> Simulation:
    """A file's events (those of the period; a row whose time cannot be read is kept, refused)
    through the running programme and through ``draft``, each reading the rows as the importer
    does: nothing is stored, so both sides are replayed the same way."""
    version, running = runtime.in_force(session, settings, now)
    books = (book_for(running), rule_book(draft))
    frame = simulation_files.rows_of(file)
    subjects, moments = simulation_files.subjects(frame, file)
    keep = [moment is None or period.holds(moment) for moment in moments]
    subjects = simulation_files.kept(subjects, keep)
    sides = [
        simulation_files.kept(simulation_files.side(frame, file, programme, book), keep)
        for programme, book in zip((running, draft), books, strict=True)
    ]
    member_ids = sorted(
        {entry.member_id for entries in sides for entry in entries if not isinstance(entry, str)}
    )
    _, statuses = ledger_repository.wallet_states(session, member_ids)
    active = sorted(m for m, status in statuses.items() if status is MemberStatus.ACTIVE)
    refusals = {m: _member_refusal(statuses.get(m)) for m in member_ids if m not in active}
    paused = campaign_ops.paused(session)  # as online now
    if progress is not None:
        progress.start(2 * len(subjects))
    given = []
    for programme, book, entries in zip((running, draft), books, sides, strict=True):
        contexts = member_contexts(session, active, programme, windows_of(programme), now)
        replays = _with_streaks(
            _file_replays(entries, programme, book, contexts, refusals), programme.zone
        )
        given.append(simulation.replay(book, replays, _tick(progress), [paused] * len(replays)))
    base = _base_growth(session, active, running, now, {})
    report = simulation.compare(
        subjects,
        given[0],
        given[1],
        _side(running, books[0]),
        _side(draft, books[1]),
        base,
    )
    return Simulation(report, FILE, period, version, now)


def _stored_replays(
    rows: Sequence[StoredEvent],
    draft: Programme,
    book: RuleBook,
    contexts: Sequence[engine.Member | None],
) -> list[simulation.Replayed]:
    """What the draft replays of each stored event: the event evaluated, or a refund taking
    back from the purchase it refers to when that purchase is replayed too (otherwise the
    refund's stored take-back stands)."""
    bought: dict[tuple[str, str], int] = {}
    replays: list[simulation.Replayed] = []
    for position, row in enumerate(rows):
        if row.type != REFUND:
            bought[(row.source, row.event_id)] = position
            reported = _reported(row, book)
            replays.append(_subject(draft, book, reported, contexts[position], _partner(row)))
            continue
        of = bought.get((row.source, row.refers_to or ""))
        if of is None:
            replays.append(simulation.Given.stored(row.points, row.growth, row.outcome))
        else:
            purchase = rows[of].amount_minor or 0
            replays.append(simulation.Refunding(of, purchase, row.amount_minor or 0))
    return replays


def _file_replays(
    entries: Sequence[Reported | str],
    programme: Programme,
    book: RuleBook,
    contexts: Mapping[int, engine.Member],
    refusals: Mapping[int, str],
) -> list[simulation.Replayed]:
    """What one side replays of each of a file's rows (in file order): a refused row stays
    refused, a refund takes back from the earlier event of the member it refers to."""
    seen: dict[str, tuple[int, Reported]] = {}
    replays: list[simulation.Replayed] = []
    for position, entry in enumerate(entries):
        if isinstance(entry, str):
            replays.append(entry)
            continue
        purchase = seen.get(entry.refers_to or "") if entry.type == REFUND else None
        seen.setdefault(entry.event_id, (position, entry))
        if entry.member_id in refusals:
            replays.append(refusals[entry.member_id])
        elif entry.type == REFUND:
            if purchase is not None and (
                purchase[1].type == REFUND or purchase[1].member_id != entry.member_id
            ):
                purchase = None  # online: refused, as naming no refundable event of the member
            replays.append(_file_refund(programme, book, entry, purchase))
        else:
            replays.append(_subject(programme, book, entry, contexts.get(entry.member_id), None))
    return replays


def _with_streaks(
    replays: Sequence[simulation.Replayed], zone: ZoneInfo
) -> list[simulation.Replayed]:
    """The replays with each member's sign-in streak as the event sees it, the streaks
    counted from none at the first event replayed, as online (``tally.engagement.domain.step``):
    a sign-in on a day already signed in counts for nothing (no rule, nothing consumed)."""
    streaks: dict[str, Streak | None] = {}
    found: list[simulation.Replayed] = []
    for replay in replays:
        if not isinstance(replay, tuple):
            found.append(replay)
            continue
        event, member = replay
        day = event.occurred_at.astimezone(zone).date()
        streaks[member.id], view = step(streaks.get(member.id), day, signs_in=event.type == SIGN_IN)
        if view.repeats is not None:
            found.append(simulation.Given())
        else:
            streak = replace(member, sign_in_streak=view.streak, sign_in_streak_broken=view.broken)
            found.append((event, streak))
    return found


def _tick(progress: Progress | None) -> Callable[[int], None] | None:
    return None if progress is None else progress.advance


def _side(programme: Programme, book: RuleBook) -> simulation.Side:
    rate = programme.currency.point_value.rate
    ladder = programme.tiers

    def tier_of(growth: int) -> str:
        return ladder[tier_domain.qualified_index(ladder, growth)].code

    return simulation.Side(book, rate.points, rate.minor_units, rate.currency, tier_of)


def _base_growth(
    session: Session,
    member_ids: Sequence[int],
    running: Programme,
    now: datetime,
    counted: Mapping[int, int],
) -> dict[str, int]:
    """Each member's qualifying growth now, less what the replayed events counted in it."""
    values = tiers.qualifying_of(session, member_ids, now, running) if member_ids else {}
    return {
        str(member_id): value.up - counted.get(member_id, 0) for member_id, value in values.items()
    }


def _subject(
    programme: Programme,
    book: RuleBook,
    reported: Reported,
    member: engine.Member | None,
    partner: str | None,
) -> tuple[engine.Event, engine.Member] | str:
    """The event as ``programme`` reads it (its money converted as online) and its member, or
    the code of the error the online path would refuse it with."""
    if member is None:
        return "not_found"
    priced = _priced(programme, book, reported)
    if isinstance(priced, str):
        return priced
    event = engine.Event(
        type=priced.type,
        occurred_at=priced.occurred_at,
        partner=partner,
        channel=priced.channel,
        amount=priced.amount,
        currency=priced.currency,
        items=priced.items,
        attributes=priced.attributes,
    )
    return event, member


def _priced(programme: Programme, book: RuleBook, reported: Reported) -> Reported | str:
    """``reported`` checked and in the programme's money, or the code it is refused with."""
    try:
        check(reported, programme, book)
    except TallyError as refusal:
        return refusal.code
    return in_programme_money(reported, programme)


def _file_refund(
    programme: Programme,
    book: RuleBook,
    refund: Reported,
    purchase: tuple[int, Reported] | None,
) -> simulation.Refunding | str:
    """A file's refund of an earlier event of the file, its money as ``programme`` reads it."""
    priced = _priced(programme, book, refund)
    if isinstance(priced, str):
        return priced
    if purchase is None:
        return simulation.REFUSED_REFUND
    position, bought = purchase
    original = _priced(programme, book, bought)
    if isinstance(original, str) or original.amount is None:
        return simulation.REFUSED_REFUND
    return simulation.Refunding(
        position,
        minor_units(original.amount, original.currency) or 0,
        minor_units(priced.amount, priced.currency) or 0,
    )


def _member_refusal(status: MemberStatus | None) -> str:
    if status is None:
        return "not_found"
    return "member_merged" if status is MemberStatus.MERGED else "member_frozen"


def _partner(row: StoredEvent) -> str | None:
    return None if row.partner_id is None else str(row.partner_id)


def _reported(row: StoredEvent, book: RuleBook) -> Reported:
    """A stored event as it was sent (in the currency it was sent in, converted again by each
    side as online), its attributes typed as ``book`` declares them."""
    payload: Mapping[str, Any] = row.payload or {}
    currency = payload.get("sent_currency") or row.currency
    amount = None
    if "sent_currency" in payload:
        sent = payload.get("sent_amount")
        amount = None if sent is None else Decimal(str(sent))
    elif row.amount_minor is not None and row.currency is not None:
        amount = Decimal(row.amount_minor).scaleb(-CURRENCY_EXPONENTS[row.currency])
    items = tuple(
        engine.Item(
            sku=str(item["sku"]),
            amount=Decimal(str(item["amount"])),
            quantity=int(item.get("quantity", 1)),
            name=item.get("name"),
            category=item.get("category"),
            labels=tuple(item.get("labels") or ()),
        )
        for item in payload.get("items") or ()
    )
    return Reported(
        type=row.type,
        event_id=row.event_id,
        member_id=row.member_id,
        occurred_at=as_utc(row.occurred_at),
        amount=amount,
        currency=currency,
        items=items,
        channel=row.channel,
        attributes=typed_attributes(book, row.type, payload.get("attributes") or {}),
        refers_to=row.refers_to,
        payload=payload,
    )


def money_text(minor_units: int, currency: str) -> str:
    """Minor units shown as money: ``12345, "CNY"`` → ``123.45 CNY``."""
    return str(Money(minor_units, currency))


def document(result: Simulation, *, differences: int = 100) -> dict[str, Any]:
    """The report as JSON-ready data (``--json``); the first ``differences`` events the draft
    prices differently (``events_differing`` counts them all)."""
    report = result.report

    def figures(value: simulation.Figures) -> dict[str, int]:
        return asdict(value)

    def line(value: simulation.Line) -> dict[str, Any]:
        found: dict[str, Any] = {"campaign": value.campaign}
        if value.rule is not None:
            found["rule"] = value.rule
        return {**found, "running": figures(value.running), "draft": figures(value.draft)}

    def cost(minor_units: int, currency: str) -> dict[str, Any]:
        return {
            "minor_units": minor_units,
            "currency": currency,
            "text": money_text(minor_units, currency),
        }

    period = result.period
    return {
        "source": result.source,
        "since": None if period.since is None else period.since.isoformat(),
        "until": None if period.until is None else period.until.isoformat(),
        "running_version": result.running_version,
        "as_of": result.now.isoformat(),
        "events": report.events,
        "running": {
            **figures(report.running),
            "cost": cost(report.running_cost, report.running_currency),
            "refused": dict(report.running_refused),
        },
        "draft": {
            **figures(report.draft),
            "cost": cost(report.draft_cost, report.draft_currency),
            "refused": dict(report.draft_refused),
        },
        "campaigns": [line(value) for value in report.campaigns],
        "rules": [line(value) for value in report.rules],
        "budgets": [asdict(value) for value in report.budgets],
        "tiers": [asdict(value) for value in report.tiers],
        "events_differing": len(report.differences),
        "differences": [asdict(value) for value in report.differences[:differences]],
    }
