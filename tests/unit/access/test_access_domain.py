"""The pure policy: the caller under a programme, namespaces, own transactions and holds, plan
sellers, operator-only acts, the scope a reversal needs."""

from __future__ import annotations

from typing import Any

import pytest

from tally.access import domain
from tally.access.domain import Caller, Reason
from tally.config import Settings
from tally.errors import Forbidden, NotFound, UnknownNamespace
from tally.partners.domain import KeyHolder, Scope
from tally.programme.domain import Programme
from tally.programme.runtime import default_programme

ALL = frozenset(Scope)


def programme(**extra: Any) -> Programme:
    """The default programme with MOBILE (the operator's channel), SHOP and FOOD."""
    content = default_programme(Settings()).dump()
    content["partners"] = [
        {"code": "MOBILE", "name": "Mobile", "operator_channel": True},
        {"code": "SHOP", "name": "Shop"},
        {"code": "FOOD", "name": "Food"},
    ]
    content["namespaces"] = [
        {"code": "phone", "shared_with": "all"},
        {"code": "email", "shared_with": ["SHOP"]},
        {"code": "shop", "owner": "SHOP"},
        {"code": "food", "owner": "FOOD"},
    ]
    content["plans"] = [
        {
            "code": "VIP",
            "names": {"zh-CN": "会员", "en": "VIP"},
            "price": {"amount": "10.00", "currency": "CNY"},
            "term": "P1M",
            "sellers": ["SHOP"],
        }
    ]
    return Programme.model_validate({**content, **extra})


PROGRAMME = programme()


def caller(code: str, scopes: frozenset[Scope] = ALL, partner_id: int = 0) -> Caller:
    ids = {"MOBILE": 1, "SHOP": 2, "FOOD": 3}
    holder = KeyHolder(partner_id or ids.get(code, 9), code, 7, scopes)
    return domain.caller_of(holder, PROGRAMME)


def reason(error: pytest.ExceptionInfo[Forbidden]) -> str:
    return str(error.value.extra["reason"])


def test_the_caller_knows_whether_it_is_an_operator_channel() -> None:
    assert caller("MOBILE").is_operator_channel
    assert not caller("SHOP").is_operator_channel
    assert not caller("UNLISTED").is_operator_channel
    # The default programme declares no partner: nobody is an operator channel.
    holder = KeyHolder(1, "MOBILE", 7, ALL)
    assert not domain.caller_of(holder, default_programme(Settings())).is_operator_channel


def test_a_missing_scope_is_forbidden_and_named() -> None:
    with pytest.raises(Forbidden) as error:
        domain.require_scope(caller("SHOP", frozenset({Scope.READ})), Scope.EARN)
    assert error.value.extra == {"reason": "missing_scope", "scope": "earn"}
    domain.require_scope(caller("SHOP", frozenset({Scope.EARN})), Scope.EARN)


def test_operator_only_acts() -> None:
    domain.require_operator_channel(caller("MOBILE"), "move points")
    with pytest.raises(Forbidden) as error:
        domain.require_operator_channel(caller("SHOP"), "move points")
    assert reason(error) == Reason.OPERATOR_CHANNEL_ONLY
    assert "move points" in error.value.detail
    assert domain.sees_families(caller("MOBILE"))
    assert not domain.sees_families(caller("SHOP"))


@pytest.mark.parametrize(
    ("code", "namespace", "allowed"),
    [
        ("SHOP", "phone", True),
        ("FOOD", "phone", True),
        ("SHOP", "email", True),
        ("FOOD", "email", False),
        ("SHOP", "shop", True),
        ("FOOD", "shop", False),
        ("MOBILE", "shop", True),  # operator channels use every declared namespace
        ("MOBILE", "email", True),
        ("UNLISTED", "phone", True),
        ("UNLISTED", "email", False),
    ],
)
def test_namespace_use(code: str, namespace: str, allowed: bool) -> None:
    if allowed:
        assert domain.require_namespace(caller(code), PROGRAMME, namespace).code == namespace
        return
    with pytest.raises(Forbidden) as error:
        domain.require_namespace(caller(code), PROGRAMME, namespace)
    assert reason(error) == Reason.NAMESPACE_NOT_USABLE
    assert error.value.extra["namespace"] == namespace


@pytest.mark.parametrize("code", ["MOBILE", "SHOP"])
def test_an_undeclared_namespace_is_unknown_to_everyone(code: str) -> None:
    with pytest.raises(UnknownNamespace) as error:
        domain.require_namespace(caller(code), PROGRAMME, "phnoe")
    assert error.value.extra == {
        "namespace": "phnoe",
        "declared": ["phone", "email", "shop", "food"],
    }
    assert "phone, email, shop, food" in error.value.detail


def test_a_namespace_is_compared_as_identities_are_stored() -> None:
    assert domain.declared_namespace(PROGRAMME, " Phone ").code == "phone"


