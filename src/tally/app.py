"""The ASGI application: partner API, operator console and member pages in one process."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import datetime

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse

from tally.api import auctions as auctions_api
from tally.api import campaigns as campaigns_api
from tally.api import consents as consents_api
from tally.api import coupons as coupons_api
from tally.api import engagement as engagement_api
from tally.api import events as events_api
from tally.api import families as families_api
from tally.api import ledger as ledger_api
from tally.api import mall as mall_api
from tally.api import member_links as member_links_api
from tally.api import members as members_api
from tally.api import memberships as memberships_api
from tally.api import offers as offers_api
from tally.api import partners as partners_api
from tally.api import status as status_api
from tally.api import tiers as tiers_api
from tally.api import webhooks as webhooks_api
from tally.api import writes as api_writes
from tally.api.fastlane import FastLane
from tally.api.intake import Intake
from tally.api.openapi import install as install_openapi
from tally.api.problems import (
    handle_data_error,
    handle_http_error,
    handle_tally_error,
    handle_unexpected,
    handle_validation_error,
)
from tally.config import Settings, get_settings
from tally.db.checkpointer import Checkpointer
from tally.db.engine import build_engine
from tally.db.raw import DATA_ERRORS
from tally.db.session import Database
from tally.errors import TallyError
from tally.kit.clock import utcnow
from tally.programme.runtime import ProgrammeCache
from tally.scheduler import Deliverer, Scheduler
from tally.web.setup import install_web
from tally.webhooks.service import system_resolver
from tally.writer.lines import Lines

API_DESCRIPTION = """
Tally's partner API. Authenticate with `Authorization: Bearer <api key>`; every write takes an
`Idempotency-Key` header. Errors are RFC 9457 problem documents with a stable `code`.
"""


def _app_clock(app: FastAPI) -> datetime:
    clock = getattr(app.state, "clock", None)
    return clock() if clock is not None else utcnow()


def create_app(settings: Settings | None = None, db: Database | None = None) -> FastAPI:
    """Build the application for ``settings`` (the environment's by default)."""
    settings = settings or get_settings()
    database = db or Database(build_engine(settings.database_url))
    # The cache switches to a scheduled version by the app's clock (``app.state.clock`` when a
    # test injects one), read late so that an injected clock takes effect at once.
    programme = ProgrammeCache(
        settings, settings.programme_refresh_seconds, clock=lambda: _app_clock(app)
    )
    # SQLite writes one transaction at a time: one database thread per process is enough.
    executor = (
        None
        if database.dialect == "sqlite"
        else ThreadPoolExecutor(max_workers=8, thread_name_prefix="tally-db")
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Everything loaded so far lives as long as the process: keep the collector from walking
        # it again and again (a full collection of it paused requests for over 100 ms).
        gc.collect()
        gc.freeze()
        checkpointer = None
        if database.file_path is not None:
            checkpointer = Checkpointer(database.file_path)
            checkpointer.start()
        scheduler = None
        if settings.job_interval_seconds:
            scheduler = Scheduler(database, settings, programme, settings.job_interval_seconds)
            scheduler.start()
        deliverer = None
        if settings.job_interval_seconds and settings.webhook_poll_seconds:
            deliverer = Deliverer(database, settings, programme, settings.webhook_poll_seconds)
            deliverer.start()
        yield
        if deliverer is not None:
            deliverer.stop()
        if scheduler is not None:
            scheduler.stop()
        if checkpointer is not None:
            checkpointer.stop()
        if executor is not None:
            executor.shutdown(wait=True)

    app = FastAPI(
        title="Tally",
        version="0.1.0",
        description=API_DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # /docs is served below from Tally's own static files: no CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.secret = settings.resolved_secret()
    app.state.programme = programme
    app.state.db = database
    app.state.executor = executor
    app.state.group_commit = api_writes.group_commit(
        database, executor, settings, programme, app.state.secret
    )
    # PostgreSQL: the orders of a flash sale's item are written in a line per item (ADR 29).
    app.state.lines = None if executor is None else Lines(app.state.group_commit.writer, executor)
    app.state.webhook_resolver = system_resolver  # tests resolve names their own way

    app.add_exception_handler(TallyError, handle_tally_error)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
    app.add_exception_handler(HTTPException, handle_http_error)
    for data_error in DATA_ERRORS:
        app.add_exception_handler(data_error, handle_data_error)
    app.add_exception_handler(Exception, handle_unexpected)

    app.include_router(members_api.router)
    app.include_router(ledger_api.router)
    app.include_router(member_links_api.router)
    app.include_router(status_api.router)
    app.include_router(tiers_api.router)
    app.include_router(memberships_api.router)
    app.include_router(mall_api.router)
    app.include_router(families_api.router)
    app.include_router(consents_api.router)
    app.include_router(webhooks_api.router)
    app.include_router(partners_api.router)
    app.include_router(events_api.router)
    app.include_router(campaigns_api.router)
    app.include_router(engagement_api.router)
    app.include_router(coupons_api.router)
    app.include_router(auctions_api.router)
    app.include_router(offers_api.router)
    install_web(app)
    app.add_middleware(FastLane, lanes=(*ledger_api.LANES, *events_api.LANES))
    # Outermost: who asks, how large, duplicate JSON keys, before any other look at a request.
    app.add_middleware(Intake, max_body_bytes=settings.max_body_bytes)
    install_openapi(app, settings)

    @app.get("/docs", include_in_schema=False)
    def api_docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Tally API",
            swagger_js_url="/static/vendor/swagger-ui-bundle.js",
            swagger_css_url="/static/vendor/swagger-ui.css",
            swagger_favicon_url="/static/favicon.svg",
        )

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
