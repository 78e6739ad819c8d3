"""Files of events (CSV or Parquet) read with polars: one event a row, in the columns
``type,event_id,member_id,occurred_at`` and optionally ``amount,currency,channel,refers_to``
(a refund's) and ``attr.<name>`` (an attribute of the event). Amounts are exact decimals: text
in a CSV, text or decimal in a Parquet file, never a float. A file with a missing or unknown
column, or a row that cannot be read, is refused as a whole (``validation_failed``, naming the
row and column)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl

from tally.errors import ValidationFailed
from tally.kit.clock import as_utc
from tally.rules.conditions import FieldType
from tally.rules.rule_book import RuleBook

REQUIRED = ("type", "event_id", "member_id", "occurred_at")
OPTIONAL = ("amount", "currency", "channel", "refers_to")
ATTRIBUTE = "attr."
LIST_SEPARATOR = "|"  # a list attribute in a CSV cell: "a|b|c"
_AMOUNT = re.compile(r"(0|[1-9][0-9]{0,14})(\.[0-9]{1,4})?")
_INT = re.compile(r"-?[0-9]{1,18}")
_DECIMAL = re.compile(r"-?(0|[1-9][0-9]{0,14})(\.[0-9]{1,4})?")
_TYPE = re.compile(r"[a-z][a-z0-9_]{0,63}")
_CURRENCY = re.compile(r"[A-Z]{3}")


@dataclass(frozen=True, slots=True)
class FileEvent:
    """A row of an events file; attributes as the file holds them (text in a CSV)."""

    row: int  # 1: the first row after the header
    type: str
    event_id: str
    member_id: int
    occurred_at: datetime
    amount: Decimal | None = None
    currency: str | None = None
    channel: str | None = None
    refers_to: str | None = None  # a refund: the event_id of the event it refunds
    attributes: dict[str, Any] = field(default_factory=dict)


def read(path: Path) -> list[FileEvent]:
    """The events of a ``.csv`` or ``.parquet`` file, in file order."""
    frame = _frame(path)
    columns = frame.columns
    missing = [name for name in REQUIRED if name not in columns]
    unknown = [
        name
        for name in columns
        if name not in REQUIRED and name not in OPTIONAL and not _is_attribute(name)
    ]
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"it lacks the column(s) {', '.join(missing)}")
        if unknown:
            parts.append(f"it has unknown column(s) {', '.join(unknown)}")
        raise ValidationFailed(
            f"{path.name}: {' and '.join(parts)}; the columns are "
            f"{','.join(REQUIRED + OPTIONAL)} and attr.<name>.",
            field="events",
        )
    floats = [name for name, kind in frame.schema.items() if kind.is_float()]
    if floats:
        raise ValidationFailed(
            f"{path.name}: column(s) {', '.join(floats)} hold binary floats; write amounts and "
            "decimal attributes as exact decimals (text).",
            field="events",
        )
    return [_event(path, number, row) for number, row in enumerate(frame.iter_rows(named=True), 1)]


def typed(book: RuleBook, event_type: str, sent: dict[str, Any]) -> dict[str, Any]:
    """A file event's attributes as the book declares them for its type: text read as the
    declared int, decimal, bool or list (``a|b``); what cannot be read is left as it is, for
    :func:`tally.rules.events.event_problems` to refuse."""
    declared = book.event_types.get(event_type, {})
    return {name: _typed(declared.get(name), value) for name, value in sent.items()}


def _typed(kind: FieldType | None, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    match kind:
        case FieldType.INT if _INT.fullmatch(value):
            return int(value)
        case FieldType.DECIMAL if _DECIMAL.fullmatch(value):
            return Decimal(value)
        case FieldType.BOOL if value in {"true", "false"}:
            return value == "true"
        case FieldType.STRING_LIST:
            return value.split(LIST_SEPARATOR)
    return value


def _is_attribute(name: str) -> bool:
    return name.startswith(ATTRIBUTE) and len(name) > len(ATTRIBUTE)


def _frame(path: Path) -> pl.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pl.read_csv(path, infer_schema=False)
        if suffix == ".parquet":
            return pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValidationFailed(f"{path.name} cannot be read: {first}", field="events") from None
    raise ValidationFailed(
        f"{path.name}: an events file is a .csv or a .parquet file.", field="events"
    )


def _event(path: Path, number: int, row: dict[str, Any]) -> FileEvent:
    def bad(column: str, why: str) -> ValidationFailed:
        return ValidationFailed(f"{path.name} row {number}: {column} {why}.", field=column)

    values = {name: (None if value == "" else value) for name, value in row.items()}
    for name in REQUIRED:
        if values[name] is None:
            raise bad(name, "is empty")
    event_type = str(values["type"])
    if not _TYPE.fullmatch(event_type):
        raise bad("type", f"{event_type!r} is not an event type")
    member = str(values["member_id"])
    if not member.isdigit() or int(member) <= 0 or len(member) > 18:
        raise bad("member_id", f"{member!r} is not a member id")
    amount, currency = values.get("amount"), values.get("currency")
    if amount is not None:
        text = str(amount)
        if not _AMOUNT.fullmatch(text):
            raise bad("amount", f"{text!r} is not an exact decimal (e.g. 152.00)")
        if currency is None or not _CURRENCY.fullmatch(str(currency)):
            raise bad("currency", "must be the ISO 4217 code of the amount's currency")
    channel = values.get("channel")
    event_id = str(values["event_id"]).strip()
    if not event_id or len(event_id) > 128:
        raise bad("event_id", "must be 1 to 128 characters")
    return FileEvent(
        row=number,
        type=event_type,
        event_id=event_id,
        member_id=int(member),
        occurred_at=_moment(values["occurred_at"], bad),
        amount=None if amount is None else Decimal(str(amount)),
        currency=None if amount is None else str(currency),
        channel=None if channel is None else str(channel),
        refers_to=None if values.get("refers_to") is None else str(values["refers_to"]),
        attributes={
            name[len(ATTRIBUTE) :]: value
            for name, value in values.items()
            if _is_attribute(name) and value is not None
        },
    )


def _moment(value: Any, bad: Callable[[str, str], ValidationFailed]) -> datetime:
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            raise bad("occurred_at", f"{value!r} is not an ISO-8601 datetime") from None
    if moment.tzinfo is None:
        raise bad("occurred_at", f"{value!s} has no UTC offset (write Z or +08:00)")
    return as_utc(moment)
