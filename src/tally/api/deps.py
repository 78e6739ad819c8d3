"""Dependencies of the partner API: the calling partner, idempotent writes, reads.

Writes are grouped: the writes that reach a worker together are authenticated, checked
against their Idempotency-Keys and done in one transaction on the event loop (``WriteBatcher``,
ADR 6). A read makes one hop to the app's database executor (a small, fixed pool of threads on
PostgreSQL; none for SQLite), where it authenticates and reads in one transaction.
"""

import asyncio
import weakref
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import Depends, Header, Request
from pydantic import BaseModel
from sqlalchemy.orm import Session
from starlette.responses import Response

from tally.access.domain import Caller, caller_of, require_scope
from tally.api import views
from tally.api.credentials import authenticated, bearer_token
from tally.api.problems import problem_body
from tally.config import Settings
from tally.db.raw import INTEGRITY_ERRORS, error_text, is_transient, savepoint
from tally.db.session import Database
from tally.errors import (
    AlreadyReversed,
    ConcurrentChange,
    DuplicateReference,
    Forbidden,
    IdempotencyConflict,
    IdempotencyKeyRequired,
    TallyError,
    Unauthorized,
    ValidationFailed,
)
from tally.flows import spending
from tally.flows.earning import Earning
from tally.flows.spending import Capture, OnHold, Void
from tally.idempotency import service as idempotency
from tally.kit import text
from tally.kit.clock import utcnow
from tally.ledger.domain import Origin, Policy
from tally.ledger.orders import Busy, Order, posted
from tally.ledger.posting import Posted, policy_for
from tally.partners.service import Scope, authenticate
from tally.programme.domain import Programme
from tally.programme.runtime import ProgrammeCache

T = TypeVar("T")
Work = Callable[[Session], tuple[int, BaseModel]]


def database(request: Request) -> Database:
    """The application's database."""
    db: Database = request.app.state.db
    return db


def settings(request: Request) -> Settings:
    """The application's settings."""
    value: Settings = request.app.state.settings
    return value


def programme(request: Request, session: Session) -> Programme:
    """The programme in force (cached; a newly applied version is seen within seconds)."""
    cache: ProgrammeCache = request.app.state.programme
    return cache.get(session)


def clock_now(request: Request) -> datetime:
    """The current time: ``app.state.clock`` when a test injected one."""
    clock = getattr(request.app.state, "clock", None)
    return clock() if clock is not None else utcnow()


def policy(request: Request) -> Policy:
    """The ledger policy of the programme in force."""
    cache: ProgrammeCache = request.app.state.programme
    return policy_for(cache.current, settings(request))


async def in_executor(request: Request, function: Callable[[], T]) -> T:
    """Run blocking database work on the app's database executor."""
    executor = request.app.state.executor
    if executor is None:
        return function()
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(executor, function)


def _authorise(session: Session, request: Request, token: str, scope: Scope | None) -> Caller:
    """The caller behind ``token`` under the programme in force, holding ``scope`` (``None``:
    the route checks the scope it needs itself, e.g. a reversal's)."""
    holder = authenticate(session, token, request.app.state.secret)
    authenticated(request)
    # The programme in force (a newly applied one is seen within a few seconds) says whether
    # the partner is one of the operator's own channels.
    caller = caller_of(holder, programme(request, session))
    if scope is not None:
        require_scope(caller, scope)
    return caller


@dataclass
class Reader:
    """A read-only request by a partner holding ``scope``."""

    request: Request
    token: str
    scope: Scope

    async def run(self, work: Callable[[Session, Caller], T]) -> T:
        """Authenticate and do ``work`` in one read transaction."""

        def blocking() -> T:
            with database(self.request).read() as session:
                holder = _authorise(session, self.request, self.token, self.scope)
                return work(session, holder)

        return await in_executor(self.request, blocking)


def reader(scope: Scope) -> Callable[..., Any]:
    """A dependency giving an endpoint a :class:`Reader` for ``scope``."""

    async def dependency(
        request: Request,
        authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
    ) -> Reader:
        return Reader(request=request, token=bearer_token(authorization), scope=scope)

    return dependency


Batched = Earning | Order | Capture | Void  # a write posted set-based with the others of its batch
Job = Work | Batched


