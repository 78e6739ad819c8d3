"""Signed-cookie sessions (itsdangerous): who is signed in, a CSRF token and one-shot flashes.

A session is a small dict signed with the application secret; it is written back only when it
changed. The console and the member pages use separate cookies with separate paths and salts.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from tally.kit.crypto import constant_time_equal

FLASH_LIMIT = 4


@dataclass(frozen=True, slots=True)
class CookieSpec:
    """Where a session cookie lives and how long a signature stays valid (seconds)."""

    name: str
    path: str
    salt: str
    max_age: int


CONSOLE = CookieSpec("tally_console", "/console", "tally.console.session", 12 * 3600)
MEMBER = CookieSpec("tally_member", "/m", "tally.member.session", 2 * 3600)


@dataclass(frozen=True, slots=True)
class Flash:
    """A message shown once on the next page: ``kind`` is ``success`` or ``error``."""

    kind: str
    text: str


class SignedSession:
    """The decoded contents of one session cookie; tracks whether it must be written back."""

    def __init__(self, spec: CookieSpec, data: dict[str, Any]) -> None:
        self.spec = spec
        self.data = data
        self.dirty = False

    def get(self, key: str) -> Any:
        """A value, or ``None``."""
        return self.data.get(key)

    def set(self, key: str, value: Any) -> None:
        """Store a value."""
        self.data[key] = value
        self.dirty = True

    def clear(self) -> None:
        """Forget everything (signing out)."""
        self.data = {}
        self.dirty = True

    def csrf_token(self) -> str:
        """The session's CSRF token, created on first use."""
        token = self.data.get("csrf")
        if not isinstance(token, str) or not token:
            token = secrets.token_urlsafe(24)
            self.set("csrf", token)
        return token

    def rotate_csrf(self) -> None:
        """Issue a new CSRF token (after signing in)."""
        self.set("csrf", secrets.token_urlsafe(24))

    def csrf_matches(self, submitted: str | None) -> bool:
        """Whether a submitted form token is this session's token."""
        token = self.data.get("csrf")
        return bool(token and submitted) and constant_time_equal(str(token), str(submitted))

    def flash(self, kind: str, text: str) -> None:
        """Queue a message for the next page."""
        queued = [*self.data.get("flash", []), [kind, text]][-FLASH_LIMIT:]
        self.set("flash", queued)

    def pop_flashes(self) -> list[Flash]:
        """The queued messages, removed from the session."""
        queued = self.data.pop("flash", None)
        if not queued:
            return []
        self.dirty = True
        return [Flash(str(kind), str(text)) for kind, text in queued]


def _cache(request: Request) -> dict[str, SignedSession]:
    cache: dict[str, SignedSession] | None = getattr(request.state, "tally_sessions", None)
    if cache is None:
        cache = {}
        request.state.tally_sessions = cache
    return cache


def _serializer(request: Request, spec: CookieSpec) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(request.app.state.secret, salt=spec.salt)


def load(request: Request, spec: CookieSpec) -> SignedSession:
    """The request's session for ``spec`` (empty when absent, forged or expired); cached."""
    cache = _cache(request)
    if spec.name in cache:
        return cache[spec.name]
    data: dict[str, Any] = {}
    raw = request.cookies.get(spec.name)
    if raw:
        try:
            decoded = _serializer(request, spec).loads(raw, max_age=spec.max_age)
        except BadSignature:
            decoded = None
        if isinstance(decoded, dict):
            data = decoded
    session = SignedSession(spec, data)
    cache[spec.name] = session
    return session


def save(request: Request, response: Response) -> None:
    """Write every changed session of this request to ``response``."""
    cache = _cache(request)
    secure = request.url.scheme == "https"
    for session in cache.values():
        if not session.dirty:
            continue
        spec = session.spec
        if not session.data:
            response.delete_cookie(
                spec.name, path=spec.path, httponly=True, samesite="lax", secure=secure
            )
            continue
        response.set_cookie(
            spec.name,
            _serializer(request, spec).dumps(session.data),
            max_age=spec.max_age,
            path=spec.path,
            httponly=True,
            samesite="lax",
            secure=secure,
        )