@pytest.mark.parametrize(
    ("code", "namespace", "allowed"),
    [
        ("SHOP", "shop", True),
        ("FOOD", "shop", False),
        ("SHOP", "phone", False),  # shared: only the operator's channels
        ("SHOP", "email", False),
        ("MOBILE", "phone", True),
        ("MOBILE", "food", True),
    ],
)
def test_unlinking(code: str, namespace: str, allowed: bool) -> None:
    if allowed:
        domain.require_unlink(caller(code), PROGRAMME, namespace)
        return
    with pytest.raises(Forbidden) as error:
        domain.require_unlink(caller(code), PROGRAMME, namespace)
    assert reason(error) == Reason.NAMESPACE_NOT_OWNED


def test_unlinking_in_an_undeclared_namespace_is_unknown() -> None:
    with pytest.raises(UnknownNamespace):
        domain.require_unlink(caller("MOBILE"), PROGRAMME, "wechat")


def test_transactions_and_holds_of_another_partner_do_not_exist_for_it() -> None:
    shop = caller("SHOP")
    assert domain.seen_partner(shop) == shop.partner_id
    assert domain.seen_partner(caller("MOBILE")) is None
    domain.require_visible(shop, shop.partner_id, "Hold h")
    domain.require_own(shop, shop.partner_id, "Hold h")
    for owner in (3, None):
        with pytest.raises(NotFound):
            domain.require_visible(shop, owner, "Hold h")
        with pytest.raises(NotFound):
            domain.require_own(shop, owner, "Hold h")


def test_operator_channels_see_every_transaction_but_act_only_on_their_own() -> None:
    mobile = caller("MOBILE")
    domain.require_visible(mobile, 2, "Transaction t")
    with pytest.raises(Forbidden) as error:
        domain.require_own(mobile, 2, "Transaction t")
    assert reason(error) == Reason.NOT_OWNER
    domain.require_own(mobile, mobile.partner_id, "Transaction t")


@pytest.mark.parametrize(
    ("kind", "needed"),
    [
        ("earn", Scope.EARN),
        ("redeem", Scope.REDEEM),
        ("capture", Scope.REDEEM),
        ("transfer", Scope.TRANSFER),
    ],
)
def test_a_reversal_needs_the_scope_of_what_it_reverses(kind: str, needed: Scope) -> None:
    domain.require_reversal_scope(caller("SHOP", frozenset({needed})), kind)
    others = ALL - {needed}
    with pytest.raises(Forbidden) as error:
        domain.require_reversal_scope(caller("SHOP", others), kind)
    assert error.value.extra == {"reason": "missing_scope", "scope": needed.value}


def test_a_key_that_could_reverse_nothing_is_refused_first() -> None:
    with pytest.raises(Forbidden):
        domain.require_any_reversing_scope(caller("SHOP", frozenset({Scope.READ, Scope.ADMIN})))
    domain.require_any_reversing_scope(caller("SHOP", frozenset({Scope.REDEEM})))
    # Kinds the ledger cannot reverse need no scope here: the ledger refuses them.
    domain.require_reversal_scope(caller("SHOP", frozenset({Scope.REDEEM})), "expire")


def test_plan_sellers() -> None:
    assert domain.sells(caller("SHOP"), PROGRAMME, "VIP")
    assert domain.sells(caller("MOBILE"), PROGRAMME, "VIP")
    assert not domain.sells(caller("FOOD"), PROGRAMME, "VIP")
    # A plan gone from the programme: only the operator's channels.
    assert not domain.sells(caller("SHOP"), PROGRAMME, "GONE")
    assert domain.sells(caller("MOBILE"), PROGRAMME, "GONE")
    with pytest.raises(Forbidden) as error:
        domain.require_seller(caller("FOOD"), PROGRAMME, "VIP")
    assert error.value.extra == {"reason": "not_plan_seller", "plan": "VIP"}
    with pytest.raises(Forbidden):
        domain.require_seller_to_subscribe(caller("FOOD"), PROGRAMME, "VIP")
    # An unknown plan is left for the memberships service to refuse (it lists the plans).
    domain.require_seller_to_subscribe(caller("FOOD"), PROGRAMME, "GONE")


def test_the_namespaces_a_partner_owns() -> None:
    assert domain.owned_namespaces(caller("SHOP"), PROGRAMME) == {"shop"}
    assert domain.owned_namespaces(caller("FOOD"), PROGRAMME) == {"food"}
    # Shared namespaces are nobody's, the operator's channels' included.
    assert domain.owned_namespaces(caller("MOBILE"), PROGRAMME) == frozenset()


@pytest.mark.parametrize("tie", list(domain.Tie))
def test_any_tie_lets_a_partner_spend(tie: domain.Tie) -> None:
    assert domain.may_spend(caller("SHOP"), {tie})
    domain.require_relationship(caller("SHOP"), 17, {tie}, "redeem points of")


def test_a_partner_without_a_tie_is_told_how_to_get_one() -> None:
    assert domain.may_spend(caller("MOBILE"), set())  # the operator's channels need none
    assert not domain.may_spend(caller("FOOD"), set())
    with pytest.raises(Forbidden) as error:
        domain.require_relationship(caller("FOOD"), 17, set(), "redeem points of")
    assert error.value.extra == {"reason": Reason.NO_RELATIONSHIP.value, "member_id": 17}
    detail = str(error.value)
    assert detail.startswith("Partner FOOD may not redeem points of member 17")
    assert "GET /v1/members/lookup?code=" in detail
    assert "operator's app" in detail
