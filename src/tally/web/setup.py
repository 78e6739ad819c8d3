"""Installing the web layer (operator console, member pages, static files) into the app."""

from __future__ import annotations

from collections.abc import Callable
from zoneinfo import ZoneInfo

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

from tally.programme.runtime import ProgrammeCache
from tally.web import i18n, labels
from tally.web.console import router as console
from tally.web.errors import install_error_pages
from tally.web.http import Web, redirect
from tally.web.member import auctions_page as member_auctions
from tally.web.member import code_page as member_code
from tally.web.member import coupons_page as member_coupons
from tally.web.member import engagement_page as member_engagement
from tally.web.member import mall_pages as member_mall
from tally.web.member import privacy as member_privacy
from tally.web.member import routes as member
from tally.web.templating import STATIC_DIR, STATIC_PREFIX, Renderer


def build_web(zone: Callable[[], ZoneInfo]) -> Web:
    """Compile the catalogs and prepare one template environment per language."""
    translations = i18n.load_translations()
    renderer = Renderer(translations, zone, extra_globals={"labels": labels.ALL})
    return Web(renderer=renderer, translations=translations)


def install_web(app: FastAPI) -> None:
    """Add the console, the member pages, ``/static`` and HTML error pages to ``app``.

    Call after the API's exception handlers are installed: page requests get HTML, the API
    keeps its problem+json.
    """
    programme: ProgrammeCache = app.state.programme
    app.state.web = build_web(lambda: programme.zone)
    app.mount(STATIC_PREFIX, StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(console.public)
    app.include_router(console.staff_only)
    app.include_router(member.router)
    app.include_router(member_code.router)
    app.include_router(member_privacy.router)
    app.include_router(member_engagement.router)
    app.include_router(member_coupons.router)
    app.include_router(member_mall.router)
    app.include_router(member_auctions.router)

    @app.get("/", include_in_schema=False)
    def root(request: Request) -> Response:
        return redirect(request, "/console", status=307)

    install_error_pages(app)
