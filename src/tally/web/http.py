"""Responses of the web pages: render in the visitor's language, redirect, security headers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from babel.support import Translations
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from tally.api.deps import settings
from tally.programme.domain import Programme
from tally.programme.runtime import ProgrammeCache
from tally.web import i18n, sessions
from tally.web.templating import Renderer

LANG_COOKIE_MAX_AGE = 365 * 24 * 3600
LANGUAGE_NAMES = {"zh-CN": "中文", "en": "English"}
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


@dataclass(frozen=True, slots=True)
class Web:
    """What the web layer keeps on ``app.state.web``."""

    renderer: Renderer
    translations: Mapping[str, Translations]


@dataclass(frozen=True, slots=True)
class LanguageLink:
    code: str
    name: str
    url: str
    is_current: bool


def web_of(request: Request) -> Web:
    """The web layer of the running application."""
    web: Web = request.app.state.web
    return web


def is_htmx(request: Request) -> bool:
    """Whether htmx (not a full page load) made the request."""
    return (
        request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


def _requested_locale(request: Request) -> str | None:
    return i18n.normalise(request.query_params.get(i18n.LANG_PARAM))


def locale_of(request: Request) -> str:
    """The visitor's language: ``?lang=``, the ``lang`` cookie, Accept-Language, the default."""
    return i18n.negotiate(
        request.query_params.get(i18n.LANG_PARAM),
        request.cookies.get(i18n.LANG_COOKIE),
        request.headers.get("accept-language"),
        settings(request).default_locale,
    )


def gettext(request: Request, message: str, **params: Any) -> str:
    """Translate ``message`` into the visitor's language (``%(name)s`` placeholders)."""
    text = web_of(request).translations[locale_of(request)].gettext(message)
    return text % params if params else text


def programme_in_force(request: Request, session: Session) -> Programme:
    """The programme in force (the app's cache, refreshed when stale)."""
    cache: ProgrammeCache = request.app.state.programme
    return cache.get(session)


def currency_name(request: Request) -> str:
    """The points currency's name in the visitor's language (AI豆 / AI Beans)."""
    cache: ProgrammeCache = request.app.state.programme
    names = cache.current.currency.names
    return names.en if locale_of(request) == "en" else names.zh_cn


def language_links(request: Request, page_url: str | None = None) -> list[LanguageLink]:
    """Links that show ``page_url`` (the current page by default) in each language."""
    current = locale_of(request)
    if page_url is None:
        path = request.url.path if request.method in {"GET", "HEAD"} else "/"
        query = [(k, v) for k, v in request.query_params.multi_items() if k != i18n.LANG_PARAM]
        page_url = path + (f"?{urlencode(query)}" if query else "")
    joiner = "&" if "?" in page_url else "?"
    return [
        LanguageLink(code, LANGUAGE_NAMES[code], f"{page_url}{joiner}lang={code}", code == current)
        for code in i18n.SUPPORTED
    ]


def render(
    request: Request,
    name: str,
    context: Mapping[str, Any],
    *,
    status: int = 200,
    block: str | None = None,
) -> HTMLResponse:
    """Render a page (or one named block of it) in the visitor's language."""
    locale = locale_of(request)
    full_context: dict[str, Any] = {
        "request": request,
        "html_lang": locale,
        "currency": currency_name(request),
        "languages": language_links(request, context.get("page_url")),
        **context,
    }
    html = web_of(request).renderer.render(locale, name, full_context, block)
    response = HTMLResponse(html, status_code=status)
    finish(request, response)
    return response


def redirect(request: Request, url: str, status: int = 303) -> Response:
    """Redirect (after a form post: 303, so the browser follows with GET)."""
    response = RedirectResponse(url, status_code=status)
    finish(request, response)
    return response


def finish(request: Request, response: Response) -> None:
    """Save changed sessions, remember an explicit language choice, add security headers."""
    sessions.save(request, response)
    chosen = _requested_locale(request)
    if chosen is not None and chosen != i18n.normalise(request.cookies.get(i18n.LANG_COOKIE)):
        response.set_cookie(
            i18n.LANG_COOKIE,
            chosen,
            max_age=LANG_COOKIE_MAX_AGE,
            path="/",
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Cache-Control", "no-store")
    headers.setdefault("Vary", "HX-Request, Cookie, Accept-Language")


def safe_next(target: str | None, prefix: str, default: str) -> str:
    """A local redirect target under ``prefix`` (never another site), else ``default``."""
    if (
        target
        and target.startswith(prefix)
        and not target.startswith("//")
        and "\\" not in target
        and all(ord(char) >= 32 for char in target)
    ):
        return target
    return default
