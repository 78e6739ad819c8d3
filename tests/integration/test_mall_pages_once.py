"""The member mall's buy form is placed once, even when the same form arrives on several
connections at the same instant (both databases; on PostgreSQL in real parallel transactions):
the claim of the form in the idempotency records lets one order through and tells the others
what it did."""

from __future__ import annotations

from support.mall import POLICY, open_mall
from support.race import race
from tally.db.session import Database
from tally.flows import mall_orders as flow
from tally.kit.clock import utcnow
from tally.mall.models import Order
from tally.web.console import once
from tally.web.member.mall_views import MEMBER_ACTOR

SUBMITS = 6


def test_the_same_buy_form_sent_at_once_places_one_order(database: Database) -> None:
    submits = SUBMITS
    mall = open_mall(database)
    member = mall.member(1000)
    mall.item("DONATE", "donation", 300, stock=10)
    form = once.Form(f"member:{member}", "form:mall-order:same-nonce-0001", "same.token")

    def work(session: object) -> tuple[Order, dict[str, object]]:
        placed = flow.place_order(
            session,  # type: ignore[arg-type]
            MEMBER_ACTOR,
            member,
            flow.OrderRequest(item="DONATE"),
            mall.programme,
            POLICY,
            utcnow(),
        )
        return placed, {"order": str(placed.id)}

    results = race(submits, lambda _index: once.run(database, form, work))

    placed = [result for result in results if isinstance(result, Order)]
    done = [result for result in results if isinstance(result, once.Done)]
    assert len(placed) == 1, results
    assert len(done) == submits - 1, results
    assert {item.answer.get("order") for item in done} == {str(placed[0].id)}
    assert mall.count(Order) == 1
    assert mall.balance(member) == 700
