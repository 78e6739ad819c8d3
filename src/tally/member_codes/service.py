"""Member codes: issue a short-lived code to a member, resolve one a partner scanned. Never
commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from tally.errors import NotFound, RateLimited
from tally.member_codes import domain, repository
from tally.members import service as members

ATTEMPTS = 8  # fresh draws before giving up on a free code (a collision is a 1-in-10^10 event)


@dataclass(frozen=True, slots=True)
class IssuedCode:
    """A code as shown to its member, once: it is not stored and cannot be shown again."""

    code: str
    expires_at: datetime

    @property
    def grouped(self) -> str:
        return domain.grouped(self.code)


def issue(session: Session, member_id: int, now: datetime, secret: str) -> IssuedCode:
    """A fresh code for an active member (``member_frozen``/``member_merged`` otherwise), valid
    for :data:`~tally.member_codes.domain.LIFETIME`; the member's previous code stays valid to
    its own expiry, older ones go, and so does every expired code."""
    members.require_usable(session, member_id)
    repository.forget_expired(session, now)
    expires_at = now + domain.LIFETIME
    for _attempt in range(ATTEMPTS):
        code = domain.new_code()
        if repository.insert_code(session, domain.digest(code, secret), member_id, expires_at, now):
            repository.keep_latest_two(session, member_id)
            return IssuedCode(code, expires_at)
    raise RuntimeError("no free member code after several draws")


def resolve(session: Session, partner_id: int, code: str, now: datetime, secret: str) -> int:
    """The active member showing ``code``; ``not_found`` for a malformed, unknown or expired
    code or a frozen or merged member's, ``rate_limited`` once the partner has named too many
    such codes this minute (count a miss with :func:`count_miss`, in a transaction of its own)."""
    require_lookups_left(session, partner_id, now)
    found = (
        repository.active_member_of(session, domain.digest(code, secret), now)
        if domain.is_well_formed(code)
        else None
    )
    if found is None:
        raise NotFound("No member shows this code (it is unknown or has expired).")
    return found


def require_lookups_left(session: Session, partner_id: int, now: datetime) -> None:
    """``rate_limited`` once ``partner_id`` has named too many unknown codes this minute —
    member codes and referral codes alike share the budget, so neither can be probed."""
    if repository.misses(session, partner_id, domain.window_of(now)) >= domain.MISSES_PER_WINDOW:
        raise RateLimited(
            "Too many lookups of unknown codes; retry later.",
            retry_after=domain.retry_after(now),
        )


def count_miss(session: Session, partner_id: int, now: datetime) -> None:
    """Count a lookup of ``partner_id`` that named no valid code (a member code or a
    referral code)."""
    repository.count_miss(session, partner_id, domain.window_of(now))
