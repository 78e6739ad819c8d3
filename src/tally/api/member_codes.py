"""``GET /v1/members/lookup?code=…``: the member showing a member code at a checkout."""

from __future__ import annotations

from sqlalchemy.orm import Session

from tally.access.domain import Caller
from tally.api import schemas, views
from tally.api.deps import Reader, database, in_executor, programme
from tally.errors import NotFound
from tally.kit.clock import utcnow
from tally.member_codes import service as codes

CODE_DESCRIPTION = (
    "A member code the member's pages show (16 digits, valid for 60 seconds; spaces allowed) — "
    "instead of `namespace` and `id`. An unknown or expired code, or a frozen or merged "
    "member's, is `not_found`; more than 30 such lookups a minute by one partner are "
    "`rate_limited` (429, with `Retry-After`)."
)


async def lookup(read: Reader, code: str) -> schemas.Member:
    """The member whose valid code ``code`` is, as the calling partner may see it; a lookup
    that names no valid code is counted against the partner (in a transaction of its own)."""
    secret: str = read.request.app.state.secret
    typed = code.replace(" ", "").replace("-", "")
    now = utcnow()
    caller: list[Caller] = []

    def work(session: Session, found: Caller) -> schemas.Member:
        caller.append(found)
        member_id = codes.resolve(session, found.partner_id, typed, now, secret)
        return views.member(session, member_id, found, programme(read.request, session))

    try:
        return await read.run(work)
    except NotFound:
        if caller:
            await in_executor(read.request, lambda: _count_miss(read, caller[0].partner_id))
        raise


def _count_miss(read: Reader, partner_id: int) -> None:
    with database(read.request).write() as session:
        codes.count_miss(session, partner_id, utcnow())
