"""``tally mall``: the catalog, code pools and orders from the command line, as staff."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from e2e.cli.clikit import run
from support.mall import Mall, open_mall
from tally.config import get_settings
from tally.db.engine import build_engine
from tally.db.session import Database
from tally.kit.clock import utcnow
from tally.mall.models import Code, Item, Order, OrderEvent
from tally.staff import service as staff
from tally.staff.models import StaffRole

ITEMS = """\
- code: MUG
  kind: physical
  names: {zh-CN: 马克杯, en: Mug}
  categories: [home]
  price: {points: 800}
  stock: 5
- code: VIDEO-MONTH
  kind: digital_code
  names: {zh-CN: 视频会员月卡, en: Video membership month}
  price: {points: 1500}
  low_water: 3
- code: TREES
  kind: donation
  names: {zh-CN: 种一棵树, en: Plant a tree}
  descriptions: {zh-CN: 为沙漠种树, en: Trees for the desert}
  price: {points: 100}
"""


@pytest.fixture
def mall(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Mall]:
    """The mall's test programme in a fresh SQLite file the commands use, and staff members
    ``ops`` (may manage the mall) and ``desk`` (support: may not)."""
    url = f"sqlite:///{tmp_path / 'tally.db'}"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TALLY_DATABASE_URL", url)
    monkeypatch.setenv("TALLY_SECRET_KEY", "cli-test-secret-" + "y" * 32)
    get_settings.cache_clear()
    database = Database(build_engine(url))
    from tally.schema import migrate

    migrate(database.engine)
    with database.write() as session:
        staff.create(session, "ops", "a-long-password", StaffRole.OPS, "Ops", utcnow())
        staff.create(session, "desk", "a-long-password", StaffRole.SUPPORT, "Desk", utcnow())
    yield open_mall(database)
    database.dispose()
    get_settings.cache_clear()


def out(*args: str) -> Any:
    return json.loads(run(*args).stdout)


def error(*args: str) -> str:
    return run(*args, code=2).stderr


def snapshot(mall: Mall) -> tuple[Any, ...]:
    with mall.db.read() as session:
        return (
            [
                (row.code, row.points, row.stock, row.version)
                for row in session.scalars(select(Item))
            ],
            [(row.code, row.order_id) for row in session.scalars(select(Code))],
            [
                (row.id, row.payment_status, row.fulfilment_status)
                for row in session.scalars(select(Order))
            ],
            len(list(session.scalars(select(OrderEvent)))),
        )


def test_import_list_show_and_update_by_code(mall: Mall, tmp_path: Path) -> None:
    (tmp_path / "items.yaml").write_text(ITEMS, encoding="utf-8")
    assert out("mall", "items", "import", "items.yaml", "--staff", "ops") == {
        "created": ["MUG", "VIDEO-MONTH", "TREES"],
        "updated": [],
    }
    listed = out("mall", "items", "list")
    assert [item["code"] for item in listed] == ["MUG", "VIDEO-MONTH", "TREES"]
    assert [item["code"] for item in out("mall", "items", "list", "--category", "home")] == ["MUG"]
    assert [item["code"] for item in out("mall", "items", "list", "--search", "desert")] == [
        "TREES"
    ]
    mug = out("mall", "items", "show", "MUG")
    assert (mug["kind"], mug["stock"], mug["price"]["points"]) == ("physical", 5, 800)
    assert mug["names"] == {"zh-CN": "马克杯", "en": "Mug"}

    # The same codes again, as JSON: the fields given replace the item's, the rest stay.
    changed = [{"code": "MUG", "kind": "physical", "names": {"zh-CN": "杯子", "en": "Cup"},
                "price": {"points": 700}}]  # fmt: skip
    (tmp_path / "items.json").write_text(json.dumps(changed), encoding="utf-8")
    assert out("mall", "items", "import", "items.json", "--staff", "ops") == {
        "created": [],
        "updated": ["MUG"],
    }
    mug = out("mall", "items", "show", "MUG")
    assert (mug["names"]["en"], mug["price"]["points"], mug["stock"]) == ("Cup", 700, 5)
    with mall.db.read() as session:
        row = session.scalar(select(Item).where(Item.code == "MUG"))
        assert row is not None
        assert row.created_by_staff_id is not None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (ITEMS.replace("price: {points: 1500}", "price: {points: -1}"),
         "item 1 (VIDEO-MONTH): price.points: Input should be greater than or equal to 0"),
        (ITEMS + "- {code: MUG, kind: donation, names: {zh-CN: 杯, en: Cup}, price: {points: 1}}\n",
         "item 3 (MUG): the code MUG appears twice"),
        (ITEMS.replace("kind: donation", "kind: gift"), "item 2 (TREES): kind: Input should be"),
        (ITEMS + "- {code: X, kind: donation, names: {zh-CN: 捐, en: Give}, price: {points: 1},"
         " eligibility: {tiers: [NOPE]}}\n",
         "item 3 (X): eligibility.tiers names NOPE"),
        (ITEMS + "- just text\n", "item 3: an item is a mapping"),
        ("code: MUG\n", "An item file is a non-empty list of items"),
        ("- [unclosed\n", "not valid YAML"),
    ],
    ids=["a negative price", "a code twice", "an unknown kind", "an unknown tier", "not a mapping",
         "not a list", "not YAML"],
)  # fmt: skip
def test_a_bad_import_names_the_item_and_writes_nothing(
    mall: Mall, tmp_path: Path, content: str, message: str
) -> None:
    (tmp_path / "bad.yaml").write_text(content, encoding="utf-8")
    before = snapshot(mall)
    assert message in error("mall", "items", "import", "bad.yaml", "--staff", "ops")
    assert snapshot(mall) == before


def test_a_kind_never_changes_on_import_and_nothing_else_is_written(
    mall: Mall, tmp_path: Path
) -> None:
    (tmp_path / "items.yaml").write_text(ITEMS, encoding="utf-8")
    out("mall", "items", "import", "items.yaml", "--staff", "ops")
    before = snapshot(mall)
    twice = ITEMS.replace("stock: 5", "stock: 9").replace("kind: donation", "kind: ticket")
    (tmp_path / "twice.yaml").write_text(twice, encoding="utf-8")
    message = error("mall", "items", "import", "twice.yaml", "--staff", "ops")
    assert "error [validation_error]: item 2 (TREES): its kind is donation" in message
    assert snapshot(mall) == before  # MUG's new stock (item 0) was rolled back too


def test_only_staff_with_the_mall_permission_change_it(mall: Mall, tmp_path: Path) -> None:
    (tmp_path / "items.yaml").write_text(ITEMS, encoding="utf-8")
    before = snapshot(mall)
    assert "error [forbidden]" in error("mall", "items", "import", "items.yaml", "--staff", "desk")
    assert "error [not_found]" in error(
        "mall", "items", "import", "items.yaml", "--staff", "nobody"
    )
    assert snapshot(mall) == before


def test_codes_upload_reports_the_pool(mall: Mall, tmp_path: Path) -> None:
    mall.item("VIDEO-MONTH", "digital_code", low_water=3)
    (tmp_path / "codes.txt").write_text("AAA-1\nAAA-2\n\nAAA-1\n", encoding="utf-8")
    assert out("mall", "codes", "upload", "VIDEO-MONTH", "codes.txt", "--staff", "ops") == {
        "item": "VIDEO-MONTH",
        "added": 2,
        "passed_over": 1,
        "free": 2,
        "low_water": 3,
        "below_low_water": True,
    }
    (tmp_path / "more.txt").write_text("AAA-2\nAAA-3\nAAA-4\n", encoding="utf-8")
    found = out("mall", "codes", "upload", "VIDEO-MONTH", "more.txt", "--staff", "ops")
    assert (found["added"], found["passed_over"], found["free"]) == (2, 1, 4)
    assert found["below_low_water"] is False
    assert out("mall", "items", "show", "VIDEO-MONTH")["stock"] == 4

    mall.item("TREES")
    before = snapshot(mall)
    (tmp_path / "empty.txt").write_text("\n\n", encoding="utf-8")
    assert "has no codes" in error("mall", "codes", "upload", "VIDEO-MONTH", "empty.txt",
                                   "--staff", "ops")  # fmt: skip
    assert "not a digital-code item" in error(
        "mall", "codes", "upload", "TREES", "more.txt", "--staff", "ops"
    )
    assert "error [not_found]" in error("mall", "codes", "upload", "NONE", "more.txt",
                                        "--staff", "ops")  # fmt: skip
    assert "error [forbidden]" in error("mall", "codes", "upload", "VIDEO-MONTH", "more.txt",
                                        "--staff", "desk")  # fmt: skip
    assert snapshot(mall) == before


def test_restock_adds_to_a_limited_stock(mall: Mall) -> None:
    mall.item("MUG", "physical", points=300, stock=3)
    mall.place(mall.member(2000), "MUG", address={"line": "1 Road"})
    mall.item("TREES")

    assert out("mall", "items", "restock", "MUG", "--add", "10", "--staff", "ops")["stock"] == 12
    before = snapshot(mall)
    assert "limited stock" in error("mall", "items", "restock", "TREES", "--add", "1",
                                    "--staff", "ops")  # fmt: skip
    assert "Add 1 to" in error("mall", "items", "restock", "MUG", "--add", "0", "--staff", "ops")
    assert "error [forbidden]" in error("mall", "items", "restock", "MUG", "--add", "1",
                                        "--staff", "desk")  # fmt: skip
    assert snapshot(mall) == before


def test_orders_list_ship_deliver_refund_and_cancel_as_staff(mall: Mall) -> None:
    mall.item("MUG", "physical", points=300, stock=10)
    mall.item("TREES", points=100)
    member = mall.member(2000)
    other = mall.member(2000)
    mug = str(mall.place(member, "MUG", 2, address={"line": "1 Road"}))
    trees = str(mall.place(member, "TREES"))
    spare = str(mall.place(other, "MUG", address={"line": "2 Road"}))

    assert [order["id"] for order in out("mall", "orders", "list", "--member", str(member))] == [
        trees,
        mug,
    ]
    processing = out("mall", "orders", "list", "--status", "processing")
    assert {order["id"] for order in processing} == {mug, spare}
    assert [o["id"] for o in out("mall", "orders", "list", "--status", "completed")] == [trees]

    shipped = out("mall", "orders", "ship", mug, "--staff", "ops", "--carrier", "SF",
                  "--tracking", "SF1234")  # fmt: skip
    assert (shipped["status"], shipped["carrier"], shipped["tracking_number"]) == (
        "shipped",
        "SF",
        "SF1234",
    )
    assert out("mall", "orders", "deliver", mug, "--staff", "ops")["status"] == "completed"
    part = out("mall", "orders", "refund", mug, "--staff", "ops", "--quantity", "1",
               "--reason", "one arrived broken")  # fmt: skip
    assert (part["payment_status"], part["refunded_points"], part["refunded_quantity"]) == (
        "part_refunded",
        300,
        1,
    )
    assert mall.balance(member) == 2000 - 600 - 100 + 300
    cancelled = out("mall", "orders", "cancel", spare, "--staff", "ops")
    assert (cancelled["status"], mall.balance(other)) == ("refunded", 2000)

    shown = out("mall", "orders", "show", mug)
    kinds = [(event["kind"], event["staff_id"] is not None) for event in shown["events"]]
    assert kinds == [
        ("placed", False),
        ("paid", False),
        ("shipped", True),
        ("delivered", True),
        ("part_refunded", True),
    ]
    assert shown["events"][-1]["details"] == {"reason": "one arrived broken"}
    assert out("mall", "items", "show", "MUG")["stock"] == 10 - 3 + 1 + 1


def test_bad_order_commands_are_refused_with_nothing_written(mall: Mall) -> None:
    mall.item("MUG", "physical", points=300)
    member = mall.member(2000)
    order = str(mall.place(member, "MUG", address={"line": "1 Road"}))
    out("mall", "orders", "refund", order, "--staff", "ops", "--points", "100")
    before = snapshot(mall)
    ship = ("--carrier", "SF", "--tracking", "1")
    for args, message in (
        (("ship", order, "--staff", "desk", *ship), "error [forbidden]"),
        (("ship", order, "--staff", "nobody", *ship), "error [not_found]"),
        (("ship", "not-a-uuid", "--staff", "ops", *ship), "error [not_found]"),
        (("deliver", order, "--staff", "ops"), "error [invalid_transition]"),
        (("refund", order, "--staff", "ops", "--points", "201"), "points must be from 1 to"),
        (("refund", order, "--staff", "ops", "--points", "1", "--quantity", "1"), "not both"),
        (("ship", order, "--staff", "ops", "--carrier", " ", "--tracking", "1"), "--carrier"),
    ):
        assert message in error("mall", "orders", *args)
    assert "error [validation_error]: status must be one of" in error(
        "mall", "orders", "list", "--status", "sent"
    )
    assert "error [not_found]" in error("mall", "orders", "list", "--member", "999")
    out("mall", "orders", "refund", order, "--staff", "ops")  # the 200 points left
    before = snapshot(mall)
    assert "error [order_refunded]" in error("mall", "orders", "ship", order, "--staff", "ops",
                                             *ship)  # fmt: skip
    assert snapshot(mall) == before
