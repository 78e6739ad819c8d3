"""Signing in to and out of the console (the only console routes open to the public).

A sign-in is throttled per account and per client address (:mod:`tally.throttling`): after a few
failures each attempt must wait longer, then the account or address is locked for a while; the
answer is ``429`` with ``Retry-After``. Every attempt, refused or not, is in the audit log.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query
from starlette.requests import Request
from starlette.responses import Response

from tally.api.deps import database, settings
from tally.audit import service as audit
from tally.audit.domain import Action, staff_actor
from tally.errors import SignInThrottled, Unauthorized
from tally.staff import service as staff_service
from tally.staff.models import StaffUser
from tally.throttling import service as throttling
from tally.web import sessions
from tally.web.console import auth
from tally.web.console.forms import has_control_characters
from tally.web.console.pages import page
from tally.web.errors import csrf_rejected
from tally.web.http import gettext, locale_of, redirect, safe_next, web_of
from tally.web.i18n import N_
from tally.web.sessions import Flash
from tally.web.templating import Formats

#: Routes reachable without signing in. Keep this list short: everything else is staff-only.
public = APIRouter(prefix="/console", include_in_schema=False)
WRONG_CREDENTIALS = N_("Wrong username or password.")
SLOWED = N_("Too many failed sign-ins. Wait %(seconds)s seconds, then try again.")
LOCKED = N_("Too many failed sign-ins. Signing in is locked until %(time)s; try again then.")
MAX_FIELD = 200
MAX_LOGGED_USERNAME = 64


def _next(target: str | None) -> str:
    return safe_next(target, "/console", "/console")


def _form(
    request: Request, username: str, next_url: str | None, status: int, flash: Flash | None
) -> Response:
    return page(
        request,
        "console/sign_in.html",
        None,
        {"next_url": _next(next_url), "username": username},
        status=status,
        flashes=[] if flash is None else [flash],
    )


@public.get("/sign-in")
def sign_in_form(
    request: Request, next_url: Annotated[str | None, Query(alias="next")] = None
) -> Response:
    """The sign-in form (straight to the console when already signed in)."""
    if auth.signed_in_id(request) is not None:
        return redirect(request, _next(next_url))
    return _form(request, "", next_url, 200, None)


def _record_attempt(request: Request, username: str, action: str, **details: object) -> None:
    """Audit an attempt that did not sign in (named after the account when it exists)."""
    with database(request).write() as session:
        staff_id = staff_service.id_of(session, username)
        audit.record(
            session,
            actor="system" if staff_id is None else staff_actor(staff_id),
            action=action,
            details={"username": username[:MAX_LOGGED_USERNAME], **details},
            address=sessions.client_of(request).address,
            now=sessions.now(request),
        )


def _throttled(
    request: Request, username: str, next_url: str, refused: SignInThrottled
) -> Response:
    retry_after = int(refused.extra["retry_after"])
    _record_attempt(
        request,
        username,
        Action.SIGN_IN_THROTTLED,
        retry_after=retry_after,
        locked=refused.extra["locked"],
    )
    if refused.extra["locked"]:
        formats = Formats(locale_of(request), web_of(request).renderer.zone)
        text = gettext(request, LOCKED, time=formats.moment(refused.extra["retry_at"]))
    else:
        text = gettext(request, SLOWED, seconds=retry_after)
    response = _form(request, username, next_url, 429, Flash("error", text))
    response.headers["Retry-After"] = str(retry_after)
    return response


def _authenticate(request: Request, username: str, password: str) -> StaffUser | None:
    if has_control_characters(username):
        return None
    try:
        with database(request).read() as session:
            return staff_service.authenticate(session, username, password)
    except Unauthorized:
        return None


@public.post("/sign-in")
def sign_in(
    request: Request,
    username: Annotated[str, Form(max_length=MAX_FIELD)] = "",
    password: Annotated[str, Form(max_length=MAX_FIELD)] = "",
    csrf: Annotated[str, Form(max_length=MAX_FIELD)] = "",
    next_url: Annotated[str, Form(alias="next", max_length=2000)] = "/console",
) -> Response:
    """Check the credentials (argon2), within the throttle, and start a server session."""
    if not auth.console_session(request).csrf_matches(csrf):
        raise csrf_rejected()
    db = database(request)
    address = sessions.client_of(request).address
    throttles = throttling.throttles_for(settings(request))
    try:
        with db.write() as session:
            throttling.admit(session, throttles.keys(username, address), sessions.now(request))
    except SignInThrottled as refused:
        return _throttled(request, username, next_url, refused)
    user = _authenticate(request, username, password)
    if user is None:
        _record_attempt(request, username, Action.SIGN_IN_FAILED)
        return _form(
            request, username, next_url, 401, Flash("error", gettext(request, WRONG_CREDENTIALS))
        )
    with db.write() as session:
        throttling.succeeded(session, username, address)
        auth.sign_in(request, session, user)
    return redirect(request, _next(next_url))


@public.post("/sign-out")
def sign_out(request: Request, csrf: Annotated[str, Form(max_length=MAX_FIELD)] = "") -> Response:
    """End the session everywhere (a form post with the CSRF token, so no other site can)."""
    if not auth.console_session(request).csrf_matches(csrf):
        raise csrf_rejected()
    staff = auth.signed_in(request)
    if staff is not None:
        auth.sign_out(request, staff)
    else:
        auth.console_session(request).clear()
    auth.console_session(request).flash("success", gettext(request, N_("You are signed out.")))
    return redirect(request, "/console/sign-in")
