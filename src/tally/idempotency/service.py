"""Idempotent replay: the first response to a key is stored and returned to every retry."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from tally.db.raw import Bulk, Raw
from tally.errors import IdempotencyConflict, ValidationFailed
from tally.idempotency.models import IdempotencyRecord
from tally.kit import text
from tally.kit.clock import utcnow

MAX_KEY_LENGTH = 255
_FIND = Raw(
    "SELECT key, request_hash, status_code, response_body FROM idempotency_records"
    " WHERE principal = :p AND key = ANY(:ks)"
)
_INSERT = Bulk.insert(
    "idempotency_records",
    {
        "principal": "text",
        "key": "text",
        "request_hash": "text",
        "status_code": "integer",
        "response_body": "text",
        "created_at": "timestamptz",
    },
)


@dataclass(frozen=True, slots=True)
class Stored:
    status_code: int
    body: str


@dataclass(frozen=True, slots=True)
class Answer:
    """The response to remember for a key."""

    principal: str
    key: str
    fingerprint: str
    status_code: int
    body: str


def request_hash(method: str, path: str, body: bytes) -> str:
    """Fingerprint of a request: the same key may only ever be used for the same request."""
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()


def check_key(key: str) -> None:
    """Refuse a key that is empty, longer than :data:`MAX_KEY_LENGTH` or carries a character
    :mod:`tally.kit.text` refuses (controls, format and bidirectional characters)."""
    char = text.unsafe_character(key)
    if not key or len(key) > MAX_KEY_LENGTH or char is not None:
        found = "" if char is None else f"; found {text.describe(char)}"
        raise ValidationFailed(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters, none of them control, "
            f"format or bidirectional characters{found}.",
            field="Idempotency-Key",
        )


def replay(session: Session, principal: str, key: str, fingerprint: str) -> Stored | None:
    """The stored response for this key, ``None`` if new; a different request is a conflict."""
    record = records(session, principal, [key]).get(key)
    return None if record is None else check(record, fingerprint)


def records(session: Session, principal: str, keys: Sequence[str]) -> dict[str, tuple[str, Stored]]:
    """The stored ``(request fingerprint, response)`` of those of ``keys`` already used."""
    rows = _FIND.all(session, {"p": principal, "ks": sorted(set(keys))})
    return {key: (fingerprint, Stored(status, body)) for key, fingerprint, status, body in rows}


def check(record: tuple[str, Stored], fingerprint: str) -> Stored:
    """A stored response, if it answers the same request; a different request is a conflict."""
    if record[0] != fingerprint:
        raise IdempotencyConflict("This Idempotency-Key was used for a different request.")
    return record[1]


def remember(
    session: Session, principal: str, key: str, fingerprint: str, status_code: int, body: str
) -> None:
    """Store the response in the same transaction as the change it describes."""
    remember_all(session, [Answer(principal, key, fingerprint, status_code, body)])


PURGE_CHUNK = 5000
# The oldest records first, by primary key (ids grow with time, so the walk stops at the first
# chunk that is not all old): each chunk one bounded statement in a short transaction.
_PURGE = Raw(
    "DELETE FROM idempotency_records WHERE id IN (SELECT id FROM idempotency_records"
    " WHERE created_at < :before ORDER BY id LIMIT :n)"
)
_PURGEABLE = Raw("SELECT count(*) FROM idempotency_records WHERE created_at < :before")


def purge(
    unit_of_work: Callable[[], AbstractContextManager[Session]],
    before: datetime,
    chunk: int = PURGE_CHUNK,
) -> int:
    """Delete the records made before ``before``, ``chunk`` at a time, each chunk in its own
    transaction; how many were deleted. Safe to re-run and beside itself (a record deleted
    twice is deleted once)."""
    purged = 0
    while True:
        with unit_of_work() as session:
            deleted = int(_PURGE.execute(session, {"before": before, "n": chunk}).rowcount)
        purged += deleted
        if deleted < chunk:
            return purged


def purgeable(session: Session, before: datetime) -> int:
    """How many records :func:`purge` would delete (``--dry-run``)."""
    row = _PURGEABLE.one(session, {"before": before})
    return int(row[0]) if row else 0


def remember_all(session: Session, answers: Sequence[Answer]) -> None:
    """Store many responses at once, in the transaction of the changes they describe."""
    now = utcnow()
    _INSERT.execute(
        session,
        [
            {
                "principal": answer.principal,
                "key": answer.key,
                "request_hash": answer.fingerprint,
                "status_code": answer.status_code,
                "response_body": answer.body,
                "created_at": now,
            }
            for answer in answers
        ],
    )


def settle(session: Session, principal: str, key: str, status_code: int, body: str) -> None:
    """Replace the response stored for a key this transaction claimed first (:func:`remember`
    before the change, so that a concurrent request with the same key waits on the key's unique
    constraint instead of doing the change too), once the change is known."""
    session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.principal == principal, IdempotencyRecord.key == key)
        .values(status_code=status_code, response_body=body)
        .execution_options(synchronize_session=False)
    )
