"""The catalog's use cases: create and change items, their slots and code pools, and read them
as their managers and as members see them. Never commits.

Who manages an item: its supplier (``owner_partner_id``) or, for the operator's own items
(``None``), the operator's channels and staff; the operator's channels and staff see and
manage every item (:class:`Manager`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from tally.errors import (
    ConcurrentChange,
    Conflict,
    Forbidden,
    NotFound,
    TallyError,
    ValidationFailed,
)
from tally.mall import domain, repository
from tally.mall.domain import Eligibility, ItemKind, LimitPeriod, Pricing, Sale
from tally.mall.models import Item, Slot
from tally.mall.schemas import MAX_STOCK, ItemCreate, ItemUpdate, SaleIn, SlotIn
from tally.programme.domain import Money, Programme


@dataclass(frozen=True, slots=True)
class Manager:
    """Who manages items: a supplier partner (``partner_id``, not ``is_operator``) manages its
    own; the operator (its channels, ``partner_id`` the channel, or staff, ``staff_id``) all."""

    partner_id: int | None
    is_operator: bool
    staff_id: int | None = None

    @property
    def owner(self) -> int | None:
        """The owner of the items it creates: the supplier, or the operator (``None``)."""
        return None if self.is_operator else self.partner_id

    def manages(self, item: Item) -> bool:
        return self.is_operator or item.owner_partner_id == self.partner_id


#: The operator's staff and the CLI.
OPERATOR = Manager(partner_id=None, is_operator=True)


def _categories(values: list[str]) -> str:
    return "|" + "|".join(sorted(set(values))) + "|" if values else ""


def categories_of(item: Item) -> list[str]:
    """The item's categories, as given."""
    return [value for value in item.categories.split("|") if value]


def _search_text(code: str, names: dict[str, str], descriptions: dict[str, str] | None) -> str:
    parts = [code, *names.values(), *(descriptions or {}).values()]
    return " ".join(parts).lower()[:4000]


def _check_programme(
    programme: Programme, tier_prices: dict[str, int], tiers: list[str], plans: list[str]
) -> None:
    """Tiers and plans named by an item exist in the programme in force."""
    known_tiers = {tier.code for tier in programme.tiers}
    known_plans = {plan.code for plan in programme.plans}
    for field, codes, known in (
        ("tier_prices", list(tier_prices), known_tiers),
        ("eligibility.tiers", tiers, known_tiers),
        ("eligibility.plans", plans, known_plans),
    ):
        unknown = sorted(set(codes) - known)
        if unknown:
            raise ValidationFailed(
                f"{field} names {', '.join(unknown)}, which the programme does not have.",
                field=field,
            )


def _check_plan(manager: Manager, programme: Programme, plan: str) -> None:
    """A plan item sells a plan of the programme, and only the operator sells plans."""
    if not manager.is_operator:
        raise Forbidden("Only the operator sells the programme's paid plans in the mall.")
    if programme.plan(plan) is None:
        raise ValidationFailed(f"plan {plan} is not a plan of the programme.", field="plan")


def _sale_values(sale: SaleIn | None) -> dict[str, Any]:
    return {
        "sale_starts_at": sale.starts_at if sale else None,
        "sale_ends_at": sale.ends_at if sale else None,
        "sale_points": sale.points if sale else None,
        "sale_stock": sale.stock if sale else None,
        "sale_limit_count": sale.per_member_limit if sale else None,
    }


def _slot_values(slot: SlotIn) -> dict[str, Any]:
    return {
        "code": slot.code,
        "starts_at": slot.starts_at,
        "ends_at": slot.ends_at,
        "capacity": slot.capacity,
    }


