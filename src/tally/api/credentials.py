"""Who asks comes first: an API request without valid credentials is answered ``401
unauthorized`` before anything else about it is checked (its path, size, body or headers).

A request without a bearer token at all is refused by :class:`tally.api.intake.Intake` before it
is read. A refusal found before the key was looked up (a malformed id, a body too large, a
missing Idempotency-Key…) first looks the key up (:func:`refusal_first`): an unknown or revoked
key hears ``unauthorized`` instead. Requests that pass never pay for that look-up twice.
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request

from tally.errors import Unauthorized
from tally.partners.service import authenticate

API_PREFIX = "/v1/"
AUTHENTICATED = "tally.authenticated"  # set in the ASGI scope once the key was accepted
HOW = "Send the API key as 'Authorization: Bearer <key>'."


def is_api(path: str) -> bool:
    """Whether ``path`` is one of the partner API's (all of which need an API key)."""
    return path.startswith(API_PREFIX)


def bearer_token(authorization: str | None) -> str:
    """The API key of an ``Authorization: Bearer <key>`` header, or ``unauthorized``."""
    if not authorization:
        raise Unauthorized(HOW)
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(HOW)
    return token.strip()


def authenticated(request: Request) -> None:
    """Note that the request's API key was accepted (no second look-up on a refusal)."""
    request.scope[AUTHENTICATED] = True


async def refusal_first(request: Request) -> Unauthorized | None:
    """For an API request about to be refused: ``unauthorized`` when its API key is missing,
    malformed, unknown or revoked (that answer comes first), else ``None``."""
    if not is_api(request.url.path) or request.scope.get(AUTHENTICATED):
        return None
    try:
        token = bearer_token(request.headers.get("authorization"))
    except Unauthorized as error:
        return error

    def look_up() -> Unauthorized | None:
        try:
            with request.app.state.db.read() as session:
                authenticate(session, token, request.app.state.secret)
        except Unauthorized as error:
            return error
        return None

    executor = request.app.state.executor
    if executor is None:
        return look_up()
    refused: Unauthorized | None = await asyncio.get_running_loop().run_in_executor(
        executor, look_up
    )
    return refused
