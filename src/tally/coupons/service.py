"""Coupon use cases: templates, issuance (by operators, rules, monthly allowances), checkout
(validate, redeem, roll back), the member's wallet and a template's use. Never commits.

A redemption counts once by conditional updates in a fixed order — the template's total
(``redeemed < total_limit``), the member's limit (an upsert whose update is conditional on
``used < per_member_limit``), the code itself (``status = 'issued'``) — each checked by its row
count, then the redemption row and its outbox event; any refusal rolls the whole use case back.
Validation runs the same checks on a read and writes nothing, so it answers what a redemption
at that moment would.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from tally.coupons import domain, repository
from tally.coupons.domain import (
    MAX_ISSUE,
    Cart,
    CouponStatus,
    Kind,
    Quote,
    Reason,
    RedemptionStatus,
    Scope,
    Source,
    Terms,
)
from tally.coupons.models import Coupon, CouponRedemption, CouponTemplate
from tally.db.raw import savepoint
from tally.errors import (
    CouponNotApplicable,
    CouponsExhausted,
    DuplicateCode,
    NotFound,
    ValidationFailed,
)
from tally.kit.ids import uuid7
from tally.members import service as members
from tally.outbox import repository as outbox
from tally.outbox.domain import Event, EventType


@dataclass(frozen=True, slots=True)
class TemplateSpec:
    """A template as asked for (amounts in minor units, a percent in basis points)."""

    code: str
    kind: Kind
    value: int
    names: dict[str, str]
    cap: int | None = None
    min_spend: int | None = None
    scope: Scope = field(default_factory=Scope)
    total_limit: int | None = None
    per_member_limit: int | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    shared_code: bool = False


@dataclass(frozen=True, slots=True)
class Issuer:
    """Who issues codes: a partner, a staff member, or (neither) Tally itself (a rule, a
    monthly allowance)."""

    partner_id: int | None = None
    staff_id: int | None = None


@dataclass(frozen=True, slots=True)
class Ask:
    """A code presented at a checkout, for a cart, by (optionally) a member."""

    code: str
    cart: Cart
    member_id: int | None = None


@dataclass(frozen=True, slots=True)
class Checkout:
    """The partner at whose checkout a coupon is presented."""

    partner_id: int
    partner_code: str


@dataclass(frozen=True, slots=True)
class Assessment:
    """What a coupon does for a cart now: a quote, or the reason it does not apply."""

    code: str
    template: CouponTemplate | None
    coupon: Coupon | None
    quote: Quote | None = None
    reason: Reason | None = None

    @property
    def applies(self) -> bool:
        return self.quote is not None


@dataclass(frozen=True, slots=True)
class Redeemed:
    redemption: CouponRedemption
    quote: Quote


@dataclass(frozen=True, slots=True)
class Grant:
    """A coupon Tally gives a member on its own account: ``key`` makes it once only."""

    member_id: int
    template: str
    key: str


@dataclass(frozen=True, slots=True)
class Granted:
    """What became of a grant: the code issued, or why none was (``unknown_template``,
    ``shared_code``, ``expired``, ``coupons_exhausted``); ``repeat`` when it was issued
    before."""

    grant: Grant
    coupon_id: int | None = None
    code: str | None = None
    refused: str | None = None
    repeat: bool = False


@dataclass(frozen=True, slots=True)
class WalletItem:
    coupon: Coupon
    template: CouponTemplate
    state: str  # valid, upcoming, used, expired


@dataclass(frozen=True, slots=True)
class Usage:
    """A template's use: codes issued (to wallets, unassigned), uses in force, rolled back."""

    issued: int
    in_wallets: int
    redeemed: int
    rolled_back: int
    recent: list[CouponRedemption] = field(default_factory=list)
    codes: list[Coupon] = field(default_factory=list)


# --- Templates ----------------------------------------------------------------------------------


def terms_of(row: CouponTemplate) -> Terms:
    """A stored template's terms."""
    return Terms(
        kind=Kind(row.kind),
        value=row.value,
        currency=row.currency,
        cap=row.cap,
        min_spend=row.min_spend,
        scope=Scope(tuple(row.categories), tuple(row.skus), tuple(row.partners)),
        total_limit=row.total_limit,
        per_member_limit=row.per_member_limit,
        valid_from=row.valid_from,
        valid_until=row.valid_until,
    )


