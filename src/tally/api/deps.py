"""Dependencies of the partner API: the calling partner, idempotent writes, reads.

A write is a submission to the app's writer (:mod:`tally.writer`): the writes that reach a
worker together are authenticated, checked against their Idempotency-Keys and done in one
transaction on the event loop (ADR 6, ADR 18). A read makes one hop to the app's database
executor (a small, fixed pool of threads on PostgreSQL; none for SQLite), where it
authenticates and reads in one transaction.
"""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header, Request
from pydantic import BaseModel
from sqlalchemy.orm import Session
from starlette.responses import Response

from tally.access.domain import Caller, caller_of, require_scope
from tally.api.credentials import authenticated, bearer_token
from tally.config import Settings
from tally.db.session import Database
from tally.idempotency import service as idempotency
from tally.kit.clock import utcnow
from tally.ledger.domain import Origin, Policy
from tally.ledger.posting import policy_for
from tally.partners.service import Scope, authenticate
from tally.programme.domain import Programme
from tally.programme.runtime import ProgrammeCache
from tally.writer.group_commit import GroupCommit
from tally.writer.kinds import WORK, Kind
from tally.writer.lines import Lines
from tally.writer.submission import Submission

T = TypeVar("T")
Work = Callable[[Session], tuple[int, BaseModel]]  # a unit of work (tally.writer.kinds)


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


def caller_for(session: Session, token: str, secret: str, cache: ProgrammeCache) -> Caller:
    """The caller behind ``token`` under the programme in force (a newly applied one is seen
    within a few seconds), which says whether the partner is one of the operator's own
    channels."""
    return caller_of(authenticate(session, token, secret), cache.get(session))


def _authorise(session: Session, request: Request, token: str, scope: Scope) -> Caller:
    """The caller behind ``token``, holding ``scope``."""
    caller = caller_for(session, token, request.app.state.secret, request.app.state.programme)
    authenticated(request)
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


@dataclass
class Mutation:
    """Everything an idempotent write needs from the request."""

    request: Request
    token: str
    scope: Scope | None
    key: str
    body: bytes
    _submission: Submission | None = field(default=None, init=False)

    @property
    def holder(self) -> Caller:
        """The authenticated caller (known to the write's own work)."""
        assert self._submission is not None
        assert self._submission.caller is not None
        return self._submission.caller

    @property
    def origin(self) -> Origin:
        return Origin(partner_id=self.holder.partner_id)

    async def run(self, work: Work) -> Response:
        """Do ``work`` once per Idempotency-Key, in one transaction with the stored response."""
        return await self._write(_group_commit(self.request), work, WORK)

    async def post(self, write: object) -> Response:
        """Post a write of any registered kind (an earn, a redeem, a hold, a capture: on behalf
        of the calling partner) once per Idempotency-Key, set-based with the other writes of
        its kind in its batch."""
        commit = _group_commit(self.request)
        return await self._write(commit, write, commit.writer.kinds.of(write))

    async def post_in_line(self, line: str, write: object) -> Response:
        """As :meth:`post`, but in line ``line`` when the app has lines (PostgreSQL): the writes
        of one hot resource (a flash sale's item) written in their order of arrival, one batch
        at a time (:mod:`tally.writer.lines`, ADR 29)."""
        commit = _group_commit(self.request)
        lines: Lines | None = getattr(self.request.app.state, "lines", None)
        if lines is None:
            return await self._write(commit, write, commit.writer.kinds.of(write))
        return await self._write(
            commit, write, commit.writer.kinds.of(write), lambda s: lines.write(line, s)
        )

    async def _write(
        self,
        commit: GroupCommit,
        write: object,
        kind: Kind,
        send: Callable[[Submission], Awaitable[Submission]] | None = None,
    ) -> Response:
        request = self.request
        submission = self._submission = Submission(
            write,
            kind,
            key=self.key,
            fingerprint=idempotency.request_hash(request.method, request.url.path, self.body),
            token=self.token,
            scope=self.scope,
        )
        try:
            answered = await (send or commit.write)(submission)
        finally:
            if submission.caller is not None:
                authenticated(request)  # no second look-up of the key for a refusal
        if answered.replayed:
            media = "application/problem+json" if answered.status >= 400 else "application/json"
            return Response(
                answered.body.encode(),
                status_code=answered.status,
                media_type=media,
                headers={"Idempotent-Replayed": "true"},
            )
        return Response(
            answered.body.encode(), status_code=answered.status, media_type="application/json"
        )


def _group_commit(request: Request) -> GroupCommit:
    commit: GroupCommit = request.app.state.group_commit
    return commit


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
