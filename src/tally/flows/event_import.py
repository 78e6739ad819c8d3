"""Bulk accrual: a file of a partner's events through the same rules, with the same results, as
``POST /v1/events`` — chunk by chunk, each chunk in a transaction of its own.

A chunk's rows are checked by column expressions (:mod:`tally.events.importing`); the rows a
previous run stored already are found in one statement and counted as already imported (so a
re-run after a crash credits nothing twice); the members are looked up in one statement; the
rest go through :func:`tally.flows.event_intake.process` in the chunk's transaction. Every row
refused is written with its code and reason to the rejects file, which appears, whole, only when
the import ends.
"""

from __future__ import annotations

import re
import resource
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy.orm import Session

from tally.config import Settings
from tally.db.raw import savepoint
from tally.errors import ConcurrentChange, TallyError, ValidationFailed
from tally.events import importing
from tally.events import repository as events
from tally.events.importing import CODE, REASON, ROW, EventFile
from tally.flows import event_intake
from tally.flows.event_intake import Processed, Reported
from tally.kit.clock import utcnow
from tally.ledger import repository as ledger_repository
from tally.ledger.domain import Origin, Policy
from tally.ledger.posting import policy_for
from tally.members.models import MemberStatus
from tally.partners import service as partners
from tally.programme import runtime
from tally.programme.domain import CURRENCY_EXPONENTS, Programme
from tally.rules.conditions import FieldType
from tally.rules.rule_book import RuleBook
from tally.rules.vectorised import evaluate_many

