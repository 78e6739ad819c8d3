"""Signing in to and out of the console (the only console routes open to the public)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query
from starlette.requests import Request
from starlette.responses import Response

from tally.api.deps import database
from tally.errors import Unauthorized
from tally.staff import service as staff_service
from tally.web.console import auth
from tally.web.console.forms import has_control_characters
from tally.web.console.pages import page
from tally.web.errors import csrf_rejected
from tally.web.http import gettext, redirect, safe_next
from tally.web.i18n import N_
from tally.web.sessions import Flash

#: Routes reachable without signing in. Keep this list short: everything else is staff-only.
public = APIRouter(prefix="/console", include_in_schema=False)
WRONG_CREDENTIALS = N_("Wrong username or password.")
MAX_FIELD = 200


def _next(target: str | None) -> str:
    return safe_next(target, "/console", "/console")


@public.get("/sign-in")
def sign_in_form(
    request: Request, next_url: Annotated[str | None, Query(alias="next")] = None
) -> Response:
    """The sign-in form (straight to the console when already signed in)."""
    if auth.signed_in_id(request) is not None:
        return redirect(request, _next(next_url))
    return page(
        request, "console/sign_in.html", None, {"next_url": _next(next_url), "username": ""}
    )


@public.post("/sign-in")
def sign_in(
    request: Request,
    username: Annotated[str, Form(max_length=MAX_FIELD)] = "",
    password: Annotated[str, Form(max_length=MAX_FIELD)] = "",
    csrf: Annotated[str, Form(max_length=MAX_FIELD)] = "",
    next_url: Annotated[str, Form(alias="next", max_length=2000)] = "/console",
) -> Response:
    """Check the credentials (argon2) and start a session."""
    if not auth.console_session(request).csrf_matches(csrf):
        raise csrf_rejected()
    try:
        if has_control_characters(username):
            raise Unauthorized("A username has no control characters.")
        with database(request).read() as session:
            user = staff_service.authenticate(session, username, password)
    except Unauthorized:
        return page(
            request,
            "console/sign_in.html",
            None,
            {"next_url": _next(next_url), "username": username},
            status=401,
            flashes=[Flash("error", gettext(request, WRONG_CREDENTIALS))],
        )
    auth.sign_in(request, user)
    return redirect(request, _next(next_url))


@public.post("/sign-out")
def sign_out(request: Request, csrf: Annotated[str, Form(max_length=MAX_FIELD)] = "") -> Response:
    """End the session (a form post with the CSRF token, so no other site can sign you out)."""
    if not auth.console_session(request).csrf_matches(csrf):
        raise csrf_rejected()
    auth.sign_out(request)
    auth.console_session(request).flash("success", gettext(request, N_("You are signed out.")))
    return redirect(request, "/console/sign-in")
