"""A fast lane for the hottest partner writes (earn, redeem, a checkout's hold and capture, an
event): ordinary requests skip FastAPI's routing and dependency solving.

Those cost about a quarter of a worker's CPU per earn. The lane is an ASGI middleware that
matches a few POST routes itself and answers a request only when everything about it is
ordinary: no query string, a JSON body that parses and validates against the endpoint's own
schema, a path parameter of the endpoint's own shape (a plain member id, a hold's UUID), an
Idempotency-Key, a bearer token, and whatever else the endpoint's own write function asks of it
(an event must name its member by id). Anything else goes on to FastAPI
unchanged (with the body the lane read), which answers it as it answers every request. An
ordinary request gets what the endpoint would give it: both build the write with the same
function and post it through the same :class:`Mutation`, and errors are rendered by the app's
own exception handlers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Send
from starlette.types import Scope as AsgiScope

from tally.api.credentials import bearer_token
from tally.api.deps import Mutation
from tally.api.problems import handled
from tally.api.schemas import MAX_ID
from tally.errors import TallyError
from tally.partners.service import Scope

MAX_BODY = 16 * 1024  # a larger body takes the ordinary path
MEMBER_ID = "[1-9][0-9]{0,18}"  # a member id of plain digits (checked against MAX_ID)
UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"  # as tally.api.paths
_JSON = re.compile(rb"^application/(?:[\w.+-]+\+)?json\s*(?:;.*)?$", re.IGNORECASE)


# (the request, the path's parameter or ``None``, the validated body) → the write it makes, or
# ``None`` when the request turns out to be one for FastAPI after all
LaneWrite = Callable[[Request, Any, Any], object | None]


@dataclass(frozen=True)
class Lane:
    """A POST route the lane may answer, and the write an ordinary request to it makes."""

    pattern: re.Pattern[str]
    body: type[BaseModel]
    scope: Scope
    write: LaneWrite
    convert: Callable[[str], int | str]  # the parameter as matched → as ``write`` takes it


def lane(
    path: str,
    body: type[BaseModel],
    scope: Scope,
    write: LaneWrite,
    parameter: str = MEMBER_ID,
) -> Lane:
    """A lane for ``path``, whose ``{…}`` parameter (if it has one) matches ``parameter``: a
    member's id (given to ``write`` as an ``int``) or any other pattern (given as the text)."""
    head, brace, rest = path.partition("{")
    _name, _, tail = rest.partition("}")
    matched = re.escape(head) + (f"(?P<id>{parameter})" + re.escape(tail) if brace else "")
    convert: Callable[[str], int | str] = int if parameter == MEMBER_ID else str
    return Lane(re.compile(matched), body, scope, write, convert)


def by_member(write: Callable[[int, Any], object]) -> LaneWrite:
    """A lane's write from an endpoint's ``(member id, body) → write``."""
    return lambda _request, member_id, payload: write(member_id, payload)


class FastLane:
    """The ASGI middleware (see the module's docstring)."""

    def __init__(self, app: ASGIApp, lanes: Sequence[Lane]) -> None:
        self.app = app
        self.lanes = tuple(lanes)

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            for candidate in self.lanes:
                match = candidate.pattern.fullmatch(scope["path"])
                if match is not None and not scope.get("query_string"):
                    found = match.groupdict().get("id")
                    parameter = None if found is None else candidate.convert(found)
                    await self._serve(candidate, parameter, scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _serve(
        self,
        lane: Lane,
        parameter: int | str | None,
        scope: AsgiScope,
        receive: Receive,
        send: Send,
    ) -> None:
        body, complete = await _read(receive)
        replay = _replaying(body, complete, receive)
        request = Request(scope, replay)
        ordinary = complete and len(body) <= MAX_BODY
        write = _ordinary(lane, parameter, request, body) if ordinary else None
        if write is None:
            await self.app(scope, replay, send)
            return
        mutation, order = write
        try:
            response = await mutation.post(order)
        except Exception as error:
            response = await handled(request, error)
        await response(scope, replay, send)


def _ordinary(
    lane: Lane, parameter: int | str | None, request: Request, body: bytes
) -> tuple[Mutation, object] | None:
    """The write an ordinary request makes; ``None`` for anything FastAPI should see."""
    headers = request.headers
    content_type = headers.get("content-type")
    key = headers.get("idempotency-key")
    too_large = isinstance(parameter, int) and parameter > MAX_ID
    if too_large or key is None or content_type is None:
        return None
    if not _JSON.match(content_type.encode("latin-1")):
        return None
    try:
        token = bearer_token(headers.get("authorization"))
        payload = lane.body.model_validate(orjson.loads(body))
    except (TallyError, orjson.JSONDecodeError, ValidationError):
        return None
    write = lane.write(request, parameter, payload)
    if write is None:
        return None
    return Mutation(request=request, token=token, scope=lane.scope, key=key, body=body), write


async def _read(receive: Receive) -> tuple[bytes, bool]:
    """The request body up to a little beyond :data:`MAX_BODY`, and whether it is all there."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), False
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        finished = not message.get("more_body", False)
        if finished or size > MAX_BODY:
            return b"".join(chunks), finished


def _replaying(body: bytes, complete: bool, receive: Receive) -> Receive:
    """A ``receive`` that gives ``body`` (read already) first, then whatever is still to come."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": not complete}
        return await receive()

    return replay
