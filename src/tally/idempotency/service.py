"""Idempotent replay: the first response to a key is stored and returned to every retry."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import bindparam, insert, select
from sqlalchemy.orm import Session

from tally.db.base import table_of
from tally.errors import IdempotencyConflict, ValidationFailed
from tally.idempotency.models import IdempotencyRecord
from tally.kit.clock import utcnow

MAX_KEY_LENGTH = 255
_records = table_of(IdempotencyRecord)
_FIND = select(_records.c.request_hash, _records.c.status_code, _records.c.response_body).where(
    _records.c.principal == bindparam("p"), _records.c.key == bindparam("k")
)
_INSERT = insert(_records)


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
    record = session.connection().execute(_FIND, {"p": principal, "k": key}).one_or_none()
    if record is None:
        return None
    if record[0] != fingerprint:
        raise IdempotencyConflict("This Idempotency-Key was used for a different request.")
    return Stored(record[1], record[2])


def remember(
    session: Session, principal: str, key: str, fingerprint: str, status_code: int, body: str
) -> None:
    """Store the response in the same transaction as the change it describes."""
    session.connection().execute(
        _INSERT,
        {
            "principal": principal,
            "key": key,
            "request_hash": fingerprint,
            "status_code": status_code,
            "response_body": body,
            "created_at": utcnow(),
        },
    )
