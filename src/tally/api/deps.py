"""Dependencies of the partner API: the database, the calling partner, idempotent writes."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import Depends, Header, Request
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.responses import Response

from tally.api.problems import problem_body
from tally.config import Settings
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
)
from tally.idempotency import service as idempotency
from tally.ledger.domain import Origin
from tally.partners.service import KeyHolder, Scope, authenticate


def database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def settings(request: Request) -> Settings:
    value: Settings = request.app.state.settings
    return value


def _caller(
    request: Request,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> KeyHolder:
    if not authorization:
        raise Unauthorized("Send the API key as 'Authorization: Bearer <key>'.")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Send the API key as 'Authorization: Bearer <key>'.")
    with database(request).read() as session:
        return authenticate(session, token.strip(), request.app.state.secret)


def require(scope: Scope) -> Callable[..., KeyHolder]:
    """A dependency admitting only keys that carry ``scope``."""

    def dependency(holder: Annotated[KeyHolder, Depends(_caller)]) -> KeyHolder:
        if scope not in holder.scopes:
            raise Forbidden(f"This API key lacks the '{scope.value}' scope.", scope=scope.value)
        return holder

    dependency.__name__ = f"require_{scope.value}"
    return dependency


async def raw_body(request: Request) -> bytes:
    return await request.body()


@dataclass
class Mutation:
    """Everything an idempotent write needs from the request."""

    request: Request
    holder: KeyHolder
    key: str | None
    body: bytes

    @property
    def origin(self) -> Origin:
        return Origin(partner_id=self.holder.partner_id)

    def run(self, work: Callable[[Session], tuple[int, BaseModel]]) -> Response:
        """Do ``work`` once per Idempotency-Key, in one transaction with the stored response."""
        if self.key is None:
            raise IdempotencyKeyRequired("Send an Idempotency-Key header with every write.")
        idempotency.check_key(self.key)
        db = database(self.request)
        principal = f"partner:{self.holder.partner_id}"
        fingerprint = idempotency.request_hash(
            self.request.method, self.request.url.path, self.body
        )
        for attempt in range(2):
            try:
                return self._attempt(db, principal, fingerprint, work)
            except IntegrityError as exc:
                error = _integrity_error(exc)
                if error is None and attempt == 0:
                    continue  # a concurrent request with the same key won; replay its answer
                raise error or Conflict(
                    "A concurrent request changed the same data; retry."
                ) from exc
        raise Conflict("A concurrent request changed the same data; retry.")

    def _attempt(
        self,
        db: Database,
        principal: str,
        fingerprint: str,
        work: Callable[[Session], tuple[int, BaseModel]],
    ) -> Response:
        assert self.key is not None
        try:
            with db.write() as session:
                stored = idempotency.replay(session, principal, self.key, fingerprint)
                if stored is not None:
                    return _replayed(stored)
                status, model = work(session)
                body = model.model_dump_json().encode()
                idempotency.remember(
                    session, principal, self.key, fingerprint, status, body.decode()
                )
        except (IdempotencyConflict, Unauthorized, Forbidden):
            raise
        except TallyError as error:
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
        except IntegrityError:
            pass  # a concurrent retry stored its own answer first


def _replayed(stored: idempotency.Stored) -> Response:
    media = "application/problem+json" if stored.status_code >= 400 else "application/json"
    return Response(
        stored.body.encode(),
        status_code=stored.status_code,
        media_type=media,
        headers={"Idempotent-Replayed": "true"},
    )


def _integrity_error(exc: IntegrityError) -> TallyError | None:
    text = str(exc.orig)
    if "source_key" in text:
        return DuplicateReference("This reference was already used for this operation.")
    if "reverses_id" in text:
        return AlreadyReversed("The transaction was already reversed.")
    if "idempotency" in text or "member_identities" in text:
        return None  # lost a race that a second attempt resolves (replay, or find the member)
    return Conflict("A concurrent request changed the same data; retry.")


def mutation(scope: Scope) -> Callable[..., Any]:
    """A dependency giving an endpoint its idempotent :class:`Mutation` for ``scope``."""
    requirement = require(scope)

    def dependency(
        request: Request,
        holder: Annotated[KeyHolder, Depends(requirement)],
        body: Annotated[bytes, Depends(raw_body)],
        idempotency_key: Annotated[
            str | None,
            Header(
                alias="Idempotency-Key",
                description="Unique per write; a retry with the same key returns the first answer.",
            ),
        ] = None,
    ) -> Mutation:
        return Mutation(request=request, holder=holder, key=idempotency_key, body=body)

    return dependency
