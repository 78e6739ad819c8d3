"""Parsing of console form fields; a bad field is a ``validation_error`` naming the field."""

from __future__ import annotations

import re
from datetime import date

from tally.errors import ValidationFailed
from tally.kit import text as text_rule
from tally.web.i18n import N_

MAX_REASON = 500

#: What to tell the operator about each field that failed.
FIELD_MESSAGES: dict[str, str] = {
    "points": N_("Enter a whole number of points other than zero, like 100 or -50."),
    "reason": N_("Give a reason (up to 500 characters)."),
    "member": N_("Enter the Tally id of the other member."),
    "member_id": N_("Enter a member's Tally id, like 1024."),
    "nonce": N_("This form has expired. Reload the page and try again."),
    "confirm": N_("The amount typed to confirm does not match. Type it again."),
    "username": N_("A username is 2 to 64 lower-case letters, digits, '.', '-' or '_'."),
    "password": N_("A password has at least 10 characters."),
    "role": N_("Choose a role."),
    "code": N_("A partner code is up to 64 letters, digits, '-' or '_'."),
    "expires": N_("A validity date is a day after today, like 2027-06-30, for credited points."),
    "expires_at": N_("A validity date is a day after today, like 2027-06-30, for credited points."),
}


def has_control_characters(text: str) -> bool:
    """Whether ``text`` holds a character the text rule refuses (:mod:`tally.kit.text`: control,
    format and bidirectional characters), tabs and line breaks aside."""
    return text_rule.unsafe_character(text.translate(_LAYOUT)) is not None


_LAYOUT = str.maketrans("", "", "\t\r\n")  # a textarea's own characters


def points(text: str) -> int:
    """``"+1,000"`` → 1000, ``"−50"`` → -50; zero and non-numbers are refused."""
    cleaned = text.strip().replace("\u2212", "-").replace(",", "").replace(" ", "")
    if not re.fullmatch(r"[+-]?\d{1,12}", cleaned) or int(cleaned) == 0:
        raise ValidationFailed("points must be a non-zero whole number.", field="points")
    return int(cleaned)


def confirmed(text: str, amount: int) -> bool:
    """Whether the amount re-typed to confirm (``text``) is ``amount``; ``False`` when nothing
    was typed, a ``validation_error`` on ``confirm`` when something else was."""
    if not text.strip():
        return False
    try:
        typed = points(text)
    except ValidationFailed:
        typed = None
    if typed != amount:
        raise ValidationFailed("The confirmation does not match the amount.", field="confirm")
    return True


def expiry(text: str, amount: int) -> date | None:
    """The last day credited points stay valid (``2027-06-30``), or ``None`` for the
    programme's validity; a debit takes no date."""
    cleaned = text.strip()
    if not cleaned:
        return None
    try:
        day = date.fromisoformat(cleaned)
    except ValueError:
        day = None
    if day is None or len(cleaned) != 10 or amount < 0:
        raise ValidationFailed("A validity date is YYYY-MM-DD, for a credit.", field="expires")
    return day


def reason(text: str) -> str:
    """A required, trimmed reason of at most :data:`MAX_REASON` characters."""
    cleaned = text.strip()
    if not cleaned or len(cleaned) > MAX_REASON or has_control_characters(cleaned):
        raise ValidationFailed(
            f"A reason of 1 to {MAX_REASON} characters is required.", field="reason"
        )
    return cleaned


def member_id(text: str) -> int:
    """A Tally member id."""
    cleaned = text.strip().lstrip("#")
    if not cleaned.isdigit() or not 0 < int(cleaned) <= 2**62:
        raise ValidationFailed("Enter a member id.", field="member")
    return int(cleaned)
