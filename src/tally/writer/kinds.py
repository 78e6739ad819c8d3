"""Kinds of write: what the writer needs of each, and the units of work every other write is.

A kind is a small object with a name (the grouping key: a batch posts the writes of each kind
together, with one call), a set-based ``post_many``, which posts many writes in one go and
answers each on its own, and ``answer``, which turns a posted write's outcome into the answer
its Idempotency-Key stores. Adding a kind of write means adding such an object and registering
the types of its writes (:class:`Kinds`); nothing else changes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session

from tally.access.domain import Caller
from tally.db.raw import savepoint
from tally.errors import TallyError
from tally.ledger.domain import Policy
from tally.programme.domain import Programme


class Alone:
    """The outcome of a write its batch leaves to be done alone, in a transaction of its own."""


ALONE = Alone()


@dataclass(frozen=True, slots=True)
class Context:
    """What a group of writes is posted with."""

    now: datetime
    policy: Policy
    programme: Programme
    callers: Sequence[Caller | None]  # by position; ``None``: a trusted caller (CLI, job)
    wait: bool  # wait for rows held elsewhere; else pass over them (``tally.ledger.orders.BUSY``)
    alone: bool = False  # the write's own transaction: a failure is raised, not left for later


class Kind(Protocol):
    """A kind of write (see the module's docstring)."""

    @property
    def name(self) -> str: ...

    def post_many(self, session: Session, writes: Sequence[Any], context: Context) -> list[Any]:
        """One outcome per write, by position: what it posted, the ``TallyError`` refusing it
        (it wrote nothing), :data:`~tally.ledger.orders.BUSY` (passed over: posted in a later
        batch) or :data:`ALONE` (to be done in a transaction of its own)."""
        ...

    def answer(
        self, session: Session, write: Any, outcome: Any, context: Context
    ) -> tuple[int, str]:
        """The status and JSON body a posted write answers (and its Idempotency-Key stores)."""
        ...


class Model(Protocol):
    """An answer model (a pydantic model, in the API)."""

    def model_dump_json(self) -> str: ...


Work = Callable[[Session], tuple[int, Model]]


class UnitsOfWork:
    """The fallback kind: a function of the session that does its write and answers a status
    and a model. In a batch each runs in a savepoint of its own when the batch waits for locks
    (SQLite: one writer at a time anyway); a batch that must not wait (PostgreSQL) leaves them
    to be done alone. One that fails in its savepoint is done again alone, so its answer is
    the one it has without batching."""

    name = "work"

    def post_many(self, session: Session, writes: Sequence[Work], context: Context) -> list[Any]:
        if context.alone:
            return [work(session) for work in writes]
        if not context.wait:
            return [ALONE] * len(writes)
        return [_in_savepoint(session, work) for work in writes]

    def answer(
        self, session: Session, write: Work, outcome: tuple[int, Model], context: Context
    ) -> tuple[int, str]:
        status, model = outcome
        return status, model.model_dump_json()


def _in_savepoint(session: Session, work: Work) -> Any:
    try:
        with savepoint(session):
            return work(session)
    except Exception:
        return ALONE
    finally:
        session.expire_all()


WORK = UnitsOfWork()


@dataclass(frozen=True, slots=True)
class Refusable:
    """A unit of work whose refusal is an answer like any other: in a batch, a ``TallyError``
    it raises (its savepoint rolled back, so it wrote nothing) answers it there, in its place
    among the batch's writes, instead of sending it to be done again alone (one that says
    "retry" is still done alone). For use cases many
    callers race for, where most are refused (a flash sale's orders, ADR 29)."""

    work: Work


class RefusableUnits:
    """The kind of :class:`Refusable` units of work (otherwise as :class:`UnitsOfWork`)."""

    name = "refusable_work"

    def post_many(
        self, session: Session, writes: Sequence[Refusable], context: Context
    ) -> list[Any]:
        if context.alone:
            return [write.work(session) for write in writes]
        if not context.wait:
            return [ALONE] * len(writes)
        return [_refusal_in_savepoint(session, write.work) for write in writes]

    def answer(
        self, session: Session, write: Refusable, outcome: tuple[int, Model], context: Context
    ) -> tuple[int, str]:
        status, model = outcome
        return status, model.model_dump_json()


def _refusal_in_savepoint(session: Session, work: Work) -> Any:
    try:
        with savepoint(session):
            return work(session)
    except TallyError as error:
        return ALONE if error.retryable else error  # "retry": done alone, as a plain unit is
    except Exception:
        return ALONE
    finally:
        session.expire_all()


REFUSABLE = RefusableUnits()


class Kinds:
    """Which kind each type of write is; a function of the session is a unit of work."""

    def __init__(self) -> None:
        self._by_type: dict[type, Kind] = {}

    def register(self, kind: Kind, *types: type) -> Kinds:
        """Post writes of ``types`` as ``kind`` (its name is its own among the kinds here)."""
        for other in self._by_type.values():
            if other.name == kind.name and other is not kind:
                raise ValueError(f"Another kind of write is named {kind.name!r}.")
        for kind_of in types:
            self._by_type[kind_of] = kind
        return self

    def of(self, write: object) -> Kind:
        kind = self._by_type.get(type(write))
        if kind is not None:
            return kind
        if callable(write):
            return WORK
        raise TypeError(f"No kind of write is registered for {type(write).__name__}.")
