"""The console's mall catalog: every item with its stock, sold, sale and owner; one item with
its flash sale's live state, its edit form (names, price, window, sale, active), stock to add
and, for a digital-code item, its pool (level, low-water mark, codes uploaded from a textarea
or a file). Every staff member sees them; changes need the ``mall`` permission, are made once
per form and audited."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from tally.api.deps import database
from tally.errors import Conflict, NotFound, TallyError, ValidationFailed
from tally.mall import repository
from tally.mall import service as catalog
from tally.mall.domain import ItemKind
from tally.mall.models import Item
from tally.mall.schemas import CODE_PATTERN, ItemCreate, ItemUpdate
from tally.programme.domain import Money
from tally.staff.service import Permission
from tally.web import queries
from tally.web.console import once
from tally.web.console.auth import Staff, record, require
from tally.web.console.pages import error_flash, flash, page
from tally.web.http import gettext, programme_in_force, redirect
from tally.web.i18n import N_
from tally.web.sessions import Flash, now

router = APIRouter()
Model = TypeVar("Model", bound=BaseModel)
Viewer = Annotated[Staff, Depends(require(Permission.VIEW))]
Keeper = Annotated[Staff, Depends(require(Permission.MALL))]
ItemCode = Annotated[str, Path(pattern=CODE_PATTERN, max_length=64)]
EDIT_FORM = "mall-item"
CREATE_FORM = "mall-new-item"
STOCK_FORM = "mall-stock"
CODES_FORM = "mall-codes"
#: Kinds the new-item form creates (a booking's slots are given through the API or a file).
FORM_KINDS = tuple(kind for kind in ItemKind if kind is not ItemKind.BOOKING)
#: The new-item form as it first shows.
NEW_ITEM: dict[str, str] = {"kind": ItemKind.PHYSICAL.value, "currency": "CNY", "active": "yes"}
#: The most codes one upload takes (a larger pool goes through the API or the CLI).
MAX_CODES = 10_000
MAX_UPLOAD = 1_000_000
LIST_SIZE = 100
#: Audit actions of the catalog's changes.
ITEM_CREATE = "mall.item_create"
ITEM_CHANGE = "mall.item_change"
STOCK_ADD = "mall.stock_add"
CODES_UPLOAD = "mall.codes_upload"


@dataclass(frozen=True, slots=True)
class ItemRow:
    """An item as the catalog list shows it."""

    item: Item
    owner: str | None
    cash: Money | None
    sale_phase: str | None


def _url(code: str) -> str:
    return f"/console/mall/items/{code}"


def _phase(item: Item, at: datetime) -> str | None:
    sale = catalog.sale_of(item)
    if sale is None:
        return None
    if at < sale.starts_at:
        return "upcoming"
    return "open" if at < sale.ends_at else "over"


@router.get("/mall/items")
def items_page(
    request: Request,
    staff: Viewer,
    q: Annotated[str, Query(max_length=100)] = "",
    after: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> Response:
    """The catalog in id order, :data:`LIST_SIZE` a page (searched by code, name or
    description), and the new-item form for the ``mall`` permission."""
    return catalog_page(request, staff, q, after)


def catalog_page(
    request: Request,
    staff: Staff,
    q: str = "",
    after: int | None = None,
    *,
    status: int = 200,
    flashes: list[Flash] | None = None,
    form: Mapping[str, str] | None = None,
) -> Response:
    """The catalog page, with the new-item form as sent (``form``) after a refusal."""
    at = now(request)
    with database(request).read() as session:
        rows = catalog.list_managed(
            session,
            catalog.OPERATOR,
            text_query=q.strip() or None,
            after=after,
            limit=LIST_SIZE + 1,
        )
        more = len(rows) > LIST_SIZE
        rows = rows[:LIST_SIZE]
        owners = queries.partner_names(session, (row.owner_partner_id for row in rows))
    can_edit = staff.can(Permission.MALL)
    context = {
        "rows": [
            ItemRow(
                row, owners.get(row.owner_partner_id or 0), catalog.cash_of(row), _phase(row, at)
            )
            for row in rows
        ],
        "query": q.strip(),
        "next_after": rows[-1].id if more else None,
        "can_edit": can_edit,
        "create_nonce": once.issue(request, CREATE_FORM) if can_edit else "",
        "kinds": [kind.value for kind in FORM_KINDS],
        "plans": [plan.code for plan in request.app.state.programme.current.plans],
        "form": dict(form) if form is not None else NEW_ITEM,
        "open_form": form is not None,
        "section": "mall",
        "page_url": "/console/mall/items",
    }
    return page(request, "console/mall/items.html", staff, context, status=status, flashes=flashes)


def _local(value: datetime | None, request: Request) -> str:
    """A moment as a ``datetime-local`` input's value in the programme's zone."""
    if value is None:
        return ""
    zone = request.app.state.programme.zone
    return value.astimezone(zone).strftime("%Y-%m-%dT%H:%M")


def _form_of(item: Item, request: Request) -> dict[str, str]:
    cash = catalog.cash_of(item)
    return {
        "name_zh": item.names.get("zh-CN", ""),
        "name_en": item.names.get("en", ""),
        "points": str(item.points),
        "cash": str(cash).split(" ")[0] if cash else "",
        "currency": cash.currency if cash else "CNY",
        "starts_at": _local(item.starts_at, request),
        "ends_at": _local(item.ends_at, request),
        "sale_starts_at": _local(item.sale_starts_at, request),
        "sale_ends_at": _local(item.sale_ends_at, request),
        "sale_points": "" if item.sale_points is None else str(item.sale_points),
        "sale_stock": "" if item.sale_stock is None else str(item.sale_stock),
        "sale_limit": "" if item.sale_limit_count is None else str(item.sale_limit_count),
        "low_water": "" if item.low_water is None else str(item.low_water),
        "active": "yes" if item.is_active else "",
    }


def item_page(
    request: Request,
    staff: Staff,
    code: str,
    *,
    status: int = 200,
    flashes: list[Flash] | None = None,
    form: Mapping[str, str] | None = None,
) -> Response:
    """One item: its facts, its sale's live state, and (for the ``mall`` permission) its forms."""
    at = now(request)
    with database(request).read() as session:
        item = repository.item_by_code(session, code)
        if item is None:
            raise NotFound(f"Item {code} does not exist.")
        owner = queries.partner_names(session, [item.owner_partner_id]).get(
            item.owner_partner_id or 0
        )
        slots = catalog.slots(session, [item]).get(item.id, [])
        pool = (
            repository.free_codes(session, item.id) if item.kind is ItemKind.DIGITAL_CODE else None
        )
        values = dict(form) if form is not None else _form_of(item, request)
    can_edit = staff.can(Permission.MALL)
    context: dict[str, Any] = {
        "item": item,
        "owner": owner,
        "cash": catalog.cash_of(item),
        "sale": catalog.sale_of(item),
        "sale_phase": _phase(item, at),
        "limit": catalog.limit_of(item),
        "categories": catalog.categories_of(item),
        "slots": slots,
        "pool": pool,
        "form": values,
        "can_edit": can_edit,
        "edit_nonce": once.issue(request, EDIT_FORM) if can_edit else "",
        "stock_nonce": once.issue(request, STOCK_FORM) if can_edit else "",
        "codes_nonce": once.issue(request, CODES_FORM) if can_edit else "",
        "section": "mall",
        "page_url": _url(code),
    }
    return page(request, "console/mall/item.html", staff, context, status=status, flashes=flashes)


