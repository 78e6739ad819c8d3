"""Ids in API paths, parsed strictly: an id is written one way only.

A member, family or adjustment request id is ASCII digits without a sign, spaces, underscores
or leading zeros (``/v1/members/+1``, ``01``, ``1_000`` or full-width ``１`` are not member 1); a
hold, transaction, membership or event id is a UUID in its canonical lower-case form. Anything
else names nothing: the API answers ``404 not_found`` (see
:func:`tally.api.problems.handle_validation_error`).
The OpenAPI schema states the same bounds and pattern.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import Path
from pydantic import BeforeValidator
from starlette.convertors import Convertor, register_url_convertor

MAX_ID = 2**62
_DIGITS = re.compile(r"[1-9][0-9]{0,18}")
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


def _strict_digits(value: Any) -> Any:
    """Refuse a path id written any other way than plain ASCII digits."""
    if isinstance(value, str) and _DIGITS.fullmatch(value) is None:
        raise ValueError("an id is written in ASCII digits, without sign or leading zeros")
    return value


StrictDigits = BeforeValidator(_strict_digits)
MemberId = Annotated[int, Path(gt=0, le=MAX_ID, description="The member's Tally id."), StrictDigits]
FamilyId = Annotated[int, Path(gt=0, le=MAX_ID, description="The family's id."), StrictDigits]
AdjustmentRequestId = Annotated[
    int, Path(gt=0, le=MAX_ID, description="The adjustment request's id."), StrictDigits
]
HoldId = Annotated[str, Path(pattern=UUID_PATTERN, description="The hold's id (a UUID).")]
TransactionId = Annotated[
    str, Path(pattern=UUID_PATTERN, description="The transaction's id (a UUID).")
]
MembershipId = Annotated[
    str, Path(pattern=UUID_PATTERN, description="The membership's id (a UUID).")
]
AuctionId = Annotated[str, Path(pattern=UUID_PATTERN, description="The auction's id (a UUID).")]
EventId = Annotated[str, Path(pattern=UUID_PATTERN, description="Tally's id of the stored event.")]


class CanonicalUuid(Convertor[str]):
    """A path segment that is a canonical lower-case UUID, kept as text: a route ``{x:id}``
    matches ids only, so a sibling path (``/v1/events/batch``) is not also a GET of an id."""

    regex = UUID_PATTERN.strip("^$")

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("id", CanonicalUuid())