UnitOfWork = Callable[[], AbstractContextManager[Session]]
CHUNK = 5_000
ATTEMPTS = 3  # a chunk that lost a race to a concurrent writer of the same events is tried again
SAMPLE = 5
_WHOLE = re.compile(r"-?(0|[1-9][0-9]{0,17})")


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What an import did so far (or in all): rows read, events stored, rows a previous run
    stored already, rows refused, and the points and growth value the stored events earned."""

    rows: int  # rows in the file
    read: int = 0
    imported: int = 0
    already_imported: int = 0
    rejected: int = 0
    points: int = 0
    growth: int = 0
    chunks: int = 0
    seconds: float = 0.0
    peak_rss_bytes: int = 0
    rejects: str | None = None
    sample: tuple[dict[str, Any], ...] = field(default=())  # the first rows refused

    def as_dict(self) -> dict[str, Any]:
        """The summary: every count, the time taken, the rate and the peak memory."""
        return {
            "rows": self.rows,
            "read": self.read,
            "imported": self.imported,
            "already_imported": self.already_imported,
            "rejected": self.rejected,
            "points": self.points,
            "growth": self.growth,
            "chunks": self.chunks,
            "elapsed_seconds": round(self.seconds, 3),
            "events_per_second": round(self.read / self.seconds) if self.seconds else None,
            "peak_rss_mib": round(self.peak_rss_bytes / 2**20, 1),
            "rejects_file": self.rejects,
            "rejected_sample": list(self.sample),
        }


@dataclass(slots=True)
class _Priced:
    """The programme pricing the chunks, read again when another version comes into force."""

    version: int | None
    programme: Programme
    book: RuleBook
    policy: Policy


def run(
    unit_of_work: UnitOfWork,
    settings: Settings,
    path: Path,
    partner_code: str,
    *,
    chunk: int = CHUNK,
    rejects: Path | None = None,
    clock: Callable[[], datetime] = utcnow,
    on_chunk: Callable[[ImportReport], None] | None = None,
) -> ImportReport:
    """Import the events of ``path`` as partner ``partner_code``'s (see the module). Raises a
    :class:`~tally.errors.TallyError` before writing anything when the file, its columns or the
    partner are wrong; ``on_chunk`` hears the running totals after each chunk commits."""
    started = time.perf_counter()
    file = importing.open_file(path)
    with unit_of_work() as session:
        partner = partners.partner_by_code(session, partner_code)
        if not partner.is_active:
            raise ValidationFailed(f"Partner {partner_code} is not active.", field="partner")
        origin = Origin(partner_id=partner.id)
        priced = _priced(session, settings, clock(), None)
    report = ImportReport(rows=file.rows, rejects=None if rejects is None else str(rejects))
    with _rejects_file(rejects) as write_rejects:
        for frame in file.chunks(chunk):
            done, refused = _chunk(unit_of_work, settings, file, frame, origin, priced, clock)
            write_rejects(refused)
            report = _added(report, done, refused, started)
            if on_chunk is not None:
                on_chunk(report)
    return replace(report, seconds=time.perf_counter() - started, peak_rss_bytes=_peak_rss())


@dataclass(frozen=True, slots=True)
class _Done:
    read: int
    imported: int
    already: int
    points: int
    growth: int


def _added(
    report: ImportReport, done: _Done, refused: pl.DataFrame, started: float
) -> ImportReport:
    sample = report.sample
    if len(sample) < SAMPLE and not refused.is_empty():
        more = refused.head(SAMPLE - len(sample)).select(ROW, "event_id", CODE, REASON)
        sample = (*sample, *more.to_dicts())
    return replace(
        report,
        read=report.read + done.read,
        imported=report.imported + done.imported,
        already_imported=report.already_imported + done.already,
        rejected=report.rejected + refused.height,
        points=report.points + done.points,
        growth=report.growth + done.growth,
        chunks=report.chunks + 1,
        seconds=time.perf_counter() - started,
        peak_rss_bytes=_peak_rss(),
        sample=sample,
    )


def _chunk(
    unit_of_work: UnitOfWork,
    settings: Settings,
    file: EventFile,
    frame: pl.DataFrame,
    origin: Origin,
    priced: _Priced,
    clock: Callable[[], datetime],
) -> tuple[_Done, pl.DataFrame]:
    """One chunk in one transaction (tried again when it lost a race to a concurrent writer;
    event by event, each in a savepoint, when one event's earn is refused)."""
    for attempt in range(ATTEMPTS):
        try:
            with unit_of_work() as session:
                return _in_transaction(session, settings, file, frame, origin, priced, clock())
        except ConcurrentChange:
            if attempt == ATTEMPTS - 1:
                raise
        except TallyError:
            break
    with unit_of_work() as session:
        return _in_transaction(
            session, settings, file, frame, origin, priced, clock(), one_by_one=True
        )
    raise AssertionError("unreachable")  # pragma: no cover


def _in_transaction(
    session: Session,
    settings: Settings,
    file: EventFile,
    frame: pl.DataFrame,
    origin: Origin,
    priced: _Priced,
    now: datetime,
    *,
    one_by_one: bool = False,
) -> tuple[_Done, pl.DataFrame]:
    current = _priced(session, settings, now, priced)
    if current is not priced:
        priced.version, priced.programme = current.version, current.programme
        priced.book, priced.policy = current.book, current.policy
    money = priced.programme.currency.point_value.currency
    taken = [money, *priced.programme.currency.exchange_rates]
    rules = importing.Rules(
        frozenset(priced.book.event_types),
        money,
        {code: CURRENCY_EXPONENTS[code] for code in taken},
    )
    rows = importing.checked(frame, file, rules)
    problems: dict[int, tuple[str, str]] = {
        row: (code, reason)
        for row, code, reason in rows.filter(pl.col(CODE).is_not_null())
        .select(ROW, CODE, REASON)
        .iter_rows()
    }
    rows = rows.filter(pl.col(CODE).is_null())
    source = events.source_of(origin.partner_id)
    stored = events.find(session, source, rows["event_id"].to_list())
    already = rows.filter(pl.col("event_id").is_in(list(stored)))
    rows = rows.filter(~pl.col("event_id").is_in(list(stored)))
    rows = rows.with_columns(pl.col("member_id").cast(pl.Int64))
    members = _member_problems(session, rows)
    problems.update(members)
    rows = rows.filter(~pl.col(ROW).is_in(list(members)))
    reported = reported_of(rows, file, priced.book)
    numbers = rows[ROW].to_list()
    results = _processed(session, origin, reported, now, priced, one_by_one=one_by_one)
    imported = points = growth = 0
    for number, result in zip(numbers, results, strict=True):
        if isinstance(result, Processed):
            imported += 1
            points += result.points
            growth += result.growth
        elif isinstance(result, TallyError):
            problems[number] = (result.code, result.detail)
        else:  # pragma: no cover - waited for, and no event twice (repeats were rejected)
            raise ConcurrentChange("An event's member was busy; retry.")
    done = _Done(frame.height, imported, already.height, points, growth)
    return done, importing.rejected(frame, problems)


def _processed(
    session: Session,
    origin: Origin,
    reported: Sequence[Reported],
    now: datetime,
    priced: _Priced,
    *,
    one_by_one: bool,
) -> list[Any]:
    def run(part: Sequence[Reported]) -> list[Any]:
        return event_intake.process(
            session,
            origin,
            part,
            now,
            priced.policy,
            priced.programme,
            priced.book,
            evaluator=evaluate_many,
        )

    if not one_by_one:
        return run(reported)
    results: list[Any] = []
    for event in reported:  # only after a chunk's earn was refused: each event on its own
        try:
            with savepoint(session):
                results.extend(run([event]))
        except TallyError as error:
            results.append(error)
    return results


def _priced(session: Session, settings: Settings, now: datetime, known: _Priced | None) -> _Priced:
    """The programme in force at ``now`` (``known`` when it still is), stamped on the session."""
    version = runtime.version_in_force(session, now)
    if known is None or known.version != version:
        _version, programme = runtime.in_force(session, settings, now)
        known = _Priced(
            version,
            programme,
            event_intake.book_for(programme),
            policy_for(programme, settings),
        )
    runtime.stamp(session, runtime.pricing_of(version, known.programme))
    return known


def _member_problems(session: Session, rows: pl.DataFrame) -> dict[int, tuple[str, str]]:
    """The rows whose member does not exist or is not active (one statement): row → problem."""
    ids = rows["member_id"].unique().to_list()
    statuses = ledger_repository.wallet_states(session, ids)[1]
    known = pl.DataFrame(
        {"member_id": list(statuses), "status": [status.value for status in statuses.values()]},
        schema={"member_id": pl.Int64, "status": pl.String},
    )
    found = rows.select(ROW, "member_id").join(known, on="member_id", how="left")
    member = pl.col("member_id").cast(pl.String)
    found = found.filter(pl.col("status").is_null() | (pl.col("status") != MemberStatus.ACTIVE))
    found = found.with_columns(
        pl.when(pl.col("status").is_null())
        .then(pl.lit(importing.UNKNOWN_MEMBER))
        .when(pl.col("status") == MemberStatus.MERGED)
        .then(pl.lit("member_merged"))
        .otherwise(pl.lit("member_frozen"))
        .alias(CODE),
        pl.when(pl.col("status").is_null())
        .then(pl.format("Member {} does not exist.", member))
        .when(pl.col("status") == MemberStatus.MERGED)
        .then(pl.format("Member {} was merged into another member.", member))
        .otherwise(pl.format("Member {} is frozen.", member))
        .alias(REASON),
    )
    return {
        row: (code, reason) for row, code, reason in found.select(ROW, CODE, REASON).iter_rows()
    }


def reported_of(rows: pl.DataFrame, file: EventFile, book: RuleBook) -> list[Reported]:
    """The events the checked rows report, as the events API reads a request's."""
    names = file.attributes
    columns = ["type", "event_id", "member_id", "occurred_at", "amount", "currency", "channel"]
    attributes = [f"{importing.ATTRIBUTE}{name}" for name in names]
    found = []
    for values in rows.select(*columns, "refers_to", *attributes).iter_rows():
        kind, event_id, member_id, occurred_at, amount, currency, channel, refers_to = values[:8]
        sent = _sent_attributes(book, kind, names, values[8:])
        found.append(
            Reported(
                type=kind,
                event_id=event_id,
                member_id=member_id,
                occurred_at=occurred_at,
                amount=None if amount is None else Decimal(amount),
                currency=currency,
                channel=channel,
                attributes=event_intake.typed_attributes(book, kind, sent),
                refers_to=refers_to,
                payload={
                    "amount": None if amount is None else {"value": amount, "currency": currency},
                    "items": [],
                    "attributes": sent,
                },
            )
        )
    return found


def _sent_attributes(
    book: RuleBook, kind: str, names: Sequence[str], cells: Sequence[str | None]
) -> dict[str, Any]:
    """An event's attribute cells as JSON would carry them (whole numbers and booleans typed as
    declared; decimals as exact decimal strings)."""
    declared = book.event_types.get(kind, {})
    sent: dict[str, Any] = {}
    for name, text in zip(names, cells, strict=True):
        if text is None:
            continue
        match declared.get(name):
            case FieldType.INT if _WHOLE.fullmatch(text):
                sent[name] = int(text)
            case FieldType.BOOL if text.lower() in {"true", "false"}:
                sent[name] = text.lower() == "true"
            case _:
                sent[name] = text
    return sent


@contextmanager
def _rejects_file(path: Path | None) -> Iterator[Callable[[pl.DataFrame], None]]:
    """A writer of refused rows to ``path``, which appears only when the block ends well (a
    file beside it collects them meanwhile and is removed if the block fails)."""
    if path is None:
        yield lambda _frame: None
        return
    partial = path.with_name(path.name + ".partial")
    started = False
    with partial.open("w", encoding="utf-8", newline="") as out:

        def write(frame: pl.DataFrame) -> None:
            nonlocal started
            if frame.is_empty() and started:
                return
            frame.write_csv(out, include_header=not started)
            started = True

        try:
            yield write
        except BaseException:
            out.close()
            partial.unlink(missing_ok=True)
            raise
    partial.replace(path)


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