@router.get("/mall/items/{code}")
def show_item(request: Request, staff: Viewer, code: ItemCode) -> Response:
    """One item of the catalog."""
    return item_page(request, staff, code)


def _moment(request: Request, text: str, field: str) -> str | None:
    """A ``datetime-local`` value read in the programme's zone, as ISO 8601 (``None``: empty)."""
    cleaned = text.strip()
    if not cleaned:
        return None
    try:
        local = datetime.fromisoformat(cleaned)
    except ValueError:
        raise ValidationFailed(f"{field} is not a date and time.", field=field) from None
    if local.tzinfo is None:
        local = local.replace(tzinfo=request.app.state.programme.zone)
    return local.isoformat()


def _whole(text: str, field: str) -> int | None:
    cleaned = text.strip().replace(",", "")
    if not cleaned:
        return None
    if not cleaned.isdigit():
        raise ValidationFailed(f"{field} must be a whole number.", field=field)
    return int(cleaned)


def _names_and_price(form: Mapping[str, str]) -> dict[str, Any]:
    """The item forms' names and price (points, and a cash part when one is typed)."""
    cash = form.get("cash", "").strip()
    price: dict[str, Any] = {"points": _whole(form.get("points", ""), "points") or 0}
    if cash:
        price["cash"] = {"amount": cash, "currency": form.get("currency", "CNY").strip().upper()}
    return {
        "names": {"zh-CN": form.get("name_zh", "").strip(), "en": form.get("name_en", "").strip()},
        "price": price,
    }


