"""Units of work: one database transaction per use case, committed at the boundary."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from tally.db.engine import WRITE_OPTION


class Database:
    """The engine plus session factories for reading and for writing."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._reader = sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)
        self._writer = sessionmaker(
            bind=engine.execution_options(**{WRITE_OPTION: True}),
            expire_on_commit=False,
            autoflush=False,
        )

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A writing transaction: committed when the block succeeds, rolled back otherwise."""
        with self._writer() as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only transaction, ended (rolled back) when the block exits.

        Objects loaded in it stay readable afterwards, detached.
        """
        with self._reader() as session:
            yield session

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
