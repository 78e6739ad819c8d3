"""Console forms that create something are submitted once.

A form that creates (a partner, an API key, a staff account, an adjustment) carries a one-time
token bound to the server-side session. Like the CSRF token it is derived, not stored when the
page is shown: a random nonce and an HMAC, under the application secret, of the session's token,
the form's purpose and the nonce — so a token from another session, another form or made up is
refused ("this form has expired"). It is *consumed* on the server, in the same transaction as the
creation: the first thing that transaction does is claim ``(console-session:<id>, form:<purpose>:
<nonce>)`` in the idempotency records (a unique constraint), and the last is to store what was
created. A second submit of the same form — a double click, a refresh, the browser's back button
and submit again, even both at once — finds the claim, or waits on it and then fails on the
constraint, and creates nothing: it is told what the first one did. A form the server refused
(its transaction rolled back) is not consumed and may be corrected and sent again.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from hashlib import sha256
from typing import Any, TypeVar

from sqlalchemy.orm import Session
from starlette.requests import Request

from tally.db.raw import INTEGRITY_ERRORS
from tally.db.session import Database
from tally.errors import ConcurrentChange, ValidationFailed
from tally.idempotency import service as idempotency
from tally.kit.crypto import constant_time_equal
from tally.web.console.auth import Staff, console_session

T = TypeVar("T")
#: The form field that carries the token (the adjustment form's name for it, kept).
FIELD = "nonce"
#: The purpose of the member page's adjustment form.
ADJUST_FORM = "adjust"
_NONCE_CHARS = 16
_MAC_CHARS = 32
TOKEN_PATTERN = re.compile(rf"^([A-Za-z0-9_-]{{{_NONCE_CHARS}}})\.([0-9a-f]{{{_MAC_CHARS}}})$")
_CLAIMED = "{}"  # the stored answer until the creation is known (the same transaction)


def _mac(request: Request, purpose: str, nonce: str) -> str:
    browser = console_session(request)
    session_token = browser.token or browser.renew()
    secret: str = request.app.state.secret
    message = f"form:{browser.spec.name}:{session_token}:{purpose}:{nonce}".encode()
    return hmac.new(secret.encode(), message, sha256).hexdigest()[:_MAC_CHARS]


def issue(request: Request, purpose: str) -> str:
    """A fresh one-time token for a ``purpose`` form on this page (nothing is stored)."""
    nonce = secrets.token_urlsafe(12)
    return f"{nonce}.{_mac(request, purpose, nonce)}"


@dataclass(frozen=True, slots=True)
class Form:
    """A submitted one-time form: the session it belongs to and its key."""

    principal: str
    key: str
    token: str


def checked(request: Request, staff: Staff, purpose: str, token: str) -> Form:
    """The submitted ``token`` of a ``purpose`` form, if this session issued it; otherwise a
    ``validation_error`` on the field (the page says the form expired: reload it)."""
    found = TOKEN_PATTERN.match(token.strip())
    if found is None or staff.session_id is None:
        raise ValidationFailed("The form token is missing or malformed.", field=FIELD)
    nonce, mac = found.groups()
    if not constant_time_equal(_mac(request, purpose, nonce), mac):
        raise ValidationFailed("The form token belongs to another form or session.", field=FIELD)
    return Form(f"console-session:{staff.session_id}", f"form:{purpose}:{nonce}", found.group(0))


@dataclass(frozen=True, slots=True)
class Done:
    """The form was already submitted: what its first submit created (``{}`` if unknown)."""

    answer: dict[str, Any]


def _stored(session: Session, form: Form) -> Done | None:
    record = idempotency.records(session, form.principal, [form.key]).get(form.key)
    if record is None:
        return None
    answer = json.loads(record[1].body)
    return Done(answer if isinstance(answer, dict) else {})


def run(db: Database, form: Form, work: Callable[[Session], tuple[T, dict[str, Any]]]) -> T | Done:
    """Do ``work`` (which returns its result and what to tell a second submit) once per form,
    in one transaction that claims the form first; :class:`Done` when it was already done."""
    try:
        with db.write() as session:
            previous = _stored(session, form)
            if previous is not None:
                return previous
            fingerprint = idempotency.request_hash("FORM", form.key, b"")
            idempotency.remember(session, form.principal, form.key, fingerprint, 202, _CLAIMED)
            result, answer = work(session)
            body = json.dumps(answer, sort_keys=True, default=str)
            idempotency.settle(session, form.principal, form.key, 201, body)
            return result
    except INTEGRITY_ERRORS as exc:
        # A concurrent submit of the same form claimed it first (this one waited on the claim,
        # or on what that one created): it is done, once.
        with db.read() as session:
            previous = _stored(session, form)
        if previous is None:  # another form created the same thing meanwhile (a code, a name)
            raise ConcurrentChange("Something changed meanwhile; reload and try again.") from exc
        return previous
