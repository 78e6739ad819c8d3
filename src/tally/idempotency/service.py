"""Idempotent replay: the first response to a key is stored and returned to every retry."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy.orm import Session

from tally.db.raw import Raw
from tally.errors import IdempotencyConflict, ValidationFailed
from tally.kit.clock import utcnow

MAX_KEY_LENGTH = 255
_FIND = Raw(
    "SELECT request_hash, status_code, response_body FROM idempotency_records"
    " WHERE principal = :p AND key = :k"
)
_INSERT = Raw(
    "INSERT INTO idempotency_records (principal, key, request_hash, status_code, response_body,"
    " created_at) VALUES (:principal, :key, :request_hash, :status_code, :response_body,"
    " :created_at)"
)


@dataclass(frozen=True, slots=True)
class Stored:
    status_code: int
    body: str


def request_hash(method: str, path: str, body: bytes) -> str:
    """Fingerprint of a request: the same key may only ever be used for the same request."""
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()


def check_key(key: str) -> None:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise ValidationFailed(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters.",
            field="Idempotency-Key",
        )


def replay(session: Session, principal: str, key: str, fingerprint: str) -> Stored | None:
    """The stored response for this key, ``None`` if new; a different request is a conflict."""
    record = _FIND.one(session, {"p": principal, "k": key})
    if record is None:
        return None
    if record[0] != fingerprint:
        raise IdempotencyConflict("This Idempotency-Key was used for a different request.")
    return Stored(record[1], record[2])


def remember(
    session: Session, principal: str, key: str, fingerprint: str, status_code: int, body: str
) -> None:
    """Store the response in the same transaction as the change it describes."""
    _INSERT.execute(
        session,
        {
            "principal": principal,
            "key": key,
            "request_hash": fingerprint,
            "status_code": status_code,
            "response_body": body,
            "created_at": utcnow(),
        },
    )
