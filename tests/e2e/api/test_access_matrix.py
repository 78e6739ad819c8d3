"""Who may call what, route by route (docs/security.md): every route of the app has a row, and
each row is walked with every kind of caller — no key, a key lacking the route's scope, an
unrelated partner, the related partner (owner of the namespace, transaction or hold; seller of
the plan; tied to the member whose points it spends) and the operator's own channel — for the
exact status and ``code``; refusals write nothing. A new route without a row fails
:func:`test_every_route_has_a_row`."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from apikit import assert_problem, db_state, tolerant_client
from fastapi.routing import APIRoute, iter_route_contexts

from conftest import SECRET, Api, PartnerKey, make_partner
from support.access import apply, with_partner
from tally.config import Settings
from tally.db.session import Database
from tally.kit.clock import utcnow
from tally.partners.domain import Scope
from tally.programme.domain import Programme
from tally.programme.runtime import default_programme

OPERATOR, RELATED, UNRELATED = "MOBILE", "SHOP", "FOOD"
EVERY_SCOPE = ",".join(scope.value for scope in Scope)
# Every scope a non-operator key may have.
PARTNER_SCOPES = "members,earn,redeem,read,admin,webhooks,events,catalog,mall,coupons"
PRICE = {"minor_units": 1000, "currency": "CNY"}
Send = Callable[[], Any]
Expect = tuple[int, str | None]
OK, CREATED = (200, None), (201, None)
FORBIDDEN, NOT_FOUND = (403, "forbidden"), (404, "not_found")


def programme() -> Programme:
    """MOBILE the operator's channel; SHOP owns ``shop`` and sells VIP; FOOD owns ``food``."""
    content = default_programme(Settings()).dump()
    return Programme.model_validate(
        {
            **content,
            "partners": [
                {"code": OPERATOR, "name": "Cloudway", "operator_channel": True},
                {"code": RELATED, "name": "Select Mall"},
                {"code": UNRELATED, "name": "Full Food"},
            ],
            "namespaces": [
                {"code": "phone", "shared_with": "all"},
                {"code": "email", "shared_with": [RELATED]},
                {"code": "shop", "owner": RELATED},
                {"code": "food", "owner": UNRELATED},
            ],
            "campaigns": [
                {
                    "code": "SPRING",
                    "names": {"zh-CN": "春季", "en": "Spring"},
                    "on": ["purchase"],
                    "rules": [{"code": "flat", "award": {"points": 1}}],
                }
            ],
            # Up to 1,000 points an API adjustment posts at once; above, it is a request.
            "staff": {**content["staff"], "api_adjustment_limit": 1_000},
            "plans": [
                {
                    "code": "VIP",
                    "names": {"zh-CN": "会员", "en": "VIP"},
                    "price": {"amount": "10.00", "currency": "CNY"},
                    "term": "P1M",
                    "sellers": [RELATED],
                }
            ],
        }
    )


def unique(prefix: str) -> str:
    return f"{prefix}-{os.urandom(5).hex()}"


class Anonymous(Api):
    """A caller without an API key (its writes carry an Idempotency-Key all the same)."""

    def post(
        self, path: str, json: Any = None, idempotency_key: str | None = None, **kw: Any
    ) -> Any:
        headers = {"Idempotency-Key": idempotency_key or unique("anon")}
        return self.client.post(path, json=json, headers=headers, **kw)

    def patch(self, path: str, json: Any = None) -> Any:
        return self.client.patch(path, json=json, headers={"Idempotency-Key": unique("anon")})

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(path, **kw)


def patch(api: Api, path: str, json: Any) -> Any:
    """PATCH with the caller's key and a fresh Idempotency-Key."""
    if isinstance(api, Anonymous):
        return api.patch(path, json)
    return api.client.patch(path, json=json, headers=api.key.headers(unique("patch")))


@dataclass
class World:
    """The three partners, keys lacking one scope each, and a member holding points."""

    client: Any
    database: Database
    keys: dict[str, PartnerKey]
    member: int = 0
    shop_id: str = ""
    apis: dict[str, Api] = field(default_factory=dict)

    def api(self, who: str) -> Api:
        if who not in self.apis:
            self.apis[who] = Api(self.client, self.keys[who])
        return self.apis[who]

    @property
    def operator(self) -> Api:
        return self.api(OPERATOR)

    @property
    def shop(self) -> Api:
        return self.api(RELATED)

    def lacking(self, scope: Scope | None) -> Api:
        """An operator-channel key with every scope but ``scope`` (``None``: but every scope
        a reversal could need)."""
        missing = {scope} if scope else {Scope.EARN, Scope.REDEEM, Scope.TRANSFER}
        scopes = ",".join(item.value for item in Scope if item not in missing)
        return Api(self.client, issue(self.database, OPERATOR, scopes))

    def ok(self, response: Any, status: int = 201) -> Any:
        assert response.status_code == status, response.text
        return response.json()

    def enrol(self) -> int:
        """A new member (phone), enrolled by the operator's channel."""
        return int(self.operator.enrol(unique("138")))

    def shop_earn(self) -> str:
        return str(self.ok(self.shop.earn(self.member, 5))["id"])

    def shop_hold(self) -> str:
        body = {"points": 1, "expires_in_seconds": 600, "reference": unique("hold")}
        return str(self.ok(self.shop.post(f"/v1/members/{self.member}/holds", body))["id"])

    def membership(self, *, paid: str | None = None, cancelled: bool = False) -> str:
        """A VIP membership SHOP subscribed a new member to (paid with reference ``paid``)."""
        member = self.enrol()
        found = self.ok(self.shop.post(f"/v1/members/{member}/memberships", {"plan": "VIP"}))
        membership = str(found["id"])
        if paid is not None:
            body = {"reference": paid, "amount": PRICE}
            self.ok(self.shop.post(f"/v1/memberships/{membership}/payments", body))
        if cancelled:
            self.ok(self.shop.post(f"/v1/memberships/{membership}/cancel"), 200)
        return membership

    def family(self, *, invited: bool = False, joined: bool = False) -> tuple[int, int, int]:
        """``(family, owner, other)``: a family (share mode) the operator's channel made for a
        new owner holding points; ``other`` a new member, invited or a member when asked."""
        owner, other = self.enrol(), self.enrol()
        self.ok(self.shop.earn(owner, 50))
        body = {"acting_member_id": owner, "mode": "share"}
        family = int(self.ok(self.operator.post("/v1/families", body))["id"])
        if invited or joined:
            invite = {"acting_member_id": owner, "member_id": other}
            self.ok(self.operator.post(f"/v1/families/{family}/invitations", invite))
        if joined:
            accept = {"acting_member_id": other}
            path = f"/v1/families/{family}/invitations/{other}/accept"
            self.ok(self.operator.post(path, accept), 200)
        return family, owner, other


