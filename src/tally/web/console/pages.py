"""Rendering console pages with their chrome: the staff member, CSRF token and flashes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse

from tally.adjustments import service as adjustment_requests
from tally.api.deps import database
from tally.errors import TallyError
from tally.web.console.auth import Staff, console_session
from tally.web.console.forms import FIELD_MESSAGES
from tally.web.errors import message_for
from tally.web.http import gettext, render
from tally.web.sessions import Flash, now


def page(
    request: Request,
    name: str,
    staff: Staff | None,
    context: Mapping[str, Any],
    *,
    status: int = 200,
    block: str | None = None,
    flashes: list[Flash] | None = None,
) -> HTMLResponse:
    """Render a console page (or one block of it for htmx)."""
    session = console_session(request)
    queued = [] if block is not None else session.pop_flashes()
    full: dict[str, Any] = {
        "staff": staff,
        "pending_adjustments": pending_count(request) if staff and block is None else 0,
        "csrf": session.csrf_token(),
        "flashes": queued + (flashes or []),
        **context,
    }
    return render(request, name, full, status=status, block=block)


def error_flash(request: Request, error: TallyError) -> Flash:
    """A translated error message, with the field at fault when there is one."""
    field = error.extra.get("field")
    if error.code == "validation_error" and field in FIELD_MESSAGES:
        return Flash("error", gettext(request, FIELD_MESSAGES[str(field)]))
    return Flash("error", message_for(request, error))


def flash(request: Request, kind: str, message: str, **params: Any) -> None:
    """Queue a translated message for the next console page."""
    console_session(request).flash(kind, gettext(request, message, **params))


def pending_count(request: Request) -> int:
    """How many adjustment requests await a decision (shown in the navigation)."""
    with database(request).read() as session:
        return adjustment_requests.pending_count(session, now(request))
