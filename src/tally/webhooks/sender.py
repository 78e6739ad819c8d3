"""Sending: lease the due deliveries, POST each signed (Standard Webhooks), record the outcome.

A sender holds a lease on each attempt (``locked_until``), so two senders never send the same
attempt at once, and a sender that dies mid-attempt is replaced when the lease ends: the event
goes again with the same ``webhook-id``, which receivers use to ignore a duplicate.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx

from tally.db.session import Database
from tally.errors import WebhookTargetRefused
from tally.kit.clock import utcnow
from tally.kit.sealing import unseal
from tally.outbox import repository as outbox
from tally.outbox.domain import Event, EventType
from tally.webhooks import repository
from tally.webhooks.domain import disable_reason, retry_delay, signature
from tally.webhooks.repository import Leased
from tally.webhooks.service import SEAL_PURPOSE, Resolver, checked_target, system_resolver

log = logging.getLogger("tally.webhooks")

USER_AGENT = "Tally-Webhooks/1"
LEASE_MARGIN = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class SenderOptions:
    """How senders behave (from the ``TALLY_WEBHOOK_*`` settings)."""

    timeout_seconds: float = 10.0
    allow_private: bool = False
    disable_after_failures: int = 100
    disable_after: timedelta = timedelta(days=3)
    batch: int = 100
    workers: int = 4


@dataclass
class Report:
    """What one round did."""

    leased: int = 0
    delivered: int = 0
    failed: int = 0  # attempts that failed (retried later, or given up)
    given_up: int = 0
    disabled: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "leased": self.leased,
            "delivered": self.delivered,
            "failed": self.failed,
            "given_up": self.given_up,
            "disabled": self.disabled,
        }


def body_of(item: Leased) -> bytes:
    """The delivered JSON: the same bytes on every attempt of the event. The partner an
    event concerns is named by its code (``partner``), not by Tally's internal id."""
    data = dict(item.data)
    if "partner_id" in data:
        data.pop("partner_id")
        data["partner"] = item.partner_code
    payload = {
        "id": item.event_id,
        "type": item.type,
        "timestamp": item.occurred_at.isoformat(),
        "data": data,
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class Sender:
    """Leases due deliveries and sends them; every method is safe to run in many processes."""

    def __init__(
        self,
        db: Database,
        app_secret: str,
        options: SenderOptions,
        *,
        clock: Callable[[], datetime] = utcnow,
        resolver: Resolver = system_resolver,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._db = db
        self._secret = app_secret
        self._options = options
        self._clock = clock
        self._resolver = resolver
        self._transport = transport

    def lease(self) -> tuple[str, list[Leased]]:
        """Lease the due deliveries (in a transaction of its own)."""
        token = secrets.token_hex(16)
        now = self._clock()
        until = now + timedelta(seconds=self._options.timeout_seconds) + LEASE_MARGIN
        with self._db.write() as session:
            return token, repository.lease(session, token, now, until, self._options.batch)

    def run_once(self) -> Report:
        """Lease what is due and send it: each subscription's in order, different
        subscriptions side by side (a slow receiver delays only its own)."""
        token, leased = self.lease()
        report = Report(leased=len(leased))
        if not leased:
            return report
        by_subscription: dict[int, list[Leased]] = defaultdict(list)
        for item in leased:
            by_subscription[item.subscription_id].append(item)
        groups = list(by_subscription.values())
        with httpx.Client(
            timeout=self._options.timeout_seconds,
            follow_redirects=False,
            trust_env=False,
            transport=self._transport,
        ) as client:
            if len(groups) == 1:
                outcomes = [self._send_group(client, token, groups[0])]
            else:
                with ThreadPoolExecutor(
                    max_workers=min(self._options.workers, len(groups)),
                    thread_name_prefix="tally-webhook",
                ) as pool:
                    outcomes = list(
                        pool.map(lambda group: self._send_group(client, token, group), groups)
                    )
        for part in outcomes:
            report.delivered += part.delivered
            report.failed += part.failed
            report.given_up += part.given_up
            report.disabled.extend(part.disabled)
        return report

    def _send_group(self, client: httpx.Client, token: str, items: list[Leased]) -> Report:
        report = Report()
        for item in items:
            if item.subscription_id in report.disabled:
                break
            self._send(client, token, item, report)
        return report

    def _send(self, client: httpx.Client, token: str, item: Leased, report: Report) -> None:
        code: int | None = None
        error: str | None = None
        started = time.perf_counter()
        try:
            code = self.attempt(client, item)
            if not 200 <= code < 300:
                error = f"answered HTTP {code}"
        except WebhookTargetRefused as exc:
            error = f"target refused: {exc.detail}"
        except httpx.TimeoutException:
            error = f"no answer within {self._options.timeout_seconds:g} s"
        except httpx.HTTPError as exc:
            error = f"could not deliver: {type(exc).__name__}: {exc}"[:500]
        ms = int((time.perf_counter() - started) * 1000)
        now = self._clock()
        with self._db.write() as session:
            if error is None:
                assert code is not None
                if repository.record_delivered(session, item, token, code, ms, now):
                    report.delivered += 1
                return
            delay = retry_delay(item.attempts + 1)
            next_at = now + delay if delay is not None else None
            if not repository.record_failed(
                session,
                item,
                token,
                code=code,
                error=error,
                ms=ms,
                now=now,
                next_attempt_at=next_at,
            ):
                return  # the lease ran out and another sender took the attempt over
            report.failed += 1
            report.given_up += next_at is None
            if self._maybe_disable(session, item.subscription_id, now):
                report.disabled.append(item.subscription_id)

    def attempt(self, client: httpx.Client, item: Leased) -> int:
        """POST the event once; the status code. The target is checked again now, after
        resolving its name, and the connection goes to the address checked (no rebinding)."""
        target, address = checked_target(
            item.url, allow_private=self._options.allow_private, resolver=self._resolver
        )
        body = body_of(item)
        stamp = int(self._clock().timestamp())
        secret = unseal(self._secret, SEAL_PURPOSE, item.sealed_secret)
        url = httpx.URL(item.url)
        pinned = url.copy_with(host=address)
        host_header = url.host if url.port is None else f"{url.host}:{url.port}"
        if ":" in url.host:  # IPv6 literal
            host_header = f"[{url.host}]" + (f":{url.port}" if url.port else "")
        extensions: dict[str, Any] = {}
        if target.scheme == "https":
            extensions["sni_hostname"] = target.host
        response = client.post(
            pinned,
            content=body,
            headers={
                "host": host_header,
                "content-type": "application/json",
                "user-agent": USER_AGENT,
                "webhook-id": item.event_id,
                "webhook-timestamp": str(stamp),
                "webhook-signature": signature(secret, item.event_id, stamp, body),
            },
            extensions=extensions,
        )
        return response.status_code

    def _maybe_disable(self, session: Any, subscription_id: int, now: datetime) -> bool:
        state = repository.failure_state(session, subscription_id)
        if state is None:
            return False
        failures, since, partner_id, url = state
        reason = disable_reason(
            failures,
            since,
            now,
            max_failures=self._options.disable_after_failures,
            max_failing=self._options.disable_after,
        )
        if reason is None or not repository.disable(session, subscription_id, reason, now):
            return False
        log.warning("webhook subscription %s disabled: %s", subscription_id, reason)
        outbox.emit(
            session,
            [
                Event(
                    type=EventType.WEBHOOK_DISABLED,
                    data={"subscription_id": subscription_id, "url": url, "reason": reason},
                    occurred_at=now,
                    partner_id=partner_id,
                )
            ],
            now,
        )
        return True
