"""Request and response models of the events API (``POST /v1/events``, its batch, its reads)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, Field, StrictInt, StringConstraints

from tally.api.schemas import ExternalId, MemberRef, Namespace, Strict

# Money in an event: an exact decimal string; a JSON number is refused (a float drifts).
AmountText = Annotated[
    str,
    StringConstraints(pattern=r"^(0|[1-9][0-9]{0,14})(\.[0-9]{1,4})?$"),
    Field(description='An exact decimal string, e.g. "152.00"; never a JSON number.'),
]
EventType = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$"),
    Field(description="`purchase`, `bill_paid`, `refund`, … or a type the programme declares."),
]
EventId = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=128),
    Field(description="The partner's own id for the event; unique per partner."),
]
Label = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class EventMember(Strict):
    namespace: Namespace
    id: ExternalId


class EventAmount(Strict):
    value: AmountText
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = Field(
        description="ISO 4217; the programme's currency."
    )


class EventItem(Strict):
    sku: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    name: Annotated[str, StringConstraints(max_length=200)] | None = None
    quantity: Annotated[StrictInt, Field(gt=0, le=1_000_000)] = 1
    amount: AmountText
    category: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    labels: list[Label] = Field(default_factory=list, max_length=32)


class EventRequest(Strict):
    type: EventType
    event_id: EventId
    member_id: MemberRef | None = None
    member: EventMember | None = Field(
        default=None, description="The member by one of its identities, instead of `member_id`."
    )
    occurred_at: AwareDatetime
    amount: EventAmount | None = None
    items: list[EventItem] = Field(default_factory=list, max_length=200)
    channel: Annotated[str, StringConstraints(min_length=1, max_length=40)] | None = None
    attributes: dict[str, Any] = Field(
        default_factory=dict, description="Typed as the programme declares the event type."
    )
    refers_to: EventId | None = Field(
        default=None, description="A refund: the `event_id` of the purchase it refunds."
    )


class EventBatchRequest(Strict):
    events: list[EventRequest] = Field(min_length=1, max_length=1000)


class AppliedRule(BaseModel):
    campaign: str
    rule: str
    points: int
    growth: int
    variant: str | None = None


class SkippedRule(BaseModel):
    campaign: str
    rule: str
    reason: str
    detail: str | None = None


class EventOutcome(BaseModel):
    id: str | None = Field(description="Tally's id of the stored event; none on a dry run.")
    event_id: str
    type: str
    member_id: int
    occurred_at: datetime
    status: str = Field(description="`processed`, `duplicate` (a repeat) or `dry_run`.")
    points: int
    growth: int
    transaction_id: str | None
    programme_version: int
    rules: list[AppliedRule]
    skipped: list[SkippedRule]
    refund_of: str | None = Field(
        default=None,
        description="For a refund: the event it took back from (its points and growth are "
        "negative, a line per rule of that event).",
    )


class EventFailure(BaseModel):
    """One event of a batch that was refused (it wrote nothing)."""

    event_id: str | None
    status: int
    code: str
    detail: str


class EventBatchOutcome(BaseModel):
    results: list[EventOutcome | EventFailure]