@dataclass
class Mutation:
    """Everything an idempotent write needs from the request."""

    request: Request
    token: str
    scope: Scope | None
    key: str | None
    body: bytes
    holder: Caller = field(init=False)
    passes: int = field(default=0, init=False)  # batches that passed over it (its wallet held)

    @property
    def origin(self) -> Origin:
        return Origin(partner_id=self.holder.partner_id)

    @property
    def fingerprint(self) -> str:
        return idempotency.request_hash(self.request.method, self.request.url.path, self.body)

    async def run(self, work: Work) -> Response:
        """Do ``work`` once per Idempotency-Key, in one transaction with the stored response."""
        return await self._batcher.run(self, work)

    async def post(self, order: Batched) -> Response:
        """Post an earn, a redeem, a hold or a capture (its origin: the calling partner) once
        per Idempotency-Key, set-based with the other orders of its batch."""
        return await self._batcher.run(self, order)

    @property
    def _batcher(self) -> "WriteBatcher":
        batcher: WriteBatcher = self.request.app.state.batcher
        return batcher

    def owned(self, order: Batched) -> Batched:
        """``order`` on behalf of the authenticated partner."""
        if isinstance(order, Earning):
            return replace(order, order=replace(order.order, origin=self.origin))
        return replace(order, origin=self.origin)  # an Order, a Capture or a Void

    def work_of(self, job: Job) -> Work:
        """What the write does in a transaction of its own."""
        if not isinstance(job, Batched):
            return job

        def work(session: Session) -> tuple[int, BaseModel]:
            now = utcnow()
            outcome = spending.post(
                session,
                [self.holder],
                [self.owned(job)],
                now,
                policy(self.request),
                programme(self.request, session),
            )[0]
            return posted_answer(self.request, session, posted(outcome), now, job)

        return work

    def alone(self, job: Job) -> Response:
        """Do the write in a transaction of its own, retrying once after losing a race."""
        db = database(self.request)
        work = self.work_of(job)
        fingerprint = self.fingerprint
        for attempt in range(2):
            try:
                return self._attempt(db, fingerprint, work)
            except INTEGRITY_ERRORS as exc:
                if attempt == 0:
                    # Lost a race: a concurrent request with the same key (replayed now), the
                    # same identity (found now) or the same reference (refused now).
                    continue
                raise _integrity_error(exc) from exc
        raise ConcurrentChange("A concurrent request changed the same data; retry.")

    def _attempt(self, db: Database, fingerprint: str, work: Work) -> Response:
        principal: str | None = None
        try:
            with db.write() as session:
                # Authenticating inside the write transaction saves a connection and a BEGIN.
                self.holder = _authorise(session, self.request, self.token, self.scope)
                principal = self.check_key()
                stored = idempotency.replay(session, principal, self.key or "", fingerprint)
                if stored is not None:
                    return _replayed(stored)
                status, model = work(session)
                body = model.model_dump_json().encode()
                idempotency.remember(
                    session, principal, self.key or "", fingerprint, status, body.decode()
                )
        except TallyError as error:
            # Authenticated, with a usable key, and a refusal of the request itself: final.
            if principal is not None and is_final_answer(error):
                self._remember_error(db, principal, fingerprint, error)
            raise
        except Exception as error:
            if is_transient(error):  # busy, lock timeout, deadlock, serialization failure
                raise ConcurrentChange(
                    "A concurrent request held or changed the same data; retry."
                ) from error
            raise
        return Response(body, status_code=status, media_type="application/json")

    def check_key(self) -> str:
        """The principal the Idempotency-Key belongs to, once the key is known to be usable."""
        if self.key is None:
            raise IdempotencyKeyRequired("Send an Idempotency-Key header with every write.")
        idempotency.check_key(text.header_text(self.key))
        return f"partner:{self.holder.partner_id}"

    def _remember_error(
        self, db: Database, principal: str, fingerprint: str, error: TallyError
    ) -> None:
        """A refused request is answered the same way on retry (it wrote nothing else)."""
        assert self.key is not None
        try:
            with db.write() as session:
                idempotency.remember(
                    session,
                    principal,
                    self.key,
                    fingerprint,
                    error.status,
                    orjson.dumps(problem_body(error)).decode(),
                )
        except INTEGRITY_ERRORS:
            pass  # a concurrent retry stored its own answer first