def changes_of(request: Request, form: Mapping[str, str]) -> ItemUpdate:
    """The item's edit form as an :class:`ItemUpdate` (the API's rules apply); a bad field is a
    ``validation_error`` naming it."""
    sale_fields = ("sale_starts_at", "sale_ends_at", "sale_points", "sale_stock")
    has_sale = any(form.get(key, "").strip() for key in sale_fields)
    body: dict[str, Any] = {
        **_names_and_price(form),
        "starts_at": _moment(request, form.get("starts_at", ""), "starts_at"),
        "ends_at": _moment(request, form.get("ends_at", ""), "ends_at"),
        "sale": (
            {
                "starts_at": _moment(request, form.get("sale_starts_at", ""), "sale"),
                "ends_at": _moment(request, form.get("sale_ends_at", ""), "sale"),
                "points": _whole(form.get("sale_points", ""), "sale"),
                "stock": _whole(form.get("sale_stock", ""), "sale"),
                "per_member_limit": _whole(form.get("sale_limit", ""), "sale"),
            }
            if has_sale
            else None
        ),
        "low_water": _whole(form.get("low_water", ""), "low_water"),
        "active": form.get("active") == "yes",
    }
    return _validated(ItemUpdate, body)


def _validated(model: type[Model], body: dict[str, Any]) -> Model:
    """``body`` as ``model`` (the API's rules); the first bad field is a ``validation_error``
    naming it (as ``item.<field>``: the message is the item's, not another form's)."""
    try:
        return model.model_validate(body)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "item"
        raise ValidationFailed(f"{where}: {first['msg']}", field=f"item.{where}") from None


def new_item_of(form: Mapping[str, str]) -> ItemCreate:
    """The new-item form as an :class:`ItemCreate`: code, kind (a plan item's plan), names,
    price, stock (empty: unlimited; a pool starts empty) and whether it sells at once."""
    kind = form.get("kind", "").strip()
    body: dict[str, Any] = {
        "code": form.get("code", "").strip(),
        "kind": kind,
        **_names_and_price(form),
        "active": form.get("active") == "yes",
    }
    if kind == ItemKind.BOOKING:
        raise ValidationFailed(
            "A booking's slots are given through the API or a file.", field="item.kind"
        )
    if kind == ItemKind.PLAN:
        body["plan"] = form.get("plan", "").strip()
    if kind != ItemKind.DIGITAL_CODE:
        body["stock"] = _whole(form.get("stock", ""), "stock")
    return _validated(ItemCreate, body)


def problem(request: Request, error: TallyError) -> Flash:
    """The refusal's message; a refused field also says what was wrong with it (staff read the
    technical detail)."""
    shown = error_flash(request, error)
    if error.code == "validation_error":
        return Flash(
            "error",
            gettext(request, N_("%(text)s (%(detail)s)"), text=shown.text, detail=error.detail),
        )
    return shown


async def _fields(request: Request) -> dict[str, str]:
    raw = await request.form()
    return {key: value for key, value in raw.items() if isinstance(value, str)}


def _done(request: Request, code: str, outcome: object, message: str, **params: object) -> Response:
    if isinstance(outcome, once.Done):
        flash(request, "info", N_("This form was already sent; nothing was repeated."))
    else:
        flash(request, "success", message, **params)
    return redirect(request, _url(code))


@router.post("/mall/items")
async def create_item(request: Request, staff: Keeper) -> Response:
    """Add an item of the operator's to the catalog; its page then gives the rest (window,
    sale, stock, codes)."""
    form = await _fields(request)
    try:
        submitted = once.checked(request, staff, CREATE_FORM, form.get("nonce", ""))
        spec = new_item_of(form)

        def work(session: Session) -> tuple[str, dict[str, object]]:
            row = catalog.create_item(
                session,
                catalog.Manager(partner_id=None, is_operator=True, staff_id=staff.id),
                spec,
                programme_in_force(request, session),
                now(request),
            )
            record(request, session, staff, ITEM_CREATE, details={"item": row.code})
            return row.code, {"item": row.code}

        outcome = once.run(database(request), submitted, work)
    except TallyError as error:
        shown = problem(request, error)
        if isinstance(error, Conflict):
            message = N_("An item with code %(code)s exists already: choose another code.")
            shown = Flash("error", gettext(request, message, code=form.get("code", "").strip()))
        return catalog_page(request, staff, status=error.status, flashes=[shown], form=form)
    if not isinstance(outcome, once.Done):
        return _done(request, outcome, outcome, N_("The item was created."))
    first = outcome.answer.get("item")
    return (
        _done(request, first, outcome, "")
        if isinstance(first, str)
        else redirect(request, "/console/mall/items")
    )


