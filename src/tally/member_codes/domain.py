"""Pure rules of member codes: their shape, lifetime, digest and the bound on failed lookups.

A code is 16 random decimal digits (10^16 values), valid for 60 seconds. A partner may name an
unknown or expired code at most :data:`MISSES_PER_WINDOW` times a minute; with ``L`` codes live
at once, a key guessing at that rate finds one with probability about
``MISSES_PER_WINDOW * L / 10^16`` a minute (under 2 * 10^-9 with a million members showing a
code at the same moment).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from hashlib import sha256

DIGITS = 16
LIFETIME = timedelta(seconds=60)
# The page asks for a fresh code this long before the one it shows expires.
RENEW_BEFORE = timedelta(seconds=15)
WINDOW = timedelta(minutes=1)
MISSES_PER_WINDOW = 30


def new_code(below: Callable[[int], int] = secrets.randbelow) -> str:
    """A fresh code: :data:`DIGITS` digits drawn from a cryptographic source."""
    return str(below(10**DIGITS)).zfill(DIGITS)


def is_well_formed(text: str) -> bool:
    """Whether ``text`` has the shape of a code (exactly :data:`DIGITS` ASCII digits)."""
    return len(text) == DIGITS and text.isascii() and text.isdigit()


def digest(code: str, secret: str) -> str:
    """The keyed digest a code is stored and found by (the code itself is never stored)."""
    return hmac.new(secret.encode(), f"member-code:{code}".encode(), sha256).hexdigest()


def grouped(code: str) -> str:
    """The code in groups of four digits, as shown under the barcode."""
    return " ".join(code[i : i + 4] for i in range(0, len(code), 4))


def window_of(now: datetime) -> datetime:
    """The start of the minute that counts the misses at ``now``."""
    return now.replace(second=0, microsecond=0)


def retry_after(now: datetime) -> int:
    """Whole seconds until the next window (at least 1)."""
    left = window_of(now) + WINDOW - now
    return max(1, int(left.total_seconds() + 0.999999))


def renew_in(expires_at: datetime, now: datetime) -> int:
    """Seconds until a page showing a code valid until ``expires_at`` asks for a fresh one."""
    return max(1, int((expires_at - RENEW_BEFORE - now).total_seconds()))