def create_item(
    session: Session, manager: Manager, spec: ItemCreate, programme: Programme, now: datetime
) -> Item:
    """A new item owned by the manager (a supplier's own, or the operator's); its code is
    unique (``conflict`` when taken)."""
    _check_programme(programme, spec.tier_prices, spec.eligibility.tiers, spec.eligibility.plans)
    if spec.plan is not None:
        _check_plan(manager, programme, spec.plan)
    ship_within = domain.parse_duration(spec.ship_within)
    if repository.item_by_code(session, spec.code) is not None:
        raise Conflict(f"An item with code {spec.code} exists already.", item=spec.code)
    names = spec.names.as_dict()
    descriptions = spec.descriptions.as_dict() if spec.descriptions else None
    cash = spec.price.cash.money if spec.price.cash else None
    limit = spec.per_member_limit
    row = repository.insert_item(
        session,
        {
            "code": spec.code,
            "kind": spec.kind,
            "owner_partner_id": manager.owner,
            "names": names,
            "descriptions": descriptions,
            "categories": _categories(spec.categories),
            "search_text": _search_text(spec.code, names, descriptions),
            "images": list(spec.images),
            "points": spec.price.points,
            "cash_minor_units": cash.minor_units if cash else None,
            "cash_currency": cash.currency if cash else None,
            "tier_points": dict(spec.tier_prices) or None,
            "eligible_tiers": list(spec.eligibility.tiers) or None,
            "eligible_plans": list(spec.eligibility.plans) or None,
            "is_exclusive": spec.exclusive,
            "limit_count": limit.count if limit else None,
            "limit_period": limit.period if limit else None,
            "stock": 0 if spec.kind is ItemKind.DIGITAL_CODE else spec.stock,
            "sold": 0,
            "starts_at": spec.starts_at,
            "ends_at": spec.ends_at,
            "ship_within": spec.ship_within,
            "ship_within_seconds": int(ship_within.total_seconds()),
            "low_water": spec.low_water,
            "plan_code": spec.plan,
            **_sale_values(spec.sale),
            "is_active": spec.active,
            "version": 1,
            "created_by_partner_id": manager.partner_id,
            "created_by_staff_id": manager.staff_id,
            "created_at": now,
            "updated_at": now,
        },
    )
    for slot in spec.slots:
        repository.upsert_slot(session, row.id, _slot_values(slot))
    return row


def managed_item(session: Session, manager: Manager, code: str) -> Item:
    """Item ``code`` if the manager manages it; another supplier's is ``not_found``."""
    row = repository.item_by_code(session, code)
    if row is None or not manager.manages(row):
        raise NotFound(f"Item {code} does not exist.")
    return row


def update_item(
    session: Session,
    manager: Manager,
    code: str,
    changes: ItemUpdate,
    programme: Programme,
    now: datetime,
) -> Item:
    """Change the fields ``changes`` sets (a digital-code item's stock follows its pool and
    is not set by hand); conditional on the item's version."""
    row = managed_item(session, manager, code)
    given = changes.model_fields_set
    values: dict[str, Any] = {"updated_at": now}
    names = changes.names.as_dict() if changes.names else row.names
    descriptions = row.descriptions
    if "descriptions" in given:
        descriptions = changes.descriptions.as_dict() if changes.descriptions else None
    values.update(
        names=names,
        descriptions=descriptions,
        search_text=_search_text(row.code, names, descriptions),
    )
    if "categories" in given:
        values["categories"] = _categories(changes.categories or [])
    if "images" in given:
        values["images"] = list(changes.images or [])
    if changes.price is not None:
        cash = changes.price.cash.money if changes.price.cash else None
        values.update(
            points=changes.price.points,
            cash_minor_units=cash.minor_units if cash else None,
            cash_currency=cash.currency if cash else None,
        )
    if "tier_prices" in given:
        values["tier_points"] = dict(changes.tier_prices or {}) or None
    if "stock" in given:
        if row.kind is ItemKind.DIGITAL_CODE:
            raise ValidationFailed(
                "A digital-code item's stock is its pool: upload codes instead.", field="stock"
            )
        values["stock"] = changes.stock
    if "per_member_limit" in given:
        limit = changes.per_member_limit
        values.update(
            limit_count=limit.count if limit else None,
            limit_period=limit.period if limit else None,
        )
    if changes.ship_within is not None:
        seconds = int(domain.parse_duration(changes.ship_within).total_seconds())
        values.update(ship_within=changes.ship_within, ship_within_seconds=seconds)
    if changes.eligibility is not None:
        values.update(
            eligible_tiers=list(changes.eligibility.tiers) or None,
            eligible_plans=list(changes.eligibility.plans) or None,
        )
    if changes.exclusive is not None:
        values["is_exclusive"] = changes.exclusive
    for field in ("starts_at", "ends_at"):
        if field in given:
            values[field] = getattr(changes, field)
    starts, ends = values.get("starts_at", row.starts_at), values.get("ends_at", row.ends_at)
    if starts is not None and ends is not None and ends <= starts:
        raise ValidationFailed("ends_at must be after starts_at.", field="ends_at")
    if "sale" in given:
        values.update(_sale_values(changes.sale))
    if changes.low_water is not None or "low_water" in given:
        values["low_water"] = changes.low_water
    if changes.active is not None:
        values["is_active"] = changes.active
    if changes.slots is not None:
        if row.kind is not ItemKind.BOOKING:
            raise ValidationFailed("Only a booking item has slots.", field="slots")
        for slot in changes.slots:
            repository.upsert_slot(session, row.id, _slot_values(slot))
    _check_programme(
        programme,
        values.get("tier_points", row.tier_points) or {},
        values.get("eligible_tiers", row.eligible_tiers) or [],
        values.get("eligible_plans", row.eligible_plans) or [],
    )
    if not repository.save_item(session, row.id, row.version, values):
        raise ConcurrentChange("A concurrent request changed this item; retry.")
    session.refresh(row)
    return row


