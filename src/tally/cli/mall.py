"""``tally mall``: the rewards mall's catalog, code pools and orders from the command line.

Reads need no staff member; every change is made as the staff member ``--staff`` names, who
needs the ``mall`` permission (the ``ops`` and ``admin`` roles), and is recorded: an item's
creator, and the staff member on each order event."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from sqlalchemy import select

from tally.api.mall import item_out, order_out
from tally.cli.common import emit, fail, open_database
from tally.config import get_settings
from tally.errors import Forbidden, NotFound, TallyError, ValidationFailed
from tally.flows import mall_orders as flow
from tally.kit.clock import utcnow
from tally.ledger.posting import policy_for
from tally.mall import service as catalog
from tally.programme import runtime
from tally.staff import service as staff
from tally.staff.models import StaffUser

app = typer.Typer(help="The rewards mall: items, code pools and orders.", no_args_is_help=True)
items_app = typer.Typer(help="The catalog's items and their code pools.", no_args_is_help=True)
codes_app = typer.Typer(help="A digital-code item's pool of codes.", no_args_is_help=True)
orders_app = typer.Typer(
    help="Members' orders: ship, deliver, cancel, refund.", no_args_is_help=True
)
app.add_typer(items_app, name="items")
app.add_typer(codes_app, name="codes")
app.add_typer(orders_app, name="orders")

StaffOption = Annotated[
    str,
    typer.Option(
        "--staff", help="Username of the staff member acting (needs the mall permission)."
    ),
]
CodeArgument = Annotated[str, typer.Argument(help="The item's code.")]
OrderArgument = Annotated[str, typer.Argument(help="The order's id (a UUID).")]
CLI = "cli"


def _staff_id(session: Any, username: str) -> int:
    """The id of the active staff member ``username`` with the ``mall`` permission."""
    user = session.scalar(select(StaffUser).where(StaffUser.username == username))
    if user is None or not user.is_active:
        raise NotFound(f"No active staff member {username}.")
    if not staff.can(user.role, staff.Permission.MALL):
        raise Forbidden(f"Staff member {username} ({user.role.value}) may not manage the mall.")
    return int(user.id)


def _manager(session: Any, username: str) -> catalog.Manager:
    return catalog.Manager(None, True, _staff_id(session, username))


def _actor(session: Any, username: str) -> flow.Actor:
    return flow.Actor(staff_id=_staff_id(session, username), is_operator=True, channel=CLI)


#: Reading orders needs no staff member: the operator sees them all.
READER = flow.Actor(is_operator=True, channel=CLI)


def _order_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(f"Order {value} does not exist.") from None


def _items(session: Any, rows: list[Any]) -> list[dict[str, Any]]:
    slots = catalog.slots(session, rows)
    return [item_out(row, slots.get(row.id, [])).model_dump(mode="json") for row in rows]


def _order(session: Any, order_id: uuid.UUID) -> dict[str, Any]:
    return order_out(flow.get_order(session, READER, order_id)).model_dump(mode="json")


def _read_file(path: Path) -> Any:
    """A YAML or JSON file's content (JSON is YAML too, but its errors read better as JSON)."""
    try:
        content = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ValidationFailed(f"{path}: cannot be read ({error}).", field="file") from None
    try:
        if path.suffix.lower() == ".json":
            return json.loads(content)
        return yaml.safe_load(content)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        kind = "JSON" if path.suffix.lower() == ".json" else "YAML"
        raise ValidationFailed(f"{path}: not valid {kind}: {error}", field="file") from None


# --- Items ------------------------------------------------------------------------------------


