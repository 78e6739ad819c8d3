"""A file of events for a simulation, read and checked as ``tally events import`` reads and
checks it (:mod:`tally.events.importing`): the same columns, the same refusals by row, each
side's event types, money and rates deciding what it takes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TypeVar

import polars as pl

from tally.events import importing
from tally.events.importing import CODE, ROW, EventFile
from tally.flows.event_import import reported_of
from tally.flows.event_intake import Reported
from tally.programme.domain import CURRENCY_EXPONENTS, Programme
from tally.rules import simulation
from tally.rules.rule_book import RuleBook

CHUNK = 50_000  # rows read at a time
T = TypeVar("T")


def rows_of(file: EventFile) -> pl.DataFrame:
    """Every row of the file, every column text, with its row number."""
    frames = list(file.chunks(CHUNK))
    return pl.concat(frames) if frames else pl.DataFrame()


def subjects(
    frame: pl.DataFrame, file: EventFile
) -> tuple[list[simulation.Subject], list[datetime | None]]:
    """Each row as a subject of the report (its event id, or its row number when it has
    none), and when it occurred (``None`` when that cannot be read)."""
    if frame.width == 0:
        return [], []
    checked = importing.checked(frame, file, importing.Rules(frozenset(), "", {}))
    found = [
        simulation.Subject(event_id or f"row {row}", str(member or ""))
        for row, event_id, member in checked.select(ROW, "event_id", "member_id").iter_rows()
    ]
    return found, checked["occurred_at"].to_list()


def side(
    frame: pl.DataFrame, file: EventFile, programme: Programme, book: RuleBook
) -> list[Reported | str]:
    """Each row as ``programme`` takes it: the event it reports, or the code it is refused with
    (the importer's: ``validation_error``, ``duplicate_in_file``…)."""
    if frame.width == 0:
        return []
    money = programme.currency.point_value.currency
    taken = [money, *programme.currency.exchange_rates]
    rules = importing.Rules(
        frozenset(book.event_types), money, {code: CURRENCY_EXPONENTS[code] for code in taken}
    )
    checked = importing.checked(frame, file, rules)
    good = checked.filter(pl.col(CODE).is_null()).with_columns(pl.col("member_id").cast(pl.Int64))
    reported = dict(zip(good[ROW].to_list(), reported_of(good, file, book), strict=True))
    return [reported.get(row, code) for row, code in checked.select(ROW, CODE).iter_rows()]


def kept(values: Sequence[T], keep: Sequence[bool]) -> list[T]:
    """The values whose ``keep`` is true."""
    return [value for value, chosen in zip(values, keep, strict=True) if chosen]
