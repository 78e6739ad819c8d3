"""Webhook subscriptions: subscribe, list, read, delete, ping, re-enable, replay. Never commits."""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from tally.errors import NotFound, UnknownEventType, WebhookTargetRefused
from tally.kit.sealing import seal, unseal
from tally.outbox import repository as outbox
from tally.outbox.domain import SUBSCRIBABLE, Event, EventType
from tally.webhooks import repository
from tally.webhooks.domain import (
    SubscriptionStatus,
    Target,
    TargetRefused,
    check_addresses,
    check_event_types,
    is_ip_literal,
    new_secret,
    parse_target,
)
from tally.webhooks.models import WebhookSubscription

#: What the sealed secrets are sealed for (the key derivation's purpose).
SEAL_PURPOSE = "webhook-secret"
MAX_SUBSCRIPTIONS = 20

#: Resolves a host and port to IP addresses (``socket.getaddrinfo``; tests pass their own).
Resolver = Callable[[str, int], Sequence[str]]


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses the system resolver gives ``host``."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return []
    return [str(info[4][0]) for info in infos]


def checked_target(url: str, *, allow_private: bool, resolver: Resolver) -> tuple[Target, str]:
    """``url`` parsed and resolved, with the address to connect to; refused
    ``webhook_target_refused`` when its form or any address it resolves to is not allowed."""
    try:
        target = parse_target(url)
        addresses = (
            [target.host] if is_ip_literal(target.host) else resolver(target.host, target.port)
        )
        address = check_addresses(target, addresses, allow_private=allow_private)
    except TargetRefused as exc:
        raise WebhookTargetRefused(f"Tally will not call this url: {exc}.", field="url") from exc
    return target, address


@dataclass(frozen=True, slots=True)
class Created:
    subscription: WebhookSubscription
    secret: str


def subscribe(
    session: Session,
    partner_id: int,
    url: str,
    event_types: Sequence[str],
    now: datetime,
    *,
    app_secret: str,
    allow_private: bool,
    resolver: Resolver,
) -> Created:
    """A new active subscription with a fresh secret (returned once, kept only sealed)."""
    try:
        types = check_event_types(event_types, SUBSCRIBABLE)
    except ValueError as exc:
        raise UnknownEventType(
            f"Unknown event types: {exc}.",
            field="event_types",
            known=[kind.value for kind in SUBSCRIBABLE],
        ) from exc
    if not types:
        raise UnknownEventType(
            "Name at least one event type.",
            field="event_types",
            known=[kind.value for kind in SUBSCRIBABLE],
        )
    checked_target(url, allow_private=allow_private, resolver=resolver)
    if len(repository.subscriptions(session, partner_id)) >= MAX_SUBSCRIPTIONS:
        raise WebhookTargetRefused(
            f"A partner has at most {MAX_SUBSCRIPTIONS} subscriptions; delete one first.",
            field="url",
        )
    secret = new_secret()
    subscription = repository.insert_subscription(
        session,
        {
            "partner_id": partner_id,
            "url": url,
            "event_types": types,
            "sealed_secret": seal(app_secret, SEAL_PURPOSE, secret),
            "status": SubscriptionStatus.ACTIVE,
            "consecutive_failures": 0,
            "created_at": now,
        },
    )
    return Created(subscription, secret)


def secret_of(subscription: WebhookSubscription, app_secret: str) -> str:
    """The subscription's signing secret, unsealed."""
    return unseal(app_secret, SEAL_PURPOSE, subscription.sealed_secret)


def owned(session: Session, partner_id: int | None, subscription_id: int) -> WebhookSubscription:
    """A live subscription of ``partner_id`` (``None``: any, for the console); another
    partner's is ``not_found``, as if it did not exist."""
    found = repository.subscription(session, subscription_id)
    if found is None or (partner_id is not None and found.partner_id != partner_id):
        raise NotFound(f"No webhook subscription {subscription_id}.")
    return found


def delete(session: Session, partner_id: int, subscription_id: int, now: datetime) -> None:
    """Stop delivering to the subscription; its history stays for the console."""
    owned(session, partner_id, subscription_id)
    repository.set_status(session, subscription_id, SubscriptionStatus.DELETED, now)


def ping(session: Session, partner_id: int | None, subscription_id: int, now: datetime) -> Event:
    """A ``webhook.ping`` to this subscription only."""
    found = owned(session, partner_id, subscription_id)
    event = Event(
        type=EventType.WEBHOOK_PING,
        data={"subscription_id": found.id},
        occurred_at=now,
        partner_id=found.partner_id,
        subscription_id=found.id,
    )
    outbox.emit(session, [event], now)
    return event


def enable(session: Session, subscription_id: int, now: datetime) -> WebhookSubscription:
    """Re-enable a disabled subscription (the console): its pending deliveries resume."""
    found = owned(session, None, subscription_id)
    repository.set_status(session, subscription_id, SubscriptionStatus.ACTIVE, now)
    session.refresh(found)
    return found


def replay(session: Session, delivery_id: int, now: datetime) -> None:
    """Send a delivery again (the console)."""
    if not repository.replay(session, delivery_id, now):
        raise NotFound(f"No webhook delivery {delivery_id}.")
