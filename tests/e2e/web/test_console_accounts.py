"""The console's accounts page (finance, auditors, administrators): every partner's issued,
accepted and net points as its accounts hold them, the system's accounts, and the outstanding
liability — unspent points and their value at issuance; support and ops are refused."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from fractions import Fraction

import pytest
import web_fixtures
from babel.numbers import format_currency, format_decimal
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from test_web_guardrails import as_staff
from web_fixtures import PASSWORD, DemoData

from tally.kit.clock import utcnow
from tally.ledger.models import Lot, Posting
from tally.partners.models import Partner
from tally.programme.domain import CURRENCY_EXPONENTS
from tally.staff import service as staff
from tally.staff.models import StaffRole

client = web_fixtures.client
demo_data = web_fixtures.demo_data


@pytest.fixture(scope="module")
def more_staff(demo_data: DemoData) -> None:
    """A finance and an ops account beside the demo's admin, support and auditor."""
    with demo_data.db.write() as session:
        for role in (StaffRole.FINANCE, StaffRole.OPS):
            if staff.id_of(session, f"acc-{role.value}") is None:
                staff.create(session, f"acc-{role.value}", PASSWORD, role, role.value, utcnow())


def _posted(data: DemoData) -> dict[str, int]:
    with data.db.read() as session:
        return {
            account: int(total)
            for account, total in session.execute(
                select(Posting.account, func.sum(Posting.amount))
                .where(Posting.account.like("partner:%"))
                .group_by(Posting.account)
            )
        }


def _liability(data: DemoData) -> dict[str, tuple[int, int]]:
    """``{currency: (points, minor units)}`` of the live lots, summed here lot by lot."""
    now = utcnow()
    points: dict[str, int] = defaultdict(int)
    worth: dict[str, Fraction] = defaultdict(Fraction)
    with data.db.read() as session:
        for lot in session.scalars(select(Lot).where(Lot.remaining > 0, Lot.expires_at > now)):
            assert lot.value_currency is not None
            assert lot.value_points is not None
            assert lot.value_minor is not None
            points[lot.value_currency] += lot.remaining
            worth[lot.value_currency] += Fraction(lot.remaining * lot.value_minor, lot.value_points)
    return {currency: (points[currency], round(worth[currency])) for currency in points}


@pytest.mark.usefixtures("more_staff")
@pytest.mark.parametrize("username", ["admin", "auditor", "acc-finance"])
def test_finance_roles_see_every_partner_and_the_liability(
    client: TestClient, demo_data: DemoData, username: str
) -> None:
    as_staff(client, username)
    client.cookies.set("lang", "en")

    response = client.get("/console/accounts")

    assert response.status_code == 200, response.text
    html = response.text
    assert 'id="nav-accounts"' in html
    posted = _posted(demo_data)
    with demo_data.db.read() as session:
        found = session.execute(select(Partner.id, Partner.code)).all()
    assert found
    for partner_id, code in found:
        issued = -posted.get(f"partner:{partner_id}:issued", 0)
        accepted = posted.get(f"partner:{partner_id}:redeemed", 0)
        row = html.split(f'data-partner="{code}"', 1)[1].split("</tr>", 1)[0]
        assert f'data-testid="issued">{format_decimal(issued, locale="en")}<' in row
        assert f'data-testid="accepted">{format_decimal(accepted, locale="en")}<' in row
    assert any(-total > 0 for account, total in posted.items() if account.endswith(":issued"))
    owed = _liability(demo_data)
    assert owed  # the demo's members hold points
    for currency, (_points, minor) in owed.items():
        money = Decimal(minor).scaleb(-CURRENCY_EXPONENTS[currency])
        shown = html.split(f'data-testid="liability-{currency}"', 1)[1].split("</div>", 1)[0]
        assert format_currency(money, currency, locale="en") in shown
    assert 'data-account="system:expired"' in html
    assert 'data-account="system:breakage"' in html


@pytest.mark.usefixtures("more_staff")
@pytest.mark.parametrize("username", ["support", "acc-ops"])
def test_support_and_ops_are_refused(client: TestClient, username: str) -> None:
    as_staff(client, username)

    assert client.get("/console/accounts").status_code == 403
    assert 'id="nav-accounts"' not in client.get("/console").text


def test_signed_out_visitors_are_sent_to_sign_in(client: TestClient) -> None:
    response = client.get("/console/accounts")

    assert response.status_code in (302, 303, 401)
    assert 'data-testid="unspent-points"' not in response.text
