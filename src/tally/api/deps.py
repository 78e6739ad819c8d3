"""Dependencies of the partner API: the calling partner, idempotent writes, reads.

Each request makes one hop to the app's database executor, where it authenticates and does its
work: a small, fixed pool of threads (one for SQLite, which writes one at a time anyway) keeps
the GIL from thrashing between dozens of request threads.
"""

import asyncio
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import Depends, Header, Request
from pydantic import BaseModel
from sqlalchemy.orm import Session
from starlette.responses import Response

from tally.api.problems import problem_body
from tally.config import Settings
from tally.db.raw import INTEGRITY_ERRORS, error_text
from tally.db.session import Database
from tally.errors import (
    AlreadyReversed,
    Conflict,
    DuplicateReference,
    Forbidden,
    IdempotencyConflict,
    IdempotencyKeyRequired,
    TallyError,
    Unauthorized,
    ValidationFailed,
)
from tally.idempotency import service as idempotency
from tally.ledger.domain import Origin, Policy
from tally.ledger.posting import policy_for
from tally.partners.service import KeyHolder, Scope, authenticate
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


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise Unauthorized("Send the API key as 'Authorization: Bearer <key>'.")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Send the API key as 'Authorization: Bearer <key>'.")
    return token.strip()


def _authorise(session: Session, request: Request, token: str, scope: Scope) -> KeyHolder:
    holder = authenticate(session, token, request.app.state.secret)
    programme(request, session)  # look for a newly applied programme (at most every few seconds)
    if scope not in holder.scopes:
        raise Forbidden(f"This API key lacks the '{scope.value}' scope.", scope=scope.value)
    return holder


@dataclass
class Reader:
    """A read-only request by a partner holding ``scope``."""

    request: Request
    token: str
    scope: Scope

    async def run(self, work: Callable[[Session, KeyHolder], T]) -> T:
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
        return Reader(request=request, token=_bearer(authorization), scope=scope)

    return dependency


@dataclass
class Mutation:
    """Everything an idempotent write needs from the request."""

    request: Request
    token: str
    scope: Scope
    key: str | None
    body: bytes
    holder: KeyHolder = field(init=False)

    @property
    def origin(self) -> Origin:
        return Origin(partner_id=self.holder.partner_id)

    async def run(self, work: Work) -> Response:
        """Do ``work`` once per Idempotency-Key, in one transaction with the stored response."""
        batcher: WriteBatcher | None = self.request.app.state.batcher
        if batcher is not None:
            return await batcher.run(self, work)
        return await in_executor(self.request, lambda: self._run(work))

    def attempt_in(self, session: Session, work: Work) -> Response:
        """The happy path of one write inside a transaction someone else commits."""
        fingerprint = idempotency.request_hash(
            self.request.method, self.request.url.path, self.body
        )
        self.holder = _authorise(session, self.request, self.token, self.scope)
        if self.key is None:
            raise IdempotencyKeyRequired("Send an Idempotency-Key header with every write.")
        idempotency.check_key(self.key)
        principal = f"partner:{self.holder.partner_id}"
        stored = idempotency.replay(session, principal, self.key, fingerprint)
        if stored is not None:
            return _replayed(stored)
        status, model = work(session)
        body = model.model_dump_json().encode()
        idempotency.remember(session, principal, self.key, fingerprint, status, body.decode())
        return Response(body, status_code=status, media_type="application/json")

    def _run(self, work: Work) -> Response:
        db = database(self.request)
        fingerprint = idempotency.request_hash(
            self.request.method, self.request.url.path, self.body
        )
        for attempt in range(2):
            try:
                return self._attempt(db, fingerprint, work)
            except INTEGRITY_ERRORS as exc:
                if attempt == 0:
                    # Lost a race: a concurrent request with the same key (replayed now), the
                    # same identity (found now) or the same reference (refused now).
                    continue
                raise _integrity_error(exc) from exc
        raise Conflict("A concurrent request changed the same data; retry.")

    def _attempt(self, db: Database, fingerprint: str, work: Work) -> Response:
        principal: str | None = None
        try:
            with db.write() as session:
                # Authenticating inside the write transaction saves a connection and a BEGIN.
                self.holder = _authorise(session, self.request, self.token, self.scope)
                if self.key is None:
                    raise IdempotencyKeyRequired("Send an Idempotency-Key header with every write.")
                idempotency.check_key(self.key)
                principal = f"partner:{self.holder.partner_id}"
                stored = idempotency.replay(session, principal, self.key, fingerprint)
                if stored is not None:
                    return _replayed(stored)
                status, model = work(session)
                body = model.model_dump_json().encode()
                idempotency.remember(
                    session, principal, self.key, fingerprint, status, body.decode()
                )
        except (IdempotencyConflict, Unauthorized, Forbidden, ValidationFailed):
            raise  # not an answer to the request itself: the key stays unused
        except TallyError as error:
            if principal is not None:  # authenticated, with a usable key: the refusal is final
                self._remember_error(db, principal, fingerprint, error)
            raise
        return Response(body, status_code=status, media_type="application/json")

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


class WriteBatcher:
    """Group commit for SQLite: the writes that arrive together share one transaction.

    Each write runs in its own savepoint; one that fails in any way is rolled back to it and
    then re-run alone through the ordinary path, which gives it its usual answer.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        # One queue per event loop (a server has one; tests may drive an app from several).
        self._pending: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, list[tuple[Mutation, Work, asyncio.Future[Response]]]
        ] = weakref.WeakKeyDictionary()

    async def run(self, mutation: Mutation, work: Work) -> Response:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Response] = loop.create_future()
        queue = self._pending.setdefault(loop, [])
        queue.append((mutation, work, future))
        if len(queue) == 1:
            loop.call_soon(self._flush, loop)
        return await future

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        batch = self._pending.pop(loop, [])
        done: dict[int, Response] = {}
        try:
            with self._db.write() as session:
                for index, (mutation, work, _future) in enumerate(batch):
                    try:
                        with session.begin_nested():
                            done[index] = mutation.attempt_in(session, work)
                    except Exception:
                        done.pop(index, None)
                    session.expire_all()
        except Exception:
            done = {}
        for index, (mutation, work, future) in enumerate(batch):
            if future.cancelled():
                continue
            if index in done:
                future.set_result(done[index])
                continue
            try:
                future.set_result(mutation._run(work))
            except Exception as error:
                future.set_exception(error)


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
    return Conflict("A concurrent request changed the same data; retry.")


async def raw_body(request: Request) -> bytes:
    return await request.body()


def mutation(scope: Scope) -> Callable[..., Any]:
    """A dependency giving an endpoint its idempotent :class:`Mutation` for ``scope``."""

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
            token=_bearer(authorization),
            scope=scope,
            key=idempotency_key,
            body=body,
        )

    return dependency
