"""Every error code of the partner API: status, problem+json, stable code, and nothing written.

Each case prepares what it needs, snapshots every table (but the idempotency records) and the
member's balance and history, sends one request, and checks the refusal left all of it untouched.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from apikit import (
    all_transactions,
    assert_problem,
    db_state,
    issue_key,
    merge,
    revoke,
    tolerant_client,
    unique,
)
from fastapi.testclient import TestClient

import tally
from conftest import Api, PartnerKey, make_partner
from support.policy import policy_of
from tally.db.session import Database
from tally.kit.clock import utcnow

DEMO_PROGRAMME = Path(tally.__file__).parent / "demo" / "programme.yaml"
VIP88 = {"minor_units": 8800, "currency": "CNY"}
HUGE = "99999999999999999999999"
UUID0 = "00000000-0000-0000-0000-000000000000"


@dataclass
class World:
    """A partner (all scopes) with one member holding 100 points and one holding none."""

    client: TestClient
    database: Database
    partner: PartnerKey
    api: Api
    member: int
    empty: int
    earn_id: str
    app: Any
    has_programme: bool = False

    def key(self, scopes: str) -> Api:
        """Another key of the same partner."""
        return Api(self.client, issue_key(self.database, self.partner, scopes))

    def other(self, scopes: str = "members,earn,redeem,read") -> Api:
        """Another partner."""
        return Api(self.client, make_partner(self.database, unique("P"), scopes))

    def ok(self, response: Any) -> dict[str, Any]:
        assert response.status_code in (200, 201), response.text
        return response.json()  # type: ignore[no-any-return]

    def hold(self, points: int = 10, member: int | None = None) -> str:
        body = {"points": points, "expires_in_seconds": 3600, "reference": unique("hold")}
        return str(self.ok(self.api.post(f"/v1/members/{member or self.member}/holds", body))["id"])

    def enrol(self) -> int:
        return self.api.enrol(unique("ext"), namespace="email")  # declared in every programme

    def frozen(self) -> int:
        member = self.enrol()
        self.ok(self.api.earn(member, 20))
        self.ok(self.api.post(f"/v1/members/{member}/freeze", {"reason": "fraud check"}))
        return member

    def merged(self) -> int:
        member = self.enrol()
        self.ok(self.api.earn(member, 20))
        merge(self.database, self.empty, member)
        return member

    def programme(self) -> None:
        """Apply the demo programme (its plans), seen by the app at once (no cache)."""
        from tally.programme import service as programme_service
        from tally.programme.runtime import ProgrammeCache

        if self.has_programme:
            return
        text = DEMO_PROGRAMME.read_text(encoding="utf-8")
        found = programme_service.validate(text, DEMO_PROGRAMME.name)
        with self.database.write() as session:
            programme_service.apply(session, found, text, "tests", utcnow())
        self.app.state.programme = ProgrammeCache(self.app.state.settings, 0)
        self.has_programme = True

    def grow(self, member: int, points: int) -> int:
        """Give ``member`` growth value (an operator's adjustment)."""
        body = {"points": points, "reason": "test"}
        self.ok(self.api.post(f"/v1/members/{member}/growth/adjustments", body))
        return member

    def subscribe(self, plan: str = "VIP88") -> str:
        """A pending VIP88 membership of a new member with the growth value it takes."""
        self.programme()
        member = self.grow(self.enrol(), 1000)
        body = {"plan": plan}
        return str(self.ok(self.api.post(f"/v1/members/{member}/memberships", body))["id"])

    def pay(self, membership: str, reference: str = "pay-1") -> str:
        """Pay one term of ``membership`` (88.00 CNY) with this reference."""
        body = {"reference": reference, "amount": VIP88}
        self.ok(self.api.post(f"/v1/memberships/{membership}/payments", body))
        return membership

    def refunded(self, membership: str, reference: str = "pay-1") -> str:
        """Refund all of the payment ``reference`` of ``membership``."""
        body = {"payment_reference": reference}
        self.ok(self.api.post(f"/v1/memberships/{membership}/refunds", body))
        return membership

    def family(self, owner: int | None = None, mode: str = "share") -> int:
        """A family owned by ``owner`` (by default the member with 100 points)."""
        body = {"acting_member_id": owner or self.member, "mode": mode}
        return int(self.ok(self.api.post("/v1/families", body))["id"])

    def invite(self, family: int, member: int, owner: int | None = None) -> int:
        body = {"acting_member_id": owner or self.member, "member_id": member}
        self.ok(self.api.post(f"/v1/families/{family}/invitations", body))
        return member

    def answer(self, family: int, member: int, action: str, acting: int | None = None) -> int:
        """``accept``, ``decline`` (by the member) or ``withdraw`` (by the owner)."""
        body = {"acting_member_id": acting or member}
        self.ok(self.api.post(f"/v1/families/{family}/invitations/{member}/{action}", body))
        return member

    def joined(self, family: int, limit: int | None = None) -> int:
        """A new member in ``family`` (owned by the member with 100 points), its limit set."""
        member = self.answer(family, self.invite(family, self.enrol()), "accept")
        if limit is not None:
            body = {
                "acting_member_id": self.member,
                "limits": [{"member_id": member, "monthly_limit": limit}],
            }
            self.ok(self.api.post(f"/v1/families/{family}/settings", body))
        return member

    def dissolved(self) -> int:
        family = self.family()
        body = {"acting_member_id": self.member}
        self.ok(self.api.post(f"/v1/families/{family}/dissolve", body))
        return family

    def post(
        self, path: str, body: Any = None, api: Api | None = None, **kwargs: Any
    ) -> Callable[[], Any]:
        """The request, to send later (arguments are evaluated now, so setup happens first)."""
        return lambda: (api or self.api).post(path, body, **kwargs)

    def get(self, path: str, api: Api | None = None, **kwargs: Any) -> Callable[[], Any]:
        return lambda: (api or self.api).get(path, **kwargs)

    def raw(
        self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> Callable[[], Any]:
        all_headers = self.partner.headers(unique("key")) | (headers or {})
        return lambda: self.client.request(method, path, headers=all_headers, **kwargs)

    def bare(
        self, method: str, path: str, headers: dict[str, str], body: Any = None
    ) -> Callable[[], Any]:
        """A request with exactly these headers (no key unless given)."""
        return lambda: self.client.request(method, path, headers=headers, json=body)


@pytest.fixture
def world(app: Any, database: Database, partner: PartnerKey) -> Iterator[World]:
    # Written through the services (not HTTP) to keep this large table quick.
    from tally.flows import enrolment
    from tally.ledger import service as ledger
    from tally.ledger.domain import Origin
    from tally.members.service import Identity

    now = utcnow()
    with database.write() as session:
        member, _ = enrolment.enrol(session, Identity("phone", "13800000001"), {}, now)
        empty, _ = enrolment.enrol(session, Identity("phone", "13800000002"), {}, now)
        earned = ledger.earn(
            session,
            Origin(partner_id=partner.partner_id),
            member,
            100,
            "first-earn",
            now,
            policy_of(app.state.settings),
        )
    with tolerant_client(app) as client:
        api = Api(client, partner)
        assert api.balance(member)["available"] == 100
        yield World(client, database, partner, api, member, empty, str(earned.entry_id), app)


Build = Callable[[World], Callable[[], Any]]


def earn(body: dict[str, Any]) -> Build:
    return lambda w: w.post(f"/v1/members/{w.member}/earn", body)


def redeem(body: dict[str, Any]) -> Build:
    return lambda w: w.post(f"/v1/members/{w.member}/redeem", body)


def hold(body: dict[str, Any]) -> Build:
    return lambda w: w.post(f"/v1/members/{w.member}/holds", body)


def capture(body: Any) -> Build:
    return lambda w: w.post(f"/v1/holds/{w.hold(10)}/capture", body)


def transfer(body: dict[str, Any]) -> Build:
    def build(w: World) -> Callable[[], Any]:
        values = {
            "from_member_id": w.member,
            "to_member_id": w.empty,
            "points": 5,
            "reference": "gift",
        }
        return w.post("/v1/transfers", {**values, **body})

    return build


def enrol(body: Any) -> Build:
    return lambda w: w.post("/v1/members", body)


def adjust(body: dict[str, Any]) -> Build:
    return lambda w: w.post(f"/v1/members/{w.member}/adjustments", body)


def raw_earn(content: bytes, content_type: str | None = "application/json") -> Build:
    headers = {"content-type": content_type} if content_type else {}
    return lambda w: w.raw("POST", f"/v1/members/{w.member}/earn", headers, content=content)


R = "order-1"


def _beyond_64_bits(w: World) -> Callable[[], Any]:
    cursor = base64.urlsafe_b64encode(f"p:{HUGE}".encode()).decode().rstrip("=")
    return w.get(f"/v1/members/{w.member}/transactions", params={"cursor": cursor})


VALIDATION: dict[str, dict[str, Build]] = {
    # Each of these once answered 500 (no input may).
    "out of range for the database": {
        "expires_at at the end of 9999": earn(
            {"points": 5, "reference": R, "expires_at": "9999-12-31T23:59:59Z"}
        ),
        "expires_at beyond 9999 in UTC": earn(
            {"points": 5, "reference": R, "expires_at": "9999-12-31T23:59:59-14:00"}
        ),
        "adjustment expiring at the end of 9999": adjust(
            {"points": 5, "reason": "x", "expires_at": "9999-12-31T23:59:59Z"}
        ),
        "transfer from member 2**63": transfer({"from_member_id": 2**63}),
        "transfer to member 2**63": transfer({"to_member_id": 2**63}),
        "transfer to member 2**62+1": transfer({"to_member_id": 2**62 + 1}),
        "cursor beyond 64 bits": _beyond_64_bits,
    },
    "NUL and other control characters": {
        "reference": earn({"points": 5, "reference": "order\x00-1"}),
        "reference with an escape": earn({"points": 5, "reference": "order\x1b[31m"}),
        "external id": enrol({"external_id": {"namespace": "email", "id": "a\x00@b"}}),
        "profile name": enrol(
            {"external_id": {"namespace": "email", "id": "n@b"}, "profile": {"name": "Li\x00"}}
        ),
        "identity linked": lambda w: w.post(
            f"/v1/members/{w.member}/identities", {"namespace": "email", "id": "x\x00"}
        ),
        "freeze reason": lambda w: w.post(
            f"/v1/members/{w.member}/freeze", {"reason": "fraud\x00"}
        ),
        "adjustment reason": adjust({"points": 5, "reason": "fix\x00"}),
        "lookup id": lambda w: w.get(
            "/v1/members/lookup", params={"namespace": "phone", "id": "138\x00"}
        ),
    },
    "earn: every wrong shape of points and reference": {
        "earn points negative": earn({"points": -5, "reference": R}),
        "earn points zero": earn({"points": 0, "reference": R}),
        "earn points fractional": earn({"points": 1.5, "reference": R}),
        "earn points float": earn({"points": 10.0, "reference": R}),
        "earn points string": earn({"points": "10", "reference": R}),
        "earn points bool": earn({"points": True, "reference": R}),
        "earn points 10**9+1": earn({"points": 10**9 + 1, "reference": R}),
        "earn points 10**12": earn({"points": 10**12, "reference": R}),
        "earn points 10**30": earn({"points": 10**30, "reference": R}),
        "earn points null": earn({"points": None, "reference": R}),
        "earn points list": earn({"points": [10], "reference": R}),
        "earn points missing": earn({"reference": R}),
        "earn reference missing": earn({"points": 10}),
        "earn reference null": earn({"points": 10, "reference": None}),
        "earn reference blank": earn({"points": 10, "reference": "   "}),
        "earn reference too long": earn({"points": 10, "reference": "r" * 192}),
        "earn reference number": earn({"points": 10, "reference": 123}),
        "earn unknown field": earn({"points": 10, "reference": R, "bonus": 5}),
        "earn expires_at naive": earn(
            {"points": 10, "reference": R, "expires_at": "2030-01-01T00:00:00"}
        ),
        "earn expires_at date only": earn(
            {"points": 10, "reference": R, "expires_at": "2030-01-01"}
        ),
        "earn expires_at past": earn(
            {"points": 10, "reference": R, "expires_at": "2020-01-01T00:00:00Z"}
        ),
        "earn expires_at garbage": earn({"points": 10, "reference": R, "expires_at": "next year"}),
    },
    "redeem": {
        "redeem points zero": redeem({"points": 0, "reference": R}),
        "redeem points negative": redeem({"points": -10, "reference": R}),
        "redeem points fractional": redeem({"points": 1.5, "reference": R}),
        "redeem points string": redeem({"points": "10", "reference": R}),
        "redeem points 10**30": redeem({"points": 10**30, "reference": R}),
        "redeem reference missing": redeem({"points": 10}),
        "redeem unknown field": redeem(
            {"points": 10, "reference": R, "expires_at": "2030-01-01T00:00:00Z"}
        ),
    },
    "holds": {
        "hold seconds zero": hold({"points": 10, "expires_in_seconds": 0, "reference": R}),
        "hold seconds negative": hold({"points": 10, "expires_in_seconds": -60, "reference": R}),
        "hold seconds fractional": hold({"points": 10, "expires_in_seconds": 1.5, "reference": R}),
        "hold seconds over 30 days": hold(
            {"points": 10, "expires_in_seconds": 30 * 86400 + 1, "reference": R}
        ),
        "hold seconds over programme max": hold(
            {"points": 10, "expires_in_seconds": 8 * 86400, "reference": R}
        ),
        "hold seconds missing": hold({"points": 10, "reference": R}),
        "hold points zero": hold({"points": 0, "expires_in_seconds": 60, "reference": R}),
    },
    "capture": {
        "capture points zero": capture({"points": 0}),
        "capture points negative": capture({"points": -3}),
        "capture points fractional": capture({"points": 2.5}),
        "capture more than held": capture({"points": 11}),
        "capture unknown field": capture({"amount": 5}),
    },
    "transfers": {
        "transfer to self": lambda w: w.post(
            "/v1/transfers",
            {"from_member_id": w.member, "to_member_id": w.member, "points": 5, "reference": R},
        ),
        "transfer from zero": transfer({"from_member_id": 0}),
        "transfer to negative": transfer({"to_member_id": -1}),
        "transfer member id string": transfer({"to_member_id": "2"}),
        "transfer points zero": transfer({"points": 0}),
        "transfer points fractional": transfer({"points": 0.5}),
        "transfer reference too long": transfer({"reference": "x" * 192}),
        "transfer missing to": lambda w: w.post(
            "/v1/transfers", {"from_member_id": w.member, "points": 5, "reference": R}
        ),
    },
    "members": {
        "enrol missing external_id": enrol({"profile": {"name": "Li"}}),
        "enrol namespace invalid": enrol({"external_id": {"namespace": "1phone", "id": "x"}}),
        "enrol namespace with space": enrol({"external_id": {"namespace": "my phone", "id": "x"}}),
        "enrol id blank": enrol({"external_id": {"namespace": "phone", "id": "  "}}),
        "enrol id too long": enrol({"external_id": {"namespace": "email", "id": "e" * 192}}),
        "enrol external_id extra": enrol(
            {"external_id": {"namespace": "email", "id": "a@b", "x": 1}}
        ),
        "enrol profile unknown field": enrol(
            {"external_id": {"namespace": "email", "id": "a@b"}, "profile": {"age": 30}}
        ),
        "enrol profile bad phone": enrol(
            {"external_id": {"namespace": "email", "id": "a@b"}, "profile": {"phone": "call me"}}
        ),
        "enrol profile bad birthday": enrol(
            {
                "external_id": {"namespace": "email", "id": "a@b"},
                "profile": {"birthday": "yesterday"},
            }
        ),
        "enrol body list": enrol([{"namespace": "email", "id": "a@b"}]),
        "link namespace invalid": lambda w: w.post(
            f"/v1/members/{w.member}/identities", {"namespace": "-x", "id": "1"}
        ),
        "link id missing": lambda w: w.post(
            f"/v1/members/{w.member}/identities", {"namespace": "email"}
        ),
        "unlink id too long": lambda w: w.post(
            f"/v1/members/{w.member}/identities/unlink", {"namespace": "email", "id": "e" * 192}
        ),
        "freeze reason blank": lambda w: w.post(f"/v1/members/{w.member}/freeze", {"reason": " "}),
        "freeze reason missing": lambda w: w.post(f"/v1/members/{w.member}/freeze", {}),
        "freeze reason too long": lambda w: w.post(
            f"/v1/members/{w.member}/freeze", {"reason": "r" * 501}
        ),
    },
    "adjustments": {
        "adjust points zero": adjust({"points": 0, "reason": "fix"}),
        "adjust points 10**12": adjust({"points": 10**12, "reason": "fix"}),
        "adjust points -10**12": adjust({"points": -(10**12), "reason": "fix"}),
        "adjust points fractional": adjust({"points": 2.5, "reason": "fix"}),
        "adjust reason missing": adjust({"points": 5}),
        "adjust reason blank": adjust({"points": 5, "reason": "  "}),
        "adjust expires_at past": adjust(
            {"points": 5, "reason": "fix", "expires_at": "2020-01-01T00:00:00Z"}
        ),
    },
    "bodies that are not the JSON object asked for": {
        "invalid utf-8": raw_earn(b'{"points": 10, "reference": "\xff\xfe"}'),
        "malformed json": raw_earn(b'{"points": 10, "reference": '),
        "json with trailing garbage": raw_earn(b'{"points": 10, "reference": "a"} }'),
        "empty body": raw_earn(b""),
        "json array body": raw_earn(b"[10]"),
        "json string body": raw_earn(b'"10 points"'),
        "text/plain content type": raw_earn(b'{"points": 10, "reference": "a"}', "text/plain"),
        "form content type": raw_earn(
            b"points=10&reference=a", "application/x-www-form-urlencoded"
        ),
    },
    "path and query values": {
        "limit zero": lambda w: w.get(f"/v1/members/{w.member}/transactions", params={"limit": 0}),
        "limit too big": lambda w: w.get(
            f"/v1/members/{w.member}/transactions", params={"limit": 201}
        ),
        "limit not integer": lambda w: w.get(
            f"/v1/members/{w.member}/transactions", params={"limit": "ten"}
        ),
        "cursor garbage": lambda w: w.get(
            f"/v1/members/{w.member}/transactions", params={"cursor": "!!!"}
        ),
        "cursor wrong prefix": lambda w: w.get(
            f"/v1/members/{w.member}/transactions", params={"cursor": "eDoxMA"}
        ),
        "cursor too long": lambda w: w.get(
            f"/v1/members/{w.member}/transactions", params={"cursor": "A" * 101}
        ),
        "lookup id missing": lambda w: w.get("/v1/members/lookup", params={"namespace": "phone"}),
        "lookup namespace too long": lambda w: w.get(
            "/v1/members/lookup", params={"namespace": "n" * 65, "id": "1"}
        ),
        "idempotency key too long": lambda w: w.post(
            f"/v1/members/{w.member}/earn",
            {"points": 10, "reference": R},
            idempotency_key="k" * 256,
        ),
        "idempotency key empty": lambda w: w.bare(
            "POST",
            f"/v1/members/{w.member}/earn",
            w.partner.headers(""),
            {"points": 10, "reference": R},
        ),
        "idempotency key not printable": lambda w: w.post(
            f"/v1/members/{w.member}/earn",
            {"points": 10, "reference": R},
            idempotency_key="key\twith-tab",
        ),
    },
}


NOT_FOUND: dict[str, Build] = {
    "balance of unknown member": lambda w: w.get("/v1/members/999999/balance"),
    "unknown member": lambda w: w.get("/v1/members/999999"),
    "transactions of unknown member": lambda w: w.get("/v1/members/999999/transactions"),
    "earn for unknown member": lambda w: w.post(
        "/v1/members/999999/earn", {"points": 1, "reference": R}
    ),
    "redeem for unknown member": lambda w: w.post(
        "/v1/members/999999/redeem", {"points": 1, "reference": R}
    ),
    "hold for unknown member": lambda w: w.post(
        "/v1/members/999999/holds", {"points": 1, "expires_in_seconds": 60, "reference": R}
    ),
    "freeze unknown member": lambda w: w.post("/v1/members/999999/freeze", {"reason": "x"}),
    "unfreeze unknown member": lambda w: w.post("/v1/members/999999/unfreeze"),
    "link to unknown member": lambda w: w.post(
        "/v1/members/999999/identities", {"namespace": "email", "id": "x@y"}
    ),
    "unlink from unknown member": lambda w: w.post(
        "/v1/members/999999/identities/unlink", {"namespace": "phone", "id": "13800000001"}
    ),
    "unlink identity the member lacks": lambda w: (
        w.ok(w.api.post(f"/v1/members/{w.member}/identities", {"namespace": "email", "id": "a@b"})),
        w.post(
            f"/v1/members/{w.member}/identities/unlink", {"namespace": "email", "id": "other@b"}
        ),
    )[1],
    "member link for an unknown member": lambda w: w.post("/v1/members/999999/links"),
    "adjust unknown member": lambda w: w.post(
        "/v1/members/999999/adjustments", {"points": 5, "reason": "x"}
    ),
    "transfer to unknown member": transfer({"to_member_id": 999999}),
    "transfer from unknown member": transfer({"from_member_id": 999999}),
    "lookup unknown identity": lambda w: w.get(
        "/v1/members/lookup", params={"namespace": "phone", "id": "1"}
    ),
    "lookup unknown namespace": lambda w: w.get(
        "/v1/members/lookup", params={"namespace": "qq", "id": "13800000001"}
    ),
    "get hold id not a uuid": lambda w: w.get("/v1/holds/not-a-hold"),
    "capture hold id not a uuid": lambda w: w.post("/v1/holds/not-a-hold/capture"),
    "void hold id not a uuid": lambda w: w.post("/v1/holds/12345/void"),
    "get unknown hold": lambda w: w.get(f"/v1/holds/{UUID0}"),
    "capture unknown hold": lambda w: w.post(f"/v1/holds/{UUID0}/capture", {"points": 1}),
    "void unknown hold": lambda w: w.post(f"/v1/holds/{UUID0}/void"),
    "another partner's hold (get)": lambda w: w.get(f"/v1/holds/{w.hold()}", api=w.other()),
    "another partner's hold (capture)": lambda w: w.post(
        f"/v1/holds/{w.hold()}/capture", api=w.other()
    ),
    "another partner's hold (void)": lambda w: w.post(f"/v1/holds/{w.hold()}/void", api=w.other()),
    "reverse id not a uuid": lambda w: w.post("/v1/transactions/abc/reverse"),
    "reverse unknown transaction": lambda w: w.post(f"/v1/transactions/{UUID0}/reverse"),
    "reverse another partner's transaction": lambda w: w.post(
        f"/v1/transactions/{w.earn_id}/reverse", api=w.other()
    ),
    "unknown route": lambda w: w.get("/v1/nothing-here"),
    # Ids that are not ids name nothing (tests/e2e/api/test_input_hygiene.py has every shape).
    "member id not integer": lambda w: w.get("/v1/members/abc/balance"),
    "member id fractional": lambda w: w.get("/v1/members/1.5"),
    "member id zero": lambda w: w.get("/v1/members/0/transactions"),
    "member id negative": lambda w: w.post("/v1/members/-1/earn", {"points": 10, "reference": R}),
    "member id huge (GET)": lambda w: w.get(f"/v1/members/{HUGE}/balance"),
    "member id huge (POST)": lambda w: w.post(
        f"/v1/members/{HUGE}/earn", {"points": 10, "reference": R}
    ),
    "member id 2**63": lambda w: w.post(
        f"/v1/members/{2**63}/redeem", {"points": 10, "reference": R}
    ),
    "hold id too long": lambda w: w.post(f"/v1/holds/{'a' * 65}/capture"),
    "transaction id too long": lambda w: w.post(f"/v1/transactions/{'1' * 65}/reverse"),
}

INSUFFICIENT: dict[str, Build] = {
    "redeem more than available": redeem({"points": 101, "reference": R}),
    "redeem from an empty member": lambda w: w.post(
        f"/v1/members/{w.empty}/redeem", {"points": 1, "reference": R}
    ),
    "hold more than available": hold({"points": 101, "expires_in_seconds": 60, "reference": R}),
    "redeem what is held": lambda w: (
        w.hold(95),
        w.post(f"/v1/members/{w.member}/redeem", {"points": 6, "reference": R}),
    )[1],
    "transfer more than available": transfer({"points": 101}),
    "negative adjustment beyond balance": adjust({"points": -101, "reason": "clawback"}),
}


def _void(w: World, hold_id: str) -> str:
    w.ok(w.api.post(f"/v1/holds/{hold_id}/void"))
    return hold_id


def _capture(w: World, hold_id: str) -> str:
    w.ok(w.api.post(f"/v1/holds/{hold_id}/capture"))
    return hold_id


def _lapse(w: World) -> str:
    from tally.ledger import jobs

    hold_id = w.hold()
    report = jobs.expire(w.database.write, utcnow() + timedelta(hours=2))
    assert report.holds_lapsed == 1
    return hold_id


HOLD_NOT_ACTIVE: dict[str, Build] = {
    "capture a voided hold": lambda w: w.post(f"/v1/holds/{_void(w, w.hold())}/capture"),
    "void a voided hold": lambda w: w.post(f"/v1/holds/{_void(w, w.hold())}/void"),
    "void a captured hold": lambda w: w.post(f"/v1/holds/{_capture(w, w.hold())}/void"),
    "capture a captured hold": lambda w: w.post(
        f"/v1/holds/{_capture(w, w.hold())}/capture", {"points": 1}
    ),
    "capture a lapsed hold": lambda w: w.post(f"/v1/holds/{_lapse(w)}/capture"),
}


def _reused(path: str, first: dict[str, Any], second: dict[str, Any]) -> Build:
    """Use an Idempotency-Key for one request, then for a different one."""

    def build(w: World) -> Callable[[], Any]:
        key = unique("reused")
        w.ok(w.api.post(path.format(m=w.member, e=w.empty), first, idempotency_key=key))
        return w.post(path.format(m=w.member, e=w.empty), second, idempotency_key=key)

    return build


def _reused_across(first: str, second: str) -> Build:
    def build(w: World) -> Callable[[], Any]:
        key = unique("reused")
        body = {"points": 5, "reference": "same-body"}
        w.ok(w.api.post(first.format(m=w.member, e=w.empty), body, idempotency_key=key))
        return w.post(second.format(m=w.member, e=w.empty), body, idempotency_key=key)

    return build


IDEMPOTENCY_CONFLICT: dict[str, Build] = {
    "same key, other points": _reused(
        "/v1/members/{m}/earn", {"points": 5, "reference": "a"}, {"points": 6, "reference": "a"}
    ),
    "same key, other reference": _reused(
        "/v1/members/{m}/redeem", {"points": 5, "reference": "a"}, {"points": 5, "reference": "b"}
    ),
    "same key, other operation": _reused_across("/v1/members/{m}/earn", "/v1/members/{m}/redeem"),
    "same key, other member": _reused_across("/v1/members/{m}/earn", "/v1/members/{e}/earn"),
    "same key, enrol another identity": _reused(
        "/v1/members",
        {"external_id": {"namespace": "email", "id": "a@b"}},
        {"external_id": {"namespace": "email", "id": "c@d"}},
    ),
}


def _no_key(method_path: Callable[[World], tuple[str, Any]]) -> Build:
    def build(w: World) -> Callable[[], Any]:
        path, body = method_path(w)
        return w.bare("POST", path, w.partner.headers(), body)

    return build


KEY_REQUIRED: dict[str, Build] = {
    "enrol": _no_key(
        lambda w: ("/v1/members", {"external_id": {"namespace": "email", "id": "n@k"}})
    ),
    "link": _no_key(
        lambda w: (f"/v1/members/{w.member}/identities", {"namespace": "email", "id": "n@k"})
    ),
    "unlink": _no_key(
        lambda w: (
            f"/v1/members/{w.member}/identities/unlink",
            {"namespace": "phone", "id": "13800000001"},
        )
    ),
    "freeze": _no_key(lambda w: (f"/v1/members/{w.member}/freeze", {"reason": "x"})),
    "unfreeze": _no_key(lambda w: (f"/v1/members/{w.frozen()}/unfreeze", None)),
    "earn": _no_key(lambda w: (f"/v1/members/{w.member}/earn", {"points": 5, "reference": R})),
    "redeem": _no_key(lambda w: (f"/v1/members/{w.member}/redeem", {"points": 5, "reference": R})),
    "hold": _no_key(
        lambda w: (
            f"/v1/members/{w.member}/holds",
            {"points": 5, "expires_in_seconds": 60, "reference": R},
        )
    ),
    "capture": _no_key(lambda w: (f"/v1/holds/{w.hold()}/capture", None)),
    "void": _no_key(lambda w: (f"/v1/holds/{w.hold()}/void", None)),
    "transfer": _no_key(
        lambda w: (
            "/v1/transfers",
            {"from_member_id": w.member, "to_member_id": w.empty, "points": 5, "reference": R},
        )
    ),
    "reverse": _no_key(lambda w: (f"/v1/transactions/{w.earn_id}/reverse", None)),
    "member link": _no_key(lambda w: (f"/v1/members/{w.member}/links", None)),
    "adjust": _no_key(
        lambda w: (f"/v1/members/{w.member}/adjustments", {"points": 5, "reason": "x"})
    ),
}


def _hold_then_freeze(w: World) -> str:
    hold_id = w.hold()
    w.ok(w.api.post(f"/v1/members/{w.member}/freeze", {"reason": "dispute"}))
    return hold_id


MEMBER_FROZEN: dict[str, Build] = {
    "earn": lambda w: w.post(f"/v1/members/{w.frozen()}/earn", {"points": 5, "reference": R}),
    "redeem": lambda w: w.post(f"/v1/members/{w.frozen()}/redeem", {"points": 5, "reference": R}),
    "hold": lambda w: w.post(
        f"/v1/members/{w.frozen()}/holds", {"points": 5, "expires_in_seconds": 60, "reference": R}
    ),
    "transfer from": lambda w: w.post(
        "/v1/transfers",
        {"from_member_id": w.frozen(), "to_member_id": w.empty, "points": 5, "reference": R},
    ),
    "transfer to": lambda w: w.post(
        "/v1/transfers",
        {"from_member_id": w.member, "to_member_id": w.frozen(), "points": 5, "reference": R},
    ),
    "capture a hold of a member frozen since": lambda w: w.post(
        f"/v1/holds/{_hold_then_freeze(w)}/capture"
    ),
}

MEMBER_MERGED: dict[str, Build] = {
    "earn": lambda w: w.post(f"/v1/members/{w.merged()}/earn", {"points": 5, "reference": R}),
    "redeem": lambda w: w.post(f"/v1/members/{w.merged()}/redeem", {"points": 5, "reference": R}),
    "hold": lambda w: w.post(
        f"/v1/members/{w.merged()}/holds", {"points": 5, "expires_in_seconds": 60, "reference": R}
    ),
    "transfer to": lambda w: w.post(
        "/v1/transfers",
        {"from_member_id": w.member, "to_member_id": w.merged(), "points": 5, "reference": R},
    ),
    "link identity": lambda w: w.post(
        f"/v1/members/{w.merged()}/identities", {"namespace": "email", "id": "m@x"}
    ),
}


def _with_auth(value: Callable[[World], str | None], method: str = "POST") -> Build:
    def build(w: World) -> Callable[[], Any]:
        token = value(w)
        headers = {"Idempotency-Key": unique("k")}
        if token is not None:
            headers["Authorization"] = token
        if method == "GET":
            return w.bare("GET", f"/v1/members/{w.member}/balance", headers)
        return w.bare(
            "POST", f"/v1/members/{w.member}/earn", headers, {"points": 5, "reference": R}
        )

    return build


def _revoked(w: World) -> str:
    key = issue_key(w.database, w.partner, "members,earn,redeem,read")
    revoke(w.database, key)
    return f"Bearer {key.api_key}"


def _inactive_partner(w: World) -> str:
    from tally.partners.models import Partner

    other = make_partner(w.database, unique("GONE"), "members,earn,redeem,read")
    with w.database.write() as session:
        found = session.get(Partner, other.partner_id)
        assert found is not None
        found.is_active = False
    return f"Bearer {other.api_key}"


def _wrong_secret(w: World) -> str:
    prefix = w.partner.api_key.partition(".")[0]
    return f"Bearer {prefix}.{'x' * 32}"


AUTH_VALUES: dict[str, Callable[[World], str | None]] = {
    "no header": lambda w: None,
    "basic scheme": lambda w: "Basic dXNlcjpwYXNz",
    "bearer without token": lambda w: "Bearer ",
    "bearer only": lambda w: "Bearer",
    "key without dot": lambda w: "Bearer tly_abcdef",
    "key with foreign prefix": lambda w: "Bearer sk_live.abcdef",
    "unknown key": lambda w: "Bearer tly_000000000000.abcdefghijklmnopqrstuvwxyz012345",
    "right prefix wrong secret": _wrong_secret,
    "revoked key": _revoked,
    "inactive partner": _inactive_partner,
}
UNAUTHORIZED: dict[str, Build] = {
    f"{name} ({method})": _with_auth(value, method)
    for name, value in AUTH_VALUES.items()
    for method in ("GET", "POST")
}


def _as(
    scopes: str, method: str, path: Callable[[World], str], body: Any = None, own: bool = False
) -> Build:
    """The request sent with a key carrying only ``scopes`` (of this partner when ``own``)."""

    def build(w: World) -> Callable[[], Any]:
        api = w.key(scopes) if own else w.other(scopes)
        if method == "GET":
            return w.get(path(w), api=api, params=body)
        return w.post(path(w), body, api=api)

    return build


def _redemption(w: World) -> str:
    return str(w.ok(w.api.redeem(w.member, 10))["id"])


EARN = {"points": 5, "reference": R}
HOLD = {"points": 5, "expires_in_seconds": 60, "reference": R}
NOT_ADMIN = "members,earn,redeem,read"

FORBIDDEN: dict[str, Build] = {
    "read key earns": _as("read", "POST", lambda w: f"/v1/members/{w.member}/earn", EARN),
    "read key redeems": _as("read", "POST", lambda w: f"/v1/members/{w.member}/redeem", EARN),
    "read key holds": _as("read", "POST", lambda w: f"/v1/members/{w.member}/holds", HOLD),
    "read key captures": _as("read", "POST", lambda w: f"/v1/holds/{w.hold()}/capture", own=True),
    "read key voids": _as("read", "POST", lambda w: f"/v1/holds/{w.hold()}/void", own=True),
    "read key transfers": lambda w: w.post(
        "/v1/transfers",
        {"from_member_id": w.member, "to_member_id": w.empty, "points": 5, "reference": R},
        api=w.other("read"),
    ),
    "read key enrols": _as(
        "read",
        "POST",
        lambda w: "/v1/members",
        {"external_id": {"namespace": "email", "id": "r@o"}},
    ),
    "read key links": _as(
        "read",
        "POST",
        lambda w: f"/v1/members/{w.member}/identities",
        {"namespace": "e", "id": "r"},
    ),
    "read key mints a member link": _as(
        "read", "POST", lambda w: f"/v1/members/{w.member}/links", own=True
    ),
    "read key freezes": _as(
        "read", "POST", lambda w: f"/v1/members/{w.member}/freeze", {"reason": "x"}
    ),
    "read key reverses an earn": _as(
        "read", "POST", lambda w: f"/v1/transactions/{w.earn_id}/reverse", own=True
    ),
    "earn key reverses a redemption": _as(
        "earn,read", "POST", lambda w: f"/v1/transactions/{_redemption(w)}/reverse", own=True
    ),
    "redeem key reverses an earn": _as(
        "redeem,read", "POST", lambda w: f"/v1/transactions/{w.earn_id}/reverse", own=True
    ),
    "non-admin key freezes": _as(
        NOT_ADMIN, "POST", lambda w: f"/v1/members/{w.member}/freeze", {"reason": "x"}
    ),
    "non-admin key unfreezes": _as(
        NOT_ADMIN, "POST", lambda w: f"/v1/members/{w.frozen()}/unfreeze"
    ),
    "non-admin key adjusts": _as(
        NOT_ADMIN,
        "POST",
        lambda w: f"/v1/members/{w.member}/adjustments",
        {"points": 50, "reason": "x"},
    ),
    "earn key reads a balance": _as("earn", "GET", lambda w: f"/v1/members/{w.member}/balance"),
    "earn key reads transactions": _as(
        "earn", "GET", lambda w: f"/v1/members/{w.member}/transactions"
    ),
    "earn key looks up": _as(
        "earn", "GET", lambda w: "/v1/members/lookup", {"namespace": "phone", "id": "13800000001"}
    ),
}


def _twice(path: str, body: Callable[[World], dict[str, Any]]) -> Build:
    """Send the same business request twice under two Idempotency-Keys."""

    def build(w: World) -> Callable[[], Any]:
        w.ok(w.api.post(path.format(m=w.member), body(w)))
        return w.post(path.format(m=w.member), body(w))

    return build


DUPLICATE_REFERENCE: dict[str, Build] = {
    "earn": _twice("/v1/members/{m}/earn", lambda w: {"points": 5, "reference": "dup"}),
    "earn, other points": lambda w: (
        w.ok(w.api.earn(w.member, 5, reference="dup")),
        w.post(f"/v1/members/{w.member}/earn", {"points": 7, "reference": "dup"}),
    )[1],
    "earn, other member": lambda w: w.post(
        f"/v1/members/{w.empty}/earn", {"points": 5, "reference": "first-earn"}
    ),
    "earn, reference padded with spaces": lambda w: w.post(
        f"/v1/members/{w.member}/earn", {"points": 5, "reference": "  first-earn  "}
    ),
    "redeem": _twice("/v1/members/{m}/redeem", lambda w: {"points": 5, "reference": "dup"}),
    "hold": _twice(
        "/v1/members/{m}/holds",
        lambda w: {"points": 5, "expires_in_seconds": 60, "reference": "dup"},
    ),
    "transfer": _twice(
        "/v1/transfers",
        lambda w: {
            "from_member_id": w.member,
            "to_member_id": w.empty,
            "points": 5,
            "reference": "dup",
        },
    ),
}


def _reversed(w: World, transaction_id: str) -> str:
    w.ok(w.api.post(f"/v1/transactions/{transaction_id}/reverse"))
    return transaction_id


def _captured_entry(w: World) -> str:
    return str(w.ok(w.api.post(f"/v1/holds/{w.hold()}/capture"))["id"])


ALREADY_REVERSED: dict[str, Build] = {
    "earn": lambda w: w.post(f"/v1/transactions/{_reversed(w, w.earn_id)}/reverse"),
    "redemption": lambda w: w.post(f"/v1/transactions/{_reversed(w, _redemption(w))}/reverse"),
    "capture": lambda w: w.post(f"/v1/transactions/{_reversed(w, _captured_entry(w))}/reverse"),
}


def _reverse_entry_of(path: Callable[[World], str], body: Any = None) -> Build:
    """Write something through ``path``, then try to reverse the entry it wrote."""

    def build(w: World) -> Callable[[], Any]:
        entry_id = w.ok(w.api.post(path(w), body))["transaction_id"]
        return w.post(f"/v1/transactions/{entry_id}/reverse")

    return build


NOT_REVERSIBLE: dict[str, Build] = {
    "a hold": _reverse_entry_of(lambda w: f"/v1/members/{w.member}/holds", HOLD),
    "a void": _reverse_entry_of(lambda w: f"/v1/holds/{w.hold()}/void"),
    "a transfer": lambda w: _reverse_entry_of(
        lambda _w: "/v1/transfers",
        {"from_member_id": w.member, "to_member_id": w.empty, "points": 5, "reference": "g"},
    )(w),
    "an adjustment": _reverse_entry_of(
        lambda w: f"/v1/members/{w.member}/adjustments", {"points": 5, "reason": "fix"}
    ),
    "a reversal": _reverse_entry_of(lambda w: f"/v1/transactions/{_redemption(w)}/reverse"),
}

IDENTITY_CONFLICT: dict[str, Build] = {
    "link another member's identity": lambda w: w.post(
        f"/v1/members/{w.member}/identities", {"namespace": "phone", "id": "13800000002"}
    ),
    "link it in another spelling": lambda w: w.post(
        f"/v1/members/{w.member}/identities", {"namespace": "phone", "id": "+86 138-0000-0002"}
    ),
}

CONFLICT: dict[str, Build] = {
    "unlink the last identity": lambda w: w.post(
        f"/v1/members/{w.member}/identities/unlink", {"namespace": "phone", "id": "13800000001"}
    ),
    "freeze a frozen member": lambda w: w.post(
        f"/v1/members/{w.frozen()}/freeze", {"reason": "again"}
    ),
    "unfreeze an active member": lambda w: w.post(f"/v1/members/{w.member}/unfreeze"),
}

# --- Paid memberships (the demo programme's plan VIP88: 88.00 CNY, growth value 1000) ---------


def _subscribe(member: Callable[[World], int], plan: str = "VIP88") -> Build:
    def build(w: World) -> Callable[[], Any]:
        w.programme()
        return w.post(f"/v1/members/{member(w)}/memberships", {"plan": plan})

    return build


def _payment(membership: Callable[[World], str], amount: dict[str, Any]) -> Build:
    def build(w: World) -> Callable[[], Any]:
        body = {"reference": unique("pay"), "amount": amount}
        return w.post(f"/v1/memberships/{membership(w)}/payments", body)

    return build


def _refund(membership: Callable[[World], str], amount: dict[str, Any] | None = None) -> Build:
    def build(w: World) -> Callable[[], Any]:
        body: dict[str, Any] = {"payment_reference": "pay-1"}
        if amount is not None:
            body["amount"] = amount
        return w.post(f"/v1/memberships/{membership(w)}/refunds", body)

    return build


def _membership_action(action: str, membership: Callable[[World], str]) -> Build:
    return lambda w: w.post(f"/v1/memberships/{membership(w)}/{action}")


def _partly_refunded(w: World) -> str:
    membership = w.pay(w.subscribe())
    body = {"payment_reference": "pay-1", "amount": {"minor_units": 8000, "currency": "CNY"}}
    w.ok(w.api.post(f"/v1/memberships/{membership}/refunds", body))
    return membership


PAYMENT_MISMATCH: dict[str, Build] = {
    "pay less than the price": _payment(
        lambda w: w.subscribe(), {"minor_units": 8000, "currency": "CNY"}
    ),
    "pay more than the price": _payment(
        lambda w: w.subscribe(), {"minor_units": 17600, "currency": "CNY"}
    ),
    "pay in another currency": _payment(
        lambda w: w.subscribe(), {"minor_units": 8800, "currency": "USD"}
    ),
    "renew with a wrong amount": _payment(
        lambda w: w.pay(w.subscribe()), {"minor_units": 100, "currency": "CNY"}
    ),
    "refund in another currency": _refund(
        lambda w: w.pay(w.subscribe()), {"minor_units": 100, "currency": "USD"}
    ),
}

NOT_ELIGIBLE: dict[str, Build] = {
    "no growth value": _subscribe(lambda w: w.empty),
    "growth value one short": _subscribe(lambda w: w.grow(w.enrol(), 999)),
}

MEMBERSHIP_NOT_ACTIVE: dict[str, Build] = {
    "cancel a pending membership": _membership_action("cancel", lambda w: w.subscribe()),
    "resume a pending membership": _membership_action("resume", lambda w: w.subscribe()),
    "cancel a refunded membership": _membership_action(
        "cancel", lambda w: w.refunded(w.pay(w.subscribe()))
    ),
    "resume a refunded membership": _membership_action(
        "resume", lambda w: w.refunded(w.pay(w.subscribe()))
    ),
}

REFUND_EXCEEDS_PAYMENT: dict[str, Build] = {
    "refund more than was paid": _refund(
        lambda w: w.pay(w.subscribe()), {"minor_units": 8801, "currency": "CNY"}
    ),
    "refund more than is left": _refund(_partly_refunded, {"minor_units": 801, "currency": "CNY"}),
    "refund a payment refunded in full": _refund(lambda w: w.refunded(w.pay(w.subscribe()))),
}

# --- Growth value -----------------------------------------------------------------------------


def _take_growth(member: Callable[[World], int], points: int) -> Build:
    def build(w: World) -> Callable[[], Any]:
        body = {"points": -points, "reason": "correction"}
        return w.post(f"/v1/members/{member(w)}/growth/adjustments", body)

    return build


INSUFFICIENT_GROWTH: dict[str, Build] = {
    "take growth from a member without any": _take_growth(lambda w: w.empty, 1),
    "take more growth than the member has": _take_growth(lambda w: w.grow(w.enrol(), 50), 51),
}

# --- Family accounts (the default rules: 6 seats, 5000 points a month) ----------------------


def _family_spend(family: Callable[[World], tuple[int, int]], points: int) -> Build:
    """``family`` gives the family and the member who spends."""

    def build(w: World) -> Callable[[], Any]:
        family_id, member = family(w)
        body = {"member_id": member, "points": points, "reference": unique("spend")}
        return w.post(f"/v1/families/{family_id}/redemptions", body)

    return build


def _limited(limit: int) -> Callable[[World], tuple[int, int]]:
    """A share-mode family and a member of it with this monthly limit."""

    def family_member(w: World) -> tuple[int, int]:
        family = w.family()
        return family, w.joined(family, limit=limit)

    return family_member


def _limit_used(w: World) -> tuple[int, int]:
    family = w.family()
    member = w.joined(family, limit=10)
    body = {"member_id": member, "points": 10, "reference": "spend-1"}
    w.ok(w.api.post(f"/v1/families/{family}/redemptions", body))
    return family, member


def _full(w: World) -> int:
    family = w.family()
    for _ in range(5):
        w.invite(family, w.enrol())
    return family


def _full_of_members_and_invitations(w: World) -> int:
    family = w.family()
    for _ in range(3):
        w.joined(family)
    for _ in range(2):
        w.invite(family, w.enrol())
    return family


def _invite(family: Callable[[World], int], member: Callable[[World], int]) -> Build:
    def build(w: World) -> Callable[[], Any]:
        family_id = family(w)
        body = {"acting_member_id": w.member, "member_id": member(w)}
        return w.post(f"/v1/families/{family_id}/invitations", body)

    return build


def _answer(action: str, family_member: Callable[[World], tuple[int, int]]) -> Build:
    """Accept or decline as the member, withdraw as the owner (the member with 100 points)."""

    def build(w: World) -> Callable[[], Any]:
        family, member = family_member(w)
        acting = w.member if action == "withdraw" else member
        path = f"/v1/families/{family}/invitations/{member}/{action}"
        return w.post(path, {"acting_member_id": acting})

    return build


def _invited(w: World) -> tuple[int, int]:
    family = w.family()
    return family, w.invite(family, w.enrol())


def _in_two_families(w: World) -> tuple[int, int]:
    """Invited to one family, then the owner of another."""
    family, member = _invited(w)
    w.family(member)
    return family, member


def _answered(first: str) -> Callable[[World], tuple[int, int]]:
    def invited(w: World) -> tuple[int, int]:
        family, member = _invited(w)
        w.answer(family, member, first, acting=w.member if first == "withdraw" else None)
        return family, member

    return invited


def _invited_then_dissolved(w: World) -> tuple[int, int]:
    family, member = _invited(w)
    w.ok(w.api.post(f"/v1/families/{family}/dissolve", {"acting_member_id": w.member}))
    return family, member


def _dissolved_with_member(w: World) -> tuple[int, int]:
    family = w.family(mode="pool")
    w.joined(family)
    w.ok(w.api.post(f"/v1/families/{family}/dissolve", {"acting_member_id": w.member}))
    return family, w.member


FAMILY_LIMIT_EXCEEDED: dict[str, Build] = {
    "spend above the monthly limit": _family_spend(_limited(10), 11),
    "spend with the month's limit used up": _family_spend(_limit_used, 1),
    "spend with a limit of zero": _family_spend(_limited(0), 1),
}

FAMILY_FULL: dict[str, Build] = {
    "invite a seventh member": _invite(_full, lambda w: w.enrol()),
    "invite into seats taken by members and invitations": _invite(
        _full_of_members_and_invitations, lambda w: w.empty
    ),
}

ALREADY_IN_FAMILY: dict[str, Build] = {
    "the owner creates a second family": lambda w: (
        w.family(),
        w.post("/v1/families", {"acting_member_id": w.member, "mode": "share"}),
    )[1],
    "a member creates a family": lambda w: w.post(
        "/v1/families", {"acting_member_id": w.joined(w.family()), "mode": "pool"}
    ),
    "invite another family's owner": _invite(
        lambda w: (w.family(w.empty), w.family())[1], lambda w: w.empty
    ),
    "accept while owning another family": _answer("accept", _in_two_families),
}

INVITATION_NOT_PENDING: dict[str, Build] = {
    "accept without an invitation": _answer("accept", lambda w: (w.family(), w.empty)),
    "decline without an invitation": _answer("decline", lambda w: (w.family(), w.empty)),
    "withdraw without an invitation": _answer("withdraw", lambda w: (w.family(), w.empty)),
    "accept a declined invitation": _answer("accept", _answered("decline")),
    "accept a withdrawn invitation": _answer("accept", _answered("withdraw")),
    "decline an accepted invitation": _answer("decline", _answered("accept")),
    "withdraw an accepted invitation": _answer("withdraw", _answered("accept")),
}

FAMILY_DISSOLVED: dict[str, Build] = {
    "invite": _invite(lambda w: w.dissolved(), lambda w: w.empty),
    "accept an invitation withdrawn by the dissolution": _answer("accept", _invited_then_dissolved),
    "dissolve again": lambda w: w.post(
        f"/v1/families/{w.dissolved()}/dissolve", {"acting_member_id": w.member}
    ),
    "change the settings": lambda w: w.post(
        f"/v1/families/{w.dissolved()}/settings", {"acting_member_id": w.member, "mode": "pool"}
    ),
    "the owner spends": _family_spend(_dissolved_with_member, 5),
}


def _too_large(w: World) -> Callable[[], Any]:
    body = b'{"points": 1, "reference": "big", "pad": "' + b"x" * 70_000 + b'"}'
    return w.raw(
        "POST", f"/v1/members/{w.member}/earn", {"content-type": "application/json"}, content=body
    )


PAYLOAD_TOO_LARGE: dict[str, Build] = {
    "an earn over the body limit": _too_large,
    "an enrolment over the body limit": lambda w: w.raw(
        "POST", "/v1/members", {"content-type": "application/json"}, content=b" " * 70_000
    ),
}


def _by(acting: Callable[[World, int], int], path: str, **body: Any) -> Build:
    """A family request (``path`` with ``{f}`` the family) sent on behalf of ``acting``."""

    def build(w: World) -> Callable[[], Any]:
        family = w.family()
        member = w.joined(family)
        values = {"acting_member_id": acting(w, member), **body}
        return w.post(path.format(f=family, m=member), values)

    return build


def _member(w: World, member: int) -> int:
    return member


def _pool_member(w: World) -> tuple[int, int]:
    family = w.family(mode="pool")
    return family, w.joined(family)


NOT_FAMILY_OWNER: dict[str, Build] = {
    "a member invites": _by(_member, "/v1/families/{f}/invitations", member_id=2),  # w.empty
    "a member removes another": _by(_member, "/v1/families/{f}/members/{m}/remove"),
    "a member changes the settings": _by(_member, "/v1/families/{f}/settings", mode="pool"),
    "a member dissolves": _by(_member, "/v1/families/{f}/dissolve"),
    "a member spends in pool mode": _family_spend(_pool_member, 1),
}


def _for_invitee(action: str) -> Build:
    """The owner (not the invitee) accepts or declines an invitation."""

    def build(w: World) -> Callable[[], Any]:
        family, member = _invited(w)
        path = f"/v1/families/{family}/invitations/{member}/{action}"
        return w.post(path, {"acting_member_id": w.member})

    return build


NOT_INVITEE: dict[str, Build] = {
    "the owner accepts for the invitee": _for_invitee("accept"),
    "the owner declines for the invitee": _for_invitee("decline"),
}

NOT_MEMBER_ITSELF: dict[str, Build] = {
    "the owner makes a member leave": _by(
        lambda w, _member: w.member, "/v1/families/{f}/members/{m}/leave"
    ),
}

NOT_FAMILY_MEMBER: dict[str, Build] = {
    "an outsider spends the family's points": _family_spend(lambda w: (w.family(), w.enrol()), 1),
}

UNKNOWN_NAMESPACE: dict[str, Build] = {
    "enrol in a typo of phone": lambda w: w.post(
        "/v1/members", {"external_id": {"namespace": "phnoe", "id": "13800000009"}}
    ),
    "link in an undeclared namespace": lambda w: w.post(
        f"/v1/members/{w.member}/identities", {"namespace": "wexin", "id": "wx-1"}
    ),
    "unlink in an undeclared namespace": lambda w: w.post(
        f"/v1/members/{w.member}/identities/unlink", {"namespace": "wexin", "id": "wx-1"}
    ),
    "look up in an undeclared namespace": lambda w: w.get(
        "/v1/members/lookup", params={"namespace": "wexin", "id": "wx-1"}
    ),
}


def _after_unknown_codes(w: World) -> Callable[[], Any]:
    """The partner named too many unknown member codes this minute (and the next: the send
    may cross into it)."""
    from tally.member_codes.domain import MISSES_PER_WINDOW, window_of
    from tally.member_codes.models import MemberCodeMisses

    window = window_of(utcnow())
    with w.database.write() as session:
        for start in (window, window + timedelta(minutes=1)):
            session.add(
                MemberCodeMisses(
                    partner_id=w.partner.partner_id, window=start, misses=MISSES_PER_WINDOW
                )
            )
    return w.get("/v1/members/lookup", params={"code": "1" * 16})


RATE_LIMITED: dict[str, Build] = {"too many unknown member codes": _after_unknown_codes}
UNKNOWN_PARTNER: dict[str, Build] = {
    "a consent for a partner not in the programme": lambda w: w.post(
        f"/v1/members/{w.member}/consents",
        {"partner": "NOBODY", "purpose": "profile", "granted": True},
    ),
}
UNKNOWN_PURPOSE: dict[str, Build] = {
    "a consent for a purpose Tally does not know": lambda w: w.post(
        f"/v1/members/{w.member}/consents",
        {"partner": w.partner.code, "purpose": "resale", "granted": True},
    ),
}
WEBHOOK_TARGET_REFUSED: dict[str, Build] = {
    f"a webhook to {url}": lambda w, url=url: w.post(
        "/v1/webhooks", {"url": url, "event_types": ["entry.posted"]}, api=w.key("webhooks")
    )
    for url in (
        "http://partner.example.com/hooks",
        "https://10.0.0.8/hooks",
        "https://169.254.169.254/latest/meta-data",
        "https://user:secret@partner.example.com/hooks",
    )
}
UNKNOWN_EVENT_TYPE: dict[str, Build] = {
    "a webhook for an event Tally does not send": lambda w: w.post(
        "/v1/webhooks",
        {"url": "http://127.0.0.1:9/hooks", "event_types": ["entry.eaten"]},
        api=w.key("webhooks"),
    ),
}


def _own_referral_code(w: World) -> Any:
    """Enrol the world's member again with its own referral code."""
    from tally.flows import referrals
    from tally.kit.clock import utcnow

    with w.database.write() as session:
        code = referrals.code_of(session, w.member, utcnow())
    body = {"external_id": {"namespace": "phone", "id": "13800000001"}, "referral_code": code}
    return w.post("/v1/members", body)


REFERRAL_REFUSED: dict[str, Build] = {"enrol a member with its own code": _own_referral_code}

ADJUSTMENT_TOO_LARGE: dict[str, Build] = {
    "an adjustment above staff.max_adjustment": adjust({"points": 10_000_001, "reason": "typo"}),
    "a debit above it": adjust({"points": -10_000_001, "reason": "typo"}),
}

# --- coupons ---
COUPON_NAMES = {"zh-CN": "券", "en": "Coupon"}


def _coupon_template(w: World, **fields: Any) -> str:
    """A template the world's partner (the operator's channel) made; its code."""
    code = unique("T").replace("-", "").upper()
    body = {"code": code, "kind": "amount", "value": 100, "names": COUPON_NAMES, **fields}
    w.ok(w.key("coupons").post("/v1/coupon-templates", body))
    return code


def _redeem_short(w: World) -> Callable[[], Any]:
    code = _coupon_template(w, shared_code=True, min_spend=10_000)
    return w.post(
        "/v1/coupons/redeem", {"code": code, "cart": {"amount": 9_999}}, api=w.key("coupons")
    )


def _exhausted(w: World) -> Callable[[], Any]:
    code = _coupon_template(w, limit={"total": 1})
    coupons = w.key("coupons")
    w.ok(coupons.post(f"/v1/coupon-templates/{code}/issue", {"count": 1}))
    return w.post(f"/v1/coupon-templates/{code}/issue", {"count": 1}, api=coupons)


def _duplicate_template(w: World) -> Callable[[], Any]:
    code = _coupon_template(w)
    body = {"code": code, "kind": "percent", "value": 100, "names": COUPON_NAMES}
    return w.post("/v1/coupon-templates", body, api=w.key("coupons"))


COUPON_NOT_APPLICABLE: dict[str, Build] = {
    # defined below with the mall's builders
    "a mall order with an unknown coupon": lambda w: _order(_mall_item, coupon="SAVE10")(w),  # noqa: PLW0108
    "a coupon below its minimum spend": _redeem_short,
    "an unknown code": lambda w: w.post(
        "/v1/coupons/redeem",
        {"code": "ZZZZ-ZZZZ-ZZZZ", "cart": {"amount": 1}},
        api=w.key("coupons"),
    ),
}
COUPONS_EXHAUSTED: dict[str, Build] = {"codes beyond the total limit": _exhausted}
DUPLICATE_CODE: dict[str, Build] = {"a template code taken": _duplicate_template}
# --- The mall -------------------------------------------------------------------------------


def _mall(w: World) -> Api:
    """The world's partner (the operator's channel MOBILE) with the catalog and mall scopes,
    under the demo programme (its tiers)."""
    w.programme()
    return w.key("catalog,mall")


def _mall_item(w: World, kind: str = "donation", points: int = 10, **extra: Any) -> str:
    """A new item of the operator's; its code."""
    code = unique("item")
    body = {"code": code, "kind": kind, "names": {"zh-CN": "商品", "en": "Item"}}
    w.ok(_mall(w).post("/v1/mall/items", {**body, "price": {"points": points}, **extra}))
    return code


def _order_body(item: str, kind: str = "donation", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"item": item, **extra}
    if kind == "physical":
        body["address"] = {"line": "1 Road"}
    return body


def _mall_order(w: World, kind: str = "physical", **extra: Any) -> str:
    """An order of the world's member (100 points) for a new 10-point item; its id."""
    item = _mall_item(w, kind, **extra)
    body = _order_body(item, kind)
    return str(w.ok(_mall(w).post(f"/v1/members/{w.member}/orders", body))["id"])


def _order(item: Callable[[World], str], kind: str = "donation", **extra: Any) -> Build:
    """The world's member orders the item ``item`` prepares."""

    def build(w: World) -> Callable[[], Any]:
        body = _order_body(item(w), kind, **extra)
        return w.post(f"/v1/members/{w.member}/orders", body, api=_mall(w))

    return build


def _bought_once(kind: str = "donation", **extra: Any) -> Callable[[World], str]:
    """An item the world's member bought once already (the slot ``AM`` of a booking)."""

    def item(w: World) -> str:
        code = _mall_item(w, kind, **extra)
        body = {"item": code, "slot": "AM"} if kind == "booking" else {"item": code}
        w.ok(_mall(w).post(f"/v1/members/{w.member}/orders", body))
        return code

    return item


def _order_action(
    action: str, order: Callable[[World], str], body: dict[str, Any] | None = None
) -> Build:
    def build(w: World) -> Callable[[], Any]:
        return w.post(f"/v1/orders/{order(w)}/{action}", body, api=_mall(w))

    return build


def _refunded_order(w: World) -> str:
    """A physical order refunded in full before it shipped."""
    found = _mall_order(w)
    w.ok(_mall(w).post(f"/v1/orders/{found}/refund"))
    return found


def _shipped_order(w: World) -> str:
    found = _mall_order(w)
    w.ok(_mall(w).post(f"/v1/orders/{found}/ship", SHIP))
    return found


def _delivered_order(w: World) -> str:
    found = _shipped_order(w)
    w.ok(_mall(w).post(f"/v1/orders/{found}/deliver"))
    return found


def _awaiting_payment(w: World) -> str:
    """A points-plus-cash order waiting for its cash part (5.00 CNY)."""
    cash = {"points": 10, "cash": {"amount": "5.00", "currency": "CNY"}}
    return _mall_order(w, price=cash)


def _sale(starts_in: timedelta, ends_in: timedelta, stock: int = 10) -> dict[str, Any]:
    now = utcnow()
    return {
        "starts_at": (now + starts_in).isoformat(),
        "ends_at": (now + ends_in).isoformat(),
        "points": 5,
        "stock": stock,
        "per_member_limit": 1,
    }


def _slots(capacity: int) -> dict[str, Any]:
    starts = (utcnow() + timedelta(days=3)).isoformat()
    return {"slots": [{"code": "AM", "starts_at": starts, "capacity": capacity}]}


SHIP = {"carrier": "SF", "tracking_number": "SF123"}
HOUR = timedelta(hours=1)

SOLD_OUT: dict[str, Build] = {
    "an item with no stock": _order(lambda w: _mall_item(w, stock=0)),
    "an item whose last unit was sold": _order(_bought_once(stock=1)),
    "two units of the one left": _order(lambda w: _mall_item(w, stock=1), quantity=2),
    "a code item with an empty pool": _order(lambda w: _mall_item(w, "digital_code")),
    "a booking slot that is full": _order(
        _bought_once("booking", **_slots(1)), "booking", slot="AM"
    ),
    "a sale whose stock is gone": _order(lambda w: _mall_item(w, sale=_sale(-HOUR, HOUR, stock=0))),
}

LIMIT_REACHED: dict[str, Build] = {
    "a second unit of a one-per-member item": _order(_bought_once(per_member_limit={"count": 1})),
    "three units of a two-a-month item": _order(
        lambda w: _mall_item(w, per_member_limit={"count": 2, "period": "month"}), quantity=3
    ),
    "a second unit in a flash sale of one per member": _order(
        _bought_once(sale=_sale(-HOUR, HOUR))
    ),
}

SALE_NOT_OPEN: dict[str, Build] = {
    "an item not on sale yet": _order(
        lambda w: _mall_item(w, starts_at=(utcnow() + HOUR).isoformat())
    ),
    "an item whose window closed": _order(
        lambda w: _mall_item(
            w,
            starts_at=(utcnow() - 2 * HOUR).isoformat(),
            ends_at=(utcnow() - HOUR).isoformat(),
        )
    ),
    "an inactive item": _order(lambda w: _mall_item(w, active=False)),
    "a flash sale starting in an hour": _order(lambda w: _mall_item(w, sale=_sale(HOUR, 2 * HOUR))),
    "a flash sale that ended": _order(lambda w: _mall_item(w, sale=_sale(-2 * HOUR, -HOUR))),
}

ORDER_REFUNDED: dict[str, Build] = {
    "ship a refunded order": _order_action("ship", _refunded_order, SHIP),
    "refund it again": _order_action("refund", _refunded_order),
    "cancel a refunded order": _order_action("cancel", _refunded_order),
    "deliver a refunded order": _order_action("deliver", _refunded_order),
}

INVALID_TRANSITION: dict[str, Build] = {
    "deliver an order not shipped": _order_action("deliver", _mall_order),
    "ship an order twice": _order_action("ship", _shipped_order, SHIP),
    "cancel a shipped order": _order_action("cancel", _shipped_order),
    "ship an order awaiting its cash payment": _order_action("ship", _awaiting_payment, SHIP),
    "refund an order awaiting its cash payment": _order_action("refund", _awaiting_payment),
    "deliver a delivered order": _order_action("deliver", _delivered_order),
}

NOT_AVAILABLE: dict[str, Build] = {
    "an order of a coupon item": _order(lambda w: _mall_item(w, "coupon")),
}

MALL_NOT_ELIGIBLE: dict[str, Build] = {
    "a Bronze member orders a tier-only item": _order(
        lambda w: _mall_item(w, eligibility={"tiers": ["GOLD", "PLATINUM"]})
    ),
    "a Bronze member orders a mall_exclusive item": _order(lambda w: _mall_item(w, exclusive=True)),
    "a member without the plan orders a plan-only item": _order(
        lambda w: _mall_item(w, eligibility={"plans": ["VIP88"]})
    ),
}

MALL_INSUFFICIENT: dict[str, Build] = {
    "an item above the member's 100 points": _order(lambda w: _mall_item(w, points=101)),
    "eleven units of 10 points": _order(_mall_item, quantity=11),
}


# --- auctions ---
def _auction(w: World, starts_in: timedelta, ends_in: timedelta) -> str:
    """An auction of the world's partner, from ``starts_in`` to ``ends_in`` from now."""
    from tally.auctions import service as auctions
    from tally.auctions.domain import Increment

    now = utcnow()
    spec = auctions.AuctionSpec(
        "LUNCH-1", {"zh-CN": "午餐", "en": "Lunch"}, now + starts_in, now + ends_in, 100, None,
        (Increment(0, 10),), 60,
    )  # fmt: skip
    with w.database.write() as session:
        made = auctions.create(
            session, w.partner.partner_id, spec, now + ends_in - timedelta(hours=2),
            policy_of(w.app.state.settings),
        )  # fmt: skip
        return str(made.id)


def _bid(starts_in: timedelta, ends_in: timedelta, points: int) -> Build:
    def build(w: World) -> Callable[[], Any]:
        auction = _auction(w, starts_in, ends_in)
        body = {"member_id": w.member, "max_points": points}
        return w.post(f"/v1/auctions/{auction}/bids", body, api=w.key("mall"))

    return build


HOUR = timedelta(hours=1)
BID_TOO_LOW: dict[str, Build] = {"a bid below the start price": _bid(-HOUR, HOUR, 99)}
AUCTION_NOT_OPEN: dict[str, Build] = {"a bid before the start": _bid(HOUR, 2 * HOUR, 100)}
AUCTION_CLOSED: dict[str, Build] = {"a bid after the end": _bid(-2 * HOUR, -HOUR, 100)}

TABLE: list[Any] = [
    pytest.param(
        status,
        code,
        build,
        id=f"{code}: {name}",
    )
    for status, code, cases in (
        (404, "not_found", NOT_FOUND),
        (409, "insufficient_points", INSUFFICIENT),
        (409, "hold_not_active", HOLD_NOT_ACTIVE),
        (409, "idempotency_conflict", IDEMPOTENCY_CONFLICT),
        (400, "idempotency_key_required", KEY_REQUIRED),
        (409, "member_frozen", MEMBER_FROZEN),
        (409, "member_merged", MEMBER_MERGED),
        (401, "unauthorized", UNAUTHORIZED),
        (403, "forbidden", FORBIDDEN),
        (422, "unknown_namespace", UNKNOWN_NAMESPACE),
        (409, "duplicate_reference", DUPLICATE_REFERENCE),
        (409, "already_reversed", ALREADY_REVERSED),
        (409, "not_reversible", NOT_REVERSIBLE),
        (409, "identity_conflict", IDENTITY_CONFLICT),
        (409, "referral_refused", REFERRAL_REFUSED),
        (409, "conflict", CONFLICT),
        (422, "payment_mismatch", PAYMENT_MISMATCH),
        (403, "not_eligible", NOT_ELIGIBLE),
        (409, "membership_not_active", MEMBERSHIP_NOT_ACTIVE),
        (422, "refund_exceeds_payment", REFUND_EXCEEDS_PAYMENT),
        (409, "insufficient_growth", INSUFFICIENT_GROWTH),
        (422, "family_limit_exceeded", FAMILY_LIMIT_EXCEEDED),
        (409, "family_full", FAMILY_FULL),
        (409, "already_in_family", ALREADY_IN_FAMILY),
        (409, "invitation_not_pending", INVITATION_NOT_PENDING),
        (409, "family_dissolved", FAMILY_DISSOLVED),
        (413, "payload_too_large", PAYLOAD_TOO_LARGE),
        (403, "not_family_owner", NOT_FAMILY_OWNER),
        (403, "not_invitee", NOT_INVITEE),
        (403, "not_member_itself", NOT_MEMBER_ITSELF),
        (403, "not_family_member", NOT_FAMILY_MEMBER),
        (429, "rate_limited", RATE_LIMITED),
        (422, "unknown_partner", UNKNOWN_PARTNER),
        (422, "unknown_purpose", UNKNOWN_PURPOSE),
        (422, "adjustment_too_large", ADJUSTMENT_TOO_LARGE),
        (422, "webhook_target_refused", WEBHOOK_TARGET_REFUSED),
        (422, "unknown_event_type", UNKNOWN_EVENT_TYPE),
        (409, "coupon_not_applicable", COUPON_NOT_APPLICABLE),
        (409, "coupons_exhausted", COUPONS_EXHAUSTED),
        (409, "duplicate_code", DUPLICATE_CODE),
        (409, "sold_out", SOLD_OUT),
        (409, "limit_reached", LIMIT_REACHED),
        (409, "sale_not_open", SALE_NOT_OPEN),
        (409, "order_refunded", ORDER_REFUNDED),
        (409, "invalid_transition", INVALID_TRANSITION),
        (409, "not_available", NOT_AVAILABLE),
        (403, "not_eligible", MALL_NOT_ELIGIBLE),
        (409, "insufficient_points", MALL_INSUFFICIENT),
        (409, "bid_too_low", BID_TOO_LOW),
        (409, "auction_not_open", AUCTION_NOT_OPEN),
        (409, "auction_closed", AUCTION_CLOSED),
    )
    for name, build in cases.items()
]


def refuse(world: World, build: Build, status: int, code: str) -> dict[str, Any]:
    """Prepare, send, and check the refusal left every table, the balance and the history alone."""
    send = build(world)
    before = db_state(world.database)
    balance = world.api.balance(world.member)
    history = all_transactions(world.api, world.member)

    body = assert_problem(send(), status, code)

    assert db_state(world.database) == before
    assert world.api.balance(world.member) == balance
    assert all_transactions(world.api, world.member) == history
    return body


@pytest.mark.parametrize(("status", "code", "build"), TABLE)
def test_refusal_is_a_problem_document_and_writes_nothing(
    world: World, status: int, code: str, build: Build
) -> None:
    refuse(world, build, status, code)


@pytest.mark.parametrize("cases", list(VALIDATION.values()), ids=list(VALIDATION))
def test_invalid_input_is_a_validation_problem_and_writes_nothing(
    world: World, cases: dict[str, Build]
) -> None:
    """Bad inputs, a group per endpoint family (one world each: they cannot write anything)."""
    for name, build in cases.items():
        try:
            body = refuse(world, build, 422, "validation_error")
            if "errors" in body:
                assert body["errors"], body
                assert all({"field", "message", "type"} <= set(item) for item in body["errors"])
        except AssertionError as error:
            raise AssertionError(f"case {name!r}: {error}") from error


def test_every_error_code_of_the_contract_is_covered() -> None:
    from tally.errors import ALL_ERRORS

    covered = {param.values[1] for param in TABLE} | {"validation_error"}
    assert {error.code for error in ALL_ERRORS} <= covered


def test_unauthorized_answers_carry_a_bearer_challenge(world: World) -> None:
    response = world.client.get(f"/v1/members/{world.member}/balance")
    assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"


def test_the_validation_problem_names_the_field(world: World) -> None:
    response = world.api.earn(world.member, 0)
    body = assert_problem(response, 422, "validation_error")
    assert [item["field"] for item in body["errors"]] == ["points"]
    assert body["detail"].startswith("points:")


def test_insufficient_points_names_the_member(world: World) -> None:
    body = assert_problem(world.api.redeem(world.member, 101), 409, "insufficient_points")
    assert body["member_id"] == world.member
    assert world.api.balance(world.member)["available"] == 100


def test_forbidden_names_the_missing_scope(world: World) -> None:
    body = assert_problem(world.other("read").earn(world.member, 5), 403, "forbidden")
    assert body["scope"] == "earn"


def test_identity_conflict_names_the_owner(world: World) -> None:
    response = world.api.post(
        f"/v1/members/{world.member}/identities", {"namespace": "phone", "id": "13800000002"}
    )
    body = assert_problem(response, 409, "identity_conflict")
    assert body["member_id"] == world.empty
