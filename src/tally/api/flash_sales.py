"""The fast answers of a flash sale under a burst (ADR 29): an order of an item on the process's
board (:mod:`tally.mall.flash`) is first checked in one read transaction — the API key, its
scope and relationship, the Idempotency-Key, then the item as committed — and a sure refusal
(``sold_out``, ``sale_not_open``, ``limit_reached``) is answered there, writing nothing.

Such an answer is not stored for the key (nothing is written), like a refusal that says
"retry": the same key sent again is checked again, and may buy once stock is back. A key used
before goes to the writer, which replays its stored answer.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from tally.access.domain import require_operator_channel, require_scope
from tally.api.credentials import authenticated
from tally.api.deps import Mutation, caller_for, clock_now, database, in_executor
from tally.errors import LimitReached, SaleNotOpen, SoldOut, TallyError
from tally.flows import flash_sales
from tally.idempotency import service as idempotency
from tally.kit import text
from tally.mall.flash import BOARD
from tally.partners.service import Scope
from tally.writer.submission import principal_of

#: The refusals that put an item on the board: they come from the item, not the member.
HOT_REFUSALS = (SoldOut, SaleNotOpen, LimitReached)


async def quick_refusal(
    write: Mutation, member_id: int, item_code: str, quantity: int
) -> TallyError | None:
    """The refusal a hot item's order meets for sure, found reading only; ``None`` when the
    item is not on the board, the key was used before, or the writer must decide."""
    if not BOARD.is_marked(item_code):
        return None
    request = write.request

    def blocking() -> TallyError | None:
        with database(request).read() as session:
            return _check(session, write, member_id, item_code, quantity)

    return await in_executor(request, blocking)


def _check(
    session: Session, write: Mutation, member_id: int, item_code: str, quantity: int
) -> TallyError | None:
    request = write.request
    caller = caller_for(session, write.token, request.app.state.secret, request.app.state.programme)
    authenticated(request)
    require_scope(caller, Scope.MALL)
    require_operator_channel(caller, "place mall orders for members")
    idempotency.check_key(text.header_text(write.key))
    if idempotency.records(session, principal_of(caller), [write.key]):
        return None  # the writer replays (or refuses) what the key answered first
    return flash_sales.quick_refusal(session, member_id, item_code, quantity, clock_now(request))


def note_refusal(item_code: str, error: TallyError) -> None:
    """Put the item on the board when the writer refused its order for a reason of the item."""
    if isinstance(error, HOT_REFUSALS):
        BOARD.mark(item_code)