def issue(database: Database, code: str, scopes: str) -> PartnerKey:
    """Another key of partner ``code``."""
    from sqlalchemy import select

    from tally.partners import service as partners
    from tally.partners.models import Partner

    with database.write() as session:
        found = session.scalar(select(Partner).where(Partner.code == code))
        assert found is not None
        _key, plain = partners.issue_key(
            session,
            found,
            partners.parse_scopes(scopes),
            SECRET,
            utcnow(),
            operator_channel=code == OPERATOR,
        )
        return PartnerKey(found.id, code, plain)


@pytest.fixture
def world(app: Any, database: Database) -> Iterator[World]:
    with database.write() as session:
        apply(session, programme())
    keys = {
        OPERATOR: make_partner(database, OPERATOR, EVERY_SCOPE, operator_channel=True),
        RELATED: make_partner(database, RELATED, PARTNER_SCOPES),
        UNRELATED: make_partner(database, UNRELATED, PARTNER_SCOPES),
    }
    with tolerant_client(app) as client:
        found = World(client, database, keys)
        found.shop_id = unique("shop")
        found.member = int(found.shop.enrol(found.shop_id, namespace="shop"))
        found.ok(found.shop.earn(found.member, 10_000))
        yield found


# --- coupons ---
COUPON_NAMES = {"zh-CN": "券", "en": "Coupon"}


def _coupon_template(w: World, api: Api, **fields: Any) -> str:
    code = unique("C").replace("-", "").upper()
    body = {"code": code, "kind": "amount", "value": 100, "names": COUPON_NAMES, **fields}
    w.ok(api.post("/v1/coupon-templates", body))
    return code


def _shop_template(w: World) -> str:
    """A template SHOP made for its own checkout."""
    return _coupon_template(w, w.shop, scope={"partners": [RELATED]})


def _shared_code(w: World) -> str:
    """A shared-code template of the operator's, accepted everywhere."""
    return _coupon_template(w, w.operator, shared_code=True)


def _checkout(code: str) -> dict[str, Any]:
    return {"code": code, "cart": {"amount": 1_000}}


def _shop_redemption(w: World) -> str:
    return str(w.ok(w.shop.post("/v1/coupons/redeem", _checkout(_shared_code(w))))["redemption_id"])


# --- The rows ---------------------------------------------------------------------------------
# Each row: the route, the scope a key needs, how to send the request as a caller (setting up
# what it acts on first), and what the unrelated partner, the related one and the operator's
# channel get.


@dataclass(frozen=True)
class Row:
    method: str
    path: str
    scope: Scope | None  # None: the scope of what is reversed (checked by the route)
    send: Callable[[World, Api], Send]
    unrelated: Expect = OK
    related: Expect = OK
    operator: Expect = OK
    unrelated_reason: str | None = None  # the unrelated partner's refusal reason, when asserted
    any_key: bool = False  # any key of the partner may call it, whatever its scopes


def get(path: Callable[[World], str], **params: Any) -> Callable[[World, Api], Send]:
    def build(w: World, api: Api) -> Send:
        target = path(w)
        return lambda: api.get(target, params=params or None)

    return build


def post(
    path: Callable[[World], str], body: Callable[[World], Any] | None = None
) -> Callable[[World, Api], Send]:
    def build(w: World, api: Api) -> Send:
        target = path(w)
        payload = body(w) if body else None
        return lambda: api.post(target, payload)

    return build


def setup_then(prepare: Callable[[World], Any], request: Callable[[Api, Any], Any]) -> Any:
    """Prepare what the request acts on (as the world's partners), then send it as the caller."""

    def build(w: World, api: Api) -> Send:
        prepared = prepare(w)
        return lambda: request(api, prepared)

    return build


def member_path(suffix: str = "") -> Callable[[World], str]:
    return lambda w: f"/v1/members/{w.member}{suffix}"


def fresh_member(suffix: str) -> Callable[[World], str]:
    return lambda w: f"/v1/members/{w.enrol()}{suffix}"


OPERATOR_ONLY: dict[str, Expect] = {"unrelated": FORBIDDEN, "related": FORBIDDEN}
# Spending a member's points, or linking to it: the partner tied to the member (SHOP enrolled
# the world's member in its own namespace) and the operator's channels; FOOD has no tie.
TIED: dict[str, Any] = {
    "unrelated": FORBIDDEN,
    "related": CREATED,
    "operator": CREATED,
    "unrelated_reason": "no_relationship",
}
OWN_ONLY: dict[str, Expect] = {"unrelated": NOT_FOUND, "operator": FORBIDDEN}
SELLER: dict[str, Expect] = {"unrelated": FORBIDDEN}


def _link(w: World, api: Api) -> Send:
    """Link an identity in the caller's own namespace (FOOD: ``food``) to the world's member."""
    namespace = "food" if api.key.code == UNRELATED else "shop"
    body = {"namespace": namespace, "id": unique(namespace)}
    return lambda: api.post(f"/v1/members/{w.member}/identities", body)


def _linked(w: World) -> tuple[int, str]:
    """The world's member with a new identity in ``shop`` (linked by the operator)."""
    identity = unique("shop")
    body = {"namespace": "shop", "id": identity}
    w.ok(w.operator.post(f"/v1/members/{w.member}/identities", body), 200)
    return w.member, identity


def _paid(w: World) -> tuple[str, str]:
    """A membership SHOP subscribed a member to and took a payment for, and its reference."""
    reference = unique("pay")
    return w.membership(paid=reference), reference


def _adjustment_request(w: World) -> int:
    """A request the operator's channel filed: an adjustment above the API's limit."""
    body = {"points": 5_000, "reason": "goodwill"}
    return int(w.ok(w.operator.post(f"/v1/members/{w.member}/adjustments", body), 202)["id"])


