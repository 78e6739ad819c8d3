"""Request and response models of the partner API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    WithJsonSchema,
    field_validator,
)

from tally.kit import text

MAX_POINTS = 1_000_000_000
MAX_ID = 2**62

Points = Annotated[StrictInt, Field(gt=0, le=MAX_POINTS, description="Whole points, 1 to 10⁹.")]
Reference = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=191),
    Field(
        description="The partner's own id for this operation (order number…); unique per partner."
    ),
]
# What a namespace may be sent as: its code in any case, surrounded by spaces or not.
_SPACES = "[ \u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]*"
Namespace = Annotated[
    str,
    BeforeValidator(lambda value: value.strip().lower() if isinstance(value, str) else value),
    StringConstraints(pattern=r"^[a-z][a-z0-9_.-]{0,63}$"),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": f"^{_SPACES}[A-Za-z][A-Za-z0-9_.-]{{0,63}}{_SPACES}$",
            "description": "A namespace of the programme (`phone`, `email`, a partner's own); "
            "read in lower case, without surrounding spaces.",
        }
    ),
]
MemberRef = Annotated[StrictInt, Field(gt=0, le=MAX_ID)]
# The text rule of :mod:`tally.kit.text`, for a query parameter or a field of a non-Strict model.
CleanText = AfterValidator(text.check)
TEXT_PATTERN = text.PATTERN
ExternalId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=191)]


def strict_examples(*examples: dict[str, Any]) -> ConfigDict:
    """The configuration of a :class:`Strict` body with its own OpenAPI ``examples``."""

    def extra(schema: dict[str, Any]) -> None:
        text.state_the_text_rule(schema)
        schema["examples"] = list(examples)

    return ConfigDict(extra="forbid", json_schema_extra=extra)


class Strict(BaseModel):
    """A request body: unknown fields are refused, and no text may carry control, format or
    bidirectional characters (:mod:`tally.kit.text`)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=text.state_the_text_rule)

    @field_validator("*", mode="before")
    @classmethod
    def _no_unsafe_characters(cls, value: Any) -> Any:
        if isinstance(value, str):
            text.check(value)
        return value


class ExternalIdentity(Strict):
    namespace: Namespace
    id: ExternalId


class Profile(Strict):
    name: Annotated[str, StringConstraints(max_length=200)] | None = None
    phone: Annotated[str, StringConstraints(pattern=r"^\+?[0-9 -]{5,20}$")] | None = None
    birthday: date | None = None
    city: Annotated[str, StringConstraints(max_length=100)] | None = None


class MemberCreate(Strict):
    external_id: ExternalIdentity
    profile: Profile = Field(default_factory=Profile)
    referral_code: Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z -]{1,20}$")] | None = (
        Field(
            default=None,
            description="The referral code of the member who referred this new member "
            "(`ABCDE-FGHJK`; any case, hyphens and spaces ignored).",
        )
    )


class MemberProfile(BaseModel):
    """A member's personal data (kept apart from the ledger)."""

    name: str | None
    phone: str | None
    birthday: date | None
    city: str | None


class MemberBalance(BaseModel):
    available: int = Field(description="Points the member can spend now.")


class Member(BaseModel):
    id: int
    status: str
    merged_into_id: int | None
    created_at: datetime
    tier: str = Field(description="The code of the member's tier.")
    balance: MemberBalance
    identities: list[ExternalIdentity] = Field(
        description="The identities the caller may see: those in its own namespaces and in "
        "the namespaces it collected in; in shared ones (phone, email) only with the profile."
    )
    profile: MemberProfile | None = Field(
        description="Personal data; null unless the caller enrolled the member or the member "
        "consented to share its profile with the caller (the operator's channels see it)."
    )


class Expiring(BaseModel):
    date: date
    points: int


class Balance(BaseModel):
    available: int
    held: int
    expiring: list[Expiring]


class EarnLine(Strict):
    points: Points
    expires_at: AwareDatetime | None = Field(
        default=None,
        description="When this line's points expire; the earn's `expires_at` when absent.",
    )
    reason: ExternalId | None = Field(
        default=None, description="Why these points were given (a promotion, a bonus…)."
    )


class EarnRequest(Strict):
    points: Annotated[
        StrictInt,
        Field(gt=0, le=MAX_POINTS, description="Whole points, 1 to 10⁹: with `lines`, their sum."),
    ]
    reference: Reference
    expires_at: AwareDatetime | None = Field(
        default=None, description="When these points expire; the programme default when absent."
    )
    lines: list[EarnLine] | None = Field(
        default=None,
        min_length=1,
        max_length=20,
        description="Several lines in one transaction, each a lot of its own with its own "
        "expiry and reason; their points must sum to `points`.",
    )
    growth: Annotated[StrictInt, Field(ge=0, le=MAX_POINTS)] | None = Field(
        default=None,
        description="Growth value these points carry towards tiers; default: `points` (before "
        "any multiplier); 0 for points that do not qualify.",
    )
    apply_tier_multiplier: StrictBool = Field(
        default=False,
        description="Credit floor(points × the member's tier earn multiplier); the answer's "
        "details name the multiplier (basis points).",
    )


