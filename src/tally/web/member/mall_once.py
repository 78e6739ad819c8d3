"""The mall's buy and cancel forms are submitted once.

Like the console's one-time forms (:mod:`tally.web.console.once`), a form carries a token
derived when the page is shown — a nonce and an HMAC, under the application secret, of the
member session's token, the form's purpose and the nonce — and the submit claims
``(member:<id>, form:<purpose>:<nonce>)`` in the idempotency records in the transaction that
places (or cancels) the order. A second submit of the same form (a double tap, a refresh, back
and submit again) finds the claim and is shown the order the first one placed.
"""

from __future__ import annotations

import hmac
import secrets
from hashlib import sha256

from starlette.requests import Request

from tally.errors import ValidationFailed
from tally.kit.crypto import constant_time_equal
from tally.web.console.once import TOKEN_PATTERN, Form
from tally.web.member.auth import member_session

FIELD = "nonce"
BUY_FORM = "mall-order"
CANCEL_FORM = "mall-cancel"


def _mac(request: Request, purpose: str, nonce: str) -> str:
    browser = member_session(request)
    session_token = browser.token or browser.renew()
    secret: str = request.app.state.secret
    message = f"form:{browser.spec.name}:{session_token}:{purpose}:{nonce}".encode()
    return hmac.new(secret.encode(), message, sha256).hexdigest()[:32]


def issue(request: Request, purpose: str) -> str:
    """A fresh one-time token for a ``purpose`` form (nothing is stored)."""
    nonce = secrets.token_urlsafe(12)
    return f"{nonce}.{_mac(request, purpose, nonce)}"


def checked(request: Request, member_id: int, purpose: str, token: str) -> Form:
    """The submitted ``token`` of a ``purpose`` form if this session issued it; otherwise a
    ``validation_error`` on ``nonce`` (the page says the form expired)."""
    found = TOKEN_PATTERN.match(token.strip())
    if found is None:
        raise ValidationFailed("The form token is missing or malformed.", field=FIELD)
    nonce, mac = found.groups()
    if not constant_time_equal(_mac(request, purpose, nonce), mac):
        raise ValidationFailed("The form token belongs to another form or session.", field=FIELD)
    return Form(f"member:{member_id}", f"form:{purpose}:{nonce}", found.group(0))