def _webhook(w: World) -> int:
    """A subscription SHOP made (to a loopback URL: nothing is sent in these tests)."""
    body = {"url": "http://127.0.0.1:9/hooks", "event_types": ["entry.posted"]}
    return int(w.ok(w.shop.post("/v1/webhooks", body))["id"])


def _event(w: World) -> str:
    """An event SHOP reported about the world's member."""
    return str(w.ok(w.shop.post("/v1/events", _event_body(w)))["id"])


def _event_body(w: World) -> dict[str, Any]:
    return {
        "type": "sign_in",
        "event_id": unique("event"),
        "member_id": w.member,
        "occurred_at": "2026-12-02T08:00:00Z",
    }


def _delete(api: Api, path: str) -> Any:
    """DELETE with the caller's key (if any) and a fresh Idempotency-Key."""
    if isinstance(api, Anonymous):
        return api.client.delete(path, headers={"Idempotency-Key": unique("anon")})
    return api.client.delete(path, headers=api.key.headers(unique("delete")))


def _frozen(w: World) -> int:
    member = w.enrol()
    w.ok(w.operator.post(f"/v1/members/{member}/freeze", {"reason": "check"}), 200)
    return member


def _family_tied_to_shop(w: World) -> tuple[int, int, int]:
    """A family whose owner (the spender) the operator's channel linked to a ``shop`` id."""
    made = w.family()
    body = {"namespace": "shop", "id": unique("shop")}
    w.ok(w.operator.post(f"/v1/members/{made[1]}/identities", body), 200)
    return made


def _family_member_route(action: str, who: str, **kind: bool) -> Callable[[World, Api], Send]:
    """``POST /v1/families/{id}/<invitations|members>/{member_id}/<action>``."""
    section = "members" if action in {"leave", "remove"} else "invitations"

    def request(api: Api, made: tuple[int, int, int]) -> Any:
        family, owner, other = made
        acting = owner if who == "owner" else other
        path = f"/v1/families/{family}/{section}/{other}/{action}"
        return api.post(path, {"acting_member_id": acting})

    return setup_then(lambda w: w.family(**kind), request)


# --- the mall (catalog and orders) ---


def _shop_item(w: World, kind: str = "donation", **extra: Any) -> str:
    """An item SHOP supplies (1 point)."""
    code = unique("item")
    body = {"code": code, "kind": kind, "names": {"zh-CN": "商品", "en": "Item"}}
    w.ok(w.shop.post("/v1/mall/items", {**body, "price": {"points": 1}, **extra}))
    return code


def _shop_order(w: World, kind: str = "physical", **extra: Any) -> str:
    """An order the operator's app placed for the world's member, of an item SHOP supplies."""
    code = _shop_item(w, kind, **extra)
    body: dict[str, Any] = {"item": code}
    if kind == "physical":
        body["address"] = {"line": "1 Road"}
    return str(w.ok(w.operator.post(f"/v1/members/{w.member}/orders", body))["id"])


def _shipped(w: World) -> str:
    order = _shop_order(w)
    w.ok(w.shop.post(f"/v1/orders/{order}/ship", {"carrier": "SF", "tracking_number": "1"}), 200)
    return order


def _item_body(_w: World) -> dict[str, Any]:
    return {
        "code": unique("item"),
        "kind": "donation",
        "names": {"zh-CN": "捐赠", "en": "Donation"},
        "price": {"points": 1},
    }


def _operator_item_order(w: World) -> tuple[int, dict[str, Any]]:
    """The world's member and an order body for a new item of the operator's."""
    code = unique("item")
    w.ok(w.operator.post("/v1/mall/items", {**_item_body(w), "code": code}))
    return w.member, {"item": code}


MALL_SUPPLIER: dict[str, Expect] = {"unrelated": NOT_FOUND}


def _auction_body() -> dict[str, Any]:
    """An auction open from a minute ago for an hour."""
    from datetime import timedelta

    now = utcnow()
    return {
        "item": unique("LUNCH"),
        "names": {"zh-CN": "午餐", "en": "Lunch"},
        "starts_at": (now - timedelta(minutes=1)).isoformat(),
        "ends_at": (now + timedelta(hours=1)).isoformat(),
        "start_points": 100,
        "increments": [{"from": 0, "step": 10}],
        "soft_close_seconds": 60,
    }


def _shop_auction(w: World) -> str:
    """An auction SHOP (a supplier) is running."""
    return str(w.ok(w.shop.post("/v1/mall/auctions", _auction_body()))["id"])