def _check_spec(spec: TemplateSpec) -> None:
    if spec.kind is Kind.PERCENT and not 1 <= spec.value <= domain.BASIS_POINTS:
        raise ValidationFailed(
            "A percent is in basis points, 1 to 10000 (1500 is 15 %).", field="value"
        )
    if spec.kind is Kind.AMOUNT and spec.cap is not None:
        raise ValidationFailed("Only a percent has a cap.", field="cap")
    if spec.valid_from and spec.valid_until and spec.valid_until <= spec.valid_from:
        raise ValidationFailed("valid.until must be after valid.from.", field="valid.until")
    if domain.normalise(spec.code) != spec.code:
        raise ValidationFailed(
            "A template code is upper-case letters, digits and underscores.", field="code"
        )


def create_template(
    session: Session,
    spec: TemplateSpec,
    currency: str,
    now: datetime,
    *,
    owner_partner_id: int | None = None,
    staff_id: int | None = None,
) -> CouponTemplate:
    """Create a template in the programme's ``currency``; ``duplicate_code`` when its code is
    taken (by a template or a generated code)."""
    _check_spec(spec)
    if repository.coupon_by_code(session, spec.code) is not None:
        raise DuplicateCode(f"The code {spec.code} is already used.", field="code")
    row = repository.insert_template(
        session,
        {
            "code": spec.code,
            "kind": spec.kind,
            "value": spec.value,
            "currency": currency,
            "cap": spec.cap,
            "min_spend": spec.min_spend,
            "categories": list(spec.scope.categories),
            "skus": list(spec.scope.skus),
            "partners": list(spec.scope.partners),
            "total_limit": spec.total_limit,
            "per_member_limit": spec.per_member_limit,
            "valid_from": spec.valid_from,
            "valid_until": spec.valid_until,
            "shared_code": spec.shared_code,
            "names": spec.names,
            "owner_partner_id": owner_partner_id,
            "created_by_staff_id": staff_id,
            "created_at": now,
        },
    )
    if row is None:
        raise DuplicateCode(f"A template with code {spec.code} exists.", field="code")
    return row


def template(session: Session, code: str) -> CouponTemplate:
    """The template of ``code`` (any case), or ``not_found``."""
    found = repository.template_by_code(session, domain.normalise(code))
    if found is None:
        raise NotFound(f"Coupon template {code} does not exist.")
    return found


def templates(session: Session) -> list[CouponTemplate]:
    """Every template, newest first."""
    return repository.templates(session)


def usage(session: Session, row: CouponTemplate) -> Usage:
    """A template's use, with its latest redemptions and codes."""
    issued, in_wallets, _used = repository.code_counts(session, row.id)
    return Usage(
        issued=issued,
        in_wallets=in_wallets,
        redeemed=row.redeemed,
        rolled_back=row.rolled_back,
        recent=repository.redemptions_of(session, row.id),
        codes=repository.codes_of(session, row.id),
    )


# --- Issuance -----------------------------------------------------------------------------------


def _issuable(row: CouponTemplate, now: datetime) -> str | None:
    """Why codes of a template cannot be issued now, or ``None``."""
    if row.shared_code:
        return "shared_code"
    if domain.validity(terms_of(row), now) is Reason.EXPIRED:
        return "expired"
    return None


def _insert(
    session: Session, row: CouponTemplate, rows: list[dict[str, Any]]
) -> list[tuple[int, str, int | None, str | None]]:
    """Insert ``rows`` (codes made here), making new codes for any that collided with an
    existing one; a row whose grant key exists already is left out. Then count them issued
    against the template's total: ``coupons_exhausted`` if that passes it."""
    inserted: list[tuple[int, str, int | None, str | None]] = []
    pending = rows
    while pending:
        done = repository.insert_codes(session, pending)
        inserted += done
        made = {code for _id, code, _member, _key in done}
        missed = [item for item in pending if item["code"] not in made]
        granted = repository.existing_grants(
            session, [item["grant_key"] for item in missed if item["grant_key"]]
        )
        pending = [
            {**item, "code": domain.new_code()}
            for item in missed
            if item["grant_key"] is None or item["grant_key"] not in granted
        ]
    if inserted and not repository.take_issue(session, row.id, len(inserted)):
        left = None if row.total_limit is None else max(0, row.total_limit - row.issued)
        raise CouponsExhausted(
            f"Template {row.code} allows {row.total_limit} uses in all; {left} codes are left "
            "to issue.",
            left=left,
        )
    return inserted