# Refusals that do not answer the request itself (who asks, the key, the request's form):
# they are not remembered, so the key stays usable; nor are those that say "retry"
# (``TallyError.retryable``).
UNSTORED_ERRORS = (IdempotencyConflict, Unauthorized, Forbidden, ValidationFailed)


def is_final_answer(error: TallyError) -> bool:
    """Whether refusing with ``error`` answers the request for good (stored for its key): not a
    refusal of who asks or of the request's form, nor one that says "retry"."""
    return not isinstance(error, UNSTORED_ERRORS) and not error.retryable


def posted_answer(
    request: Request, session: Session, result: Posted, now: datetime, job: Batched
) -> tuple[int, BaseModel]:
    """The answer to a posted earn, redeem, hold (201: made) or capture (200)."""
    cache: ProgrammeCache = request.app.state.programme
    if result.hold is None:
        return 201, views.posted(session, result, now, cache.zone)
    made = not isinstance(job, OnHold)
    return 201 if made else 200, views.hold_posted(session, result, now, cache.zone, made=made)


Answer = Response | BaseException
Pending = tuple[Mutation, Job, "asyncio.Future[Response]"]


@dataclass
class _Queue:
    items: list[Pending] = field(default_factory=list)
    drain: "asyncio.Task[None] | None" = None  # the task writing batches, while there is one
    elsewhere: set["asyncio.Task[None]"] = field(default_factory=set)  # writes done alone


class WriteBatcher:
    """Group commit: the writes that reach a worker together share one transaction.

    A batch is written on the event loop itself: handing it to a thread cost a third more CPU
    per write on PostgreSQL (the two threads contend for the GIL at every round trip), and
    SQLite writes one transaction at a time anyway. Meanwhile the next batch gathers in the
    sockets. In a batch every request is authenticated and its Idempotency-Key looked up at
    once, and earns and redeems are posted set-based (:func:`tally.flows.spending.post`: the
    ties of every redeem's partner to its member with one statement, then
    :func:`tally.flows.earning.post`).

    Whatever the batch does not answer is done alone, in a transaction of its own, which gives
    it its usual answer: a key used twice in the batch, a write the database refused, and
    (SQLite) a write that failed in its savepoint — on SQLite the other writes run in the
    batch one by one, each in a savepoint. On PostgreSQL the loop must never wait for a row
    lock (a job may hold a wallet for a while): the batch passes over orders whose wallet is
    held elsewhere and puts them in the next batch, twice at most; those and all other writes
    are then done alone on the database executor, each in a task of its own (so they run side
    by side on its threads), without holding up the batches that follow.
    """

    MAX_GATHER_ROUNDS = 8
    # Batches an order whose wallet is held elsewhere tries again (another worker's batch holds
    # it for milliseconds) before it is done alone (a job may hold it for longer).
    MAX_PASSES = 2

    def __init__(self, db: Database, executor: Executor | None) -> None:
        self._db = db
        self._executor = executor
        # One queue per event loop (a server has one; tests may drive an app from several).
        self._queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Queue] = (
            weakref.WeakKeyDictionary()
        )

    async def run(self, mutation: Mutation, job: Job) -> Response:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Response] = loop.create_future()
        queue = self._queues.setdefault(loop, _Queue())
        queue.items.append((mutation, job, future))
        if queue.drain is None:
            queue.drain = loop.create_task(self._drain(queue))
        return await future

    async def _drain(self, queue: _Queue) -> None:
        loop = asyncio.get_running_loop()
        try:
            while queue.items:
                await self._gather(queue)
                batch, queue.items = queue.items, []
                done, busy = self._batched(batch)
                _settle([(batch[index], answer) for index, answer in done.items()])
                rest: list[Pending] = []
                for index, pending in enumerate(batch):
                    if index in done:
                        continue
                    mutation = pending[0]
                    if index in busy and mutation.passes < self.MAX_PASSES:
                        mutation.passes += 1
                        queue.items.append(pending)  # most likely free in the next batch
                    else:
                        rest.append(pending)
                if not rest:
                    continue
                if self._executor is None:
                    _settle(list(zip(rest, self._alone(rest), strict=True)))
                    continue
                for pending in rest:  # side by side on the executor's threads
                    task = loop.create_task(self._alone_elsewhere([pending]))
                    queue.elsewhere.add(task)
                    task.add_done_callback(queue.elsewhere.discard)
        finally:
            # Cleared in the same step that found the queue empty: a write queued after it
            # starts a new drain.
            queue.drain = None

    async def _gather(self, queue: _Queue) -> None:
        """Let the requests already read from the sockets join the batch."""
        size = -1
        for _round in range(self.MAX_GATHER_ROUNDS):
            if len(queue.items) == size:
                return
            size = len(queue.items)
            await asyncio.sleep(0)

    def _batched(self, batch: list[Pending]) -> tuple[dict[int, Answer], set[int]]:
        """The answers the batch's transaction gives, by position (none if it failed), and the
        positions of orders passed over because their wallet was held elsewhere."""
        try:
            with self._db.write() as session:
                work = _Batch(session, batch, in_savepoints=self._executor is None)
                return work.answers(), work.busy
        except Exception:
            return {}, set()

    def _alone(self, pending: list[Pending]) -> list[Answer]:
        answers: list[Answer] = []
        for mutation, job, _future in pending:
            try:
                answers.append(mutation.alone(job))
            except Exception as error:
                answers.append(error)
        return answers

    async def _alone_elsewhere(self, pending: list[Pending]) -> None:
        loop = asyncio.get_running_loop()
        answers = await loop.run_in_executor(self._executor, self._alone, pending)
        _settle(list(zip(pending, answers, strict=True)))