class RedeemRequest(Strict):
    points: Points
    reference: Reference


class HoldRequest(Strict):
    points: Points
    expires_in_seconds: Annotated[StrictInt, Field(gt=0, le=30 * 24 * 3600)]
    reference: Reference


class CaptureRequest(Strict):
    points: Points | None = None


class TransferRequest(Strict):
    from_member_id: MemberRef
    to_member_id: MemberRef
    points: Points
    reference: Reference


class FamilySpend(BaseModel):
    """A spend of a family's points, as it reads in the history of each member it drew on."""

    family_id: int
    mode: str = Field(description="`pool` (the members' points) or `share` (the owner's).")
    owner_id: int = Field(description="The family's owner, who holds the pool.")
    spent_by: int = Field(description="The member who spent (the owner, in pool mode).")
    partner_id: int | None = Field(description="The partner it was spent with.")
    points: int = Field(description="The whole spend; this member's part is `points` above.")


class Transaction(BaseModel):
    id: str
    kind: str
    points: int = Field(description="Net change to the member's available points.")
    held: int = Field(description="Net change to the member's held points.")
    reference: str | None
    partner_id: int | None
    staff_id: int | None
    memo: str | None
    reverses_id: str | None
    details: dict[str, Any] | None
    programme_version: int | None = Field(
        description="The programme version in force that priced this transaction (its "
        "validity, tier multipliers, point value); null under the built-in default programme, "
        "before any programme file took effect."
    )
    family_spend: FamilySpend | None = Field(
        default=None,
        description="Set when this is a family spend (a `redeem` drawn on the family's points), "
        "or its reversal: who spent, the family and its owner, not the member's own purchase.",
    )
    created_at: datetime


class Posted(BaseModel):
    """Every mutating ledger call answers with the transaction and the member's new balance."""

    id: str | None = Field(description="The transaction's id (none when nothing moved).")
    transaction_id: str | None
    member_id: int
    balance: Balance
    details: dict[str, Any] = Field(default_factory=dict)
    programme_version: int | None = Field(
        description="The programme version in force that priced this transaction (its "
        "validity, tier multipliers, point value); null under the built-in default programme, "
        "before any programme file took effect."
    )


class Hold(BaseModel):
    id: str
    member_id: int
    points: int
    captured_points: int
    status: str
    reference: str
    expires_at: datetime
    created_at: datetime


class HoldPosted(Posted):
    hold: Hold


class TransferPosted(Posted):
    to_balance: Balance


class TransactionPage(BaseModel):
    items: list[Transaction]
    next_cursor: str | None


class IdentityLink(Strict):
    namespace: Namespace
    id: ExternalId


class FreezeRequest(Strict):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class AdjustRequest(Strict):
    points: Annotated[StrictInt, Field(ge=-MAX_POINTS, le=MAX_POINTS)]
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
    expires_at: AwareDatetime | None = None


class AdjustmentRequester(BaseModel):
    """Who asked for an adjustment request through the API."""

    partner: str = Field(description="The code of the partner whose API key asked.")
    key: str = Field(description="The prefix of the API key that asked (never the key).")


class AdjustmentRequest(BaseModel):
    """An adjustment above the API's limit (`staff.api_adjustment_limit`), awaiting a staff
    approver's decision until `expires_at`; nothing is posted unless it is approved."""

    id: int = Field(description="The request's id: poll `GET /v1/adjustment-requests/{id}`.")
    member_id: int
    points: int = Field(description="The adjustment asked for (either sign).")
    reason: str
    points_expire_at: datetime | None = Field(
        description="The last moment credited points stay valid (`expires_at` of the request "
        "body); `null`: the programme's validity."
    )
    status: Literal["pending", "approved", "rejected", "withdrawn", "expired"] = Field(
        description="`pending` until a staff approver decides; `approved` (posted: "
        "`transaction_id`), `rejected` (`note` says why) or `expired` (nobody decided by "
        "`expires_at`)."
    )
    requested_by: AdjustmentRequester
    requested_at: datetime
    expires_at: datetime = Field(
        description="When the request expires unless decided (`staff.request_ttl_hours` after "
        "it was filed)."
    )
    limit: int = Field(description="The points the API may adjust alone, which this exceeds.")
    decided_at: datetime | None = Field(
        description="When it was approved or rejected, or when it expired."
    )
    transaction_id: str | None = Field(description="The adjustment posted on approval.")
    note: str | None = Field(description="The approver's note on a rejection.")