@items_app.command("list")
def list_items(
    search: Annotated[
        str | None, typer.Option("--search", help="Text in the code, names, descriptions.")
    ] = None,
    category: Annotated[str | None, typer.Option("--category", help="One category.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 200,
) -> None:
    """Print the catalog's items (every owner's, active or not) as JSON, in creation order."""
    with open_database(get_settings()) as db, db.read() as session:
        rows = catalog.list_managed(
            session, catalog.OPERATOR, text_query=search, category=category, limit=limit
        )
        emit(_items(session, rows))


@items_app.command("show")
def show_item(code: CodeArgument) -> None:
    """Print one item with its slots, stock and sale."""
    try:
        with open_database(get_settings()) as db, db.read() as session:
            emit(_items(session, [catalog.managed_item(session, catalog.OPERATOR, code)])[0])
    except TallyError as error:
        fail(error)


@items_app.command("restock")
def restock_item(
    code: CodeArgument,
    add: Annotated[int, typer.Option("--add", help="Units to add.")],
    staff_user: StaffOption,
) -> None:
    """Add units to a limited stock of goods (an increment: units sold meanwhile stay sold)
    and print the item."""
    try:
        with open_database(get_settings()) as db, db.write() as session:
            manager = _manager(session, staff_user)
            row = catalog.restock(session, manager, code, add)
            shown = _items(session, [row])[0]
        emit(shown)
    except TallyError as error:
        fail(error)


@items_app.command("import")
def import_items(
    file: Annotated[
        Path, typer.Argument(help="A YAML or JSON list of items in the API's item shape.")
    ],
    staff_user: StaffOption,
) -> None:
    """Create the items of FILE whose code is new and update those that exist (the fields an
    entry gives replace the item's), all in one transaction: one bad item and nothing is
    written (the error names its index, code and field)."""
    settings = get_settings()
    try:
        specs = catalog.parse_items(_read_file(file))
        now = utcnow()
        with open_database(settings) as db, db.write() as session:
            manager = _manager(session, staff_user)
            programme = runtime.effective(session, settings, now)
            done = catalog.import_items(session, manager, specs, programme, now)
        emit(
            {
                "created": [item.code for item in done if item.action == "created"],
                "updated": [item.code for item in done if item.action == "updated"],
            }
        )
    except TallyError as error:
        fail(error)


@codes_app.command("upload")
def upload_codes(
    code: CodeArgument,
    file: Annotated[Path, typer.Argument(help="One code a line (blank lines passed over).")],
    staff_user: StaffOption,
) -> None:
    """Add the codes of FILE to a digital-code item's pool (a code it has already is passed
    over) and print how many were added and how many are free now, against its low-water
    mark."""
    try:
        try:
            lines = file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            raise ValidationFailed(f"{file}: cannot be read ({error}).", field="file") from None
        if not any(line.strip() for line in lines):
            raise ValidationFailed(f"{file} has no codes.", field="file")
        with open_database(get_settings()) as db, db.write() as session:
            manager = _manager(session, staff_user)
            added, free = catalog.upload_codes(session, manager, code, lines, utcnow())
            item = catalog.managed_item(session, manager, code)
            low_water = item.low_water
        emit(
            {
                "item": code,
                "added": added,
                "passed_over": sum(1 for line in lines if line.strip()) - added,
                "free": free,
                "low_water": low_water,
                "below_low_water": low_water is not None and free < low_water,
            }
        )
    except TallyError as error:
        fail(error)


# --- Orders -----------------------------------------------------------------------------------


@orders_app.command("list")
def list_orders(
    member: Annotated[int | None, typer.Option("--member", help="One member's orders.")] = None,
    status: Annotated[
        str | None,
        typer.Option(
            "--status",
            help="awaiting_payment, processing, shipped, completed, refunded, lapsed or cancelled.",
        ),
    ] = None,
    item: Annotated[str | None, typer.Option("--item", help="One item's orders.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 100,
) -> None:
    """Print orders as JSON, newest first."""
    try:
        with open_database(get_settings()) as db, db.read() as session:
            found = flow.list_orders(
                session, READER, member_id=member, item_code=item, status=status, limit=limit
            )
            emit([order_out(view).model_dump(mode="json") for view in found.orders])
    except TallyError as error:
        fail(error)


@orders_app.command("show")
def show_order(order_id: OrderArgument) -> None:
    """Print one order with its events (who changed it, when, from what to what)."""
    try:
        target = _order_id(order_id)
        with open_database(get_settings()) as db, db.read() as session:
            found = _order(session, target)
            found["events"] = [
                {
                    "kind": event.kind,
                    "at": event.created_at.isoformat(),
                    "partner_id": event.partner_id,
                    "staff_id": event.staff_id,
                    "payment": [event.payment_before, event.payment_after],
                    "fulfilment": [event.fulfilment_before, event.fulfilment_after],
                    "points": event.points,
                    "quantity": event.quantity,
                    "details": event.details,
                }
                for event in flow.order_events(session, READER, target)
            ]
        emit(found)
    except TallyError as error:
        fail(error)


def _change(order_id: str, staff_user: str, act: Any) -> None:
    """Run ``act(session, actor, order id, now, policy)`` in one transaction; print the order."""
    settings = get_settings()
    try:
        target = _order_id(order_id)
        now = utcnow()
        with open_database(settings) as db, db.write() as session:
            actor = _actor(session, staff_user)
            policy = policy_for(runtime.effective(session, settings, now), settings)
            act(session, actor, target, now, policy)
            found = _order(session, target)
        emit(found)
    except TallyError as error:
        fail(error)


@orders_app.command("ship")
def ship(
    order_id: OrderArgument,
    staff_user: StaffOption,
    carrier: Annotated[str, typer.Option("--carrier", help="The carrier, e.g. SF.")],
    tracking: Annotated[str, typer.Option("--tracking", help="The tracking number.")],
) -> None:
    """Ship a paid physical order (refused order_refunded once it was refunded)."""
    carrier, tracking = carrier.strip(), tracking.strip()
    if not 1 <= len(carrier) <= 64 or not 1 <= len(tracking) <= 128:
        fail(ValidationFailed("--carrier is 1 to 64 characters, --tracking 1 to 128."))
    _change(
        order_id,
        staff_user,
        lambda session, actor, target, now, _policy: flow.ship(
            session, actor, target, carrier, tracking, now
        ),
    )


@orders_app.command("deliver")
def deliver(order_id: OrderArgument, staff_user: StaffOption) -> None:
    """A shipped order arrived, or a partner benefit was fulfilled."""
    _change(
        order_id,
        staff_user,
        lambda session, actor, target, now, _policy: flow.deliver(session, actor, target, now),
    )


@orders_app.command("cancel")
def cancel(order_id: OrderArgument, staff_user: StaffOption) -> None:
    """Cancel an order not fulfilled yet: points and stock back (refunded in full if paid)."""
    _change(order_id, staff_user, flow.cancel)


@orders_app.command("refund")
def refund(
    order_id: OrderArgument,
    staff_user: StaffOption,
    quantity: Annotated[
        int | None, typer.Option("--quantity", min=1, help="Units to refund (restocked).")
    ] = None,
    points: Annotated[
        int | None, typer.Option("--points", min=1, help="Points to give back (no restock).")
    ] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Why (recorded).")] = None,
) -> None:
    """Refund a paid order: all that is left (neither option), --quantity units or --points."""
    _change(
        order_id,
        staff_user,
        lambda session, actor, target, now, policy: flow.refund(
            session, actor, target, now, policy, quantity=quantity, points=points, reason=reason
        ),
    )
