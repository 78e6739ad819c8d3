"""Tally's error hierarchy: each error has a stable ``code`` and an HTTP status."""

from __future__ import annotations

from typing import Any, ClassVar


class TallyError(Exception):
    """Base of expected, business-level errors (rendered as RFC 9457 problem+json)."""

    code: ClassVar[str] = "error"
    status: ClassVar[int] = 400
    title: ClassVar[str] = "Request refused"
    #: The refusal says "try again": it answers the moment, not the request (a concurrent
    #: change, a limit that lifts), so a retry of the same request may succeed. Such a refusal
    #: is never stored as an Idempotency-Key's answer, and its problem document says
    #: ``"retryable": true``.
    retryable: ClassVar[bool] = False

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


def problem_body(error: TallyError) -> dict[str, Any]:
    """The RFC 9457 problem document of a Tally error: what the API answers and what an
    Idempotency-Key stores for a refusal."""
    body: dict[str, Any] = {
        "type": f"https://tally.dev/problems/{error.code}",
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
        "code": error.code,
    }
    if error.retryable:  # a refusal for now: the same request, retried, may succeed
        body["retryable"] = True
    body.update({key: value for key, value in error.extra.items() if key not in body})
    return body


class ValidationFailed(TallyError):
    code = "validation_error"
    status = 422
    title = "The request is not valid"


class UnknownReferralCode(ValidationFailed):
    """A referral code no member has (counted against the partner that named it)."""


class NotFound(TallyError):
    code = "not_found"
    status = 404
    title = "Not found"


class InsufficientPoints(TallyError):
    code = "insufficient_points"
    status = 409
    title = "Not enough points"


class HoldNotActive(TallyError):
    code = "hold_not_active"
    status = 409
    title = "The hold is not active"


class IdempotencyConflict(TallyError):
    code = "idempotency_conflict"
    status = 409
    title = "Idempotency key reused with a different request"


class IdempotencyKeyRequired(TallyError):
    code = "idempotency_key_required"
    status = 400
    title = "An Idempotency-Key header is required"


class MemberFrozen(TallyError):
    code = "member_frozen"
    status = 409
    title = "The member is frozen"


class ReferralRefused(TallyError):
    code = "referral_refused"
    status = 409
    title = "The referral is refused"


class MemberMerged(TallyError):
    code = "member_merged"
    status = 409
    title = "The member was merged into another"


class DuplicateReference(TallyError):
    code = "duplicate_reference"
    status = 409
    title = "This reference was already used"


class AlreadyReversed(TallyError):
    code = "already_reversed"
    status = 409
    title = "The transaction was already reversed"


class NotReversible(TallyError):
    code = "not_reversible"
    status = 409
    title = "The transaction cannot be reversed"


class IdentityConflict(TallyError):
    code = "identity_conflict"
    status = 409
    title = "The identity belongs to another member"


class Conflict(TallyError):
    code = "conflict"
    status = 409
    title = "The request conflicts with the current state"


class ConcurrentChange(Conflict):
    """A concurrent request changed the same data (or held it past the lock timeout, or the
    database could not serialise the two): nothing was written, and the same request, retried,
    may well succeed. Same code as any conflict; retryable."""

    retryable = True


class PointsChanged(InsufficientPoints):
    """The points a write planned to take changed under it: a retry sees the new balance."""

    retryable = True


class Unauthorized(TallyError):
    code = "unauthorized"
    status = 401
    title = "Authentication required"


class Forbidden(TallyError):
    code = "forbidden"
    status = 403
    title = "Not allowed"


class UnknownNamespace(TallyError):
    code = "unknown_namespace"
    status = 422
    title = "The identity namespace is not declared in the programme"


# Paid memberships.
class PaymentMismatch(TallyError):
    code = "payment_mismatch"
    status = 422
    title = "The payment does not match the price"


class NotEligible(TallyError):
    code = "not_eligible"
    status = 403
    title = "The member is not eligible for this plan"


class MembershipNotActive(TallyError):
    code = "membership_not_active"
    status = 409
    title = "The membership is not active"


class RefundExceedsPayment(TallyError):
    code = "refund_exceeds_payment"
    status = 422
    title = "The refund exceeds what is left of the payment"


# Growth value and tiers.
class InsufficientGrowth(TallyError):
    code = "insufficient_growth"
    status = 409
    title = "Not enough growth value"


# Family accounts.
class FamilyLimitExceeded(TallyError):
    code = "family_limit_exceeded"
    status = 422
    title = "The spend is above the member's remaining monthly family limit"


class FamilyFull(TallyError):
    code = "family_full"
    status = 409
    title = "The family has no room for another member"


class AlreadyInFamily(TallyError):
    code = "already_in_family"
    status = 409
    title = "The member is already in a family"


class InvitationNotPending(TallyError):
    code = "invitation_not_pending"
    status = 409
    title = "There is no pending invitation"


class FamilyDissolved(TallyError):
    code = "family_dissolved"
    status = 409
    title = "The family was dissolved"


# Operator guardrails. An impossible amount is refused by the partner API too (so it is in
# ALL_ERRORS); deciding on requests is the console's alone.
class AdjustmentTooLarge(TallyError):
    code = "adjustment_too_large"
    status = 422
    title = "The adjustment is larger than any adjustment may be"