def _issued_events(
    row: CouponTemplate,
    inserted: Sequence[tuple[int, str, int | None, str | None]],
    source: Source,
    issuer: Issuer,
    now: datetime,
) -> list[Event]:
    events = [
        Event(
            type=EventType.COUPON_ISSUED,
            data={
                "coupon_id": coupon_id,
                "template": row.code,
                "member_id": member_id,
                "count": 1,
                "source": source.value,
                "partner_id": issuer.partner_id,
                "issued_at": now.isoformat(),
            },
            occurred_at=now,
            member_id=member_id,
            partner_id=issuer.partner_id,
        )
        for coupon_id, _code, member_id, _key in inserted
        if member_id is not None
    ]
    unassigned = sum(1 for item in inserted if item[2] is None)
    if unassigned:
        events.append(
            Event(
                type=EventType.COUPON_ISSUED,
                data={
                    "coupon_id": None,
                    "template": row.code,
                    "member_id": None,
                    "count": unassigned,
                    "source": source.value,
                    "partner_id": issuer.partner_id,
                    "issued_at": now.isoformat(),
                },
                occurred_at=now,
                partner_id=issuer.partner_id,
            )
        )
    return events


def _code_row(
    row: CouponTemplate,
    member_id: int | None,
    source: Source,
    issuer: Issuer,
    now: datetime,
    grant_key: str | None = None,
) -> dict[str, Any]:
    return {
        "template_id": row.id,
        "code": domain.new_code(),
        "member_id": member_id,
        "status": CouponStatus.ISSUED,
        "source": source,
        "grant_key": grant_key,
        "issued_by_partner_id": issuer.partner_id,
        "issued_by_staff_id": issuer.staff_id,
        "issued_at": now,
        "redeemed_at": None,
    }


def require_members(session: Session, member_ids: Sequence[int]) -> None:
    """Refuse unknown, merged or frozen members among ``member_ids`` (one read)."""
    found = repository.member_statuses(session, member_ids)
    for member_id in member_ids:
        members.check_usable(member_id, found.get(member_id))


def issue(
    session: Session,
    row: CouponTemplate,
    issuer: Issuer,
    now: datetime,
    *,
    member_ids: Sequence[int] = (),
    count: int | None = None,
) -> list[tuple[int, str, int | None]]:
    """Issue codes of a template: one into each member's wallet (``member_ids``, each ``count``
    times when both are given), or ``count`` unassigned codes. Set-based: one insert for all.
    Returns ``(id, code, member_id)`` of each code issued."""
    why = _issuable(row, now)
    if why == "shared_code":
        raise ValidationFailed(
            f"Template {row.code} has a shared code: its code is itself redeemable.",
            field="code",
        )
    if why == "expired":
        raise CouponNotApplicable(f"Template {row.code} has expired.", reason=Reason.EXPIRED.value)
    unique_members = list(dict.fromkeys(member_ids))
    if len(unique_members) != len(member_ids):
        raise ValidationFailed("A member is listed twice.", field="member_ids")
    each = count or 1
    targets: list[int | None] = (
        [member for member in unique_members for _ in range(each)]
        if unique_members
        else [None] * (count or 0)
    )
    if not targets:
        raise ValidationFailed("Name member_ids, or a count of codes to generate.", field="count")
    if len(targets) > MAX_ISSUE:
        raise ValidationFailed(f"At most {MAX_ISSUE} codes per request.", field="count")
    require_members(session, unique_members)
    rows = [_code_row(row, member, Source.OPERATOR, issuer, now) for member in targets]
    inserted = _insert(session, row, rows)
    outbox.emit(session, _issued_events(row, inserted, Source.OPERATOR, issuer, now), now)
    return [(coupon_id, code, member) for coupon_id, code, member, _key in inserted]


