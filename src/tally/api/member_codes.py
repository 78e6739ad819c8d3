"""``GET /v1/members/lookup?code=…``: the member showing a member code at a checkout."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from tally.access.domain import Caller
from tally.api import schemas, views
from tally.api.deps import Reader, database, in_executor, programme
from tally.config import Settings
from tally.errors import NotFound
from tally.kit.clock import utcnow
from tally.member_codes import service as codes
from tally.privacy import service as privacy

CODE_DESCRIPTION = (
    "A member code the member's pages show (16 digits, valid for 60 seconds; spaces allowed) — "
    "instead of `namespace` and `id`. An unknown or expired code, or a frozen or merged "
    "member's, is `not_found`; more than 30 such lookups a minute by one partner are "
    "`rate_limited` (429, with `Retry-After`). A code that resolves lets the calling partner "
    "redeem and hold the member's points for the checkout window (`TALLY_CHECKOUT_WINDOW_SECONDS`, "
    "30 minutes by default)."
)


async def lookup(read: Reader, code: str) -> schemas.Member:
    """The member whose valid code ``code`` is, as the calling partner may see it. A lookup
    that resolves records the presentation (the partner may spend the member's points for the
    checkout window); one that names no valid code is counted against the partner. Either is
    written in a transaction of its own."""
    secret: str = read.request.app.state.secret
    typed = code.replace(" ", "").replace("-", "")
    now = utcnow()
    caller: list[Caller] = []

    def work(session: Session, found: Caller) -> schemas.Member:
        caller.append(found)
        member_id = codes.resolve(session, found.partner_id, typed, now, secret)
        return views.member(session, member_id, found, programme(read.request, session))

    try:
        found = await read.run(work)
    except NotFound:
        if caller:
            await in_executor(read.request, lambda: _count_miss(read, caller[0].partner_id))
        raise
    await in_executor(read.request, lambda: _present(read, found.id, caller[0].partner_id, now))
    return found


def _present(read: Reader, member_id: int, partner_id: int, now: datetime) -> None:
    settings: Settings = read.request.app.state.settings
    window = timedelta(seconds=settings.checkout_window_seconds)
    with database(read.request).write() as session:
        privacy.presented(session, member_id, partner_id, now, window)


def _count_miss(read: Reader, partner_id: int) -> None:
    with database(read.request).write() as session:
        codes.count_miss(session, partner_id, utcnow())