class OwnRequest(TallyError):
    code = "own_request"
    status = 403
    title = "Staff cannot decide on their own request"


class NotAnApprover(TallyError):
    code = "not_an_approver"
    status = 403
    title = "The role does not approve adjustment requests"


class RequestNotPending(TallyError):
    code = "request_not_pending"
    status = 409
    title = "The request was already decided"


class RequestExpired(TallyError):
    code = "request_expired"
    status = 409
    title = "The request expired before anyone decided on it"


class WouldLockOut(TallyError):
    code = "would_lock_out"
    status = 409
    title = "The change would lock the operator out of the console"


class UnknownPartner(TallyError):
    code = "unknown_partner"
    status = 422
    title = "No such partner"


class UnknownPurpose(TallyError):
    code = "unknown_purpose"
    status = 422
    title = "No such consent purpose"


# Request hygiene.
class PayloadTooLarge(TallyError):
    code = "payload_too_large"
    status = 413
    title = "The request body is too large"


# Family roles.
class NotFamilyOwner(TallyError):
    code = "not_family_owner"
    status = 403
    title = "Only the family's owner may do this"


class NotInvitee(TallyError):
    code = "not_invitee"
    status = 403
    title = "Only the invited member may answer the invitation"


class NotFamilyMember(TallyError):
    code = "not_family_member"
    status = 403
    title = "The member is not in this family"


class NotMemberItself(TallyError):
    code = "not_member_itself"
    status = 403
    title = "Only the member itself may do this"


class RateLimited(TallyError):
    code = "rate_limited"
    status = 429
    title = "Too many requests; retry later"
    retryable = True


# Webhooks.
class WebhookTargetRefused(TallyError):
    code = "webhook_target_refused"
    status = 422
    title = "Tally will not call this webhook URL"


class UnknownEventType(TallyError):
    code = "unknown_event_type"
    status = 422
    title = "No such webhook event type"


# The rewards mall.
class SoldOut(TallyError):
    code = "sold_out"
    status = 409
    title = "The item is sold out"


class LimitReached(TallyError):
    code = "limit_reached"
    status = 409
    title = "The member has reached the item's limit"


class SaleNotOpen(TallyError):
    code = "sale_not_open"
    status = 409
    title = "The item is not on sale now"


class OrderRefunded(TallyError):
    code = "order_refunded"
    status = 409
    title = "The order was refunded"


class InvalidTransition(TallyError):
    code = "invalid_transition"
    status = 409
    title = "The order cannot do that in its state"


class NotAvailable(TallyError):
    code = "not_available"
    status = 409
    title = "This part of the mall is not available yet"


# Sessions and sign-in (pages only: not part of the API's contract, so not in ALL_ERRORS).
class SignInThrottled(TallyError):
    code = "sign_in_throttled"
    status = 429
    title = "Too many failed sign-ins; retry later"
    retryable = True


class LinkAlreadyUsed(TallyError):
    code = "link_already_used"
    status = 409
    title = "This sign-in link was already used"


# Coupons (the rewards mall).
class CouponNotApplicable(TallyError):
    """A coupon refused at a checkout; ``reason`` is one of ``tally.coupons.domain.Reason``."""

    code = "coupon_not_applicable"
    status = 409
    title = "The coupon does not apply"


class CouponsExhausted(TallyError):
    code = "coupons_exhausted"
    status = 409
    title = "The template's total limit leaves no room for these codes"


class DuplicateCode(TallyError):
    code = "duplicate_code"
    status = 409
    title = "This code is already used"


# Auctions (issue 12).
class BidTooLow(TallyError):
    """A bid below the current price plus one increment (the start, for the first bid), or
    the leader bidding no more than its own maximum; ``minimum`` is the least that would do."""

    code = "bid_too_low"
    status = 409
    title = "The bid is too low"


class AuctionNotOpen(TallyError):
    code = "auction_not_open"
    status = 409
    title = "The auction has not started"


class AuctionClosed(TallyError):
    code = "auction_closed"
    status = 409
    title = "The auction has ended"


ALL_ERRORS: tuple[type[TallyError], ...] = (
    ValidationFailed,
    NotFound,
    InsufficientPoints,
    HoldNotActive,
    IdempotencyConflict,
    IdempotencyKeyRequired,
    MemberFrozen,
    MemberMerged,
    ReferralRefused,
    DuplicateReference,
    AlreadyReversed,
    NotReversible,
    IdentityConflict,
    Conflict,
    Unauthorized,
    Forbidden,
    UnknownNamespace,
    PaymentMismatch,
    NotEligible,
    MembershipNotActive,
    RefundExceedsPayment,
    InsufficientGrowth,
    FamilyLimitExceeded,
    FamilyFull,
    AlreadyInFamily,
    InvitationNotPending,
    FamilyDissolved,
    PayloadTooLarge,
    NotFamilyOwner,
    NotInvitee,
    NotFamilyMember,
    NotMemberItself,
    RateLimited,
    UnknownPartner,
    UnknownPurpose,
    WebhookTargetRefused,
    UnknownEventType,
    AdjustmentTooLarge,
    SoldOut,
    LimitReached,
    SaleNotOpen,
    OrderRefunded,
    InvalidTransition,
    NotAvailable,
    CouponNotApplicable,
    CouponsExhausted,
    DuplicateCode,
    BidTooLow,
    AuctionNotOpen,
    AuctionClosed,
)
