"""Webhook subscriptions: a partner names a URL and the events it wants; Tally signs and sends
them (Standard Webhooks). See docs/webhooks.md."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field, StringConstraints
from sqlalchemy.orm import Session
from starlette.responses import Response

from tally.access.domain import Caller
from tally.api.deps import Mutation, Reader, mutation, reader, settings
from tally.api.paths import MAX_ID, StrictDigits
from tally.api.schemas import Strict
from tally.kit.clock import utcnow
from tally.outbox.domain import SUBSCRIBABLE
from tally.partners.domain import Scope
from tally.webhooks import repository
from tally.webhooks import service as webhooks
from tally.webhooks.domain import MAX_URL_LENGTH
from tally.webhooks.models import WebhookSubscription

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

WebhookId = Annotated[
    int, Path(gt=0, le=MAX_ID, description="The webhook subscription's id."), StrictDigits
]
EventTypeName = Annotated[str, StringConstraints(min_length=1, max_length=40)]
_TYPES = ", ".join(f"`{kind.value}`" for kind in SUBSCRIBABLE)


class WebhookCreate(Strict):
    """Where to send events, and which."""

    url: Annotated[str, StringConstraints(min_length=1, max_length=MAX_URL_LENGTH)] = Field(
        description="An https:// URL (plain http only to 127.0.0.1, localhost or [::1]); "
        "private-network addresses are refused unless the server allows them.",
        examples=["https://partner.example.com/tally/webhooks"],
    )
    event_types: list[EventTypeName] = Field(
        min_length=1,
        max_length=len(SUBSCRIBABLE),
        description=f"The events to receive: {_TYPES}. `webhook.ping` and `webhook.disabled` "
        "come unasked.",
        examples=[["entry.posted", "hold.lapsed"]],
    )


class Webhook(BaseModel):
    """A webhook subscription."""

    id: int
    url: str = Field(examples=["https://partner.example.com/tally/webhooks"])
    event_types: list[str] = Field(examples=[["entry.posted", "hold.lapsed"]])
    status: str = Field(
        description="`active`, or `disabled` after failing for too long (the operator "
        "re-enables it).",
        examples=["active"],
    )
    consecutive_failures: int = Field(ge=0)
    disabled_reason: str | None = None
    created_at: datetime
    secret: str | None = Field(
        default=None,
        description="The signing secret (`whsec_…`): only in the answer that created the "
        "subscription (and its replays with the same Idempotency-Key).",
        examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    )


class WebhookList(BaseModel):
    webhooks: list[Webhook]


class Ping(BaseModel):
    """A ``webhook.ping`` queued for this subscription only."""

    event_id: str = Field(description="Its `webhook-id`.")


class Delivery(BaseModel):
    """One event sent (or being sent) to the subscription."""

    id: int
    event_id: str = Field(description="The `webhook-id` of every attempt.")
    event_type: str = Field(examples=["entry.posted"])
    status: str = Field(description="`pending`, `delivered` or `failed` (given up).")
    attempts: int = Field(ge=0)
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    response_ms: int | None
    delivered_at: datetime | None
    created_at: datetime


class DeliveryList(BaseModel):
    deliveries: list[Delivery]


def clock_now(request: Request) -> datetime:
    """The current time: ``app.state.clock`` when a test injected one."""
    clock = getattr(request.app.state, "clock", None)
    return clock() if clock is not None else utcnow()


def webhook_model(found: WebhookSubscription, secret: str | None = None) -> Webhook:
    return Webhook(
        id=found.id,
        url=found.url,
        event_types=list(found.event_types),
        status=found.status.value,
        consecutive_failures=found.consecutive_failures,
        disabled_reason=found.disabled_reason,
        created_at=found.created_at,
        secret=secret,
    )


_PROBLEMS: dict[int | str, dict[str, Any]] = {
    422: {
        "description": "webhook_target_refused: the URL is not https, or resolves to a private "
        "address; unknown_event_type: no such event type; validation_error: a malformed body"
    }
}


@router.post(
    "",
    response_model=Webhook,
    status_code=201,
    response_description="The subscription, with its secret (shown here only).",
    responses=_PROBLEMS,
)
async def create_webhook(
    payload: WebhookCreate, write: Annotated[Mutation, Depends(mutation(Scope.WEBHOOKS))]
) -> Response:
    """Subscribe a URL to events. The answer carries the signing secret; it is kept only
    encrypted and never shown again, except to a retry with the same Idempotency-Key."""
    config = settings(write.request)
    secret_key: str = write.request.app.state.secret
    fresh: dict[int, str] = {}

    def work(session: Session) -> tuple[int, BaseModel]:
        created = webhooks.subscribe(
            session,
            write.holder.partner_id,
            payload.url,
            payload.event_types,
            clock_now(write.request),
            app_secret=secret_key,
            allow_private=config.webhook_allow_private_targets,
            resolver=write.request.app.state.webhook_resolver,
        )
        fresh[created.subscription.id] = created.secret
        # The stored answer (replayed to a retry) holds no secret: see below.
        return 201, webhook_model(created.subscription)

    response = await write.run(work)
    if response.status_code != 201:
        return response
    body = orjson.loads(bytes(response.body))
    secret = fresh.get(body["id"])
    if secret is None:  # a replay: the secret comes from the sealed copy, for this partner only
        secret = _unsealed(write, body["id"])
    body["secret"] = secret
    return Response(orjson.dumps(body), status_code=201, media_type="application/json")


def _unsealed(write: Mutation, subscription_id: int) -> str | None:
    with write.request.app.state.db.read() as session:
        found = repository.subscription(session, subscription_id)
        if found is None or found.partner_id != write.holder.partner_id:
            return None  # deleted since
        return webhooks.secret_of(found, write.request.app.state.secret)


@router.get("", response_model=WebhookList)
async def list_webhooks(read: Annotated[Reader, Depends(reader(Scope.WEBHOOKS))]) -> WebhookList:
    """The calling partner's subscriptions (never their secrets)."""

    def work(session: Session, caller: Caller) -> WebhookList:
        return WebhookList(
            webhooks=[
                webhook_model(found)
                for found in repository.subscriptions(session, caller.partner_id)
            ]
        )

    return await read.run(work)