@router.post("/mall/items/{code}/edit")
async def edit_item(request: Request, staff: Keeper, code: ItemCode) -> Response:
    """Change the item's names, price, window, sale, low-water mark and whether it sells."""
    form = await _fields(request)
    try:
        submitted = once.checked(request, staff, EDIT_FORM, form.get("nonce", ""))
        changes = changes_of(request, form)

        def work(session: Session) -> tuple[Item, dict[str, object]]:
            row = catalog.update_item(
                session,
                catalog.Manager(partner_id=None, is_operator=True, staff_id=staff.id),
                code,
                changes,
                programme_in_force(request, session),
                now(request),
            )
            record(request, session, staff, ITEM_CHANGE, details={"item": code})
            return row, {"item": code}

        outcome = once.run(database(request), submitted, work)
    except TallyError as error:
        return item_page(
            request, staff, code, status=error.status, flashes=[problem(request, error)], form=form
        )
    return _done(request, code, outcome, N_("The item was saved."))


@router.post("/mall/items/{code}/stock")
async def add_stock(request: Request, staff: Keeper, code: ItemCode) -> Response:
    """Add units to the item's stock (a conditional increment: sales meanwhile are kept)."""
    form = await _fields(request)
    try:
        submitted = once.checked(request, staff, STOCK_FORM, form.get("nonce", ""))
        added = _whole(form.get("add", ""), "add") or 0

        def work(session: Session) -> tuple[int, dict[str, object]]:
            catalog.restock(session, catalog.OPERATOR, code, added)
            record(request, session, staff, STOCK_ADD, details={"item": code, "added": added})
            return added, {"item": code, "added": added}

        outcome = once.run(database(request), submitted, work)
    except TallyError as error:
        return item_page(
            request, staff, code, status=error.status, flashes=[problem(request, error)]
        )
    return _done(request, code, outcome, N_("%(count)s units added to the stock."), count=added)


async def _codes(request: Request) -> tuple[dict[str, str], list[str]]:
    """The form's fields and the codes of its textarea and file, one a line."""
    raw = await request.form()
    form = {key: value for key, value in raw.items() if isinstance(value, str)}
    lines = form.get("codes", "").splitlines()
    upload = raw.get("file")
    content = b""
    if isinstance(upload, UploadFile) and upload.filename:
        content = await upload.read(MAX_UPLOAD + 1)
    await raw.close()
    if content:
        if len(content) > MAX_UPLOAD:
            raise ValidationFailed("The file is larger than 1 MB.", field="codes")
        try:
            lines += content.decode("utf-8-sig").splitlines()
        except UnicodeDecodeError:
            raise ValidationFailed("The file is not UTF-8 text.", field="codes") from None
    if len(lines) > MAX_CODES:
        raise ValidationFailed(f"At most {MAX_CODES} codes an upload.", field="codes")
    return form, lines


@router.post("/mall/items/{code}/codes")
async def upload_codes(request: Request, staff: Keeper, code: ItemCode) -> Response:
    """Add codes to a digital-code item's pool (codes it has already are passed over)."""
    try:
        form, lines = await _codes(request)
        submitted = once.checked(request, staff, CODES_FORM, form.get("nonce", ""))

        def work(session: Session) -> tuple[tuple[int, int], dict[str, object]]:
            added, free = catalog.upload_codes(session, catalog.OPERATOR, code, lines, now(request))
            record(request, session, staff, CODES_UPLOAD, details={"item": code, "added": added})
            return (added, free), {"item": code, "added": added}

        outcome = once.run(database(request), submitted, work)
    except TallyError as error:
        return item_page(
            request, staff, code, status=error.status, flashes=[problem(request, error)]
        )
    if isinstance(outcome, once.Done):
        return _done(request, code, outcome, "")
    added, free = outcome
    return _done(
        request,
        code,
        outcome,
        N_("%(added)s codes added; the pool has %(free)s free codes."),
        added=added,
        free=free,
    )
