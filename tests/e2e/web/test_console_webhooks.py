"""The console's webhooks page (administrators): every partner's subscriptions with their status
and failures, a subscription's deliveries with the receiver's answer, re-enabling a disabled
subscription and replaying a delivery, each audited; other roles are refused."""

from __future__ import annotations

from datetime import UTC, datetime

import web_fixtures
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from test_web_guardrails import as_staff
from test_web_http import flashes
from web_fixtures import DemoData

from tally.audit.models import AuditEntry
from tally.outbox import repository as outbox
from tally.outbox.domain import Event, EventType
from tally.partners import service as partners
from tally.programme import runtime
from tally.webhooks import service as webhooks
from tally.webhooks.dispatch import fan_out
from tally.webhooks.models import WebhookDelivery, WebhookSubscription

client = web_fixtures.client
demo_data = web_fixtures.demo_data


def _subscription(data: DemoData) -> tuple[int, int]:
    """A disabled subscription of the demo's SHOP with one failed delivery."""
    now = datetime.now(UTC)
    with data.db.write() as session:
        shop = partners.partner_by_code(session, "SHOP")
        created = webhooks.subscribe(
            session,
            shop.id,
            "https://127.0.0.1/hooks/console-test",
            ["hold.lapsed"],
            now,
            app_secret=data.settings.resolved_secret(),
            allow_private=False,
            resolver=lambda _host, _port: [],
        )
        outbox.emit(
            session,
            [
                Event(
                    type=EventType.WEBHOOK_PING,
                    data={},
                    occurred_at=now,
                    partner_id=shop.id,
                    subscription_id=created.subscription.id,
                )
            ],
        )
        fan_out(session, now, runtime.effective(session, data.settings))
        session.execute(
            text(
                "UPDATE webhook_deliveries SET status = 'failed', attempts = 13,"
                " last_status_code = 500, last_error = 'answered HTTP 500'"
                " WHERE subscription_id = :s"
            ),
            {"s": created.subscription.id},
        )
        session.execute(
            text(
                "UPDATE webhook_subscriptions SET status = 'disabled',"
                " disabled_reason = '100 consecutive failed attempts', consecutive_failures = 100"
                " WHERE id = :s"
            ),
            {"s": created.subscription.id},
        )
        delivery = session.scalar(  # the newest: the page lists the latest 50
            select(WebhookDelivery.id)
            .where(WebhookDelivery.subscription_id == created.subscription.id)
            .order_by(WebhookDelivery.id.desc())
            .limit(1)
        )
    assert delivery is not None
    return created.subscription.id, delivery


def test_an_administrator_sees_re_enables_and_replays(
    client: TestClient, demo_data: DemoData
) -> None:
    subscription_id, delivery_id = _subscription(demo_data)
    csrf = as_staff(client, "admin")
    listed = client.get("/console/webhooks")
    assert listed.status_code == 200
    assert "https://127.0.0.1/hooks/console-test" in listed.text
    assert "100 consecutive failed attempts" in listed.text
    detail = client.get(f"/console/webhooks?subscription={subscription_id}")
    assert f'data-delivery="{delivery_id}"' in detail.text
    assert "HTTP 500" in detail.text
    assert "answered HTTP 500" in detail.text

    refused = client.post(f"/console/webhooks/{subscription_id}/enable", data={})
    assert refused.status_code == 403  # no CSRF token
    enabled = client.post(f"/console/webhooks/{subscription_id}/enable", data={"csrf": csrf})
    assert enabled.status_code == 303
    replayed = client.post(
        f"/console/webhooks/deliveries/{delivery_id}/replay", data={"csrf": csrf}
    )
    assert replayed.status_code == 303
    page = client.get(replayed.headers["location"])
    assert flashes(page.text)[-2:] == ["订阅已重新启用。", "将在几秒内重新投递。"]
    with demo_data.db.read() as session:
        found = session.get(WebhookSubscription, subscription_id)
        delivery = session.get(WebhookDelivery, delivery_id)
        actions = session.scalars(
            select(AuditEntry.action).where(AuditEntry.action.startswith("webhook."))
        ).all()
    assert found is not None
    assert found.status.value == "active"
    assert found.consecutive_failures == 0
    assert delivery is not None
    assert delivery.status.value == "pending"
    assert delivery.attempts == 0
    assert list(actions)[-2:] == ["webhook.enable", "webhook.replay"]


def test_other_roles_are_refused(client: TestClient, demo_data: DemoData) -> None:
    subscription_id, _delivery = _subscription(demo_data)
    csrf = as_staff(client, "auditor")
    assert client.get("/console/webhooks").status_code == 403
    refused = client.post(f"/console/webhooks/{subscription_id}/enable", data={"csrf": csrf})
    assert refused.status_code == 403
    with demo_data.db.read() as session:
        found = session.get(WebhookSubscription, subscription_id)
    assert found is not None
    assert found.status.value == "disabled"