def _settle(answered: list[tuple[Pending, Answer]]) -> None:
    """Hand each waiting request its answer."""
    for (_mutation, _job, future), answer in answered:
        if future.cancelled():
            continue
        if isinstance(answer, BaseException):
            future.set_exception(answer)
        else:
            future.set_result(answer)


class _Batch:
    """One batch's writes in one transaction: the answers it could give (by position)."""

    def __init__(self, session: Session, batch: list[Pending], *, in_savepoints: bool) -> None:
        self.session = session
        self.batch = batch
        self.in_savepoints = in_savepoints  # else other writes are left to be done alone
        self.busy: set[int] = set()  # orders passed over: their wallet was held elsewhere
        self.now = utcnow()
        self.remembered: list[idempotency.Answer] = []
        self.done: dict[int, Answer] = {}

    def answers(self) -> dict[int, Answer]:
        accepted = self._authorised()
        orders: list[tuple[int, str, str]] = []
        for index, principal, fingerprint in accepted:
            job = self.batch[index][1]
            if isinstance(job, Batched):
                orders.append((index, principal, fingerprint))
                continue
            if not self.in_savepoints:
                continue
            answer = self._in_savepoint(job)
            if answer is not None:  # else answered alone
                self._answered(index, principal, fingerprint, *answer)
        if orders:
            self._post(orders)
        idempotency.remember_all(self.session, self.remembered)
        return self.done

    def _in_savepoint(self, work: Work) -> tuple[int, BaseModel] | None:
        """``work``'s answer, or ``None`` when it failed (and its savepoint was rolled back)."""
        try:
            with savepoint(self.session):
                return work(self.session)
        except Exception:
            return None
        finally:
            self.session.expire_all()

    def _authorised(self) -> list[tuple[int, str, str]]:
        """``(index, principal, fingerprint)`` of the new writes; replays answered."""
        holders: dict[tuple[str, Scope | None], Caller] = {}
        request = self.batch[0][0].request
        programme(request, self.session)  # look for a newly applied programme
        candidates: list[tuple[int, str, str]] = []
        for index, (mutation, _job, _future) in enumerate(self.batch):
            try:
                holder = holders.get((mutation.token, mutation.scope))
                if holder is None:
                    holder = _authorise(self.session, request, mutation.token, mutation.scope)
                    holders[(mutation.token, mutation.scope)] = holder
                mutation.holder = holder
                authenticated(mutation.request)
                candidates.append((index, mutation.check_key(), mutation.fingerprint))
            except TallyError:
                continue  # answered alone
        keys: dict[str, list[str]] = {}
        for index, principal, _fingerprint in candidates:
            keys.setdefault(principal, []).append(self.batch[index][0].key or "")
        stored = {
            (principal, key): record
            for principal, names in keys.items()
            for key, record in idempotency.records(self.session, principal, names).items()
        }
        seen: set[tuple[str, str]] = set()
        accepted: list[tuple[int, str, str]] = []
        for index, principal, fingerprint in candidates:
            name = (principal, self.batch[index][0].key or "")
            if name in seen:
                continue  # the same key twice in one batch: the later one replays alone
            seen.add(name)
            record = stored.get(name)
            if record is None:
                accepted.append((index, principal, fingerprint))
                continue
            try:
                self.done[index] = _replayed(idempotency.check(record, fingerprint))
            except IdempotencyConflict as error:
                self.done[index] = error
        return accepted

    def _post(self, orders: list[tuple[int, str, str]]) -> None:
        request = self.batch[orders[0][0]][0].request
        jobs, callers = [], []
        for index, _principal, _fingerprint in orders:
            mutation, job, _future = self.batch[index]
            assert isinstance(job, Batched)
            jobs.append(mutation.owned(job))
            callers.append(mutation.holder)
        outcomes = spending.post(
            self.session,
            callers,
            jobs,
            self.now,
            policy(request),
            programme(request, self.session),
            wait=self.in_savepoints,  # on PostgreSQL, pass over wallets held elsewhere
        )
        for (index, principal, fingerprint), outcome in zip(orders, outcomes, strict=True):
            if isinstance(outcome, Busy):
                self.busy.add(index)
                continue
            if isinstance(outcome, TallyError) and not is_final_answer(outcome):
                self.done[index] = outcome  # the key stays unused: a retry may succeed
            elif isinstance(outcome, TallyError):
                body = orjson.dumps(problem_body(outcome)).decode()
                self._remember(index, principal, fingerprint, outcome.status, body)
                self.done[index] = outcome
            else:
                job = self.batch[index][1]
                assert isinstance(job, Batched)
                status, model = posted_answer(request, self.session, outcome, self.now, job)
                self._answered(index, principal, fingerprint, status, model)

    def _answered(
        self, index: int, principal: str, fingerprint: str, status: int, model: BaseModel
    ) -> None:
        body = model.model_dump_json()
        self._remember(index, principal, fingerprint, status, body)
        self.done[index] = Response(
            body.encode(), status_code=status, media_type="application/json"
        )

    def _remember(
        self, index: int, principal: str, fingerprint: str, status: int, body: str
    ) -> None:
        key = self.batch[index][0].key or ""
        self.remembered.append(idempotency.Answer(principal, key, fingerprint, status, body))


