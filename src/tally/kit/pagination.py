"""Opaque cursors for keyset pagination."""

from __future__ import annotations

import base64
import binascii

from tally.errors import ValidationFailed

MAX_POSITION = 2**63


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