ROWS: list[Row] = [
    # Members and identities.
    Row(
        "POST",
        "/v1/members",
        Scope.MEMBERS,
        post(
            lambda _w: "/v1/members",
            lambda _w: {"external_id": {"namespace": "shop", "id": unique("shop")}},
        ),
        FORBIDDEN,
        CREATED,
        CREATED,
    ),
    Row(
        "GET",
        "/v1/members/lookup",
        Scope.READ,
        setup_then(
            lambda w: w.shop_id,
            lambda api, ident: api.get(
                "/v1/members/lookup", params={"namespace": "shop", "id": ident}
            ),
        ),
        FORBIDDEN,
    ),
    Row("GET", "/v1/members/{member_id}", Scope.READ, get(member_path())),
    Row(
        "POST",
        "/v1/members/{member_id}/identities",
        Scope.MEMBERS,
        _link,
        FORBIDDEN,
        unrelated_reason="no_relationship",
    ),
    Row(
        "POST",
        "/v1/members/{member_id}/identities/unlink",
        Scope.MEMBERS,
        setup_then(
            _linked,
            lambda api, made: api.post(
                f"/v1/members/{made[0]}/identities/unlink", {"namespace": "shop", "id": made[1]}
            ),
        ),
        FORBIDDEN,
    ),
    Row(
        "POST",
        "/v1/members/{member_id}/freeze",
        Scope.ADMIN,
        post(fresh_member("/freeze"), lambda _w: {"reason": "fraud check"}),
        **OPERATOR_ONLY,
    ),
    Row(
        "POST",
        "/v1/members/{member_id}/unfreeze",
        Scope.ADMIN,
        setup_then(_frozen, lambda api, member: api.post(f"/v1/members/{member}/unfreeze")),
        **OPERATOR_ONLY,
    ),
    Row(
        "POST",
        "/v1/members/{member_id}/links",
        Scope.MEMBERS,
        post(member_path("/links")),
        FORBIDDEN,
        FORBIDDEN,
        CREATED,
    ),
    Row("GET", "/v1/members/{member_id}/consents", Scope.READ, get(member_path("/consents"))),
    Row(
        "POST",
        "/v1/members/{member_id}/consents",
        Scope.MEMBERS,
        post(
            fresh_member("/consents"),
            lambda _w: {"partner": RELATED, "purpose": "profile", "granted": True},
        ),
        FORBIDDEN,
        FORBIDDEN,
        CREATED,
    ),
    # The ledger.
    Row("GET", "/v1/members/{member_id}/balance", Scope.READ, get(member_path("/balance"))),
    Row(
        "GET",
        "/v1/members/{member_id}/transactions",
        Scope.READ,
        get(member_path("/transactions")),
    ),
    Row(
        "POST",
        "/v1/members/{member_id}/earn",
        Scope.EARN,
        post(member_path("/earn"), lambda _w: {"points": 5, "reference": unique("earn")}),
        CREATED,
        CREATED,
        CREATED,
    ),
    Row(
        "POST",
        "/v1/members/{member_id}/redeem",
        Scope.REDEEM,
        post(member_path("/redeem"), lambda _w: {"points": 1, "reference": unique("redeem")}),
        **TIED,
    ),
    Row(
        "POST",
        "/v1/members/{member_id}/holds",
        Scope.REDEEM,
        post(
            member_path("/holds"),
            lambda _w: {"points": 1, "expires_in_seconds": 600, "reference": unique("hold")},
        ),
        **TIED,
    ),
    Row(
        "GET",
        "/v1/holds/{hold_id}",
        Scope.READ,
        setup_then(World.shop_hold, lambda api, hold: api.get(f"/v1/holds/{hold}")),
        NOT_FOUND,
    ),
    Row(
        "POST",
        "/v1/holds/{hold_id}/capture",
        Scope.REDEEM,
        setup_then(World.shop_hold, lambda api, hold: api.post(f"/v1/holds/{hold}/capture")),
        **OWN_ONLY,
    ),
    Row(
        "POST",
        "/v1/holds/{hold_id}/void",
        Scope.REDEEM,
        setup_then(World.shop_hold, lambda api, hold: api.post(f"/v1/holds/{hold}/void")),
        **OWN_ONLY,
    ),
    Row(
        "POST",
        "/v1/transfers",
        Scope.TRANSFER,
        post(
            lambda _w: "/v1/transfers",
            lambda w: {
                "from_member_id": w.member,
                "to_member_id": w.enrol(),
                "points": 1,
                "reference": unique("gift"),
            },
        ),
        FORBIDDEN,  # no partner but an operator channel can hold the transfer scope
        FORBIDDEN,
        CREATED,
    ),
    Row(
        "POST",
        "/v1/transactions/{transaction_id}/reverse",
        None,
        setup_then(
            World.shop_earn, lambda api, entry: api.post(f"/v1/transactions/{entry}/reverse")
        ),
        NOT_FOUND,
        CREATED,
        FORBIDDEN,
    ),
    Row(
        "POST",
        "/v1/members/{member_id}/adjustments",
        Scope.ADMIN,
        post(member_path("/adjustments"), lambda _w: {"points": 5, "reason": "goodwill"}),
        FORBIDDEN,
        FORBIDDEN,
        CREATED,
    ),
    Row(
        "GET",
        "/v1/adjustment-requests/{adjustment_request_id}",
        Scope.ADMIN,
        setup_then(
            _adjustment_request, lambda api, number: api.get(f"/v1/adjustment-requests/{number}")
        ),
        NOT_FOUND,  # only the partner whose key filed it sees it
        NOT_FOUND,
        OK,
    ),
    # Growth value and tiers.
    Row("GET", "/v1/members/{member_id}/status", Scope.READ, get(member_path("/status"))),
    Row("GET", "/v1/members/{member_id}/tier", Scope.READ, get(member_path("/tier"))),
    Row("GET", "/v1/members/{member_id}/growth", Scope.READ, get(member_path("/growth"))),
    Row(
        "GET",
        "/v1/members/{member_id}/tier-history",
        Scope.READ,
        get(member_path("/tier-history")),
    ),
    Row(
        "POST",
        "/v1/members/{member_id}/growth/adjustments",
        Scope.ADMIN,
        post(member_path("/growth/adjustments"), lambda _w: {"points": 5, "reason": "goodwill"}),
        FORBIDDEN,
        FORBIDDEN,
        CREATED,
    ),
    # Paid memberships: the plan's sellers and the operator's channels.
    Row(
        "POST",
        "/v1/members/{member_id}/memberships",
        Scope.MEMBERS,
        post(fresh_member("/memberships"), lambda _w: {"plan": "VIP"}),
        FORBIDDEN,
        CREATED,
        CREATED,
    ),
    Row(
        "GET",
        "/v1/members/{member_id}/memberships",
        Scope.READ,
        get(member_path("/memberships")),
    ),
    Row(
        "GET",
        "/v1/memberships/{membership_id}",
        Scope.READ,
        setup_then(lambda w: w.membership(), lambda api, m: api.get(f"/v1/memberships/{m}")),
        **SELLER,
    ),
    Row(
        "GET",
        "/v1/memberships/{membership_id}/events",
        Scope.READ,
        setup_then(lambda w: w.membership(), lambda api, m: api.get(f"/v1/memberships/{m}/events")),
        **SELLER,
    ),
    Row(
        "POST",
        "/v1/memberships/{membership_id}/payments",
        Scope.MEMBERS,
        setup_then(
            lambda w: w.membership(),
            lambda api, m: api.post(
                f"/v1/memberships/{m}/payments", {"reference": unique("pay"), "amount": PRICE}
            ),
        ),
        FORBIDDEN,
        CREATED,
        CREATED,
    ),
    Row(
        "POST",
        "/v1/memberships/{membership_id}/cancel",
        Scope.MEMBERS,
        setup_then(
            lambda w: w.membership(paid=unique("pay")),
            lambda api, m: api.post(f"/v1/memberships/{m}/cancel"),
        ),
        **SELLER,
    ),
    Row(
        "POST",
        "/v1/memberships/{membership_id}/resume",
        Scope.MEMBERS,
        setup_then(
            lambda w: w.membership(paid=unique("pay"), cancelled=True),
            lambda api, m: api.post(f"/v1/memberships/{m}/resume"),
        ),
        **SELLER,
    ),
    Row(
        "POST",
        "/v1/memberships/{membership_id}/refunds",
        Scope.MEMBERS,
        setup_then(
            _paid,
            lambda api, made: api.post(
                f"/v1/memberships/{made[0]}/refunds", {"payment_reference": made[1]}
            ),
        ),
        FORBIDDEN,
        CREATED,
        NOT_FOUND,  # a payment is refunded by the partner that took it
    ),
    # Families: the operator's channels on the member's behalf; a pool spend is a checkout.
    Row(
        "POST",
        "/v1/families",
        Scope.MEMBERS,
        post(lambda _w: "/v1/families", lambda w: {"acting_member_id": w.enrol()}),
        FORBIDDEN,
        FORBIDDEN,
        CREATED,
    ),
    Row(
        "GET",
        "/v1/families/{family_id}",
        Scope.READ,
        setup_then(World.family, lambda api, made: api.get(f"/v1/families/{made[0]}")),
        **OPERATOR_ONLY,
    ),
    Row(
        "GET",
        "/v1/members/{member_id}/family",
        Scope.READ,
        setup_then(World.family, lambda api, made: api.get(f"/v1/members/{made[1]}/family")),
        **OPERATOR_ONLY,
    ),
    Row(
        "PATCH",
        "/v1/families/{family_id}",
        Scope.MEMBERS,
        setup_then(
            World.family,
            lambda api, made: patch(
                api, f"/v1/families/{made[0]}", {"acting_member_id": made[1], "mode": "pool"}
            ),
        ),
        **OPERATOR_ONLY,
    ),
    Row(
        "POST",
        "/v1/families/{family_id}/settings",
        Scope.MEMBERS,
        setup_then(
            World.family,
            lambda api, made: api.post(
                f"/v1/families/{made[0]}/settings", {"acting_member_id": made[1], "mode": "pool"}
            ),
        ),
        **OPERATOR_ONLY,
    ),
    Row(
        "POST",
        "/v1/families/{family_id}/invitations",
        Scope.MEMBERS,
        setup_then(
            World.family,
            lambda api, made: api.post(
                f"/v1/families/{made[0]}/invitations",
                {"acting_member_id": made[1], "member_id": made[2]},
            ),
        ),
        FORBIDDEN,
        FORBIDDEN,
        CREATED,
    ),
    Row(
        "POST",
        "/v1/families/{family_id}/invitations/{member_id}/accept",
        Scope.MEMBERS,
        _family_member_route("accept", "other", invited=True),
        **OPERATOR_ONLY,
    ),
    Row(
        "POST",
        "/v1/families/{family_id}/invitations/{member_id}/decline",
        Scope.MEMBERS,
        _family_member_route("decline", "other", invited=True),
        **OPERATOR_ONLY,
    ),
    Row(
        "POST",
        "/v1/families/{family_id}/invitations/{member_id}/withdraw",
        Scope.MEMBERS,
        _family_member_route("withdraw", "owner", invited=True),
        **OPERATOR_ONLY,
    ),
    Row(
        "POST",
        "/v1/families/{family_id}/members/{member_id}/leave",
        Scope.MEMBERS,
        _family_member_route("leave", "other", joined=True),
        **OPERATOR_ONLY,
    ),
    Row(
        "POST",
        "/v1/families/{family_id}/members/{member_id}/remove",
        Scope.MEMBERS,
        _family_member_route("remove", "owner", joined=True),
        **OPERATOR_ONLY,
    ),
    Row(
        "POST",
        "/v1/families/{family_id}/dissolve",
        Scope.MEMBERS,
        setup_then(
            World.family,
            lambda api, made: api.post(
                f"/v1/families/{made[0]}/dissolve", {"acting_member_id": made[1]}
            ),
        ),
        **OPERATOR_ONLY,
    ),
    # Webhooks: a partner's subscriptions are its own (the operator's channels' too).
    Row(
        "POST",
        "/v1/webhooks",
        Scope.WEBHOOKS,
        post(
            lambda _w: "/v1/webhooks",
            lambda _w: {"url": "http://127.0.0.1:9/hooks", "event_types": ["hold.lapsed"]},
        ),
        CREATED,
        CREATED,
        CREATED,
    ),
    Row("GET", "/v1/webhooks", Scope.WEBHOOKS, get(lambda _w: "/v1/webhooks")),
    Row(
        "GET",
        "/v1/webhooks/{webhook_id}",
        Scope.WEBHOOKS,
        setup_then(_webhook, lambda api, made: api.get(f"/v1/webhooks/{made}")),
        NOT_FOUND,
        OK,
        NOT_FOUND,
    ),
    Row(
        "DELETE",
        "/v1/webhooks/{webhook_id}",
        Scope.WEBHOOKS,
        setup_then(_webhook, lambda api, made: _delete(api, f"/v1/webhooks/{made}")),
        NOT_FOUND,
        OK,
        NOT_FOUND,
    ),
    Row(
        "POST",
        "/v1/webhooks/{webhook_id}/ping",
        Scope.WEBHOOKS,
        setup_then(_webhook, lambda api, made: api.post(f"/v1/webhooks/{made}/ping")),
        NOT_FOUND,
        (202, None),
        NOT_FOUND,
    ),
    Row(
        "GET",
        "/v1/webhooks/{webhook_id}/deliveries",
        Scope.WEBHOOKS,
        setup_then(_webhook, lambda api, made: api.get(f"/v1/webhooks/{made}/deliveries")),
        NOT_FOUND,
        OK,
        NOT_FOUND,
    ),
    # Events earn like earns (any partner); a stored event is read by its reporter.
    Row(
        "POST",
        "/v1/events",
        Scope.EVENTS,
        post(lambda _w: "/v1/events", _event_body),
        CREATED,
        CREATED,
        CREATED,
    ),
    Row(
        "POST",
        "/v1/events/batch",
        Scope.EVENTS,
        post(lambda _w: "/v1/events/batch", lambda w: {"events": [_event_body(w)]}),
    ),
    Row(
        "GET",
        "/v1/events/{event_id}",
        Scope.EVENTS,
        setup_then(_event, lambda api, made: api.get(f"/v1/events/{made}")),
        NOT_FOUND,
        OK,
        OK,
    ),
    # Campaigns: any partner reads what runs (without budgets); results and pauses are the
    # operator's channels'.
    Row("GET", "/v1/campaigns", Scope.READ, get(lambda _w: "/v1/campaigns")),
    Row("GET", "/v1/campaigns/{code}", Scope.READ, get(lambda _w: "/v1/campaigns/SPRING")),
    Row(
        "GET",
        "/v1/campaigns/{code}/results",
        Scope.READ,
        get(lambda _w: "/v1/campaigns/SPRING/results"),
        **OPERATOR_ONLY,
    ),
    Row(
        "POST",
        "/v1/campaigns/{code}/pause",
        Scope.ADMIN,
        post(lambda _w: "/v1/campaigns/SPRING/pause"),
        **OPERATOR_ONLY,
    ),
    Row(
        "POST",
        "/v1/campaigns/{code}/resume",
        Scope.ADMIN,
        post(lambda _w: "/v1/campaigns/SPRING/resume"),
        **OPERATOR_ONLY,
    ),
    # A partner reads itself with any of its keys (tests/e2e/api/test_partner_accounts.py
    # shows that each sees only itself).
    Row("GET", "/v1/partners/me", None, get(lambda _w: "/v1/partners/me"), any_key=True),
    Row(
        "POST",
        "/v1/families/{family_id}/redemptions",
        Scope.REDEEM,
        setup_then(
            _family_tied_to_shop,
            lambda api, made: api.post(
                f"/v1/families/{made[0]}/redemptions",
                {"member_id": made[1], "points": 1, "reference": unique("spend")},
            ),
        ),
        **TIED,
    ),
    # A member's engagement: the member's own pages and app (the operator's channels).
    Row(
        "GET",
        "/v1/members/{member_id}/engagement",
        Scope.READ,
        get(member_path("/engagement")),
        **OPERATOR_ONLY,
    ),
    Row(
        "POST",
        "/v1/members/{member_id}/sign-ins",
        Scope.EVENTS,
        post(member_path("/sign-ins")),
        **OPERATOR_ONLY,
        operator=CREATED,
    ),
    # --- the mall (catalog and orders) ---
    Row(
        "POST",
        "/v1/mall/items",
        Scope.CATALOG,
        post(lambda _w: "/v1/mall/items", _item_body),
        unrelated=CREATED,
        related=CREATED,
        operator=CREATED,
    ),
    Row(
        "PATCH",
        "/v1/mall/items/{code}",
        Scope.CATALOG,
        setup_then(_shop_item, lambda api, code: patch(api, f"/v1/mall/items/{code}", {})),
        **MALL_SUPPLIER,
    ),
    Row(
        "POST",
        "/v1/mall/items/{code}/stock",
        Scope.CATALOG,
        setup_then(
            lambda w: _shop_item(w, "physical", stock=1),
            lambda api, code: api.post(f"/v1/mall/items/{code}/stock", {"add": 1}),
        ),
        **MALL_SUPPLIER,
    ),
    Row(
        "POST",
        "/v1/mall/items/{code}/codes",
        Scope.CATALOG,
        setup_then(
            lambda w: _shop_item(w, "digital_code"),
            lambda api, code: api.post(f"/v1/mall/items/{code}/codes", {"codes": [unique("c")]}),
        ),
        unrelated=NOT_FOUND,
        related=CREATED,
        operator=CREATED,
    ),
    Row("GET", "/v1/mall/items", Scope.CATALOG, get(lambda _w: "/v1/mall/items")),
    Row(
        "GET",
        "/v1/mall/items/{code}",
        Scope.CATALOG,
        setup_then(_shop_item, lambda api, code: api.get(f"/v1/mall/items/{code}")),
        **MALL_SUPPLIER,
    ),
    Row(
        "POST",
        "/v1/members/{member_id}/orders",
        Scope.MALL,
        setup_then(
            _operator_item_order,
            lambda api, made: api.post(f"/v1/members/{made[0]}/orders", made[1]),
        ),
        unrelated=FORBIDDEN,
        related=FORBIDDEN,
        operator=CREATED,
    ),
    Row(
        "POST",
        "/v1/orders/{order_id}/payments",
        Scope.MALL,
        setup_then(
            lambda w: _shop_order(
                w, "ticket", price={"points": 1, "cash": {"amount": "1.00", "currency": "CNY"}}
            ),
            lambda api, order: api.post(
                f"/v1/orders/{order}/payments",
                {"reference": unique("pay"), "amount": {"minor_units": 100, "currency": "CNY"}},
            ),
        ),
        unrelated=NOT_FOUND,
        related=CREATED,
        operator=CREATED,
    ),
    Row(
        "POST",
        "/v1/orders/{order_id}/ship",
        Scope.MALL,
        setup_then(
            _shop_order,
            lambda api, order: api.post(
                f"/v1/orders/{order}/ship", {"carrier": "SF", "tracking_number": "1"}
            ),
        ),
        **MALL_SUPPLIER,
    ),
    Row(
        "POST",
        "/v1/orders/{order_id}/deliver",
        Scope.MALL,
        setup_then(_shipped, lambda api, order: api.post(f"/v1/orders/{order}/deliver")),
        **MALL_SUPPLIER,
    ),
    Row(
        "POST",
        "/v1/orders/{order_id}/fulfilment",
        Scope.MALL,
        setup_then(
            lambda w: _shop_order(w, "partner_benefit"),
            lambda api, order: api.post(f"/v1/orders/{order}/fulfilment"),
        ),
        **MALL_SUPPLIER,
    ),
    Row(
        "POST",
        "/v1/orders/{order_id}/cancel",
        Scope.MALL,
        setup_then(_shop_order, lambda api, order: api.post(f"/v1/orders/{order}/cancel")),
        **MALL_SUPPLIER,
    ),
    Row(
        "POST",
        "/v1/orders/{order_id}/refund",
        Scope.MALL,
        setup_then(_shop_order, lambda api, order: api.post(f"/v1/orders/{order}/refund")),
        **MALL_SUPPLIER,
    ),
    Row(
        "GET",
        "/v1/orders/{order_id}",
        Scope.MALL,
        setup_then(_shop_order, lambda api, order: api.get(f"/v1/orders/{order}")),
        **MALL_SUPPLIER,
    ),
    Row(
        "GET",
        "/v1/orders/{order_id}/events",
        Scope.MALL,
        setup_then(_shop_order, lambda api, order: api.get(f"/v1/orders/{order}/events")),
        **MALL_SUPPLIER,
    ),
    Row("GET", "/v1/members/{member_id}/orders", Scope.MALL, get(member_path("/orders"))),
    Row("GET", "/v1/orders", Scope.MALL, get(lambda _w: "/v1/orders")),
    # --- coupons ---
    Row(
        "POST",
        "/v1/coupon-templates",
        Scope.COUPONS,
        post(
            lambda _w: "/v1/coupon-templates",
            lambda _w: {
                "code": unique("C").replace("-", "").upper(),
                "kind": "percent",
                "value": 1000,
                "names": COUPON_NAMES,
                "scope": {"partners": [RELATED]},
            },
        ),
        FORBIDDEN,
        CREATED,
        CREATED,
    ),
    Row("GET", "/v1/coupon-templates", Scope.COUPONS, get(lambda _w: "/v1/coupon-templates")),
    Row(
        "GET",
        "/v1/coupon-templates/{code}",
        Scope.COUPONS,
        setup_then(_shop_template, lambda api, code: api.get(f"/v1/coupon-templates/{code}")),
        NOT_FOUND,
    ),
    Row(
        "POST",
        "/v1/coupon-templates/{code}/issue",
        Scope.COUPONS,
        setup_then(
            _shop_template,
            lambda api, code: api.post(f"/v1/coupon-templates/{code}/issue", {"count": 2}),
        ),
        NOT_FOUND,
        CREATED,
        CREATED,
    ),
    Row(
        "POST",
        "/v1/coupons/validate",
        Scope.COUPONS,
        setup_then(
            _shared_code, lambda api, code: api.post("/v1/coupons/validate", _checkout(code))
        ),
    ),
    Row(
        "POST",
        "/v1/coupons/redeem",
        Scope.COUPONS,
        setup_then(_shared_code, lambda api, code: api.post("/v1/coupons/redeem", _checkout(code))),
        CREATED,
        CREATED,
        CREATED,
    ),
    Row(
        "POST",
        "/v1/redemptions/{redemption_id}/rollback",
        Scope.COUPONS,
        setup_then(
            _shop_redemption, lambda api, found: api.post(f"/v1/redemptions/{found}/rollback")
        ),
        **OWN_ONLY,
    ),
    Row(
        "GET",
        "/v1/members/{member_id}/coupons",
        Scope.COUPONS,
        get(member_path("/coupons")),
        FORBIDDEN,
        unrelated_reason="no_relationship",
    ),
    # --- auctions ---
    Row(
        "POST",
        "/v1/mall/auctions",
        Scope.CATALOG,
        post(lambda _w: "/v1/mall/auctions", lambda _w: _auction_body()),
        CREATED,
        CREATED,
        CREATED,
    ),
    Row("GET", "/v1/mall/auctions", Scope.CATALOG, get(lambda _w: "/v1/mall/auctions")),
    Row(
        "GET",
        "/v1/auctions/{auction_id}",
        Scope.MALL,
        setup_then(_shop_auction, lambda api, auction: api.get(f"/v1/auctions/{auction}")),
        NOT_FOUND,
    ),
    Row(
        "POST",
        "/v1/auctions/{auction_id}/bids",
        Scope.MALL,
        setup_then(
            lambda w: (_shop_auction(w), w.member),
            lambda api, made: api.post(
                f"/v1/auctions/{made[0]}/bids", {"member_id": made[1], "max_points": 100}
            ),
        ),
        FORBIDDEN,
        FORBIDDEN,
        CREATED,
    ),
    # --- offers ---
    # A member's ranked offers are the operator's app's (its mall front page).
    Row(
        "GET",
        "/v1/members/{member_id}/offers",
        Scope.MALL,
        get(member_path("/offers")),
        **OPERATOR_ONLY,
    ),
]