def _replayed(stored: idempotency.Stored) -> Response:
    media = "application/problem+json" if stored.status_code >= 400 else "application/json"
    return Response(
        stored.body.encode(),
        status_code=stored.status_code,
        media_type=media,
        headers={"Idempotent-Replayed": "true"},
    )


def _integrity_error(exc: Exception) -> TallyError:
    text = error_text(exc)
    if "source_key" in text:
        return DuplicateReference("This reference was already used for this operation.")
    if "reverses_id" in text:
        return AlreadyReversed("The transaction was already reversed.")
    return ConcurrentChange("A concurrent request changed the same data; retry.")


async def raw_body(request: Request) -> bytes:
    return await request.body()


def mutation(scope: Scope | None) -> Callable[..., Any]:
    """A dependency giving an endpoint its idempotent :class:`Mutation` for ``scope`` (``None``:
    the endpoint checks the scope it needs)."""

    async def dependency(
        request: Request,
        body: Annotated[bytes, Depends(raw_body)],
        idempotency_key: Annotated[
            str,
            Header(
                alias="Idempotency-Key",
                description="Unique per write; a retry with the same key returns the first answer.",
            ),
        ],
        authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
    ) -> Mutation:
        return Mutation(
            request=request,
            token=bearer_token(authorization),
            scope=scope,
            key=idempotency_key,
            body=body,
        )

    return dependency
