"""Pure rules of the audit log: who may appear as an actor, action names, filters."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

ACTOR_PATTERN = re.compile(r"^(?:(staff|partner|member):([1-9][0-9]{0,18})|system)$")
ACTION_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*){0,3}$")
MAX_ACTION = 64
MAX_ADDRESS = 64
MAX_DETAIL_TEXT = 500
PAGE_SIZE = 50


class Action:
    """The actions Tally records (others may be added by any domain; the name is free text)."""

    SIGN_IN = "staff.sign_in"
    SIGN_IN_FAILED = "staff.sign_in_failed"
    SIGN_IN_THROTTLED = "staff.sign_in_throttled"
    SIGN_OUT = "staff.sign_out"
    SESSION_END = "staff.session_end"
    MEMBER_VIEW = "member.view"
    MEMBER_SEARCH = "member.search"
    OPEN_AS_MEMBER = "member.open_as_member"
    FREEZE = "member.freeze"
    UNFREEZE = "member.unfreeze"
    MERGE = "member.merge"
    UNMERGE = "member.unmerge"
    ADJUST = "member.adjust"


#: The actions the console's filter offers, in its order.
KNOWN_ACTIONS: tuple[str, ...] = (
    Action.SIGN_IN,
    Action.SIGN_IN_FAILED,
    Action.SIGN_IN_THROTTLED,
    Action.SIGN_OUT,
    Action.SESSION_END,
    Action.MEMBER_VIEW,
    Action.MEMBER_SEARCH,
    Action.OPEN_AS_MEMBER,
    Action.ADJUST,
    Action.FREEZE,
    Action.UNFREEZE,
    Action.MERGE,
    Action.UNMERGE,
)


def staff_actor(staff_id: int) -> str:
    """The actor string of a staff member."""
    return f"staff:{staff_id}"


def parse_actor(actor: str) -> tuple[str, int | None]:
    """``"staff:7"`` → ``("staff", 7)``, ``"system"`` → ``("system", None)``.

    Raises ``ValueError`` for anything else.
    """
    found = ACTOR_PATTERN.match(actor)
    if found is None:
        raise ValueError(f"not an audit actor: {actor!r}")
    kind, number = found.groups()
    return (kind, int(number)) if kind else ("system", None)


def check_action(action: str) -> str:
    """A dotted lower-case action name such as ``member.freeze``; ``ValueError`` otherwise."""
    if len(action) > MAX_ACTION or not ACTION_PATTERN.match(action):
        raise ValueError(f"not an audit action: {action!r}")
    return action


def clean_address(address: str | None) -> str | None:
    """The client's address, trimmed to what the column holds."""
    if not address:
        return None
    return address[:MAX_ADDRESS]


def clean_details(details: dict[str, object] | None) -> dict[str, Any] | None:
    """Details as JSON-safe values: long texts shortened, other objects turned into text."""
    if not details:
        return None
    return {str(key): _json_value(value) for key, value in details.items()}


def _json_value(value: object) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, list | tuple):
        return [_json_value(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _json_value(item) for key, item in value.items()}
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return text if len(text) <= MAX_DETAIL_TEXT else text[: MAX_DETAIL_TEXT - 1] + "…"


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """What an auditor asks for; ``None`` means any. ``until`` is exclusive."""

    actor: str | None = None
    action: str | None = None
    member_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None

    @property
    def is_empty(self) -> bool:
        """Whether nothing narrows the log."""
        return all(
            value is None
            for value in (self.actor, self.action, self.member_id, self.since, self.until)
        )
