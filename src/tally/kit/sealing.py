"""Secrets kept encrypted at rest: AES-256-GCM under a key derived from the app secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_NONCE = 12
_VERSION = "v1"


def _key(app_secret: str, purpose: str) -> bytes:
    """A 256-bit key for ``purpose``, derived from the application secret (HMAC-SHA256)."""
    return hmac.new(
        app_secret.encode(), f"tally.sealing.{purpose}".encode(), hashlib.sha256
    ).digest()


def seal(app_secret: str, purpose: str, plaintext: str) -> str:
    """``plaintext`` encrypted for ``purpose``: ``v1.<base64 nonce + ciphertext + tag>``."""
    nonce = os.urandom(_NONCE)
    sealed = AESGCM(_key(app_secret, purpose)).encrypt(nonce, plaintext.encode(), purpose.encode())
    return f"{_VERSION}.{base64.b64encode(nonce + sealed).decode()}"


def unseal(app_secret: str, purpose: str, token: str) -> str:
    """The plaintext of :func:`seal`; raises ``ValueError`` when it was not sealed so (another
    secret, another purpose, or changed)."""
    version, _, data = token.partition(".")
    if version != _VERSION:
        raise ValueError("not a sealed value")
    raw = base64.b64decode(data)
    try:
        plain = AESGCM(_key(app_secret, purpose)).decrypt(
            raw[:_NONCE], raw[_NONCE:], purpose.encode()
        )
    except Exception as exc:  # cryptography's InvalidTag
        raise ValueError("the sealed value does not open with this secret") from exc
    return plain.decode()