CALLERS = ("no key", "lacking scope", "unrelated", "related", "operator")


def caller_api(w: World, row: Row, caller: str) -> Api:
    if caller == "no key":
        return Anonymous(w.client, w.keys[OPERATOR])
    if caller == "lacking scope":
        return w.lacking(row.scope)
    return w.api({"unrelated": UNRELATED, "related": RELATED, "operator": OPERATOR}[caller])


def expected(row: Row, caller: str) -> Expect:
    if caller == "no key":
        return (401, "unauthorized")
    if caller == "lacking scope":
        return OK if row.any_key else FORBIDDEN
    return {"unrelated": row.unrelated, "related": row.related, "operator": row.operator}[caller]


@pytest.mark.parametrize("row", ROWS, ids=[f"{row.method} {row.path}" for row in ROWS])
def test_who_may_call_the_route(world: World, row: Row) -> None:
    """Every kind of caller gets exactly its answer; a refusal writes nothing."""
    for caller in CALLERS:
        api = caller_api(world, row, caller)
        send = row.send(world, api)
        status, code = expected(row, caller)
        before = db_state(world.database)
        response = send()
        context = f"{caller}: {response.status_code} {response.text[:300]}"
        if code is None:
            assert response.status_code == status, context
            continue
        body = assert_problem(response, status, code)
        assert db_state(world.database) == before, context
        if caller == "lacking scope":
            assert body["reason"] == "missing_scope", context
            assert body["scope"] == (row.scope or Scope.EARN).value, context
        elif code == "forbidden" and caller != "no key":
            assert body["reason"] in REASONS, context
        if caller == "unrelated" and row.unrelated_reason is not None:
            assert body["reason"] == row.unrelated_reason, context


