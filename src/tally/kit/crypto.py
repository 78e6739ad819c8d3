"""Keyed hashes for secrets and the SHA-256 chain that makes the ledger tamper-evident."""

from __future__ import annotations

import hashlib
import hmac
import secrets

GENESIS_HASH = "0" * 64


def keyed_hash(secret: str, value: str) -> str:
    """HMAC-SHA256 of ``value`` under ``secret``, hex-encoded (used for API keys)."""
    return hmac.new(secret.encode(), value.encode(), hashlib.sha256).hexdigest()


def constant_time_equal(left: str, right: str) -> bool:
    """Compare two strings without leaking where they differ."""
    return hmac.compare_digest(left.encode(), right.encode())


def sha256_hex(data: bytes) -> str:
    """SHA-256 of ``data``, hex-encoded."""
    return hashlib.sha256(data).hexdigest()


def random_token(nbytes: int = 24) -> str:
    """A URL-safe random token."""
    return secrets.token_urlsafe(nbytes)
