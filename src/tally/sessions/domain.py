"""Pure rules of web sessions: tokens, their hashes, lifetimes and when a session is live."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from tally.kit.crypto import random_token, sha256_hex

TOKEN_BYTES = 32
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{43}$")
#: How often a session's ``last_seen_at`` is brought up to date (one write a minute at most).
TOUCH_EVERY = timedelta(seconds=60)
MAX_USER_AGENT = 300


@dataclass(frozen=True, slots=True)
class Lifetime:
    """How long a session lasts: at most ``absolute`` after sign-in, ``idle`` without use."""

    absolute: timedelta
    idle: timedelta


CONSOLE_LIFETIME = Lifetime(absolute=timedelta(hours=12), idle=timedelta(hours=1))
MEMBER_LIFETIME = Lifetime(absolute=timedelta(hours=2), idle=timedelta(hours=2))


def new_token() -> str:
    """A fresh random session token (256 bits)."""
    return random_token(TOKEN_BYTES)


def is_token(text: str | None) -> bool:
    """Whether ``text`` has the shape of a session token (anything else is not looked up)."""
    return bool(text) and TOKEN_PATTERN.match(str(text)) is not None


def token_hash(token: str) -> str:
    """What is stored of a token (or of a member link): its SHA-256."""
    return sha256_hex(token.encode())


def is_live(
    *,
    ended_at: datetime | None,
    expires_at: datetime,
    last_seen_at: datetime,
    idle: timedelta,
    now: datetime,
) -> bool:
    """Whether a session may still be used at ``now``: not ended, not expired, not idle too long."""
    return ended_at is None and now < expires_at and now - last_seen_at < idle


def needs_touch(last_seen_at: datetime, now: datetime) -> bool:
    """Whether ``last_seen_at`` is stale enough to be written again."""
    return now - last_seen_at >= TOUCH_EVERY


def short_user_agent(user_agent: str | None) -> str | None:
    """The browser's user agent as stored (trimmed; control characters dropped)."""
    if not user_agent:
        return None
    printable = "".join(char for char in user_agent if char.isprintable())
    return printable[:MAX_USER_AGENT] or None