REASONS = {
    "operator_channel_only",
    "namespace_not_usable",
    "namespace_not_owned",
    "not_plan_seller",
    "not_owner",
    "missing_scope",
    "no_relationship",
}


def app_routes(app: Any) -> set[tuple[str, str]]:
    """``(method, path)`` of every API route the app serves."""
    return {
        (method, context.path_format)
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute)
        and (context.path_format or "").startswith("/v1/")
        for method in context.methods or ()
    }


def test_every_route_has_a_row(app: Any) -> None:
    rows = {(row.method, row.path) for row in ROWS}
    assert len(rows) == len(ROWS), "a route has two rows"
    assert app_routes(app) - rows == set(), "routes without a row in the access matrix"
    assert rows - app_routes(app) == set(), "rows for routes the app does not serve"


# --- What each caller sees, and checks the table cannot show -------------------------------


def kinds_and_partners(api: Api, member: int) -> list[tuple[str, int | None]]:
    body = api.get(f"/v1/members/{member}/transactions").json()
    return [(item["kind"], item["partner_id"]) for item in body["items"]]


def test_a_partner_lists_only_its_own_transactions_the_operator_all(world: World) -> None:
    food = world.api(UNRELATED)
    world.ok(food.earn(world.member, 7))
    world.ok(world.operator.earn(world.member, 3))
    shop_id, food_id = world.keys[RELATED].partner_id, world.keys[UNRELATED].partner_id
    operator_id = world.keys[OPERATOR].partner_id

    assert kinds_and_partners(world.shop, world.member) == [("earn", shop_id)]
    assert kinds_and_partners(food, world.member) == [("earn", food_id)]
    assert kinds_and_partners(world.operator, world.member) == [
        ("earn", operator_id),
        ("earn", food_id),
        ("earn", shop_id),
    ]


