"""A file of events to import (CSV or Parquet), read in chunks of whole columns and checked
set-based: every cell read as text (amounts never pass through a binary float), the columns
checked once, each chunk's rows checked by column expressions, the first problem of a row
named with its code and reason.

Columns: ``type, event_id, member_id, occurred_at`` (required), ``amount, currency, channel,
refers_to`` (optional) and ``attr.<name>`` for the event's attributes; line items are not taken
from files. An empty cell is a missing value.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from tally.errors import NotFound, ValidationFailed

REQUIRED = ("type", "event_id", "member_id", "occurred_at")
OPTIONAL = ("amount", "currency", "channel", "refers_to")
ATTRIBUTE = "attr."
ROW = "row"  # the row's number in the file, from 1 (the header is not counted)
CODE, REASON = "code", "reason"
DUPLICATE_IN_FILE = "duplicate_in_file"
INVALID = ValidationFailed.code
UNKNOWN_MEMBER = NotFound.code

_AMOUNT = r"^(0|[1-9][0-9]{0,14})(\.[0-9]{1,4})?$"
_MOMENT = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)$"
_MEMBER_ID = r"^[1-9][0-9]{0,17}$"
_TYPE = r"^[a-z][a-z0-9_]{0,63}$"
_TEXT_TYPES = (pl.String, pl.Categorical, pl.Enum)


class BadFile(ValidationFailed):
    """The file cannot be imported at all: unreadable, of another format, or its columns wrong."""


@dataclass(frozen=True, slots=True)
class Rules:
    """What a row is checked against: the programme's event types, its money and the other
    currencies it has a rate for (``decimals``: each currency taken and its minor unit)."""

    event_types: frozenset[str]
    currency: str
    decimals: Mapping[str, int]

    def refused_currency(self) -> str:
        """Why an amount in another currency is refused (as the events API says it)."""
        others = sorted(code for code in self.decimals if code != self.currency)
        rates = f" or one it has a rate for ({', '.join(others)})" if others else ""
        return f"Amounts must be in the programme's currency, {self.currency}{rates}."


@dataclass(frozen=True, slots=True)
class EventFile:
    """An events file whose columns were checked: ``rows`` data rows, the ``columns`` as read,
    and the rows that repeat an earlier row's ``event_id`` (found in one pass over the file)."""

    path: Path
    columns: tuple[str, ...]
    rows: int
    repeated: tuple[int, ...]  # sorted

    def repeated_in(self, frame: pl.DataFrame) -> list[int]:
        """The rows of ``frame`` (a chunk) that repeat an earlier row's ``event_id``."""
        if not self.repeated or frame.is_empty():
            return []
        first, last = int(frame[ROW].first()), int(frame[ROW].last())  # type: ignore[arg-type]
        return list(
            self.repeated[bisect_left(self.repeated, first) : bisect_right(self.repeated, last)]
        )

    @property
    def attributes(self) -> tuple[str, ...]:
        """The attributes the file's ``attr.<name>`` columns carry."""
        return tuple(c.removeprefix(ATTRIBUTE) for c in self.columns if c.startswith(ATTRIBUTE))

    def chunks(self, size: int) -> Iterator[pl.DataFrame]:
        """The rows ``size`` at a time, every column text, with their row number (``row``)."""
        yield from _indexed(_scan(self.path)).collect_batches(chunk_size=size)


def open_file(path: Path) -> EventFile:
    """Check an events file's format and columns and find the rows repeating an event id;
    :class:`BadFile` when it cannot be imported."""
    if not path.is_file():
        raise BadFile(f"No such file: {path}.", field="file")
    scan = _scan(path)
    try:
        columns = tuple(scan.collect_schema().names())
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise BadFile(
            f"{path.name} is not a readable CSV or Parquet file: {exc}", field="file"
        ) from exc
    _check_columns(columns)
    scan = _indexed(scan)
    try:
        counted = (
            scan.select(ROW, pl.col("event_id").str.strip_chars())
            .filter(pl.col("event_id").is_not_null() & (pl.col("event_id") != ""))
            .filter(~pl.col("event_id").is_first_distinct())
            .select(ROW)
            .collect(engine="streaming")
        )
        rows = int(scan.select(pl.len()).collect(engine="streaming").item())
    except pl.exceptions.PolarsError as exc:
        raise BadFile(f"{path.name} cannot be read: {exc}", field="file") from exc
    return EventFile(path, columns, rows, tuple(counted[ROW].sort().to_list()))


