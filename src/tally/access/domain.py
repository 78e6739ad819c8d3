"""Who may do what: the caller, and the rules that need no database read (pure).

Two axes (ADR 8): a *scope* says what kind of call an API key may make; a *relationship* says
on whom — the partner that made a transaction or hold, owns a namespace or sells a plan, or
the operator's own channels (``partners[].operator_channel`` in the programme), which are
trusted with the member's own acts and see everything. Every refusal here is ``forbidden``
with a ``reason``, except where existence must not leak (``not_found``) and namespaces that
are not declared at all (``unknown_namespace``).
"""

from __future__ import annotations

import enum
from collections.abc import Collection
from dataclasses import dataclass

from tally.errors import Forbidden, NotFound, UnknownNamespace
from tally.members.domain import normalise_identity
from tally.partners.domain import KeyHolder, Scope
from tally.programme.domain import NamespaceSpec, Programme


class Reason(enum.StrEnum):
    """Why a ``forbidden`` refusal was given (the problem document's ``reason``)."""

    MISSING_SCOPE = "missing_scope"
    OPERATOR_CHANNEL_ONLY = "operator_channel_only"
    NAMESPACE_NOT_USABLE = "namespace_not_usable"
    NAMESPACE_NOT_OWNED = "namespace_not_owned"
    NOT_PLAN_SELLER = "not_plan_seller"
    NOT_OWNER = "not_owner"
    NO_RELATIONSHIP = "no_relationship"


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated API key, as the programme in force sees its partner."""

    partner_id: int
    partner_code: str
    key_id: int
    scopes: frozenset[Scope]
    is_operator_channel: bool


def caller_of(holder: KeyHolder, programme: Programme) -> Caller:
    """The caller behind ``holder`` under ``programme``."""
    return Caller(
        partner_id=holder.partner_id,
        partner_code=holder.partner_code,
        key_id=holder.key_id,
        scopes=holder.scopes,
        is_operator_channel=programme.is_operator_channel(holder.partner_code),
    )


def _forbidden(detail: str, reason: Reason, **extra: object) -> Forbidden:
    return Forbidden(detail, reason=reason.value, **extra)


def require_scope(caller: Caller, scope: Scope) -> None:
    """``forbidden`` (naming the ``scope``) unless the key has ``scope``."""
    if scope not in caller.scopes:
        raise _forbidden(
            f"This API key lacks the '{scope.value}' scope.",
            Reason.MISSING_SCOPE,
            scope=scope.value,
        )


def require_operator_channel(caller: Caller, act: str) -> None:
    """``forbidden`` unless the caller is one of the operator's own channels; ``act`` says
    what was asked, e.g. ``"move points between members"``."""
    if not caller.is_operator_channel:
        raise _forbidden(
            f"Only the operator's own channels may {act}; partner {caller.partner_code} is not "
            "one.",
            Reason.OPERATOR_CHANNEL_ONLY,
        )


def sees_families(caller: Caller) -> bool:
    """Families (their members, balances and limits) are the operator's channels' to read."""
    return caller.is_operator_channel


# --- Identity namespaces ----------------------------------------------------------------------


def declared_namespace(programme: Programme, code: str) -> NamespaceSpec:
    """The namespace ``code`` of the programme, or ``unknown_namespace`` listing the declared
    ones (so a typo never creates a duplicate member)."""
    code, _external_id = normalise_identity(code, "")
    spec = programme.namespace(code)
    if spec is None:
        declared = [item.code for item in programme.namespaces]
        raise UnknownNamespace(
            f"Namespace {code!r} is not declared in the programme; declared: "
            f"{', '.join(declared) or 'none'}.",
            namespace=code,
            declared=declared,
        )
    return spec


def require_namespace(caller: Caller, programme: Programme, code: str) -> NamespaceSpec:
    """Enrolling, linking or looking up in namespace ``code``: it must be declared and usable
    by the caller (the operator's channels use every declared namespace)."""
    spec = declared_namespace(programme, code)
    if not caller.is_operator_channel and not spec.usable_by(caller.partner_code):
        raise _forbidden(
            f"Partner {caller.partner_code} may not use the {code!r} namespace.",
            Reason.NAMESPACE_NOT_USABLE,
            namespace=code,
        )
    return spec


def require_unlink(caller: Caller, programme: Programme, code: str) -> None:
    """Unlinking an identity in namespace ``code``: a partner unlinks identities in the
    namespaces it owns; shared ones only the operator's channels."""
    spec = declared_namespace(programme, code)
    if caller.is_operator_channel or spec.owner == caller.partner_code:
        return
    raise _forbidden(
        f"Partner {caller.partner_code} does not own the {code!r} namespace; only its owner "
        "or the operator's channels unlink identities in it.",
        Reason.NAMESPACE_NOT_OWNED,
        namespace=code,
    )


# --- Transactions and holds -----------------------------------------------------------------

#: The scope an operation's reversal needs: the scope of the operation reversed.
REVERSAL_SCOPES: dict[str, Scope] = {
    "earn": Scope.EARN,
    "redeem": Scope.REDEEM,
    "capture": Scope.REDEEM,
    "transfer": Scope.TRANSFER,
}
REVERSING_SCOPES = frozenset(REVERSAL_SCOPES.values())


def seen_partner(caller: Caller) -> int | None:
    """Whose transactions and holds the caller sees: its own, or everyone's (``None``) for
    the operator's channels."""
    return None if caller.is_operator_channel else caller.partner_id


def require_visible(caller: Caller, owner_id: int | None, what: str) -> None:
    """Reading a transaction or hold made by partner ``owner_id``: another partner's is
    ``not_found`` (its existence does not leak); the operator's channels see everything."""
    if not caller.is_operator_channel and owner_id != caller.partner_id:
        raise NotFound(f"{what} does not exist.")


def require_own(caller: Caller, owner_id: int | None, what: str) -> None:
    """Acting on (reversing, capturing, voiding) a transaction or hold: only the partner that
    made it. The operator's channels, which can see it, are told why."""
    require_visible(caller, owner_id, what)
    if owner_id != caller.partner_id:
        raise _forbidden(
            f"{what} was made by another partner; only that partner may act on it.",
            Reason.NOT_OWNER,
        )


def require_any_reversing_scope(caller: Caller) -> None:
    """A key that could reverse nothing is refused before anything is looked up."""
    if not caller.scopes & REVERSING_SCOPES:
        raise _forbidden(
            "Reversing needs the scope of the operation reversed (earn, redeem or transfer); "
            "this API key has none of them.",
            Reason.MISSING_SCOPE,
            scope=Scope.EARN.value,
        )


def require_reversal_scope(caller: Caller, kind: str) -> None:
    """Reversing a transaction of ``kind`` needs that operation's scope (``earn`` for an earn,
    ``redeem`` for a redemption or capture, ``transfer`` for a transfer); other kinds are
    refused as not reversible by the ledger."""
    needed = REVERSAL_SCOPES.get(kind)
    if needed is not None:
        require_scope(caller, needed)


# --- Paid memberships -------------------------------------------------------------------------


def sells(caller: Caller, programme: Programme, plan_code: str) -> bool:
    """Whether the caller manages memberships of plan ``plan_code``: it is one of the plan's
    ``sellers`` or an operator channel. A plan gone from the programme: the operator's only."""
    if caller.is_operator_channel:
        return True
    plan = programme.plan(plan_code)
    return plan is not None and caller.partner_code in plan.sellers


def require_seller(caller: Caller, programme: Programme, plan_code: str) -> None:
    """``forbidden`` unless the caller sells plan ``plan_code`` (or is an operator channel)."""
    if not sells(caller, programme, plan_code):
        raise _forbidden(
            f"Partner {caller.partner_code} does not sell plan {plan_code}; only its sellers "
            "and the operator's channels manage its memberships.",
            Reason.NOT_PLAN_SELLER,
            plan=plan_code,
        )


def require_seller_to_subscribe(caller: Caller, programme: Programme, plan_code: str) -> None:
    """Subscribing a member to plan ``plan_code``: only its sellers and the operator's
    channels; a plan the programme does not have is refused by the memberships service
    (``validation_error`` listing the plans)."""
    if programme.plan(plan_code) is not None:
        require_seller(caller, programme, plan_code)


# --- Spending a member's points ---------------------------------------------------------------


class Tie(enum.StrEnum):
    """A fact that relates a partner to a member, enough to spend its points or link to it."""

    COLLECTED = "collected"  # it enrolled the member or linked one of its identities
    OWNED_NAMESPACE = "owned_namespace"  # the member has an identity in a namespace it owns
    PRESENTED = "presented"  # the member showed it its member code within the checkout window


def owned_namespaces(caller: Caller, programme: Programme) -> frozenset[str]:
    """The namespaces the programme says the caller owns (its own user ids)."""
    return frozenset(
        item.code for item in programme.namespaces if item.owner == caller.partner_code
    )


def may_spend(caller: Caller, ties: Collection[Tie]) -> bool:
    """Whether the caller may spend a member's points (redeem, hold, a family spend for it) or
    link an identity to it: an operator channel always; another partner with any tie to it.
    Earning needs no tie (the partner pays for the points it issues)."""
    return caller.is_operator_channel or bool(ties)


def require_relationship(caller: Caller, member_id: int, ties: Collection[Tie], act: str) -> None:
    """``forbidden`` (``no_relationship``) unless :func:`may_spend`; ``act`` says what was
    asked, e.g. ``"redeem points of"``, and the detail how the partner can get a tie."""
    if not may_spend(caller, ties):
        raise no_relationship(caller, member_id, act)


def no_relationship(caller: Caller, member_id: int, act: str) -> Forbidden:
    """The refusal of a partner without a tie to member ``member_id``."""
    return _forbidden(
        f"Partner {caller.partner_code} may not {act} member {member_id}: it did not enrol the "
        "member or link one of its identities, and the member has not shown it its member code "
        "recently. Scan the member's code at the checkout (GET /v1/members/lookup?code=…), or "
        "have the member link its account with you through the operator's app.",
        Reason.NO_RELATIONSHIP,
        member_id=member_id,
    )


# --- Coupons ----------------------------------------------------------------------------------


def sees_template(caller: Caller, owner_partner_id: int | None, partners: Collection[str]) -> bool:
    """Whether the caller sees a coupon template: the operator's channels see every one; a
    partner the ones it created and the ones it accepts (no partner scope, or one naming it)."""
    return (
        caller.is_operator_channel
        or owner_partner_id == caller.partner_id
        or not partners
        or caller.partner_code in partners
    )


def require_template_visible(
    caller: Caller, owner_partner_id: int | None, partners: Collection[str], code: str
) -> None:
    """``not_found`` for a template the caller does not see (its existence does not leak)."""
    if not sees_template(caller, owner_partner_id, partners):
        raise NotFound(f"Coupon template {code} does not exist.")


def require_template_owner(
    caller: Caller, owner_partner_id: int | None, partners: Collection[str], code: str
) -> None:
    """Issuing codes of a template: the operator's channels, or the partner that created it;
    another partner that sees it is ``forbidden`` (``not_owner``)."""
    require_template_visible(caller, owner_partner_id, partners, code)
    if not caller.is_operator_channel and owner_partner_id != caller.partner_id:
        raise _forbidden(
            f"Coupon template {code} was created by another partner; only that partner and the "
            "operator's channels issue its codes.",
            Reason.NOT_OWNER,
        )


def require_own_coupon_scope(caller: Caller, partners: Collection[str]) -> None:
    """Creating a template: the operator's channels scope it as they like; a partner only to
    itself (``scope.partners`` exactly its own code), so that no partner funds discounts at
    another's checkout."""
    if caller.is_operator_channel or list(partners) == [caller.partner_code]:
        return
    raise _forbidden(
        f"Partner {caller.partner_code} may create only coupon templates redeemable at its own "
        f'checkout: give "scope": {{"partners": ["{caller.partner_code}"]}}. Templates for other '
        "partners are the operator's channels' to create.",
        Reason.OPERATOR_CHANNEL_ONLY,
    )