#: The most units one restock adds.
MAX_RESTOCK = 1_000_000


def restock(session: Session, manager: Manager, code: str, added: int) -> Item:
    """Add ``added`` units to a limited stock of goods: an increment in the database, so the
    units sold meanwhile stay sold (a pool grows by its codes, and an unlimited stock is not
    counted)."""
    if not 1 <= added <= MAX_RESTOCK:
        raise ValidationFailed(f"Add 1 to {MAX_RESTOCK:,} units.", field="add")
    row = managed_item(session, manager, code)
    if row.kind is ItemKind.DIGITAL_CODE or row.stock is None:
        raise ValidationFailed(
            "Only a limited stock of goods is added to (a pool grows by its codes).",
            field="add",
        )
    if row.stock + added > MAX_STOCK:
        raise ValidationFailed(f"A stock is at most {MAX_STOCK:,} units.", field="add")
    repository.add_stock(session, row.id, added)
    session.refresh(row)
    return row


def upload_codes(
    session: Session, manager: Manager, code: str, codes: list[str], now: datetime
) -> tuple[int, int]:
    """Add ``codes`` to a digital-code item's pool (each added once; blank lines and codes it
    has already are passed over): ``(added, free codes now)``. The item's stock grows by what
    was added."""
    row = managed_item(session, manager, code)
    if row.kind is not ItemKind.DIGITAL_CODE:
        raise ValidationFailed(f"Item {code} is not a digital-code item.", field="item")
    cleaned = []
    for given in codes:
        value = given.strip()
        if not value:
            continue
        if len(value) > 191:
            raise ValidationFailed("A code is at most 191 characters.", field="codes")
        cleaned.append(value)
    added = repository.insert_codes(session, row.id, list(dict.fromkeys(cleaned)), now)
    repository.add_stock(session, row.id, added)
    return added, repository.free_codes(session, row.id)


@dataclass(frozen=True, slots=True)
class Imported:
    """What an import did to one item: ``created`` or ``updated``."""

    code: str
    action: str


def _where(index: int, entry: Any) -> str:
    code = entry.get("code") if isinstance(entry, dict) else None
    return f"item {index}" + (f" ({code})" if isinstance(code, str) and code else "")


def parse_items(entries: Any) -> list[ItemCreate]:
    """A list of items in the ``POST /v1/mall/items`` shape, checked; the first problem is a
    ``validation_error`` naming the item's index (from 0), its code and the field."""
    if not isinstance(entries, list) or not entries:
        raise ValidationFailed("An item file is a non-empty list of items.", field="items")
    specs: list[ItemCreate] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        where = _where(index, entry)
        if not isinstance(entry, dict):
            raise ValidationFailed(f"{where}: an item is a mapping.", index=index, field="")
        try:
            spec = ItemCreate.model_validate(entry)
        except ValidationError as error:
            first = error.errors()[0]
            field = ".".join(str(part) for part in first["loc"])
            raise ValidationFailed(
                f"{where}: {field or 'item'}: {first['msg']}", index=index, field=field
            ) from None
        if spec.code in seen:
            raise ValidationFailed(
                f"{where}: the code {spec.code} appears twice.", index=index, field="code"
            )
        seen.add(spec.code)
        specs.append(spec)
    return specs