def _scan(path: Path) -> pl.LazyFrame:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        scan = pl.scan_csv(path, infer_schema=False)
    elif suffix in {".parquet", ".pq"}:
        scan = _as_text(pl.scan_parquet(path), path.name)
    else:
        raise BadFile(f"{path.name}: the file must be .csv or .parquet.", field="file")
    return scan


def _indexed(scan: pl.LazyFrame) -> pl.LazyFrame:
    return scan.with_row_index(ROW, offset=1).with_columns(pl.col(ROW).cast(pl.Int64))


def _as_text(scan: pl.LazyFrame, name: str) -> pl.LazyFrame:
    """A Parquet file's columns as text: whole numbers, exact decimals, booleans and aware
    timestamps are written out exactly; a binary float or a naive timestamp is refused."""
    try:
        schema = scan.collect_schema()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise BadFile(f"{name} is not a readable Parquet file: {exc}", field="file") from exc
    texts = []
    for column_name, dtype in schema.items():
        column = pl.col(column_name)
        if isinstance(dtype, _TEXT_TYPES):
            texts.append(column.cast(pl.String))
        elif dtype.is_integer() or isinstance(dtype, pl.Decimal | pl.Boolean):
            texts.append(column.cast(pl.String).str.to_lowercase())
        elif isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
            utc = column.dt.convert_time_zone("UTC")
            texts.append(utc.dt.strftime("%Y-%m-%dT%H:%M:%S%.f+00:00").alias(column_name))
        elif dtype.is_float():
            raise BadFile(
                f"Column {column_name} holds binary floats: write exact decimals as text or as "
                "a decimal column.",
                field=column_name,
            )
        else:
            raise BadFile(
                f"Column {column_name} of type {dtype} cannot be imported.", field=column_name
            )
    return scan.select(texts)


def _check_columns(columns: tuple[str, ...]) -> None:
    missing = [name for name in REQUIRED if name not in columns]
    if missing:
        raise BadFile(f"Missing column(s): {', '.join(missing)}.", field="columns")
    unknown = [
        name
        for name in columns
        if name not in REQUIRED
        and name not in OPTIONAL
        and not (name.startswith(ATTRIBUTE) and len(name) > len(ATTRIBUTE))
    ]
    if unknown:
        known = ", ".join((*REQUIRED, *OPTIONAL, "attr.<name>"))
        raise BadFile(
            f"Unknown column(s): {', '.join(unknown)}; the columns are {known}.",
            field="columns",
        )
    if ("amount" in columns) != ("currency" in columns):
        raise BadFile("Columns amount and currency go together.", field="columns")