def test_a_reversal_needs_the_scope_of_what_it_reverses(world: World) -> None:
    earn_id = world.shop_earn()
    redeemed = world.ok(world.shop.redeem(world.member, 2))["id"]
    redeem_only = Api(world.client, issue(world.database, RELATED, "redeem"))
    earn_only = Api(world.client, issue(world.database, RELATED, "earn"))
    state = db_state(world.database)

    body = assert_problem(redeem_only.post(f"/v1/transactions/{earn_id}/reverse"), 403, "forbidden")
    assert (body["reason"], body["scope"]) == ("missing_scope", "earn")
    body = assert_problem(earn_only.post(f"/v1/transactions/{redeemed}/reverse"), 403, "forbidden")
    assert (body["reason"], body["scope"]) == ("missing_scope", "redeem")
    assert db_state(world.database) == state

    world.ok(earn_only.post(f"/v1/transactions/{earn_id}/reverse"))
    world.ok(redeem_only.post(f"/v1/transactions/{redeemed}/reverse"))


def test_transfers_stop_when_the_partner_stops_being_an_operator_channel(world: World) -> None:
    body = {"from_member_id": world.member, "to_member_id": world.enrol(), "points": 1}
    with world.database.write() as session:
        apply(session, with_partner(programme(), OPERATOR, operator_channel=False))
    state = db_state(world.database)

    refused = world.operator.post("/v1/transfers", {**body, "reference": unique("gift")})

    assert assert_problem(refused, 403, "forbidden")["reason"] == "operator_channel_only"
    assert db_state(world.database) == state


