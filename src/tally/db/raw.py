"""Hand-written SQL run straight on the driver's cursor, for the few statements on hot paths.

SQLAlchemy's execution machinery costs ~100 µs a statement; an earn runs a dozen. The statements
here are plain SQL with ``:name`` parameters, valid on SQLite and PostgreSQL, run inside the
session's current transaction. Values are converted to what SQLAlchemy itself stores, so rows
written here read back identically through the models.
"""

from __future__ import annotations

import enum
import json
import re
import sqlite3
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
import sqlalchemy.exc
from psycopg.types.json import Json
from sqlalchemy.orm import Session

_NAMED = re.compile(r"(?<!:):(\w+)")
_PLAIN = frozenset({int, str, bytes})  # passed to sqlite3 as they are

Row = tuple[Any, ...]

# A unique or check constraint refused a write: raised by SQLAlchemy, or by a driver under Raw.
INTEGRITY_ERRORS = (sqlalchemy.exc.IntegrityError, sqlite3.IntegrityError, psycopg.IntegrityError)
# A value the database cannot hold (a number beyond 64 bits, a NUL in text on PostgreSQL …).
DATA_ERRORS = (
    sqlalchemy.exc.DataError,
    sqlite3.DataError,
    psycopg.DataError,
    OverflowError,
)


def error_text(error: BaseException) -> str:
    """The driver's message for a database error, however it was raised."""
    return str(getattr(error, "orig", None) or error)


_DRIVER = "tally.raw.driver"


class Raw:
    """One SQL statement, prepared for both drivers."""

    def __init__(self, sql: str) -> None:
        self.sqlite_sql = sql
        self.pg_sql = _NAMED.sub(r"%(\1)s", sql)

    def execute(self, session: Session, params: Mapping[str, Any]) -> Any:
        """Run with ``params``; returns the driver's cursor (``fetchone``, ``rowcount`` …)."""
        driver = _driver(session)
        if _is_sqlite(driver):
            return driver.execute(self.sqlite_sql, _for_sqlite(params))
        cursor = driver.cursor()
        cursor.execute(self.pg_sql, _for_postgres(params))
        return cursor

    def execute_many(self, session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run once per parameter set."""
        driver = _driver(session)
        if _is_sqlite(driver):
            driver.executemany(self.sqlite_sql, [_for_sqlite(row) for row in rows])
            return
        with driver.cursor() as cursor:
            cursor.executemany(self.pg_sql, [_for_postgres(row) for row in rows])

    def one(self, session: Session, params: Mapping[str, Any]) -> Row | None:
        """The first row, or ``None``."""
        row = self.execute(session, params).fetchone()
        return None if row is None else tuple(row)

    def all(self, session: Session, params: Mapping[str, Any]) -> list[Row]:
        """Every row."""
        return [tuple(row) for row in self.execute(session, params).fetchall()]

    def rowcount(self, session: Session, params: Mapping[str, Any]) -> int:
        """How many rows the statement changed."""
        return int(self.execute(session, params).rowcount)


def _driver(session: Session) -> Any:
    """The DBAPI connection under the session's transaction (which this begins if needed).

    Remembered for the session's life: a unit of work keeps one connection until it ends.
    """
    driver = session.info.get(_DRIVER)
    if driver is None:
        driver = session.connection().connection.driver_connection
        assert driver is not None
        session.info[_DRIVER] = driver
    return driver


def _is_sqlite(driver: Any) -> bool:
    return type(driver).__module__ == "sqlite3"


def _for_sqlite(params: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _sqlite_value(value) for name, value in params.items()}


def _sqlite_value(value: Any) -> Any:
    if value is None or type(value) in _PLAIN:
        return value
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, uuid.UUID):
        return value.hex
    if isinstance(value, datetime):
        # The text SQLAlchemy stores: "%Y-%m-%d %H:%M:%S.%f" (isoformat is the faster way).
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    if isinstance(value, dict):
        return json.dumps(value)
    return value


def _for_postgres(params: Mapping[str, Any]) -> dict[str, Any]:
    return {
        name: Json(value)
        if isinstance(value, dict)
        else value.value
        if isinstance(value, enum.Enum)
        else value
        for name, value in params.items()
    }


def as_datetime(value: Any) -> datetime:
    """A timestamp read by :class:`Raw`, as aware UTC."""
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    assert isinstance(value, datetime)
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def as_uuid(value: Any) -> uuid.UUID:
    """A UUID read by :class:`Raw`."""
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