def grant(
    session: Session, grants: Sequence[Grant], source: Source, now: datetime
) -> list[Granted]:
    """Issue what rules or allowances give members, each grant once (by its key), set-based per
    template; a grant that cannot be issued is reported, never raised (the event or job that
    asked goes on). Members are assumed active (the caller checked them)."""
    if not grants:
        return []
    grants = [replace(item, template=domain.normalise(item.template)) for item in grants]
    rows_of = repository.templates_by_code(session, sorted({item.template for item in grants}))
    repeated = repository.existing_grants(session, [item.key for item in grants])
    results: dict[str, Granted] = {}
    by_template: dict[str, list[Grant]] = {}
    for item in grants:
        row = rows_of.get(item.template)
        why = "unknown_template" if row is None else _issuable(row, now)
        if why is not None:
            results[item.key] = Granted(item, refused=why)
        elif item.key in repeated:
            results[item.key] = Granted(item, repeat=True)
        elif item.key not in results:
            by_template.setdefault(item.template, []).append(item)
            results[item.key] = Granted(item)
    for code, asked in by_template.items():
        row = rows_of[code]
        rows = [_code_row(row, g.member_id, source, Issuer(), now, g.key) for g in asked]
        try:
            with savepoint(session):
                inserted = _insert(session, row, rows)
        except CouponsExhausted:
            for item in asked:
                results[item.key] = Granted(item, refused="coupons_exhausted")
            continue
        made = {key: (coupon_id, text) for coupon_id, text, _m, key in inserted if key}
        for item in asked:
            if item.key in made:
                results[item.key] = Granted(item, *made[item.key])
            else:  # issued by a concurrent run between the read and the insert
                results[item.key] = Granted(item, repeat=True)
        outbox.emit(session, _issued_events(row, inserted, source, Issuer(), now), now)
    return [results[item.key] for item in grants]


# --- Checkout -----------------------------------------------------------------------------------


def assess(session: Session, ask: Ask, checkout: Checkout, now: datetime) -> Assessment:
    """What ``ask``'s coupon does for its cart at ``checkout`` now; writes nothing. A member
    named must exist (``not_found``) and be usable (``member_frozen``, ``member_merged``)."""
    problem = domain.cart_problem(ask.cart)
    if problem is not None:
        raise ValidationFailed(problem, field="cart.items")
    if ask.member_id is not None:
        members.require_usable(session, ask.member_id)
    code = domain.normalise(ask.code)
    coupon = repository.coupon_by_code(session, code)
    row = (
        repository.template(session, coupon.template_id)
        if coupon is not None
        else repository.template_by_code(session, code)
    )
    if row is None or (coupon is None and not row.shared_code):
        return Assessment(code, None, None, reason=Reason.UNKNOWN_CODE)

    def refused(reason: Reason) -> Assessment:
        return Assessment(code, row, coupon, reason=reason)

    if coupon is not None and coupon.member_id is not None and coupon.member_id != ask.member_id:
        return refused(Reason.NOT_OWNER)
    if coupon is not None and coupon.status is CouponStatus.REDEEMED:
        return refused(Reason.ALREADY_USED)
    terms = terms_of(row)
    quoted = domain.quote(terms, ask.cart, checkout.partner_code, now)
    if isinstance(quoted, Reason):
        return refused(quoted)
    if terms.per_member_limit is not None:
        if ask.member_id is None:
            return refused(Reason.MEMBER_REQUIRED)
        if repository.member_uses(session, row.id, ask.member_id) >= terms.per_member_limit:
            return refused(Reason.LIMIT_REACHED)
    if terms.total_limit is not None and row.redeemed >= terms.total_limit:
        return refused(Reason.LIMIT_REACHED)
    return Assessment(code, row, coupon, quote=quoted)


def _refusal(assessment: Assessment) -> CouponNotApplicable:
    assert assessment.reason is not None
    return CouponNotApplicable(
        domain.REASON_TEXT[assessment.reason], reason=assessment.reason.value
    )


def redeem(session: Session, ask: Ask, checkout: Checkout, now: datetime) -> Redeemed:
    """Use the coupon on the cart once: ``coupon_not_applicable`` (with the ``reason``) when it
    does not apply, including when a concurrent use took the last one."""
    assessment = assess(session, ask, checkout, now)
    if assessment.quote is None:
        raise _refusal(assessment)
    row, coupon = assessment.template, assessment.coupon
    assert row is not None

    def lost(reason: Reason) -> CouponNotApplicable:
        return _refusal(Assessment(assessment.code, row, coupon, reason=reason))

    if not repository.take_use(session, row.id):
        raise lost(Reason.LIMIT_REACHED)
    if row.per_member_limit is not None:
        assert ask.member_id is not None
        if not repository.take_member_use(session, row.id, ask.member_id, row.per_member_limit):
            raise lost(Reason.LIMIT_REACHED)
    if coupon is not None and not repository.use_code(session, coupon.id, now):
        raise lost(Reason.ALREADY_USED)
    quote = assessment.quote
    redemption = repository.insert_redemption(
        session,
        {
            "id": uuid7(),
            "template_id": row.id,
            "coupon_id": coupon.id if coupon else None,
            "code": assessment.code,
            "member_id": ask.member_id,
            "partner_id": checkout.partner_id,
            "status": RedemptionStatus.REDEEMED,
            "cart_amount": ask.cart.amount,
            "eligible": quote.eligible,
            "discount": quote.discount,
            "currency": quote.currency,
            "cart": {
                "amount": ask.cart.amount,
                "items": [
                    {"sku": line.sku, "category": line.category, "amount": line.amount}
                    for line in ask.cart.lines
                ],
            },
            "redeemed_at": now,
            "rolled_back_at": None,
        },
    )
    outbox.emit(session, [_redemption_event(EventType.COUPON_REDEEMED, redemption, row, now)], now)
    return Redeemed(redemption, quote)


