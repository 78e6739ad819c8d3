"""Hand-written SQL run straight on the driver's cursor, for the statements on hot paths.

SQLAlchemy's execution machinery costs ~100 µs a statement; an earn runs a dozen. The statements
here are plain SQL with ``:name`` parameters, valid on SQLite and PostgreSQL, run inside the
session's current transaction. Values are converted to what SQLAlchemy itself stores, so rows
written here read back identically through the models.

Two forms serve many rows at once:

* ``= ANY(:name)`` takes a list: PostgreSQL binds it as an array, SQLite reads it from a JSON
  array (``IN (SELECT value FROM json_each(…))``), so one statement text serves any length;
* :class:`Bulk` runs one statement over many rows: PostgreSQL takes each column as an array
  (``unnest``: one statement, one round trip), SQLite runs the one-row form per row (an
  in-process call: there is no round trip to save).
"""

from __future__ import annotations

import enum
import json
import re
import sqlite3
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import psycopg
import sqlalchemy.exc
from psycopg.types.json import Json
from sqlalchemy.orm import Session

_NAMED = re.compile(r"(?<!:):(\w+)")
_ANY = re.compile(r"= ANY\(:(\w+)\)")
_ARRAY = re.compile(r"(?<!:):(\w+)::(\w+)\[\]")
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


# SQLSTATEs of refusals that are about the moment, not the request: a serialization failure,
# a deadlock, a lock not available (``lock_timeout``, ``NOWAIT``), a statement cancelled by
# ``statement_timeout``. The same request, retried, may succeed.
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "55P03", "57014"})
_TRANSIENT_SQLITE = ("database is locked", "database table is locked", "database is busy")


def is_transient(error: BaseException) -> bool:
    """Whether the database refused ``error``'s write only for now (busy, lock timeout,
    deadlock, serialization failure): nothing was written, and a retry may succeed."""
    cause = getattr(error, "orig", None) or error
    if isinstance(cause, psycopg.Error):
        return cause.sqlstate in _TRANSIENT_SQLSTATES
    if isinstance(cause, sqlite3.OperationalError):
        return str(cause).startswith(_TRANSIENT_SQLITE)
    return False


def error_text(error: BaseException) -> str:
    """The driver's message for a database error, however it was raised."""
    return str(getattr(error, "orig", None) or error)


_DRIVER = "tally.raw.driver"


