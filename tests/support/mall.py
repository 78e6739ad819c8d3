"""The rewards mall's test kit: a programme with an operator channel and a supplier, members
with points, items of each kind, and counts of what was written."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from support.membership_programme import DEMO, OPERATOR, PLANS
from tally.db.session import Database
from tally.flows import enrolment
from tally.flows import mall_orders as flow
from tally.kit.clock import utcnow
from tally.ledger import service as ledger
from tally.ledger.domain import Origin, Policy
from tally.mall import service as catalog
from tally.mall.schemas import ItemCreate
from tally.members.service import Identity
from tally.partners import service as partners
from tally.programme import loader
from tally.programme import service as programme_service
from tally.programme.domain import Programme

SUPPLIER = {"code": "VIDEO", "name": "Video streaming"}
POLICY = Policy(
    validity_days=365, reversal_grace_days=30, zone_name="Asia/Shanghai", max_points=10**9
)


def programme_text() -> str:
    """The demo programme (six tiers, DIAMOND and up mall_exclusive) with the test plans, the
    operator's channel MOBILE and a supplier VIDEO."""
    demo = {**loader.load(DEMO.read_text(encoding="utf-8"), DEMO.name).dump()}
    demo.pop("namespaces")
    return loader.dump(
        Programme.model_validate({**demo, "plans": PLANS, "partners": [OPERATOR, SUPPLIER]})
    )


@dataclass
class Mall:
    """A database with the programme applied, its two partners and what acts for them."""

    db: Database
    programme: Programme
    operator_id: int
    supplier_id: int

    @property
    def app(self) -> flow.Actor:
        """The operator's app (an operator channel)."""
        return flow.Actor(partner_id=self.operator_id, is_operator=True)

    @property
    def supplier(self) -> flow.Actor:
        return flow.Actor(partner_id=self.supplier_id)

    def member(self, points: int = 10_000, name: str | None = None) -> int:
        """A new member with ``points`` earned from the operator's channel."""
        now = utcnow()
        with self.db.write() as session:
            member_id, _ = enrolment.enrol(
                session, Identity("t", name or f"m{now.timestamp()}-{id(now)}"), {}, now
            )
            if points:
                ledger.earn(
                    session,
                    Origin(partner_id=self.operator_id),
                    member_id,
                    points,
                    f"seed-{member_id}",
                    now,
                    POLICY,
                )
        return member_id

    def item(self, code: str, kind: str = "donation", points: int = 100, **extra: Any) -> int:
        """A new item of the operator's (or, with ``supplier=True``, the supplier's)."""
        supplier = extra.pop("supplier", False)
        spec = ItemCreate.model_validate(
            {
                "code": code,
                "kind": kind,
                "names": {"zh-CN": f"商品{code}", "en": f"Item {code}"},
                "price": {"points": points, **extra.pop("price", {})},
                **extra,
            }
        )
        manager = self.supplier.manager if supplier else catalog.OPERATOR
        with self.db.write() as session:
            return catalog.create_item(session, manager, spec, self.programme, utcnow()).id

    def place(
        self,
        member_id: int,
        item: str,
        quantity: int = 1,
        now: datetime | None = None,
        **extra: Any,
    ) -> Any:
        request = flow.OrderRequest(item=item, quantity=quantity, **extra)
        with self.db.write() as session:
            row = flow.place_order(
                session, self.app, member_id, request, self.programme, POLICY, now or utcnow()
            )
            return row.id

    def balance(self, member_id: int) -> int:
        with self.db.read() as session:
            from zoneinfo import ZoneInfo

            return ledger.balance(session, member_id, utcnow(), ZoneInfo("Asia/Shanghai")).available

    def count(self, model: Any, *where: Any) -> int:
        with self.db.read() as session:
            return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def open_mall(db: Database) -> Mall:
    """Apply the mall's test programme (version 1, a day ago) and register its partners."""
    text = programme_text()
    programme = programme_service.validate(text)
    with db.write() as session:
        programme_service.apply(session, programme, text, "tests", utcnow() - timedelta(days=1))
        operator = partners.partner_by_code(session, "MOBILE")
        supplier = partners.partner_by_code(session, "VIDEO")
        return Mall(db, programme, operator.id, supplier.id)
