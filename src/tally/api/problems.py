"""RFC 9457 problem details for every error the API returns."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Match

from tally.api.credentials import refusal_first
from tally.db.raw import is_transient
from tally.errors import (
    ConcurrentChange,
    IdempotencyKeyRequired,
    NotFound,
    TallyError,
    ValidationFailed,
    problem_body,
)

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("tally.api")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def problem_response(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, media_type=PROBLEM_JSON, headers=headers
    )


def tally_error_response(error: TallyError) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
    if error.status == 429 and "retry_after" in error.extra:
        headers = {"Retry-After": str(error.extra["retry_after"])}
    return problem_response(error.status, problem_body(error), headers)


async def handle_tally_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TallyError)
    if exc.status != 401 and (refused := await refusal_first(request)) is not None:
        return tally_error_response(refused)
    return tally_error_response(exc)


async def handle_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if (refused := await refusal_first(request)) is not None:
        return tally_error_response(refused)
    path_errors = [error for error in exc.errors() if tuple(error.get("loc", ()))[:1] == ("path",)]
    if path_errors:
        # An id that is not one (``abc``, ``0``, ``01``, ``+1``, beyond range) names nothing.
        name = path_errors[0]["loc"][-1]
        return tally_error_response(NotFound(f"No such {name}: {path_errors[0].get('input')!r}."))
    if any(
        error.get("type") == "missing"
        and tuple(error.get("loc", ())) == ("header", "Idempotency-Key")
        for error in exc.errors()
    ):
        return tally_error_response(
            IdempotencyKeyRequired("Send an Idempotency-Key header with every write.")
        )
    errors = [
        {
            "field": ".".join(str(part) for part in error.get("loc", ()) if part != "body"),
            "message": error.get("msg", ""),
            "type": error.get("type", ""),
        }
        for error in exc.errors()
    ]
    body = {
        "type": "https://tally.dev/problems/validation_error",
        "title": "The request is not valid",
        "status": 422,
        "detail": "; ".join(f"{item['field'] or 'body'}: {item['message']}" for item in errors),
        "code": "validation_error",
        "errors": errors,
    }
    return problem_response(422, body)


async def handle_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if (refused := await refusal_first(request)) is not None:
        return tally_error_response(refused)
    if exc.status_code == 400:  # the body could not be parsed (not JSON, not UTF-8)
        return tally_error_response(
            ValidationFailed(f"The request body is malformed: {exc.detail}")
        )
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    body = {
        "type": f"https://tally.dev/problems/{code}",
        "title": str(exc.detail),
        "status": exc.status_code,
        "detail": str(exc.detail),
        "code": code,
    }
    headers = dict(exc.headers or {})
    if exc.status_code == 405:  # every method of the path, not only those of its first route
        headers["Allow"] = ", ".join(_allowed_methods(request))
    return problem_response(exc.status_code, body, headers)


def _allowed_methods(request: Request) -> list[str]:
    allowed: set[str] = set()
    for context in iter_route_contexts(request.app.routes):
        match, _params = context.route.matches(request.scope)
        if match is not Match.NONE:
            allowed |= set(context.methods or ())
    return sorted(allowed)


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    if is_transient(exc):  # busy, lock timeout, deadlock: nothing was written; retry
        log.info("transient database refusal on %s %s: %s", request.method, request.url.path, exc)
        return tally_error_response(
            ConcurrentChange("A concurrent request held or changed the same data; retry.")
        )
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    body = {
        "type": "https://tally.dev/problems/internal_error",
        "title": "Internal error",
        "status": 500,
        "detail": "Something went wrong on our side; nothing was changed.",
        "code": "internal_error",
    }
    return problem_response(500, body)


async def handle_data_error(_request: Request, exc: Exception) -> Response:
    """A value the database cannot hold is the caller's mistake, never a 500."""
    log.info("refused a value the database cannot hold: %s", exc)
    return tally_error_response(ValidationFailed("A value is out of range or not allowed."))


async def handled(request: Request, error: Exception) -> Response:
    """The response the app's own exception handlers give ``error`` (for middleware that
    answers a request itself)."""
    handlers: dict[Any, Callable[[Request, Exception], Awaitable[Response]]]
    handlers = request.app.exception_handlers
    for kind in type(error).__mro__:
        if kind in handlers:
            return await handlers[kind](request, error)
    raise error
