"""The browser's side of server-side sessions: a cookie that holds only a random token.

Who is signed in lives in a ``web_sessions`` row found by the token's SHA-256 (see
:mod:`tally.sessions`); the cookie carries nothing else. The CSRF token is an HMAC of the session
token under the application secret, so it is bound to the session and changes with it, and
nothing needs storing. Flashes (one-shot messages) ride in a second, signed cookie that names the
session token's hash and is ignored under any other session. A visitor who is not signed in gets
a token too (with no row) the first time a form needs a CSRF token; signing in always issues a
new token.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime
from hashlib import sha256
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from tally.kit.clock import utcnow
from tally.kit.crypto import constant_time_equal
from tally.sessions.domain import is_token, new_token, token_hash
from tally.sessions.models import SessionKind
from tally.sessions.service import Client, lifetime_of

FLASH_LIMIT = 4
FLASH_MAX_AGE = 600
FLASH_BINDING = 16


@dataclass(frozen=True, slots=True)
class CookieSpec:
    """Where a session cookie lives and which kind of session it names."""

    name: str
    path: str
    kind: SessionKind

    @property
    def flash_name(self) -> str:
        """The cookie of this session's flashes."""
        return f"{self.name}_flash"

    @property
    def max_age(self) -> int:
        """Seconds the browser keeps the cookie (the session's absolute lifetime)."""
        return int(lifetime_of(self.kind).absolute.total_seconds())


CONSOLE = CookieSpec("tally_console", "/console", SessionKind.CONSOLE)
MEMBER = CookieSpec("tally_member", "/m", SessionKind.MEMBER)


@dataclass(frozen=True, slots=True)
class Flash:
    """A message shown once on the next page: ``kind`` is ``success`` or ``error``."""

    kind: str
    text: str


def now(request: Request) -> datetime:
    """The current time for the web layer: ``app.state.clock`` when a test injected one."""
    clock = getattr(request.app.state, "clock", None)
    return clock() if clock is not None else utcnow()


def client_of(request: Request) -> Client:
    """The client's address and user agent."""
    address = request.client.host if request.client is not None else None
    return Client(address, request.headers.get("user-agent"))


class BrowserSession:
    """One request's view of a session cookie: its token, CSRF token and flashes."""

    def __init__(self, spec: CookieSpec, secret: str, token: str | None, flashes: list[Flash]):
        self.spec = spec
        self._secret = secret
        self.token = token
        self._flashes = flashes
        self.token_changed = False
        self.flashes_changed = False
        #: What the auth layer found for this token (cached for the request).
        self.resolved: Any = None
        self.is_resolved = False

    def _ensure_token(self) -> str:
        if self.token is None:
            self.renew()
        assert self.token is not None
        return self.token

    def renew(self, token: str | None = None) -> str:
        """Use a new token (``token``, or a fresh one): signing in, a visitor's first form."""
        self.token = token or new_token()
        self.token_changed = True
        self.resolved, self.is_resolved = None, False
        return self.token

    def clear(self) -> None:
        """Forget the token (signing out); queued flashes move to the next token."""
        self.token = None
        self.token_changed = True
        self.resolved, self.is_resolved = None, False

    def csrf_token(self) -> str:
        """The CSRF token of this session (issuing a visitor's token when there is none)."""
        token = self._ensure_token()
        message = f"csrf:{self.spec.name}:{token}".encode()
        return hmac.new(self._secret.encode(), message, sha256).hexdigest()

    def csrf_matches(self, submitted: str | None) -> bool:
        """Whether a submitted form token is this session's token."""
        if self.token is None or not submitted:
            return False
        return constant_time_equal(self.csrf_token(), str(submitted))

    def flash(self, kind: str, text: str) -> None:
        """Queue a message for the next page."""
        self._ensure_token()
        self._flashes = [*self._flashes, Flash(kind, text)][-FLASH_LIMIT:]
        self.flashes_changed = True

    def pop_flashes(self) -> list[Flash]:
        """The queued messages, removed from the session."""
        queued, self._flashes = self._flashes, []
        if queued:
            self.flashes_changed = True
        return queued

    @property
    def queued(self) -> list[Flash]:
        """The messages waiting for the next page."""
        return list(self._flashes)


def _cache(request: Request) -> dict[str, BrowserSession]:
    cache: dict[str, BrowserSession] | None = getattr(request.state, "tally_sessions", None)
    if cache is None:
        cache = {}
        request.state.tally_sessions = cache
    return cache


def _flash_serializer(secret: str, spec: CookieSpec) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=f"tally.{spec.kind.value}.flash")


def _binding(token: str) -> str:
    return token_hash(token)[:FLASH_BINDING]


def _read_flashes(request: Request, spec: CookieSpec, secret: str, token: str) -> list[Flash]:
    raw = request.cookies.get(spec.flash_name)
    if not raw:
        return []
    try:
        payload = _flash_serializer(secret, spec).loads(raw, max_age=FLASH_MAX_AGE)
    except BadSignature:
        return []
    if not isinstance(payload, dict) or payload.get("s") != _binding(token):
        return []
    found = payload.get("f")
    if not isinstance(found, list):
        return []
    return [Flash(str(item[0]), str(item[1])) for item in found if len(item) == 2]


def load(request: Request, spec: CookieSpec) -> BrowserSession:
    """The request's session cookie for ``spec`` (no token when absent or malformed); cached."""
    cache = _cache(request)
    if spec.name in cache:
        return cache[spec.name]
    secret: str = request.app.state.secret
    raw = request.cookies.get(spec.name)
    token = raw if is_token(raw) else None
    flashes = [] if token is None else _read_flashes(request, spec, secret, token)
    session = BrowserSession(spec, secret, token, flashes)
    cache[spec.name] = session
    return session


def save(request: Request, response: Response) -> None:
    """Write every changed session cookie (and flash cookie) of this request to ``response``."""
    secure = request.url.scheme == "https"
    options: dict[str, Any] = {"httponly": True, "samesite": "lax", "secure": secure}
    for session in _cache(request).values():
        spec = session.spec
        if session.token_changed:
            if session.token is None:
                response.delete_cookie(spec.name, path=spec.path, **options)
            else:
                response.set_cookie(
                    spec.name, session.token, max_age=spec.max_age, path=spec.path, **options
                )
        if not (session.flashes_changed or session.token_changed):
            continue
        if session.token is None or not session.queued:
            if request.cookies.get(spec.flash_name):
                response.delete_cookie(spec.flash_name, path=spec.path, **options)
            continue
        payload = {
            "s": _binding(session.token),
            "f": [[flash.kind, flash.text] for flash in session.queued],
        }
        response.set_cookie(
            spec.flash_name,
            _flash_serializer(request.app.state.secret, spec).dumps(payload),
            max_age=FLASH_MAX_AGE,
            path=spec.path,
            **options,
        )
