"""Opaque cursors for keyset pagination."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import UTC, datetime, timedelta

from tally.errors import ValidationFailed

MAX_POSITION = 2**63
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def encode_cursor(position: int) -> str:
    """Encode a keyset position as an opaque cursor."""
    return base64.urlsafe_b64encode(f"p:{position}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """Decode a cursor made by :func:`encode_cursor`; malformed cursors are a validation error."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, number = raw.partition(":")
        if prefix != "p" or not number.isdigit() or int(number) >= MAX_POSITION:
            raise ValueError(raw)
        return int(number)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise ValidationFailed("The cursor is malformed.", field="cursor") from exc


def encode_moment_cursor(at: datetime, key: uuid.UUID) -> str:
    """Encode a keyset position of a moment and an id (rows newest first) as an opaque cursor."""
    micros = (at - EPOCH) // timedelta(microseconds=1)
    return base64.urlsafe_b64encode(f"t:{micros}:{key.hex}".encode()).decode().rstrip("=")


def decode_moment_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """Decode a cursor made by :func:`encode_moment_cursor`; malformed cursors are a validation
    error."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, micros, key = raw.split(":")
        if prefix != "t" or not micros.isdigit() or int(micros) >= MAX_POSITION:
            raise ValueError(raw)
        return EPOCH + timedelta(microseconds=int(micros)), uuid.UUID(hex=key)
    except (ValueError, OverflowError, OSError, binascii.Error, UnicodeDecodeError) as exc:
        raise ValidationFailed("The cursor is malformed.", field="cursor") from exc
