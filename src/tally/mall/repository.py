"""Every query of the rewards mall. Stock, slots, limits and codes change only by conditional
updates whose row count says whether they were had; orders are locked by a named helper."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from tally.db.raw import driver_of, is_sqlite
from tally.mall.domain import FulfilmentStatus, PaymentStatus
from tally.mall.models import Code, Item, LimitCounter, Order, OrderEvent, Slot

# --- Items ------------------------------------------------------------------------------------


def insert_item(session: Session, values: dict[str, Any]) -> Item:
    """A new item (flushed: its id is known)."""
    row = Item(**values)
    session.add(row)
    session.flush()
    return row


def item_by_code(session: Session, code: str) -> Item | None:
    return session.scalar(select(Item).where(Item.code == code))


def item(session: Session, item_id: int) -> Item | None:
    return session.get(Item, item_id)


def items_by_id(session: Session, item_ids: Sequence[int]) -> dict[int, Item]:
    if not item_ids:
        return {}
    rows = session.scalars(select(Item).where(Item.id.in_(sorted(set(item_ids)))))
    return {row.id: row for row in rows}


def lock_item(session: Session, code: str) -> Item | None:
    """An item, locked for the rest of the transaction (``FOR UPDATE``; SQLite's write
    transactions run one at a time) and read after the lock is held."""
    return session.scalar(
        select(Item)
        .where(Item.code == code)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def search_items(
    session: Session,
    *,
    owner: int | None,
    everyone: bool,
    text_query: str | None,
    category: str | None,
    active_only: bool,
    after: int | None,
    limit: int,
) -> list[Item]:
    """Items in id order after ``after``: every owner's when ``everyone``, else those of
    supplier ``owner`` (``None``: the operator's own), matching the lower-cased ``text_query``
    and ``category``."""
    query = select(Item).order_by(Item.id).limit(limit)
    if not everyone:
        query = query.where(
            Item.owner_partner_id.is_(None) if owner is None else Item.owner_partner_id == owner
        )
    if text_query:
        query = query.where(Item.search_text.contains(text_query.lower(), autoescape=True))
    if category:
        query = query.where(Item.categories.contains(f"|{category}|", autoescape=True))
    if active_only:
        query = query.where(Item.is_active.is_(True))
    if after is not None:
        query = query.where(Item.id > after)
    return list(session.scalars(query))


def save_item(session: Session, item_id: int, version: int, values: dict[str, Any]) -> bool:
    """Change an item if it is still at ``version`` (which grows by one)."""
    result = session.execute(
        update(Item)
        .where(Item.id == item_id, Item.version == version)
        .values(**values, version=Item.version + 1)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined,no-any-return]


def take_stock(session: Session, item_id: int, quantity: int) -> bool:
    """Take ``quantity`` of the item's stock if that much is left (unlimited stock always is)."""
    result = session.execute(
        update(Item)
        .where(Item.id == item_id, or_(Item.stock.is_(None), Item.stock >= quantity))
        .values(stock=Item.stock - quantity, sold=Item.sold + quantity)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined,no-any-return]


def put_back_stock(session: Session, item_id: int, quantity: int) -> None:
    """Give ``quantity`` back to the item's stock (an order lapsed, cancelled or refunded)."""
    session.execute(
        update(Item)
        .where(Item.id == item_id)
        .values(stock=Item.stock + quantity, sold=Item.sold - quantity)
        .execution_options(synchronize_session=False)
    )


def take_sale_stock(session: Session, item_id: int, quantity: int) -> bool:
    """Take ``quantity`` of the item's sale stock if that much is left."""
    result = session.execute(
        update(Item)
        .where(Item.id == item_id, or_(Item.sale_stock.is_(None), Item.sale_stock >= quantity))
        .values(sale_stock=Item.sale_stock - quantity, sold=Item.sold + quantity)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined,no-any-return]


def put_back_sale_stock(session: Session, item_id: int, quantity: int) -> None:
    session.execute(
        update(Item)
        .where(Item.id == item_id)
        .values(sale_stock=Item.sale_stock + quantity, sold=Item.sold - quantity)
        .execution_options(synchronize_session=False)
    )


def add_stock(session: Session, item_id: int, quantity: int) -> None:
    """Raise a limited stock by ``quantity`` (codes uploaded to a pool)."""
    session.execute(
        update(Item)
        .where(Item.id == item_id, Item.stock.is_not(None))
        .values(stock=Item.stock + quantity)
        .execution_options(synchronize_session=False)
    )


# --- Slots ------------------------------------------------------------------------------------


def slots_of(session: Session, item_ids: Sequence[int]) -> dict[int, list[Slot]]:
    found: dict[int, list[Slot]] = {}
    if not item_ids:
        return found
    rows = session.scalars(
        select(Slot).where(Slot.item_id.in_(sorted(set(item_ids)))).order_by(Slot.starts_at)
    )
    for row in rows:
        found.setdefault(row.item_id, []).append(row)
    return found


def slot(session: Session, item_id: int, code: str) -> Slot | None:
    return session.scalar(select(Slot).where(Slot.item_id == item_id, Slot.code == code))


def slot_by_id(session: Session, slot_id: int) -> Slot | None:
    return session.get(Slot, slot_id)


def upsert_slot(session: Session, item_id: int, values: dict[str, Any]) -> None:
    """Add a slot, or change a slot's times and capacity (never below what is taken)."""
    row = slot(session, item_id, values["code"])
    if row is None:
        session.add(Slot(item_id=item_id, taken=0, **values))
        session.flush()
        return
    session.execute(
        update(Slot)
        .where(Slot.id == row.id)
        .values(
            starts_at=values["starts_at"],
            ends_at=values["ends_at"],
            capacity=func.max(values["capacity"], Slot.taken)
            if is_sqlite(driver_of(session))
            else func.greatest(values["capacity"], Slot.taken),
        )
        .execution_options(synchronize_session=False)
    )


def take_slot(session: Session, slot_id: int, quantity: int) -> bool:
    """Reserve ``quantity`` places of a slot if that many are free."""
    result = session.execute(
        update(Slot)
        .where(Slot.id == slot_id, Slot.taken + quantity <= Slot.capacity)
        .values(taken=Slot.taken + quantity)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined,no-any-return]


def put_back_slot(session: Session, slot_id: int, quantity: int) -> None:
    session.execute(
        update(Slot)
        .where(Slot.id == slot_id)
        .values(taken=Slot.taken - quantity)
        .execution_options(synchronize_session=False)
    )


# --- Per-member limits ------------------------------------------------------------------------


def count_up(
    session: Session, item_id: int, member_id: int, window: str, quantity: int, limit: int
) -> bool:
    """Count ``quantity`` more units of the item for the member in ``window`` if that keeps
    the count within ``limit``: one conditional upsert (a concurrent buyer waits for the
    row, then sees the count this one left)."""
    if quantity > limit:
        return False
    insert = (sqlite.insert if is_sqlite(driver_of(session)) else postgresql.insert)(LimitCounter)
    table = LimitCounter.__table__
    statement = (
        insert.values(item_id=item_id, member_id=member_id, window=window, count=quantity)
        .on_conflict_do_update(
            index_elements=["item_id", "member_id", "window"],
            set_={"count": table.c.count + quantity},
            where=table.c.count + quantity <= limit,
        )
        .returning(table.c.count)
    )
    return session.execute(statement).first() is not None


def count_down(session: Session, item_id: int, member_id: int, window: str, quantity: int) -> None:
    """Give ``quantity`` units back to the member's count in ``window``."""
    session.execute(
        update(LimitCounter)
        .where(
            LimitCounter.item_id == item_id,
            LimitCounter.member_id == member_id,
            LimitCounter.window == window,
            LimitCounter.count >= quantity,
        )
        .values(count=LimitCounter.count - quantity)
        .execution_options(synchronize_session=False)
    )


def counted(session: Session, item_id: int, member_id: int, window: str) -> int:
    """Units the member has bought of the item in ``window``."""
    value = session.scalar(
        select(LimitCounter.count).where(
            LimitCounter.item_id == item_id,
            LimitCounter.member_id == member_id,
            LimitCounter.window == window,
        )
    )
    return int(value or 0)


# --- Code pools -------------------------------------------------------------------------------


def insert_codes(session: Session, item_id: int, codes: Sequence[str], now: datetime) -> int:
    """Add ``codes`` to the item's pool; codes it has already are passed over. How many were
    added."""
    if not codes:
        return 0
    insert = (sqlite.insert if is_sqlite(driver_of(session)) else postgresql.insert)(Code)
    statement = insert.on_conflict_do_nothing(index_elements=["item_id", "code"]).returning(Code.id)
    rows = [{"item_id": item_id, "code": code, "created_at": now} for code in codes]
    added = 0
    for start in range(0, len(rows), 500):
        added += len(session.execute(statement, rows[start : start + 500]).all())
    return added


def claim_codes(
    session: Session, item_id: int, order_id: uuid.UUID, quantity: int, now: datetime
) -> list[str]:
    """Give ``quantity`` free codes of the pool to the order, oldest first: each is claimed by
    a conditional update (``order_id IS NULL``), on PostgreSQL picked with ``SKIP LOCKED`` so
    concurrent buyers take different codes without waiting for each other. Fewer come back
    when the pool has fewer."""
    pick = (
        select(Code.id)
        .where(Code.item_id == item_id, Code.order_id.is_(None))
        .order_by(Code.id)
        .limit(quantity)
    )
    if not is_sqlite(driver_of(session)):
        pick = pick.with_for_update(skip_locked=True)
    # Picked first, then claimed: a LIMIT inside the UPDATE's subquery may be run again per
    # row by PostgreSQL and claim more than asked.
    picked = list(session.scalars(pick))
    if not picked:
        return []
    statement = (
        update(Code)
        .where(Code.id.in_(picked), Code.order_id.is_(None))
        .values(order_id=order_id, claimed_at=now)
        .returning(Code.code)
        .execution_options(synchronize_session=False)
    )
    return sorted(session.scalars(statement))


def codes_of(session: Session, order_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[str]]:
    found: dict[uuid.UUID, list[str]] = {}
    if not order_ids:
        return found
    rows = session.execute(
        select(Code.order_id, Code.code).where(Code.order_id.in_(order_ids)).order_by(Code.id)
    )
    for order_id, code in rows:
        if order_id is not None:
            found.setdefault(order_id, []).append(code)
    return found


def free_codes(session: Session, item_id: int) -> int:
    """Codes of the item's pool not claimed yet."""
    value = session.scalar(
        select(func.count())
        .select_from(Code)
        .where(Code.item_id == item_id, Code.order_id.is_(None))
    )
    return int(value or 0)


# --- Orders -----------------------------------------------------------------------------------


def insert_order(session: Session, values: dict[str, Any]) -> Order:
    row = Order(**values)
    session.add(row)
    session.flush()
    return row


def order(session: Session, order_id: uuid.UUID) -> Order | None:
    return session.get(Order, order_id)


def lock_order(session: Session, order_id: uuid.UUID) -> Order | None:
    """An order, locked for the rest of the transaction (``FOR UPDATE``; SQLite's write
    transactions run one at a time) and read after the lock is held."""
    return session.scalar(
        select(Order)
        .where(Order.id == order_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def save_order(session: Session, row: Order, values: dict[str, Any], now: datetime) -> bool:
    """Change an order if it is still at the version it was read at (which grows by one);
    the row is refreshed with what was written."""
    result = session.execute(
        update(Order)
        .where(Order.id == row.id, Order.version == row.version)
        .values(**values, updated_at=now, version=Order.version + 1)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    session.refresh(row)
    return True


def order_by_payment(session: Session, partner_id: int, reference: str) -> Order | None:
    return session.scalar(
        select(Order).where(
            Order.payment_partner_id == partner_id, Order.payment_reference == reference
        )
    )


def list_orders(
    session: Session,
    *,
    owner: int | None,
    everyone: bool,
    item_id: int | None,
    summary_filter: tuple[tuple[PaymentStatus, ...], tuple[FulfilmentStatus, ...]] | None,
    limit: int,
    member_id: int | None = None,
    before: tuple[datetime, uuid.UUID] | None = None,
) -> list[Order]:
    """Orders newest first, filtered by owner (every owner's when ``everyone``, else supplier
    ``owner``'s items, ``None``: the operator's), item, member and statuses; ``before`` a
    position ``(created_at, id)``, the orders after it in that order."""
    query = select(Order).order_by(Order.created_at.desc(), Order.id.desc()).limit(limit)
    if before is not None:
        at, key = before
        query = query.where(
            or_(Order.created_at < at, and_(Order.created_at == at, Order.id < key))
        )
    if member_id is not None:
        query = query.where(Order.member_id == member_id)
    if not everyone:
        query = query.where(
            Order.owner_partner_id.is_(None) if owner is None else Order.owner_partner_id == owner
        )
    if item_id is not None:
        query = query.where(Order.item_id == item_id)
    if summary_filter is not None:
        payments, fulfilments = summary_filter
        query = query.where(
            and_(Order.payment_status.in_(payments), Order.fulfilment_status.in_(fulfilments))
        )
    return list(session.scalars(query))


def due_unpaid(
    session: Session, as_of: datetime, limit: int, skip: Sequence[uuid.UUID] = ()
) -> list[uuid.UUID]:
    """Orders still waiting for their cash payment at their deadline ``pay_by <= as_of``."""
    query = (
        select(Order.id)
        .where(Order.payment_status == PaymentStatus.PENDING, Order.pay_by <= as_of)
        .order_by(Order.pay_by, Order.id)
        .limit(limit)
    )
    if skip:
        query = query.where(Order.id.not_in(skip))
    return list(session.scalars(query))


def due_refunds(
    session: Session, as_of: datetime, limit: int, skip: Sequence[uuid.UUID] = ()
) -> list[uuid.UUID]:
    """Paid orders not shipped (or confirmed) by their deadline ``ship_by <= as_of``."""
    query = (
        select(Order.id)
        .where(
            Order.ship_by.is_not(None),
            Order.ship_by <= as_of,
            Order.payment_status.in_((PaymentStatus.PAID, PaymentStatus.PART_REFUNDED)),
            Order.fulfilment_status.in_((FulfilmentStatus.UNFULFILLED, FulfilmentStatus.REQUESTED)),
        )
        .order_by(Order.ship_by, Order.id)
        .limit(limit)
    )
    if skip:
        query = query.where(Order.id.not_in(skip))
    return list(session.scalars(query))


def insert_event(session: Session, values: dict[str, Any]) -> None:
    session.add(OrderEvent(**values))
    session.flush()


def events_of(session: Session, order_id: uuid.UUID) -> list[OrderEvent]:
    return list(
        session.scalars(
            select(OrderEvent).where(OrderEvent.order_id == order_id).order_by(OrderEvent.id)
        )
    )


def ticket_taken(session: Session, ticket_code: str) -> bool:
    return (
        session.scalar(select(text("1")).select_from(Order).where(Order.ticket_code == ticket_code))
        is not None
    )