def _redemption_event(
    kind: EventType, redemption: CouponRedemption, row: CouponTemplate, now: datetime
) -> Event:
    return Event(
        type=kind,
        data={
            "redemption_id": str(redemption.id),
            "template": row.code,
            "coupon_id": redemption.coupon_id,
            "member_id": redemption.member_id,
            "discount": redemption.discount,
            "currency": redemption.currency,
            "partner_id": redemption.partner_id,
            "at": now.isoformat(),
        },
        occurred_at=now,
        member_id=redemption.member_id,
        partner_id=redemption.partner_id,
    )


def redemption(session: Session, redemption_id: str) -> CouponRedemption:
    """Redemption ``redemption_id``, or ``not_found``."""
    try:
        parsed = uuid.UUID(redemption_id)
    except ValueError:
        parsed = None
    found = repository.redemption(session, parsed) if parsed is not None else None
    if found is None:
        raise NotFound(f"Redemption {redemption_id} does not exist.")
    return found


def template_of(session: Session, found: CouponRedemption) -> CouponTemplate:
    """The template a redemption used."""
    row = repository.template(session, found.template_id)
    assert row is not None  # a foreign key
    return row


def roll_back(session: Session, found: CouponRedemption, now: datetime) -> CouponRedemption:
    """Give a redemption's use back (a refunded purchase): the code is usable again and the
    template's and member's counts drop by one. Repeat-safe: a second rollback changes
    nothing."""
    if repository.roll_back(session, found.id, now):
        row = repository.template(session, found.template_id)
        assert row is not None
        repository.give_use_back(session, row.id)
        if row.per_member_limit is not None and found.member_id is not None:
            repository.give_member_use_back(session, row.id, found.member_id)
        if found.coupon_id is not None:
            repository.give_code_back(session, found.coupon_id)
        done = repository.redemption(session, found.id)
        assert done is not None
        outbox.emit(session, [_redemption_event(EventType.COUPON_ROLLED_BACK, done, row, now)], now)
        return done
    again = repository.redemption(session, found.id)
    assert again is not None
    return again


# --- The mall's order flow ----------------------------------------------------------------------


def apply_to_order(
    session: Session,
    ask: Ask,
    checkout: Checkout,
    now: datetime,
    *,
    commit_use: bool,
) -> Redeemed | Assessment:
    """For the mall's order flow, inside the caller's transaction: quote the coupon on the
    order's cart (``commit_use`` False: an :class:`Assessment`, nothing written), or use it
    (``commit_use`` True: a :class:`Redeemed`, or ``coupon_not_applicable`` raised so that the
    caller's transaction rolls back). Roll the use back with :func:`roll_back` when the order is
    refunded. ``checkout`` is the operator's mall channel."""
    if commit_use:
        return redeem(session, ask, checkout, now)
    return assess(session, ask, checkout, now)


# --- Wallet -------------------------------------------------------------------------------------


def wallet(
    session: Session, member_id: int, now: datetime, *, accepted_by: str | None = None
) -> list[WalletItem]:
    """A member's codes, each valid, upcoming, used or expired at ``now`` (only those
    partner ``accepted_by`` accepts, when given)."""
    if repository.member_statuses(session, [member_id]).get(member_id) is None:
        raise NotFound(f"Member {member_id} does not exist.")
    items = []
    for coupon, row in repository.wallet(session, member_id):
        terms = terms_of(row)
        if accepted_by is not None and not terms.scope.accepted_by(accepted_by):
            continue
        items.append(WalletItem(coupon, row, domain.wallet_state(coupon.status, terms, now)))
    return items


def issued_grants(session: Session, keys: Sequence[str]) -> set[str]:
    """Which grant keys were issued already."""
    return repository.existing_grants(session, keys)


def active_member_ids(session: Session, after: int, limit: int) -> list[int]:
    """Active members above ``after`` (for the monthly allowance job)."""
    return repository.active_members(session, after, limit)
