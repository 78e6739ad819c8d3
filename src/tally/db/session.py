"""Units of work: one database transaction per use case, committed at the boundary."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from tally.db.engine import WRITE_OPTION
from tally.db.gate import WriteGate


class Database:
    """The engine plus session factories for reading and for writing."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._gate: WriteGate | None = None
        self.file_path: str | None = None  # of an SQLite database on disk
        if engine.dialect.name == "sqlite":
            path = engine.url.database
            on_disk = bool(path) and path != ":memory:" and not str(path).startswith("file:")
            self.file_path = path if on_disk else None
            self._gate = WriteGate(self.file_path)
        self._reader = sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)
        self._writer = sessionmaker(
            bind=engine.execution_options(**{WRITE_OPTION: True}),
            expire_on_commit=False,
            autoflush=False,
        )

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A writing transaction: committed when the block succeeds, rolled back otherwise."""
        gate: AbstractContextManager[None] = self._gate.hold() if self._gate else nullcontext()
        with gate, self._writer() as session, session.begin():
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
