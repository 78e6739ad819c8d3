"""Coupons: templates and their codes (scope ``coupons``), a partner's checkout (validate,
redeem, roll back) and a member's wallet. Amounts are integer minor units of the programme's
currency; a percent is in basis points (``1500`` is 15 %)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path
from pydantic import AwareDatetime, BaseModel, Field, StrictBool, StrictInt, StringConstraints
from sqlalchemy.orm import Session
from starlette.responses import Response

from tally.access import domain as access
from tally.access import service as access_service
from tally.access.domain import Caller
from tally.api.deps import Mutation, Reader, clock_now, mutation, programme, reader
from tally.api.paths import UUID_PATTERN, MemberId
from tally.api.schemas import MemberRef, Strict
from tally.coupons import domain
from tally.coupons import service as coupons
from tally.coupons.domain import Cart, Kind, Line, Scope
from tally.coupons.models import CouponRedemption, CouponTemplate
from tally.partners.service import Scope as KeyScope
from tally.programme.shapes import CODE_PATTERN

router = APIRouter(tags=["coupons"])
MAX_MINOR_UNITS = 10**15
MAX_API_ISSUE = 10_000
# Members per request: as many as fit in a request body (TALLY_MAX_BODY_BYTES, 64 KiB).
MAX_API_MEMBERS = 2_000

TemplateCode = Annotated[str, Path(pattern=CODE_PATTERN, max_length=64)]
RedemptionId = Annotated[
    str, Path(pattern=UUID_PATTERN, description="The redemption's id (a UUID).")
]
Minor = Annotated[StrictInt, Field(ge=0, le=MAX_MINOR_UNITS)]
PositiveMinor = Annotated[StrictInt, Field(gt=0, le=MAX_MINOR_UNITS)]
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
PartnerCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]


# --- Request and response models ------------------------------------------------------------


class NamesIn(Strict):
    zh_cn: Annotated[str, StringConstraints(min_length=1, max_length=100)] = Field(alias="zh-CN")
    en: Annotated[str, StringConstraints(min_length=1, max_length=100)]


class ScopeIn(Strict):
    categories: list[Label] = Field(default_factory=list, max_length=100)
    skus: list[Label] = Field(default_factory=list, max_length=300)
    partners: list[PartnerCode] = Field(
        default_factory=list,
        max_length=100,
        description="Partners whose checkout accepts it; empty: every partner's.",
    )


class LimitIn(Strict):
    total: Annotated[StrictInt, Field(gt=0, le=10**9)] | None = Field(
        default=None, description="Uses of the template in all (and codes issued from it)."
    )
    per_member: Annotated[StrictInt, Field(gt=0, le=1000)] | None = Field(
        default=None, description="Uses by one member; a checkout must then name the member."
    )


class ValidIn(Strict):
    from_: AwareDatetime | None = Field(default=None, alias="from")
    until: AwareDatetime | None = Field(
        default=None, description="The first instant the coupon is no longer valid."
    )


class TemplateCreate(Strict):
    code: Annotated[str, StringConstraints(pattern=r"^[A-Z0-9][A-Z0-9_]{1,63}$")]
    kind: Literal["percent", "amount"]
    value: PositiveMinor = Field(
        description="amount: minor units taken off; percent: basis points (1500 is 15 %)."
    )
    names: NamesIn
    cap: PositiveMinor | None = Field(default=None, description="percent only: the most off.")
    min_spend: PositiveMinor | None = Field(
        default=None, description="The least eligible subtotal it applies to, minor units."
    )
    scope: ScopeIn = Field(default_factory=ScopeIn)
    limit: LimitIn = Field(default_factory=LimitIn)
    valid: ValidIn = Field(default_factory=ValidIn)
    shared_code: StrictBool = Field(
        default=False, description="The template's code is itself redeemable (no codes issued)."
    )


class IssueRequest(Strict):
    member_ids: list[MemberRef] = Field(
        default_factory=list,
        max_length=MAX_API_MEMBERS,
        description="Members to issue a code to (each `count` codes); none: unassigned codes.",
    )
    count: Annotated[StrictInt, Field(gt=0, le=MAX_API_ISSUE)] | None = None


class LineIn(Strict):
    sku: Label
    category: Label | None = None
    amount: Minor = Field(description="The line's total, minor units.")


class CartIn(Strict):
    amount: Minor = Field(description="The cart's total, minor units.")
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] | None = Field(
        default=None, description="The programme's currency when absent."
    )
    items: list[LineIn] = Field(default_factory=list, max_length=200)


class CheckoutRequest(Strict):
    code: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    member_id: MemberRef | None = None
    cart: CartIn


class ScopeOut(BaseModel):
    categories: list[str]
    skus: list[str]
    partners: list[str]


class LimitOut(BaseModel):
    total: int | None
    per_member: int | None


class ValidOut(BaseModel):
    from_: datetime | None = Field(serialization_alias="from")
    until: datetime | None


class TemplateOut(BaseModel):
    code: str
    kind: str
    value: int
    currency: str
    cap: int | None
    min_spend: int | None
    scope: ScopeOut
    limit: LimitOut
    valid: ValidOut
    shared_code: bool
    names: dict[str, str]
    owner_partner_id: int | None = Field(description="The partner that created it, if one did.")
    issued: int = Field(description="Codes issued.")
    redeemed: int = Field(description="Uses in force (rolled-back ones not counted).")
    rolled_back: int
    created_at: datetime


class TemplateList(BaseModel):
    items: list[TemplateOut]


class CodeOut(BaseModel):
    id: int
    code: str
    member_id: int | None


class IssueResult(BaseModel):
    template: str
    issued: int
    codes: list[CodeOut]


class ValidationOut(BaseModel):
    valid: bool
    code: str
    template: str | None
    discount: int = Field(description="Minor units off; 0 when it does not apply.")
    eligible_subtotal: int
    currency: str | None
    reason: str | None = Field(
        description="Why it does not apply: unknown_code, expired, not_yet_valid, "
        "min_spend_not_met, not_applicable, not_accepted_here, limit_reached, already_used, "
        "not_owner, member_required, currency_mismatch."
    )
    detail: str | None


class RedemptionOut(BaseModel):
    redemption_id: str
    status: str
    discount: int
    eligible_subtotal: int
    currency: str
    template: str
    code: str
    member_id: int | None
    partner_id: int
    redeemed_at: datetime
    rolled_back_at: datetime | None


class WalletCoupon(BaseModel):
    id: int
    code: str
    template: str
    names: dict[str, str]
    kind: str
    value: int
    currency: str
    cap: int | None
    min_spend: int | None
    state: str = Field(description="valid, upcoming, used or expired (now).")
    valid: ValidOut
    issued_at: datetime
    redeemed_at: datetime | None


class Wallet(BaseModel):
    member_id: int
    items: list[WalletCoupon]


COUPON_ERRORS: dict[int | str, dict[str, str]] = {
    404: {"description": "not_found: unknown template, member or redemption"},
    409: {
        "description": "coupon_not_applicable (with reason), coupons_exhausted, duplicate_code, "
        "member_frozen, member_merged"
    },
    422: {"description": "validation_error"},
}


def _valid(row: CouponTemplate) -> ValidOut:
    return ValidOut(from_=row.valid_from, until=row.valid_until)


def _template_out(row: CouponTemplate) -> TemplateOut:
    return TemplateOut(
        code=row.code,
        kind=row.kind.value,
        value=row.value,
        currency=row.currency,
        cap=row.cap,
        min_spend=row.min_spend,
        scope=ScopeOut(categories=row.categories, skus=row.skus, partners=row.partners),
        limit=LimitOut(total=row.total_limit, per_member=row.per_member_limit),
        valid=_valid(row),
        shared_code=row.shared_code,
        names=row.names,
        owner_partner_id=row.owner_partner_id,
        issued=row.issued,
        redeemed=row.redeemed,
        rolled_back=row.rolled_back,
        created_at=row.created_at,
    )


def _redemption_out(found: CouponRedemption, template: str) -> RedemptionOut:
    return RedemptionOut(
        redemption_id=str(found.id),
        status=found.status.value,
        discount=found.discount,
        eligible_subtotal=found.eligible,
        currency=found.currency,
        template=template,
        code=domain.formatted(found.code),
        member_id=found.member_id,
        partner_id=found.partner_id,
        redeemed_at=found.redeemed_at,
        rolled_back_at=found.rolled_back_at,
    )


def _spec(payload: TemplateCreate) -> coupons.TemplateSpec:
    return coupons.TemplateSpec(
        code=payload.code,
        kind=Kind(payload.kind),
        value=payload.value,
        names={"zh-CN": payload.names.zh_cn, "en": payload.names.en},
        cap=payload.cap,
        min_spend=payload.min_spend,
        scope=Scope(
            tuple(payload.scope.categories),
            tuple(payload.scope.skus),
            tuple(payload.scope.partners),
        ),
        total_limit=payload.limit.total,
        per_member_limit=payload.limit.per_member,
        valid_from=payload.valid.from_,
        valid_until=payload.valid.until,
        shared_code=payload.shared_code,
    )


def _ask(payload: CheckoutRequest) -> coupons.Ask:
    cart = Cart(
        amount=payload.cart.amount,
        lines=tuple(Line(item.sku, item.amount, item.category) for item in payload.cart.items),
        currency=payload.cart.currency,
    )
    return coupons.Ask(code=payload.code, cart=cart, member_id=payload.member_id)


def _checkout(caller: Caller) -> coupons.Checkout:
    return coupons.Checkout(partner_id=caller.partner_id, partner_code=caller.partner_code)


def _visible(session: Session, caller: Caller, code: str) -> CouponTemplate:
    row = coupons.template(session, code)
    access.require_template_visible(caller, row.owner_partner_id, row.partners, row.code)
    return row


# --- Endpoints ------------------------------------------------------------------------------


@router.post(
    "/v1/coupon-templates",
    response_model=TemplateOut,
    status_code=201,
    responses={403: {"description": "forbidden: a partner's template for others"}, **COUPON_ERRORS},
)
async def create_coupon_template(
    payload: TemplateCreate,
    write: Annotated[Mutation, Depends(mutation(KeyScope.COUPONS))],
) -> Response:
    """Create a coupon template. The operator's channels create any; another partner only
    templates scoped to itself (``scope.partners`` exactly its own code)."""

    def work(session: Session) -> tuple[int, BaseModel]:
        caller = write.holder
        access.require_own_coupon_scope(caller, payload.scope.partners)
        found = programme(write.request, session)
        row = coupons.create_template(
            session,
            _spec(payload),
            found.currency.point_value.currency,
            clock_now(write.request),
            owner_partner_id=None if caller.is_operator_channel else caller.partner_id,
        )
        return 201, _template_out(row)

    return await write.run(work)


@router.get("/v1/coupon-templates", response_model=TemplateList)
async def list_coupon_templates(
    read: Annotated[Reader, Depends(reader(KeyScope.COUPONS))],
) -> TemplateList:
    """The templates the caller sees (its own and those it accepts; all for the operator's
    channels), newest first."""

    def work(session: Session, caller: Caller) -> TemplateList:
        return TemplateList(
            items=[
                _template_out(row)
                for row in coupons.templates(session)
                if access.sees_template(caller, row.owner_partner_id, row.partners)
            ]
        )

    return await read.run(work)


@router.get(
    "/v1/coupon-templates/{code}",
    response_model=TemplateOut,
    responses={404: {"description": "not_found"}},
)
async def get_coupon_template(
    code: TemplateCode, read: Annotated[Reader, Depends(reader(KeyScope.COUPONS))]
) -> TemplateOut:
    """One template with its counts."""

    def work(session: Session, caller: Caller) -> TemplateOut:
        return _template_out(_visible(session, caller, code))

    return await read.run(work)


@router.post(
    "/v1/coupon-templates/{code}/issue",
    response_model=IssueResult,
    status_code=201,
    responses={403: {"description": "forbidden: not_owner"}, **COUPON_ERRORS},
)
async def issue_coupons(
    code: TemplateCode,
    payload: IssueRequest,
    write: Annotated[Mutation, Depends(mutation(KeyScope.COUPONS))],
) -> Response:
    """Issue codes: one into each listed member's wallet (``count`` each), or ``count``
    unassigned codes to hand out. Only the operator's channels and the template's creator."""

    def work(session: Session) -> tuple[int, BaseModel]:
        caller = write.holder
        row = coupons.template(session, code)
        access.require_template_owner(caller, row.owner_partner_id, row.partners, row.code)
        issued = coupons.issue(
            session,
            row,
            coupons.Issuer(partner_id=caller.partner_id),
            clock_now(write.request),
            member_ids=payload.member_ids,
            count=payload.count,
        )
        return 201, IssueResult(
            template=row.code,
            issued=len(issued),
            codes=[
                CodeOut(id=coupon_id, code=domain.formatted(text), member_id=member)
                for coupon_id, text, member in issued
            ],
        )

    return await write.run(work)


@router.post("/v1/coupons/validate", response_model=ValidationOut, responses=COUPON_ERRORS)
async def validate_coupon(
    payload: CheckoutRequest, write: Annotated[Mutation, Depends(mutation(KeyScope.COUPONS))]
) -> Response:
    """What the coupon takes off the cart at the caller's checkout now, or why it does not
    apply (``valid`` false with a ``reason``). It changes nothing; like every POST it takes an
    Idempotency-Key, whose retry is answered as the first time."""

    def work(session: Session) -> tuple[int, BaseModel]:
        found = coupons.assess(
            session, _ask(payload), _checkout(write.holder), clock_now(write.request)
        )
        quote, template = found.quote, found.template
        return 200, ValidationOut(
            valid=quote is not None,
            code=domain.formatted(found.code),
            template=template.code if template is not None else None,
            discount=quote.discount if quote else 0,
            eligible_subtotal=quote.eligible if quote else 0,
            currency=template.currency if template is not None else None,
            reason=found.reason.value if found.reason else None,
            detail=domain.REASON_TEXT[found.reason] if found.reason else None,
        )

    return await write.run(work)


@router.post(
    "/v1/coupons/redeem", response_model=RedemptionOut, status_code=201, responses=COUPON_ERRORS
)
async def redeem_coupon(
    payload: CheckoutRequest, write: Annotated[Mutation, Depends(mutation(KeyScope.COUPONS))]
) -> Response:
    """Use the coupon on the cart once: the redemption and its discount, or
    ``coupon_not_applicable`` with the ``reason`` (nothing written)."""

    def work(session: Session) -> tuple[int, BaseModel]:
        done = coupons.redeem(
            session, _ask(payload), _checkout(write.holder), clock_now(write.request)
        )
        template = coupons.template_of(session, done.redemption)
        return 201, _redemption_out(done.redemption, template.code)

    return await write.run(work)


@router.post(
    "/v1/redemptions/{redemption_id}/rollback",
    response_model=RedemptionOut,
    responses={403: {"description": "forbidden: not_owner"}, **COUPON_ERRORS},
)
async def roll_back_redemption(
    redemption_id: RedemptionId,
    write: Annotated[Mutation, Depends(mutation(KeyScope.COUPONS))],
) -> Response:
    """Give a redemption's use back (the purchase was refunded): only the partner that
    redeemed it; repeat-safe (a rolled-back redemption is answered as it is)."""

    def work(session: Session) -> tuple[int, BaseModel]:
        found = coupons.redemption(session, redemption_id)
        access.require_own(write.holder, found.partner_id, f"Redemption {redemption_id}")
        done = coupons.roll_back(session, found, clock_now(write.request))
        return 200, _redemption_out(done, coupons.template_of(session, done).code)

    return await write.run(work)


@router.get(
    "/v1/members/{member_id}/coupons",
    response_model=Wallet,
    responses={
        403: {"description": "forbidden: no_relationship"},
        404: {"description": "not_found"},
    },
)
async def member_coupons(
    member_id: MemberId, read: Annotated[Reader, Depends(reader(KeyScope.COUPONS))]
) -> Wallet:
    """A member's coupon wallet: each code valid, upcoming, used or expired now. The operator's
    channels see all of it; a partner tied to the member the coupons its checkout accepts."""

    def work(session: Session, caller: Caller) -> Wallet:
        now = clock_now(read.request)
        accepted_by = None
        if not caller.is_operator_channel:
            found = programme(read.request, session)
            access_service.require_relationship(
                session, caller, member_id, found, now, "read the coupons of"
            )
            accepted_by = caller.partner_code
        items = coupons.wallet(session, member_id, now, accepted_by=accepted_by)
        return Wallet(
            member_id=member_id,
            items=[
                WalletCoupon(
                    id=item.coupon.id,
                    code=domain.formatted(item.coupon.code),
                    template=item.template.code,
                    names=item.template.names,
                    kind=item.template.kind.value,
                    value=item.template.value,
                    currency=item.template.currency,
                    cap=item.template.cap,
                    min_spend=item.template.min_spend,
                    state=item.state,
                    valid=_valid(item.template),
                    issued_at=item.coupon.issued_at,
                    redeemed_at=item.coupon.redeemed_at,
                )
                for item in items
            ],
        )

    return await read.run(work)
