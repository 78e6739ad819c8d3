"""Webhooks' pure rules: Standard Webhooks signatures, secrets, the retry schedule, which
targets may be called and who receives which event. No SQLAlchemy, no FastAPI, no I/O."""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from tally.outbox.domain import ALWAYS_SENT, EventType

SECRET_PREFIX = "whsec_"  # noqa: S105 (the prefix, not a secret)
SECRET_BYTES = 32
MAX_URL_LENGTH = 2000

#: Seconds to wait after each failed attempt: 13 attempts over about 3 days and 4 hours.
RETRY_SCHEDULE: tuple[int, ...] = (
    5,
    30,
    120,
    600,
    1800,
    3600,
    7200,
    14400,
    28800,
    43200,
    86400,
    86400,
)
MAX_ATTEMPTS = len(RETRY_SCHEDULE) + 1

#: Host names that mean this machine: the only targets that may be plain HTTP.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class SubscriptionStatus(enum.StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"  # failed for too long; an administrator re-enables it
    DELETED = "deleted"  # deleted by the partner; kept for the delivery history


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # every attempt failed: given up for good (a replay starts it again)


def new_secret() -> str:
    """A fresh signing secret, ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a secret: the base64 after ``whsec_``."""
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of "id.timestamp.body">`` (Standard Webhooks)."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def retry_delay(attempts: int) -> timedelta | None:
    """The wait after the ``attempts``-th failed attempt, or ``None``: give up."""
    if attempts < 1 or attempts > len(RETRY_SCHEDULE):
        return None
    return timedelta(seconds=RETRY_SCHEDULE[attempts - 1])


@dataclass(frozen=True, slots=True)
class Target:
    """A parsed subscription URL."""

    url: str
    scheme: str
    host: str  # without brackets, lower case
    port: int
    is_loopback_name: bool


class TargetRefused(ValueError):
    """A URL Tally will not call; the message says why."""


def parse_target(url: str) -> Target:
    """Check the form of ``url``: HTTPS, or HTTP to this machine's loopback names only."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise TargetRefused(f"url must be an absolute URL of at most {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetRefused(f"url is not a valid URL: {exc}") from exc
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in {"https", "http"} or not host:
        raise TargetRefused("url must be an https:// URL with a host")
    if parts.username or parts.password:
        raise TargetRefused("url must not carry a user name or password")
    if parts.fragment:
        raise TargetRefused("url must not have a fragment")
    loopback = host in LOOPBACK_HOSTS
    if scheme == "http" and not loopback:
        raise TargetRefused("url must use https (plain http only to 127.0.0.1, localhost or [::1])")
    return Target(
        url=url,
        scheme=scheme,
        host=host,
        port=port or (443 if scheme == "https" else 80),
        is_loopback_name=loopback,
    )


def is_ip_literal(host: str) -> bool:
    """Whether ``host`` is an IP address written out (no name to resolve)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def address_problem(address: str, *, loopback_name: bool, allow_private: bool) -> str | None:
    """Why Tally will not connect to ``address`` (an IP the target resolved to), or ``None``.

    Loopback is fine for the loopback names only (a public name that resolves to 127.0.0.1 is
    refused: DNS rebinding); private, link-local, multicast, reserved and unspecified addresses
    only when ``allow_private`` (the ``TALLY_WEBHOOK_ALLOW_PRIVATE_TARGETS`` setting)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return f"{address} is not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return None if loopback_name or allow_private else f"{ip} is a loopback address"
    if loopback_name:
        return f"{ip} is not a loopback address"
    if ip.is_multicast or ip.is_unspecified:
        return f"{ip} is a multicast or unspecified address"
    if ip.is_global:
        return None
    if allow_private:
        return None
    return f"{ip} is a private, link-local or reserved address"


def check_addresses(target: Target, addresses: Iterable[str], *, allow_private: bool) -> str:
    """The address to connect to: the first one the target resolved to, once every one is
    allowed (one refused address refuses the target: a name that may point inside the
    network is not called)."""
    found = list(dict.fromkeys(addresses))
    if not found:
        raise TargetRefused(f"{target.host} does not resolve to any address")
    for address in found:
        problem = address_problem(
            address, loopback_name=target.is_loopback_name, allow_private=allow_private
        )
        if problem is not None:
            raise TargetRefused(f"{target.host} resolves to {problem}")
    return found[0]


def check_event_types(names: Iterable[str], subscribable: Iterable[EventType]) -> list[str]:
    """The event types asked for, in a stable order, or the unknown ones raised."""
    known = {kind.value for kind in subscribable}
    asked = list(dict.fromkeys(names))
    unknown = [name for name in asked if name not in known]
    if unknown:
        raise ValueError(", ".join(unknown))
    return sorted(asked)


@dataclass(frozen=True, slots=True)
class Receiver:
    """An active subscription, as the dispatcher matches events against it."""

    id: int
    partner_id: int
    event_types: frozenset[str]
    is_operator_channel: bool


def receives(
    receiver: Receiver,
    *,
    event_type: str,
    partner_id: int | None,
    member_id: int | None,
    subscription_id: int | None,
    consented: bool,
) -> bool:
    """Whether ``receiver`` gets the event: an event addressed to one subscription goes there
    only; ``webhook.*`` events to the partner's own subscriptions; others when the type is
    asked for and the event concerns the partner (its transaction or hold), or the member
    consented to share with it, or the receiver is an operator channel."""
    if subscription_id is not None:
        return receiver.id == subscription_id
    if event_type in ALWAYS_SENT:
        return partner_id == receiver.partner_id
    if event_type not in receiver.event_types:
        return False
    if receiver.is_operator_channel or (
        partner_id is not None and partner_id == receiver.partner_id
    ):
        return True
    return member_id is not None and consented


def disable_reason(
    consecutive_failures: int,
    failing_since: datetime | None,
    now: datetime,
    *,
    max_failures: int,
    max_failing: timedelta,
) -> str | None:
    """Why a subscription is disabled after another failure, or ``None`` to keep it."""
    if consecutive_failures >= max_failures:
        return f"{consecutive_failures} consecutive failed attempts"
    if failing_since is not None and now - failing_since >= max_failing:
        hours = int(max_failing.total_seconds() // 3600)
        return f"every attempt failed for {hours} hours"
    return None
