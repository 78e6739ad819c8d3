"""Errors on pages: friendly HTML in the visitor's language instead of problem+json."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from tally.errors import Forbidden, TallyError
from tally.web.http import gettext, is_htmx, redirect, render
from tally.web.i18n import N_

log = logging.getLogger("tally.web")
Handler = Callable[[Request, Exception], Awaitable[Response] | Response]

WEB_PREFIXES = ("/console", "/m/", "/static/")
WEB_PATHS = frozenset({"/", "/m"})
API_PREFIXES = ("/v1", "/docs", "/redoc", "/openapi", "/healthz")


CSRF_REASON = "csrf"


def csrf_rejected() -> Forbidden:
    """The error for a form that came without the session's CSRF token."""
    return Forbidden("The form's security token is missing or wrong.", reason=CSRF_REASON)


class SignInRequired(Exception):
    """The page needs a signed-in staff member; the handler redirects to the sign-in form."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


#: What an error means, in words a visitor understands (by error code).
MESSAGES: dict[str, str] = {
    "validation_error": N_("Please check what you entered."),
    "bad_request": N_("The request was not understood."),
    "not_found": N_("We could not find what you were looking for."),
    "method_not_allowed": N_("This page cannot be used that way."),
    "insufficient_points": N_("There are not enough points for this."),
    "hold_not_active": N_("This reservation is no longer active."),
    "idempotency_conflict": N_("This form was already submitted with other values."),
    "idempotency_key_required": N_("The request is missing its idempotency key."),
    "member_frozen": N_("This member is frozen."),
    "member_merged": N_("This member was merged into another member."),
    "referral_refused": N_("This referral cannot be accepted."),
    "duplicate_reference": N_("This reference was already used."),
    "already_reversed": N_("This was already reversed."),
    "not_reversible": N_("This cannot be reversed."),
    "identity_conflict": N_("This identity belongs to another member."),
    "conflict": N_("Something changed meanwhile. Reload the page and try again."),
    "unauthorized": N_("Please sign in."),
    "forbidden": N_("You are not allowed to do this."),
    "payment_mismatch": N_("The payment does not match the price of the membership."),
    "not_eligible": N_("This member is not eligible for this plan."),
    "membership_not_active": N_("This paid membership is not active."),
    "refund_exceeds_payment": N_("The refund is more than what is left of the payment."),
    "sold_out": N_("This item is sold out."),
    "limit_reached": N_("You have bought as many of this item as allowed."),
    "sale_not_open": N_("This item is not on sale now."),
    "order_refunded": N_("This order was refunded."),
    "invalid_transition": N_("This order cannot do that now."),
    "not_available": N_("This is not available yet."),
    "insufficient_growth": N_("There is not enough growth value for this."),
    "family_limit_exceeded": N_("This is more than the member may still spend this month."),
    "family_full": N_("This family has no room for another member."),
    "already_in_family": N_("This member is already in a family."),
    "invitation_not_pending": N_("There is no pending invitation."),
    "family_dissolved": N_("This family was dissolved."),
    "adjustment_too_large": N_("This adjustment is larger than any adjustment may be."),
    "own_request": N_("Another staff member must decide on your own request."),
    "not_an_approver": N_("Your role does not approve adjustment requests."),
    "request_not_pending": N_("This request was already decided."),
    "request_expired": N_(
        "This request expired before anyone decided on it: it can no longer be approved or "
        "rejected. File a new one if the adjustment is still needed."
    ),
    "would_lock_out": N_("This would lock you or every administrator out of the console."),
    "rate_limited": N_("Too many attempts in a short time. Wait a minute and try again."),
    "unknown_namespace": N_("The programme does not declare this kind of identity."),
    "unknown_partner": N_("There is no such partner."),
    "unknown_purpose": N_("There is no such consent purpose."),
    "webhook_target_refused": N_("Tally will not send webhooks to this address."),
    "unknown_event_type": N_("There is no such webhook event type."),
    "payload_too_large": N_("What was sent is too large."),
    "not_family_owner": N_("Only the family's owner can do this."),
    "not_invitee": N_("Only the invited member can answer this invitation."),
    "not_family_member": N_("This member is not in this family."),
    "not_member_itself": N_("Only the member concerned can do this."),
    "csrf_failed": N_("This form has expired. Reload the page and try again."),
    "internal_error": N_("Something went wrong on our side. Nothing was changed."),
}
TITLES: dict[int, str] = {
    400: N_("Please check your input"),
    401: N_("Please sign in"),
    403: N_("Not allowed"),
    404: N_("Page not found"),
    405: N_("Not available"),
    409: N_("Could not be completed"),
    422: N_("Please check your input"),
    500: N_("Something went wrong"),
}
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
}


def code_of(error: TallyError) -> str:
    """The message key of an error (a refused CSRF token has its own)."""
    return "csrf_failed" if error.extra.get("reason") == CSRF_REASON else error.code


def message_for(request: Request, error: TallyError) -> str:
    """The translated, friendly message of a Tally error."""
    return gettext(request, MESSAGES.get(code_of(error), MESSAGES["bad_request"]))


def is_page_request(request: Request) -> bool:
    """Whether a request belongs to the pages (HTML errors) rather than the API."""
    path = request.url.path
    if path in WEB_PATHS or path.startswith(WEB_PREFIXES):
        return True
    if path.startswith(API_PREFIXES):
        return False
    return "text/html" in request.headers.get("accept", "")


def area_of(request: Request) -> str:
    """``console``, ``member`` or ``site``: decides the way back from an error page."""
    path = request.url.path
    if path.startswith("/console"):
        return "console"
    if path == "/m" or path.startswith("/m/"):
        return "member"
    return "site"


def home_of(area: str) -> str:
    """Where "back to the start" leads from an error in ``area``."""
    return "/m" if area == "member" else "/console"


def error_page(request: Request, status: int, code: str, detail: str | None = None) -> Response:
    """The error page (or, for htmx, its message block)."""
    area = area_of(request)
    context: dict[str, Any] = {
        "status": status,
        "title": gettext(request, TITLES.get(status, TITLES[400])),
        "message": gettext(request, MESSAGES.get(code, MESSAGES["bad_request"])),
        # Staff see the technical detail too; members never do.
        "detail": detail if area == "console" else None,
        "area": area,
        "home_url": home_of(area),
        # Language links reload the same address, except after a form post.
        "page_url": None if request.method in {"GET", "HEAD"} else home_of(area),
    }
    block = "content" if is_htmx(request) else None
    return render(request, "errors/error.html", context, status=status, block=block)


def install_error_pages(app: FastAPI) -> None:
    """Route page errors to HTML, leaving the API's problem+json handlers for everything else."""
    original: dict[Any, Handler] = dict(app.exception_handlers)

    def delegate(key: Any, request: Request, exc: Exception) -> Awaitable[Response] | Response:
        handler = original.get(key)
        if handler is None:
            raise exc
        return handler(request, exc)

    async def on_tally_error(request: Request, exc: Exception) -> Response:
        if not is_page_request(request):
            return await _awaited(delegate(TallyError, request, exc))
        assert isinstance(exc, TallyError)
        return error_page(request, exc.status, code_of(exc), exc.detail)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        if not is_page_request(request):
            return await _awaited(delegate(HTTPException, request, exc))
        assert isinstance(exc, HTTPException)
        code = HTTP_CODES.get(exc.status_code, "bad_request")
        status = exc.status_code if exc.status_code in TITLES else 400
        return error_page(request, status, code)

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        if not is_page_request(request):
            return await _awaited(delegate(RequestValidationError, request, exc))
        assert isinstance(exc, RequestValidationError)
        # A malformed id in a page address is a page that does not exist.
        in_path = any(error.get("loc", ("",))[0] == "path" for error in exc.errors())
        return error_page(
            request, 404 if in_path else 400, "not_found" if in_path else "bad_request"
        )

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        if not is_page_request(request):
            return await _awaited(delegate(Exception, request, exc))
        log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        try:
            return error_page(request, 500, "internal_error")
        except Exception:  # the page itself failed: fall back to the plain handler
            return await _awaited(delegate(Exception, request, exc))

    async def on_sign_in_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInRequired)
        target = f"/console/sign-in?next={_quote(exc.next_url)}"
        if is_htmx(request):
            return Response(status_code=204, headers={"HX-Redirect": target})
        return redirect(request, target)

    app.add_exception_handler(TallyError, on_tally_error)
    app.add_exception_handler(HTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(Exception, on_unexpected)
    app.add_exception_handler(SignInRequired, on_sign_in_required)


def _quote(url: str) -> str:
    return quote(url, safe="/")


async def _awaited(result: Awaitable[Response] | Response) -> Response:
    if isinstance(result, Response):
        return result
    return await result
