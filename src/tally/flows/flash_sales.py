"""The read-only check a hot item's order meets first (ADR 29): answered from the item and the
member's count as committed, writing and locking nothing.

It refuses only what the order flow would refuse for the same state — the item's window or its
sale's (``sale_not_open``), the sale's stock gone (``sold_out``), the member's sale limit
reached (``limit_reached``) — and otherwise lets the order go to the writer, which decides under
its conditional updates. Item-level answers come before member-level ones (an unknown member
asking for a sold-out item hears ``sold_out``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from tally.errors import LimitReached, SoldOut, TallyError
from tally.flows import mall_orders
from tally.mall import domain, repository
from tally.mall import service as catalog
from tally.mall.flash import BOARD


def quick_refusal(
    session: Session, member_id: int, item_code: str, quantity: int, now: datetime
) -> TallyError | None:
    """The refusal the order of ``quantity`` of ``item_code`` for ``member_id`` meets for sure
    at ``now``, or ``None`` (the writer decides; the item leaves the board when nothing about
    it refuses)."""
    item = repository.item_by_code(session, item_code)
    if item is None:
        BOARD.clear(item_code)
        return None
    try:
        mall_orders.check_window(item, now)
    except TallyError as error:
        return error
    sale = catalog.sale_of(item)
    if sale is None or item.sale_stock is None:
        BOARD.clear(item_code)
        return None
    if item.sale_stock == 0:
        return SoldOut(f"Item {item.code} is sold out.", item=item.code)
    if sale.per_member_limit is not None:
        window = domain.sale_window(sale.starts_at)
        bought = repository.counted(session, item.id, member_id, window)
        if bought + quantity > sale.per_member_limit:
            return LimitReached(
                f"The member may buy {sale.per_member_limit} of {item.code} ({window}); "
                f"it has {bought}.",
                item=item.code,
                limit=sale.per_member_limit,
                bought=bought,
            )
    if item.sale_stock < quantity:
        return None  # fewer left than asked: the writer answers (sold_out) with the others
    BOARD.clear(item_code)
    return None