def test_shared_identities_are_unlinked_only_by_the_operator(world: World) -> None:
    member = int(world.shop.enrol(unique("138")))  # SHOP collected it: it may link to it
    phone = world.ok(world.operator.get(f"/v1/members/{member}"), 200)["identities"][0]
    world.ok(
        world.shop.post(f"/v1/members/{member}/identities", {"namespace": "email", "id": "a@b.cn"}),
        200,
    )
    state = db_state(world.database)
    for identity in (phone, {"namespace": "email", "id": "a@b.cn"}):
        refused = world.shop.post(f"/v1/members/{member}/identities/unlink", identity)
        assert assert_problem(refused, 403, "forbidden")["reason"] == "namespace_not_owned"
    assert db_state(world.database) == state

    world.ok(world.operator.post(f"/v1/members/{member}/identities/unlink", phone), 200)


def test_a_namespace_not_shared_with_the_partner_is_forbidden(world: World) -> None:
    state = db_state(world.database)
    body = {"external_id": {"namespace": "email", "id": "li@food.cn"}}
    refused = world.api(UNRELATED).post("/v1/members", body)
    assert assert_problem(refused, 403, "forbidden")["reason"] == "namespace_not_usable"
    typo = world.shop.post("/v1/members", {"external_id": {"namespace": "phnoe", "id": "1"}})
    problem = assert_problem(typo, 422, "unknown_namespace")
    assert problem["declared"] == ["phone", "email", "shop", "food"]
    assert db_state(world.database) == state


def test_memberships_and_families_are_shown_to_those_they_concern(world: World) -> None:
    membership = world.membership(paid=unique("pay"))
    member = world.ok(world.shop.get(f"/v1/memberships/{membership}"), 200)["member_id"]
    food = world.api(UNRELATED)
    listed = {
        who: [item["id"] for item in api.get(f"/v1/members/{member}/memberships").json()["items"]]
        for who, api in (("shop", world.shop), ("food", food), ("operator", world.operator))
    }
    assert listed == {"shop": [membership], "food": [], "operator": [membership]}

    family, owner, _other = world.family(joined=True)
    for api, sees in ((world.shop, False), (food, False), (world.operator, True)):
        status = world.ok(api.get(f"/v1/members/{owner}/status"), 200)
        assert (status["family"] is not None) is sees
        assert (status["family"] or {}).get("id", family) == family
    shop_status = world.ok(world.shop.get(f"/v1/members/{member}/status"), 200)
    food_status = world.ok(food.get(f"/v1/members/{member}/status"), 200)
    assert [item["id"] for item in shop_status["memberships"]] == [membership]
    assert food_status["memberships"] == []


SECURITY_MD = Path(__file__).resolve().parents[3] / "docs" / "security.md"


def documented_routes() -> set[tuple[str, str]]:
    """``(method, path)`` of the routes in docs/security.md's table, ids written ``{}``.

    A cell lists routes separated by ``·``; a bare ``/x`` is a sibling of the route before it
    (it replaces the last segment, or follows an id)."""
    text = SECURITY_MD.read_text(encoding="utf-8")
    table = text.split("## Who may call each API route", 1)[1].split("\n## ", 1)[0]
    found: set[tuple[str, str]] = set()
    for line in table.splitlines():
        if not line.startswith("| `"):
            continue
        cell = line.split("|")[1]
        method, base = "", ""
        for part in re.findall(r"`([^`]+)`", cell):
            if " " in part:
                method, base = part.split(" ", 1)
                path = base
            else:
                head, _, last = base.rpartition("/")
                path = base + part if last.startswith("{") else head + part
            found.add((method, re.sub(r"\{[^}]*\}", "{}", path.split("?", 1)[0])))
    return found


def test_the_security_table_lists_every_route(app: Any) -> None:
    served = {(method, re.sub(r"\{[^}]*\}", "{}", path)) for method, path in app_routes(app)}
    documented = documented_routes()
    assert served - documented == set(), "routes missing from docs/security.md's table"
    assert documented - served == set(), "docs/security.md's table names routes not served"