@router.get("/{webhook_id}", response_model=Webhook)
async def get_webhook(
    webhook_id: WebhookId, read: Annotated[Reader, Depends(reader(Scope.WEBHOOKS))]
) -> Webhook:
    """One of the calling partner's subscriptions (another partner's: 404)."""

    def work(session: Session, caller: Caller) -> Webhook:
        return webhook_model(webhooks.owned(session, caller.partner_id, webhook_id))

    return await read.run(work)


class Deleted(BaseModel):
    id: int
    status: str = Field(examples=["deleted"])


@router.delete("/{webhook_id}", response_model=Deleted)
async def delete_webhook(
    webhook_id: WebhookId, write: Annotated[Mutation, Depends(mutation(Scope.WEBHOOKS))]
) -> Response:
    """Stop sending to this subscription (deliveries under way are not sent again)."""
    return await _delete(webhook_id, write)


async def _delete(webhook_id: int, write: Mutation) -> Response:
    def work(session: Session) -> tuple[int, BaseModel]:
        webhooks.delete(session, write.holder.partner_id, webhook_id, clock_now(write.request))
        return 200, Deleted(id=webhook_id, status="deleted")

    return await write.run(work)


@router.post("/{webhook_id}/ping", response_model=Ping, status_code=202)
async def ping_webhook(
    webhook_id: WebhookId, write: Annotated[Mutation, Depends(mutation(Scope.WEBHOOKS))]
) -> Response:
    """Queue a `webhook.ping` to this subscription only (sent within seconds)."""

    def work(session: Session) -> tuple[int, BaseModel]:
        event = webhooks.ping(
            session, write.holder.partner_id, webhook_id, clock_now(write.request)
        )
        return 202, Ping(event_id=str(event.event_id))

    return await write.run(work)


@router.get("/{webhook_id}/deliveries", response_model=DeliveryList)
async def list_deliveries(
    webhook_id: WebhookId,
    read: Annotated[Reader, Depends(reader(Scope.WEBHOOKS))],
    limit: Annotated[int, Query(ge=1, le=200, description="How many, newest first.")] = 50,
) -> DeliveryList:
    """The subscription's latest deliveries with their last attempt: status code, error,
    response time."""

    def work(session: Session, caller: Caller) -> DeliveryList:
        webhooks.owned(session, caller.partner_id, webhook_id)
        return DeliveryList(
            deliveries=[
                Delivery(
                    id=row.id,
                    event_id=str(event_id),
                    event_type=event_type,
                    status=row.status.value,
                    attempts=row.attempts,
                    next_attempt_at=row.next_attempt_at if row.status.value == "pending" else None,
                    last_attempt_at=row.last_attempt_at,
                    last_status_code=row.last_status_code,
                    last_error=row.last_error,
                    response_ms=row.response_ms,
                    delivered_at=row.delivered_at,
                    created_at=row.created_at,
                )
                for row, event_id, event_type in repository.deliveries(session, webhook_id, limit)
            ]
        )

    return await read.run(work)