def _as_update(spec: ItemCreate) -> ItemUpdate:
    """The fields an import entry gives, as changes to the item of its code (a digital-code
    item's stock is its pool and is left alone)."""
    given = spec.model_fields_set - {"code", "kind", "plan"}
    if spec.kind is ItemKind.DIGITAL_CODE:
        given -= {"stock"}
    if not spec.slots:
        given -= {"slots"}
    return ItemUpdate.model_validate({field: getattr(spec, field) for field in given})


def import_items(
    session: Session,
    manager: Manager,
    specs: list[ItemCreate],
    programme: Programme,
    now: datetime,
) -> list[Imported]:
    """Create each item whose code is new and change each that exists (the fields its entry
    gives replace the item's; a kind never changes), in the caller's one transaction: any
    refusal names the item's index and code and, raised, leaves nothing written."""
    done: list[Imported] = []
    for index, spec in enumerate(specs):
        try:
            found = repository.item_by_code(session, spec.code)
            if found is None:
                create_item(session, manager, spec, programme, now)
                done.append(Imported(spec.code, "created"))
                continue
            if found.kind is not spec.kind:
                raise ValidationFailed(
                    f"its kind is {found.kind.value}; a kind never changes.", field="kind"
                )
            if found.plan_code != spec.plan:
                raise ValidationFailed(
                    f"it sells plan {found.plan_code}; an item's plan never changes.", field="plan"
                )
            update_item(session, manager, spec.code, _as_update(spec), programme, now)
            done.append(Imported(spec.code, "updated"))
        except TallyError as error:
            raise type(error)(
                f"item {index} ({spec.code}): {error.detail}", **{**error.extra, "index": index}
            ) from None
    return done


def list_managed(
    session: Session,
    manager: Manager,
    *,
    text_query: str | None = None,
    category: str | None = None,
    after: int | None = None,
    limit: int = 100,
) -> list[Item]:
    """The items the manager manages, in id order."""
    return repository.search_items(
        session,
        owner=manager.owner,
        everyone=manager.is_operator,
        text_query=text_query,
        category=category,
        active_only=False,
        after=after,
        limit=limit,
    )


def slots(session: Session, items: list[Item]) -> dict[int, list[Slot]]:
    """Each booking item's slots, earliest first."""
    return repository.slots_of(session, [item.id for item in items])


# --- Prices and eligibility as the order flow and member pages read them ------------------------


def sale_of(item: Item) -> Sale | None:
    """The item's flash sale, if it has one."""
    if item.sale_starts_at is None or item.sale_ends_at is None or item.sale_points is None:
        return None
    return Sale(item.sale_starts_at, item.sale_ends_at, item.sale_points, item.sale_limit_count)


def pricing_of(item: Item) -> Pricing:
    return Pricing(item.points, dict(item.tier_points or {}), sale_of(item))


def eligibility_of(item: Item) -> Eligibility:
    return Eligibility(
        tuple(item.eligible_tiers or ()), tuple(item.eligible_plans or ()), item.is_exclusive
    )


def cash_of(item: Item) -> Money | None:
    if item.cash_minor_units is None or item.cash_currency is None:
        return None
    return Money(item.cash_minor_units, item.cash_currency)


def limit_of(item: Item) -> tuple[int, LimitPeriod] | None:
    if item.limit_count is None:
        return None
    return item.limit_count, item.limit_period or LimitPeriod.TOTAL


def shop_items(
    session: Session,
    *,
    text_query: str | None,
    category: str | None,
    after: int | None,
    limit: int,
) -> list[Item]:
    """Active items of every owner, in id order (the member flow filters what a member sees)."""
    return repository.search_items(
        session,
        owner=None,
        everyone=True,
        text_query=text_query,
        category=category,
        active_only=True,
        after=after,
        limit=limit,
    )