def checked(frame: pl.DataFrame, file: EventFile, rules: Rules) -> pl.DataFrame:
    """The chunk with each row's first problem (``code``, ``reason``; null when none), its
    ``event_id`` stripped of surrounding blanks and its ``occurred_at`` as a UTC moment."""
    frame = _with_optional(frame).with_columns(pl.col("event_id").str.strip_chars())
    amount, currency = pl.col("amount"), pl.col("currency")
    exponent = currency.replace_strict(dict(rules.decimals), default=None, return_dtype=pl.Int64)
    moment = (
        pl.when(pl.col("occurred_at").str.contains(_MOMENT))
        .then(pl.col("occurred_at").str.replace(" ", "T"))
        .str.to_datetime(time_zone="UTC", strict=False, time_unit="us")
    )
    decimals = amount.str.split(".").list.get(1, null_on_oob=True).str.len_chars().fill_null(0)
    problems: list[tuple[pl.Expr, str, pl.Expr | str]] = [
        (
            pl.col("event_id").is_null() | (pl.col("event_id") == ""),
            INVALID,
            "event_id is missing.",
        ),
        (
            pl.col("event_id").str.len_chars() > 128,
            INVALID,
            "event_id is longer than 128 characters.",
        ),
        (pl.col(ROW).is_in(file.repeated_in(frame)), DUPLICATE_IN_FILE, _repeat_reason()),
        (pl.col("type").is_null(), INVALID, "type is missing."),
        (
            ~pl.col("type").str.contains(_TYPE) | ~pl.col("type").is_in(sorted(rules.event_types)),
            INVALID,
            pl.format("Unknown event type '{}'.", pl.col("type")),
        ),
        (
            pl.col("member_id").is_null() | ~pl.col("member_id").str.contains(_MEMBER_ID),
            INVALID,
            "member_id must be a positive whole number.",
        ),
        (
            moment.is_null(),
            INVALID,
            "occurred_at must be an ISO-8601 date and time with its offset, "
            "e.g. 2026-05-06T10:00:00+08:00.",
        ),
        (
            amount.is_null() != currency.is_null(),
            INVALID,
            "amount and currency go together.",
        ),
        (
            amount.is_not_null() & ~amount.str.contains(_AMOUNT),
            INVALID,
            'amount must be an exact decimal, e.g. "152.00".',
        ),
        (
            currency.is_not_null() & ~currency.is_in(sorted(rules.decimals)),
            INVALID,
            rules.refused_currency(),
        ),
        (
            amount.is_not_null() & (decimals > exponent),
            INVALID,
            pl.format("{} amounts have at most {} decimals.", currency, exponent),
        ),
        (
            pl.col("channel").str.len_chars() > 40,
            INVALID,
            "channel is longer than 40 characters.",
        ),
        (
            pl.col("refers_to").str.strip_chars().str.len_chars() > 128,
            INVALID,
            "refers_to is longer than 128 characters.",
        ),
    ]
    code: pl.Expr = pl.lit(None, pl.String)
    reason: pl.Expr = pl.lit(None, pl.String)
    for problem, problem_code, why in reversed(problems):  # the first problem wins
        code = pl.when(problem.fill_null(False)).then(pl.lit(problem_code)).otherwise(code)
        text = pl.lit(why) if isinstance(why, str) else why
        reason = pl.when(problem.fill_null(False)).then(text).otherwise(reason)
    return frame.with_columns(
        moment.alias("occurred_at"),
        pl.col("refers_to").str.strip_chars(),
        code.alias(CODE),
        reason.alias(REASON),
    )


def _repeat_reason() -> pl.Expr:
    return pl.format("event_id {} appears on an earlier row of the file.", pl.col("event_id"))


def _with_optional(frame: pl.DataFrame) -> pl.DataFrame:
    absent = [pl.lit(None, pl.String).alias(name) for name in OPTIONAL if name not in frame.columns]
    return frame.with_columns(absent) if absent else frame


def rejected(original: pl.DataFrame, problems: Mapping[int, tuple[str, str]]) -> pl.DataFrame:
    """The rows of ``original`` (as read) that ``problems`` names (row → code, reason), with
    their ``reason`` and ``code``."""
    if not problems:
        return original.clear().with_columns(
            pl.lit(None, pl.String).alias(REASON), pl.lit(None, pl.String).alias(CODE)
        )
    found = pl.DataFrame(
        {
            ROW: list(problems),
            REASON: [reason for _code, reason in problems.values()],
            CODE: [code for code, _reason in problems.values()],
        },
        schema={ROW: pl.Int64, REASON: pl.String, CODE: pl.String},
    )
    return original.join(found, on=ROW, how="inner").sort(ROW)
