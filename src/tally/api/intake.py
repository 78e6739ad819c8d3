"""The first look at every request, before routing and before any body is parsed.

In this order:

1. an API request (``/v1/…``) without a bearer token is ``401 unauthorized`` at once;
2. a body larger than ``TALLY_MAX_BODY_BYTES`` (an API request; a batch may send
   :data:`BATCH_MAX_BODY_BYTES`) or :data:`PAGE_MAX_BODY_BYTES` (a page's form) is
   ``413 payload_too_large``, told by its ``Content-Length`` before it is read, or counted
   while it is read (chunked bodies);
3. a JSON body in which an object names a key twice (``{"points": 1, "points": 999999}``)
   is ``422 validation_error`` naming the key: JSON parsers keep one of the two silently.

Refusals of 2 and 3 look the API key up first (:func:`tally.api.credentials.refusal_first`),
and are rendered by the app's own exception handlers (problem+json, or a page for the pages).
Everything else goes on unchanged, with the body already read handed on as one message.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Send
from starlette.types import Scope as AsgiScope

from tally.api.credentials import bearer_token, is_api
from tally.api.problems import handled, tally_error_response
from tally.errors import PayloadTooLarge, TallyError, Unauthorized, ValidationFailed

_JSON = re.compile(rb"^application/(?:[\w.+-]+\+)?json\s*(?:;.*)?$", re.IGNORECASE)
_WITH_BODY = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# The console's largest form: a pasted programme file of up to 200,000 characters, which
# URL-encoding can make nine bytes each (Chinese text).
PAGE_MAX_BODY_BYTES = 2 * 1024 * 1024
# A batch of up to 1,000 events, each with its items, needs more than one request's limit.
BATCH_MAX_BODY_BYTES = {"/v1/events/batch": 4 * 1024 * 1024}


def body_limit(path: str, api_limit: int) -> int:
    """The largest body a request to ``path`` may send: an API request's limit (a batch's
    own when larger), or a page form's."""
    if is_api(path):
        return max(api_limit, BATCH_MAX_BODY_BYTES.get(path, 0))
    return max(api_limit, PAGE_MAX_BODY_BYTES)


class Intake:
    """The ASGI middleware (see the module's docstring)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        api = is_api(scope["path"])
        if api:
            try:
                bearer_token(_text(headers[0]))
            except Unauthorized as error:
                await tally_error_response(error)(scope, receive, send)
                return
        if scope["method"] not in _WITH_BODY:
            await self.app(scope, receive, send)
            return
        limit = body_limit(scope["path"], self.max_body_bytes)
        declared = _declared_length(headers[1])
        if declared is not None and declared > limit:
            await self._refuse(scope, receive, send, _too_large(limit))
            return
        try:
            body = await _read(receive, limit)
        except _Disconnected:
            return
        if body is None:
            await self._refuse(scope, receive, send, _too_large(limit))
            return
        content_type = headers[2]
        if body and content_type is not None and _JSON.match(content_type):
            twice = duplicate_key(body)
            if twice is not None:
                await self._refuse(scope, receive, send, _duplicated(twice))
                return
        await self.app(scope, _replaying(body, receive), send)

    async def _refuse(
        self, scope: AsgiScope, receive: Receive, send: Send, error: TallyError
    ) -> None:
        response = await handled(Request(scope, receive), error)
        await response(scope, receive, send)


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The request body is larger than {limit} bytes.", max_bytes=limit)


def duplicate_key(body: bytes) -> str | None:
    """The dotted path of the first key an object of the JSON ``body`` names twice (``points``,
    ``external_id.id``, ``limits.0.member_id``); ``None`` when there is none or ``body`` is not
    JSON (the parser that follows says what is wrong with it)."""
    try:
        # Decoded as the JSON parser after us does (UTF-8, or UTF-16/32 told by the first bytes).
        document = body.decode(json.detect_encoding(body), "surrogatepass")
        _CHECKING.decode(document)
    except _Duplicated:
        pass
    except (ValueError, RecursionError):  # not JSON, not UTF-8: not ours to answer
        return None
    else:
        return None
    return _first_duplicate(_KEEPING.decode(document), ())


class _Duplicated(Exception):
    pass


class _Disconnected(Exception):
    pass


class _Pairs(list[tuple[str, Any]]):
    """An object's members as parsed, duplicates kept."""


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        raise _Duplicated
    return found


_CHECKING = json.JSONDecoder(object_pairs_hook=_refuse_duplicates)
_KEEPING = json.JSONDecoder(object_pairs_hook=_Pairs)


def _first_duplicate(value: Any, path: tuple[str, ...]) -> str | None:
    if isinstance(value, _Pairs):
        seen: set[str] = set()
        for key, _item in value:
            if key in seen:
                return ".".join((*path, key))
            seen.add(key)
        children: list[tuple[str, Any]] = list(value)
    elif isinstance(value, list):
        children = [(str(index), item) for index, item in enumerate(value)]
    else:
        return None
    for key, item in children:
        found = _first_duplicate(item, (*path, key))
        if found is not None:
            return found
    return None


def _duplicated(path: str) -> ValidationFailed:
    message = f"the key {path.rpartition('.')[2]!r} appears more than once in one object"
    return ValidationFailed(
        f"{path}: {message}",
        errors=[{"field": path, "message": message, "type": "duplicate_key"}],
    )


def _headers(scope: AsgiScope) -> tuple[bytes | None, bytes | None, bytes | None]:
    """The request's ``Authorization``, ``Content-Length`` and ``Content-Type`` (the first of
    each; ASGI servers give the names in lower case)."""
    authorization = length = content_type = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            authorization = authorization or value
        elif name == b"content-length":
            length = length or value
        elif name == b"content-type":
            content_type = content_type or value
    return authorization, length, content_type


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")


def _declared_length(value: bytes | None) -> int | None:
    if value is None or not value.strip().isdigit():
        return None  # absent or malformed: the server refuses malformed ones, we count anyway
    return int(value)


async def _read(receive: Receive, limit: int) -> bytes | None:
    """The whole body; ``None`` as soon as it passes ``limit`` bytes (the rest is not read)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away: nobody to answer
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the whole ``body`` (read already) first, then what follows."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
