"""The member code page (``/m/code``): a rotating code, as a barcode and a QR code, that a
partner's checkout scans to identify the member; htmx fetches a fresh one before it expires."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import segno
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from tally.api.deps import database
from tally.errors import TallyError
from tally.kit.barcodes import code128c_svg
from tally.member_codes import domain as code_rules
from tally.member_codes import service as codes
from tally.web import sessions, tier_views
from tally.web.errors import message_for
from tally.web.http import gettext, is_htmx, programme_in_force, render
from tally.web.i18n import N_
from tally.web.member import auth

router = APIRouter(prefix="/m", include_in_schema=False)
PAGE_URL = "/m/code"
FRESH_URL = "/m/code/fresh"
BARCODE_LABEL = N_("Barcode of your member code")


@dataclass(frozen=True, slots=True)
class ShownCode:
    """A code as the page shows it: digits, drawings, and when to fetch the next one."""

    grouped: str
    barcode_svg: str
    qr_svg: str
    valid_until: str  # the expiry's time of day in the programme's zone
    renew_in: int


def _shown(request: Request, member_id: int, now: datetime) -> ShownCode | TallyError:
    """A fresh code for the member, or why it has none (a frozen member shows none)."""
    try:
        with database(request).write() as session:
            issued = codes.issue(session, member_id, now, request.app.state.secret)
    except TallyError as error:
        return error
    qr = segno.make_qr(issued.code, error="m")
    return ShownCode(
        grouped=issued.grouped,
        barcode_svg=code128c_svg(issued.code, label=gettext(request, BARCODE_LABEL)),
        qr_svg=qr.svg_inline(scale=1, border=4, omitsize=True, title=issued.grouped),
        valid_until=issued.expires_at.astimezone(request.app.state.programme.zone).strftime(
            "%H:%M:%S"
        ),
        renew_in=code_rules.renew_in(issued.expires_at, now),
    )


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/code")
def member_code(request: Request) -> Response:
    """The member's current code; the page renews it by itself before it expires."""
    member_id = auth.signed_in_member(request)
    if member_id is None:
        return render(
            request, "member/welcome.html", {"reason": "signed_out", "page_url": "/m", "csrf": ""}
        )
    shown = _shown(request, member_id, sessions.now(request))
    with database(request).read() as session:
        theme = tier_views.theme_of(session, member_id, programme_in_force(request, session))
    context = {
        "code": shown if isinstance(shown, ShownCode) else None,
        "refusal": message_for(request, shown) if isinstance(shown, TallyError) else None,
        "fresh_url": FRESH_URL,
        "theme": theme,
        "page_url": PAGE_URL,
        "csrf": auth.member_session(request).csrf_token(),
    }
    block = "code" if is_htmx(request) else None
    return _no_store(render(request, "member/code.html", context, block=block))


@router.get("/code/fresh")
def fresh_code(request: Request) -> Response:
    """The code block with a fresh code (htmx asks for it before the shown one expires)."""
    member_id = auth.signed_in_member(request)
    if member_id is None:  # signed out meanwhile: the page reloads to say so
        response = Response(status_code=204)
        response.headers["HX-Refresh"] = "true"
        return response
    shown = _shown(request, member_id, sessions.now(request))
    context = {
        "code": shown if isinstance(shown, ShownCode) else None,
        "refusal": message_for(request, shown) if isinstance(shown, TallyError) else None,
        "fresh_url": FRESH_URL,
    }
    return _no_store(render(request, "member/code.html", context, block="code"))