class Raw:
    """One SQL statement, prepared for both drivers.

    ``lock`` adds ``FOR UPDATE`` on PostgreSQL (SQLite's write lock already covers the rows);
    as a table alias, ``FOR UPDATE OF`` that table only; ``skip_locked`` then passes over rows
    another transaction holds instead of waiting for them.
    """

    def __init__(self, sql: str, *, lock: bool | str = False, skip_locked: bool = False) -> None:
        self.sqlite_sql = _ANY.sub(r"IN (SELECT value FROM json_each(:\1))", sql)
        # Lists go in binary: psycopg dumps an array several times faster that way.
        self.pg_sql = _NAMED.sub(r"%(\1)s", _ANY.sub(r"= ANY(%(\1)b)", sql))
        if lock:
            self.pg_sql += " FOR UPDATE" if lock is True else f" FOR UPDATE OF {lock}"
            self.pg_sql += " SKIP LOCKED" if skip_locked else ""

    def execute(self, session: Session, params: Mapping[str, Any]) -> Any:
        """Run with ``params``; returns the driver's cursor (``fetchone``, ``rowcount`` …)."""
        driver = driver_of(session)
        if is_sqlite(driver):
            return driver.execute(self.sqlite_sql, _for_sqlite(params))
        cursor = driver.cursor()
        cursor.execute(self.pg_sql, _for_postgres(params))
        return cursor

    def execute_many(self, session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run once per parameter set."""
        driver = driver_of(session)
        if is_sqlite(driver):
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


class Bulk:
    """One statement over many rows: ``row_sql`` for one row (SQLite runs it per row) and
    ``set_sql`` for all of them (PostgreSQL), whose ``:name::type[]`` parameters are the
    rows' columns as arrays, typically ``FROM unnest(…) AS v(…)``."""

    def __init__(self, row_sql: str, set_sql: str) -> None:
        self.row_sql = row_sql
        types = dict(_ARRAY.findall(set_sql))
        self.names = tuple(types)
        self.pg_sql = _NAMED.sub(r"%(\1)b", set_sql)  # arrays go in binary (see Raw)
        # Each column's values converted by its type, chosen once (the loop over rows is hot).
        self._to_sqlite = [
            (name, convert) for name, kind in types.items() if (convert := _TO_SQLITE.get(kind))
        ]
        self._to_postgres = [(name, _TO_POSTGRES.get(kind)) for name, kind in types.items()]

    @classmethod
    def insert(cls, table: str, columns: Mapping[str, str], tail: str = "") -> Bulk:
        """``INSERT INTO table`` of ``columns`` (name → PostgreSQL type), then ``tail``
        (``ON CONFLICT …``, ``RETURNING …``)."""
        names = ", ".join(columns)
        values = ", ".join(f":{name}" for name in columns)
        arrays = ", ".join(f":{name}::{kind}[]" for name, kind in columns.items())
        tail = f" {tail}" if tail else ""
        # Names come from Tally's code, never from a request.
        return cls(
            f"INSERT INTO {table} ({names}) VALUES ({values}){tail}",  # noqa: S608
            f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays}){tail}",  # noqa: S608
        )

    def execute(self, session: Session, rows: Sequence[Mapping[str, Any]]) -> int:
        """Run over ``rows``; returns how many rows the statement changed in all."""
        if not rows:
            return 0
        driver = driver_of(session)
        if is_sqlite(driver):
            cursor = driver.executemany(self.row_sql, [self._sqlite_row(row) for row in rows])
            return int(cursor.rowcount)
        with driver.cursor() as cursor:
            cursor.execute(self.pg_sql, self._columns(rows))
            return int(cursor.rowcount)

    def returning(self, session: Session, rows: Sequence[Mapping[str, Any]]) -> list[Row]:
        """Run over ``rows``; the rows the statement returns (SQLite: in the order of ``rows``)."""
        if not rows:
            return []
        driver = driver_of(session)
        if is_sqlite(driver):
            found: list[Row] = []
            for row in rows:
                found.extend(
                    tuple(item) for item in driver.execute(self.row_sql, self._sqlite_row(row))
                )
            return found
        with driver.cursor() as cursor:
            cursor.execute(self.pg_sql, self._columns(rows))
            return [tuple(item) for item in cursor.fetchall()]

    def _sqlite_row(self, row: Mapping[str, Any]) -> dict[str, Any]:
        values = dict(row)
        for name, convert in self._to_sqlite:
            value = values[name]
            if value is not None:
                values[name] = convert(value)
        return values

    def _columns(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
        return {
            name: [row[name] for row in rows]
            if convert is None
            else [None if row[name] is None else convert(row[name]) for row in rows]
            for name, convert in self._to_postgres
        }


@contextmanager
def savepoint(session: Session) -> Iterator[None]:
    """A savepoint around the block, rolled back if it raises, that statements run here honour
    too: SQLAlchemy emits ``SAVEPOINT`` only when it next uses the connection itself, which
    statements run on the driver never make it do."""
    with session.begin_nested():
        session.connection()
        yield


def driver_of(session: Session) -> Any:
    """The DBAPI connection under the session's transaction (which this begins if needed).

    Remembered for the session's life: a unit of work keeps one connection until it ends.
    """
    driver = session.info.get(_DRIVER)
    if driver is None:
        driver = session.connection().connection.driver_connection
        assert driver is not None
        session.info[_DRIVER] = driver
    return driver


def is_sqlite(driver: Any) -> bool:
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
        return _sqlite_timestamp(value)
    if isinstance(value, dict):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return json.dumps([_sqlite_value(item) for item in value])
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


@lru_cache(maxsize=256)
def _sqlite_timestamp(value: datetime) -> str:
    """The text SQLAlchemy stores, "%Y-%m-%d %H:%M:%S.%f" in UTC (isoformat is the faster way).

    Cached: a batch writes the same few instants (its ``now``, the expiry) into many rows."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _enum_value(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


# Conversions of :class:`Bulk` values by column type; a type not listed passes as it is (an
# enum is a ``str`` to SQLite, whereas psycopg would dump its name).
_TO_SQLITE: dict[str, Callable[[Any], Any]] = {
    "uuid": lambda value: value.hex,
    "timestamptz": _sqlite_timestamp,
    "json": json.dumps,
}
_TO_POSTGRES: dict[str, Callable[[Any], Any]] = {"text": _enum_value, "json": json.dumps}


def as_datetime(value: Any) -> datetime:
    """A timestamp read by :class:`Raw`, as aware UTC."""
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    assert isinstance(value, datetime)
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def as_uuid(value: Any) -> uuid.UUID:
    """A UUID read by :class:`Raw`."""
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
