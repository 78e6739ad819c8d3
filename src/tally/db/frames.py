"""Rows in and out of polars DataFrames, set-based, for jobs and importers that work on whole
columns: a query read into a frame, a frame written into a table (``COPY`` on PostgreSQL, one
``executemany`` on SQLite). Booleans travel as 0 and 1, the form both databases share."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl
from sqlalchemy.orm import Session

from tally.db.raw import Raw, driver_of, is_sqlite


def read_frame(
    session: Session, statement: Raw, params: Mapping[str, Any], schema: Mapping[str, pl.DataType]
) -> pl.DataFrame:
    """The rows ``statement`` returns, as a frame of ``schema`` (a column declared Boolean is
    read as 0 or 1)."""
    rows = statement.execute(session, params).fetchall()
    read_as = {
        name: pl.Int64() if dtype == pl.Boolean() else dtype for name, dtype in schema.items()
    }
    frame = pl.DataFrame(rows, schema=read_as, orient="row")
    booleans = [name for name, dtype in schema.items() if dtype == pl.Boolean()]
    return frame.with_columns(pl.col(booleans).cast(pl.Boolean)) if booleans else frame


def write_frame(session: Session, table: str, frame: pl.DataFrame) -> None:
    """Insert every row of ``frame`` into ``table`` (its columns named as the frame's), in the
    session's transaction."""
    if frame.is_empty():
        return
    frame = frame.with_columns(pl.col(pl.Boolean).cast(pl.Int64))
    columns = ", ".join(frame.columns)
    driver = driver_of(session)
    if is_sqlite(driver):
        marks = ", ".join("?" for _ in frame.columns)
        insert = f"INSERT INTO {table} ({columns}) VALUES ({marks})"  # noqa: S608 - names from code
        driver.executemany(insert, frame.iter_rows())
        return
    with (
        driver.cursor() as cursor,
        cursor.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT csv)") as copy,
    ):
        copy.write(frame.write_csv(include_header=False))
