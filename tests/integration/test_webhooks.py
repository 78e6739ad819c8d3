"""Outbox and signed webhooks end to end: subscribe through the API, change something, fan
out, send to a real receiver on 127.0.0.1, with the clock advanced instead of waited for."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text

from conftest import SECRET, Api, PartnerKey, make_partner
from support.receiver import Receiver, receiving, verify
from tally.config import Settings
from tally.db.session import Database
from tally.outbox.models import OutboxEvent
from tally.programme.runtime import ProgrammeCache
from tally.webhooks.dispatch import dispatch
from tally.webhooks.models import WebhookDelivery, WebhookSubscription
from tally.webhooks.sender import Sender, SenderOptions

SCOPES = "members,earn,redeem,transfer,read,admin,webhooks"


class Clock:
    def __init__(self) -> None:
        # A whole second just ahead: the programme versions applied so far are in force.
        self.now = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(app: Any) -> Clock:
    found = Clock()
    app.state.clock = found
    return found


@pytest.fixture
def mobile(database: Database) -> PartnerKey:
    return make_partner(database, "MOBILE", SCOPES, operator_channel=True)


@pytest.fixture
def shop(database: Database) -> PartnerKey:
    return make_partner(database, "SHOP", "members,earn,redeem,read,webhooks")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as found:
        yield found


class Pump:
    """Fan out and send, as `tally serve` does every second."""

    def __init__(self, database: Database, settings: Settings, clock: Clock, **options: Any):
        self.database = database
        self.clock = clock
        self.programme = ProgrammeCache(settings, 0)
        self.sender = Sender(
            database, SECRET, SenderOptions(**{"timeout_seconds": 2.0, **options}), clock=clock
        )

    def __call__(self) -> int:
        with self.database.read() as session:
            programme = self.programme.get(session)
        dispatch(self.database.write, self.clock(), programme)
        leased = 0
        for _ in range(10):  # until nothing more is due (a member's next event follows)
            found = self.sender.run_once().leased
            if not found:
                break
            leased += found
        return leased


@pytest.fixture
def pump(database: Database, settings: Settings, clock: Clock) -> Pump:
    return Pump(database, settings, clock)


def subscribe(api: Api, url: str, types: list[str] | None = None, key: str | None = None) -> Any:
    response = api.post(
        "/v1/webhooks",
        {"url": url, "event_types": types or ["entry.posted", "hold.lapsed"]},
        idempotency_key=key,
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_an_earn_reaches_the_receiver_signed_with_the_subscriptions_secret(
    client: Any, mobile: PartnerKey, clock: Clock, pump: Pump, receiver: Receiver
) -> None:
    api = Api(client, mobile)
    created = subscribe(api, receiver.url)
    assert created["secret"].startswith("whsec_")
    assert created["status"] == "active"
    member = api.enrol("13800000001")
    earned = api.earn(member, 120, reference="ORDER-1")
    assert earned.status_code == 201, earned.text

    assert pump() >= 1
    [hook] = [item for item in receiver.received if item.json["data"]["member_id"] == member]
    assert verify(created["secret"], hook.headers, hook.body)
    assert not verify("whsec_" + "A" * 44, hook.headers, hook.body)
    assert hook.headers["webhook-timestamp"] == str(int(clock().timestamp()))
    event = hook.json
    assert event["type"] == "entry.posted"
    assert event["id"] == hook.webhook_id
    assert event["data"] == {
        "id": earned.json()["transaction_id"],
        "kind": "earn",
        "member_id": member,
        "points": 120,
        "held": 0,
        "partner": "MOBILE",
        "reference": "ORDER-1",
        "reverses_id": None,
        "created_at": event["data"]["created_at"],
    }
    # Nothing personal in it: no phone number anywhere.
    assert "13800000001" not in hook.body.decode()
    deliveries = api.get(f"/v1/webhooks/{created['id']}/deliveries").json()["deliveries"]
    assert {d["status"] for d in deliveries} == {"delivered"}
    assert deliveries[0]["last_status_code"] == 204
    assert pump() == 0  # delivered once


def test_the_secret_is_shown_once_kept_sealed_and_a_replay_shows_it_again(
    client: Any, mobile: PartnerKey, database: Database, receiver: Receiver
) -> None:
    api = Api(client, mobile)
    first = subscribe(api, receiver.url, key="sub-1")
    again = subscribe(api, receiver.url, key="sub-1")
    assert again == first
    listed = api.get("/v1/webhooks").json()["webhooks"]
    assert [item["id"] for item in listed] == [first["id"]]
    assert listed[0]["secret"] is None
    assert api.get(f"/v1/webhooks/{first['id']}").json()["secret"] is None
    secret_text = first["secret"]
    with database.read() as session:
        sealed = session.scalar(select(WebhookSubscription.sealed_secret))
        stored = session.execute(text("SELECT response_body FROM idempotency_records")).all()
    assert sealed is not None
    assert secret_text not in sealed
    assert secret_text.removeprefix("whsec_") not in sealed
    assert all(secret_text not in row[0] for row in stored)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://partner.example.com/hooks", "https"),
        ("ftp://partner.example.com/hooks", "https"),
        ("https://10.1.2.3/hooks", "private"),
        ("https://169.254.169.254/latest", "private"),
        ("https://[fd00::1]/hooks", "private"),
        ("https://224.0.0.1/hooks", "multicast"),
        ("https://user:pw@partner.example.com/hooks", "user name"),
        ("https://internal.example.com/hooks", "private"),  # resolves inside the network
        ("https://rebind.example.com/hooks", "loopback"),  # a public name for 127.0.0.1
        ("https://nowhere.example.com/hooks", "does not resolve"),
    ],
)
def test_targets_outside_https_or_inside_the_network_are_refused(
    client: Any, app: Any, mobile: PartnerKey, database: Database, url: str, reason: str
) -> None:
    names = {
        "partner.example.com": ["93.184.216.34"],
        "internal.example.com": ["93.184.216.34", "192.168.1.20"],
        "rebind.example.com": ["127.0.0.1"],
    }
    app.state.webhook_resolver = lambda host, _port: names.get(host, [])
    response = Api(client, mobile).post(
        "/v1/webhooks", {"url": url, "event_types": ["entry.posted"]}
    )
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "webhook_target_refused"
    assert reason in response.json()["detail"]
    with database.read() as session:
        assert session.scalar(select(func.count()).select_from(WebhookSubscription)) == 0


def test_a_public_https_target_is_accepted_and_unknown_event_types_refused(
    client: Any, app: Any, mobile: PartnerKey
) -> None:
    app.state.webhook_resolver = lambda host, _port: ["93.184.216.34"]
    api = Api(client, mobile)
    assert subscribe(api, "https://partner.example.com/hooks")["status"] == "active"
    refused = api.post(
        "/v1/webhooks", {"url": "https://partner.example.com/x", "event_types": ["entry.eaten"]}
    )
    assert refused.status_code == 422
    assert refused.json()["code"] == "unknown_event_type"
    empty = api.post("/v1/webhooks", {"url": "https://partner.example.com/x", "event_types": []})
    assert empty.status_code == 422


def test_another_partners_subscription_is_not_found_and_deleting_stops_deliveries(
    client: Any,
    mobile: PartnerKey,
    shop: PartnerKey,
    pump: Pump,
    receiver: Receiver,
) -> None:
    mine = subscribe(Api(client, shop), receiver.url)
    other = Api(client, mobile)
    assert other.get(f"/v1/webhooks/{mine['id']}").status_code == 404
    assert other.get(f"/v1/webhooks/{mine['id']}/deliveries").status_code == 404
    assert other.post(f"/v1/webhooks/{mine['id']}/ping").status_code == 404
    deleted = client.delete(f"/v1/webhooks/{mine['id']}", headers=mobile.headers("del-1"))
    assert deleted.status_code == 404
    assert Api(client, shop).get("/v1/webhooks").json()["webhooks"][0]["id"] == mine["id"]

    shop_api = Api(client, shop)
    gone = client.delete(f"/v1/webhooks/{mine['id']}", headers=shop.headers("del-2"))
    assert gone.status_code == 200, gone.text
    assert shop_api.get(f"/v1/webhooks/{mine['id']}").status_code == 404
    member = shop_api.enrol("13800000002")
    assert shop_api.earn(member, 10).status_code == 201
    pump()
    assert receiver.received == []


def test_a_ping_goes_to_that_subscription_only(client: Any, mobile: PartnerKey, pump: Pump) -> None:
    api = Api(client, mobile)
    with receiving() as first, receiving() as second:
        one = subscribe(api, first.url)
        subscribe(api, second.url)
        pinged = api.post(f"/v1/webhooks/{one['id']}/ping")
        assert pinged.status_code == 202, pinged.text
        pump()
        assert [event["type"] for event in first.events()] == ["webhook.ping"]
        assert first.received[0].webhook_id == pinged.json()["event_id"]
        assert verify(one["secret"], first.received[0].headers, first.received[0].body)
        assert second.received == []


def test_partners_receive_their_own_transactions_or_consented_members_operator_all(
    client: Any, mobile: PartnerKey, shop: PartnerKey, pump: Pump, database: Database
) -> None:
    operator_api, shop_api = Api(client, mobile), Api(client, shop)
    with receiving() as operator_hooks, receiving() as shop_hooks:
        subscribe(operator_api, operator_hooks.url)
        subscribe(shop_api, shop_hooks.url)
        # The operator's earn for a member the shop has nothing to do with.
        stranger = operator_api.enrol("13800000003")
        assert operator_api.earn(stranger, 5, reference="OP-1").status_code == 201
        # The shop's own earn.
        own = shop_api.enrol("13800000004")
        assert shop_api.earn(own, 7, reference="SHOP-1").status_code == 201
        pump()
        shop_refs = {event["data"]["reference"] for event in shop_hooks.events()}
        assert shop_refs == {"SHOP-1"}
        operator_refs = {event["data"]["reference"] for event in operator_hooks.events()}
        assert operator_refs == {"OP-1", "SHOP-1"}

        # The stranger consents to share with the shop: the shop hears of it from then on.
        consent = operator_api.post(
            f"/v1/members/{stranger}/consents",
            {"partner": "SHOP", "purpose": "profile", "granted": True},
        )
        assert consent.status_code == 201, consent.text
        assert operator_api.earn(stranger, 3, reference="OP-2").status_code == 201
        pump()
        shop_refs = {event["data"]["reference"] for event in shop_hooks.events()}
        assert shop_refs == {"SHOP-1", "OP-2"}


def test_a_receiver_answering_500_then_down_then_slow_loses_nothing(
    client: Any, mobile: PartnerKey, clock: Clock, database: Database, settings: Settings
) -> None:
    pump = Pump(database, settings, clock, timeout_seconds=0.3)
    api = Api(client, mobile)
    with receiving() as receiver:
        created = subscribe(api, receiver.url)
        receiver.answers = [500]
        member = api.enrol("13800000005")
        assert api.earn(member, 50).status_code == 201
        pump()
        assert len(receiver.received) == 1
        first_id = receiver.received[0].webhook_id
        [delivery] = api.get(f"/v1/webhooks/{created['id']}/deliveries").json()["deliveries"]
        assert delivery["status"] == "pending"
        assert delivery["last_status_code"] == 500
        assert delivery["last_error"] == "answered HTTP 500"
        assert pump() == 0  # not due before its backoff
    # The receiver is down now: the connection is refused.
    clock.advance(5)
    pump()
    [delivery] = api.get(f"/v1/webhooks/{created['id']}/deliveries").json()["deliveries"]
    assert delivery["attempts"] == 2
    assert delivery["status"] == "pending"
    assert delivery["last_error"].startswith("could not deliver")
    # Back up on the same port, but slow: no answer within the timeout.
    with receiving() as slow:
        with database.write() as session:
            session.execute(text("UPDATE webhook_subscriptions SET url = :url"), {"url": slow.url})
        slow.answers = ["hang"]
        clock.advance(30)
        pump()
        slow.release()
        [delivery] = api.get(f"/v1/webhooks/{created['id']}/deliveries").json()["deliveries"]
        assert delivery["attempts"] == 3
        assert delivery["last_error"] == "no answer within 0.3 s"
        clock.advance(120)
        pump()
        [delivery] = api.get(f"/v1/webhooks/{created['id']}/deliveries").json()["deliveries"]
        assert delivery["status"] == "delivered"
        assert delivery["attempts"] == 4
        assert {item.webhook_id for item in slow.received} == {first_id}


def test_a_members_events_arrive_in_order_even_when_the_first_must_be_retried(
    client: Any, mobile: PartnerKey, clock: Clock, pump: Pump, receiver: Receiver
) -> None:
    api = Api(client, mobile)
    subscribe(api, receiver.url)
    member = api.enrol("13800000006")
    other = api.enrol("13800000007")
    receiver.answers = [503]
    for reference in ("A-1", "A-2", "A-3"):
        assert api.earn(member, 10, reference=reference).status_code == 201
    assert api.earn(other, 10, reference="B-1").status_code == 201
    pump()
    # A-1 failed; wait for it; the other member's event is not held up.
    assert [e["data"]["reference"] for e in receiver.events()] == ["A-1", "B-1"]
    clock.advance(5)
    pump()
    references = [e["data"]["reference"] for e in receiver.events()]
    assert references == ["A-1", "B-1", "A-1", "A-2", "A-3"]


def test_two_senders_never_send_the_same_attempt_and_a_lost_lease_changes_nothing(
    client: Any,
    mobile: PartnerKey,
    clock: Clock,
    pump: Pump,
    receiver: Receiver,
    database: Database,
) -> None:
    api = Api(client, mobile)
    subscribe(api, receiver.url)
    for number in range(4):
        member = api.enrol(f"1380000010{number}")
        assert api.earn(member, 10).status_code == 201
    with database.read() as session:
        programme = pump.programme.get(session)
    dispatch(database.write, clock(), programme)
    first = Sender(database, SECRET, SenderOptions(timeout_seconds=2), clock=clock)
    second = Sender(database, SECRET, SenderOptions(timeout_seconds=2), clock=clock)
    token_one, leased_one = first.lease()
    _token_two, leased_two = second.lease()
    assert len(leased_one) == 4
    assert leased_two == []
    # The first sender stalls past its lease; the second takes the attempts over.
    clock.advance(60)
    token_two, leased_two = second.lease()
    assert {item.id for item in leased_two} == {item.id for item in leased_one}
    with database.write() as session:
        from tally.webhooks import repository

        assert not repository.record_delivered(session, leased_one[0], token_one, 200, 5, clock())
        assert repository.record_delivered(session, leased_two[0], token_two, 200, 5, clock())


def test_a_subscription_that_keeps_failing_is_disabled_and_the_partner_told(
    client: Any, mobile: PartnerKey, clock: Clock, database: Database, settings: Settings
) -> None:
    pump = Pump(database, settings, clock, disable_after_failures=3)
    api = Api(client, mobile)
    with receiving() as failing, receiving() as healthy:
        broken = subscribe(api, failing.url)
        subscribe(api, healthy.url, types=["hold.lapsed"])
        failing.default = 500
        member = api.enrol("13800000011")
        assert api.earn(member, 10).status_code == 201
        for seconds in (0, 5, 30):
            clock.advance(seconds)
            pump()
        found = api.get(f"/v1/webhooks/{broken['id']}").json()
        assert found["status"] == "disabled"
        assert found["disabled_reason"] == "3 consecutive failed attempts"
        pump()
        notices = [e for e in healthy.events() if e["type"] == "webhook.disabled"]
        assert [n["data"]["subscription_id"] for n in notices] == [broken["id"]]
        assert len(failing.received) == 3
        clock.advance(3600)
        pump()
        assert len(failing.received) == 3  # nothing more to a disabled subscription


def test_every_attempt_failing_for_three_days_gives_up_for_good(
    client: Any, mobile: PartnerKey, clock: Clock, database: Database, settings: Settings
) -> None:
    pump = Pump(
        database, settings, clock, disable_after_failures=1000, disable_after=timedelta(days=30)
    )
    api = Api(client, mobile)
    with receiving() as failing:
        created = subscribe(api, failing.url)
        failing.default = 500
        member = api.enrol("13800000012")
        assert api.earn(member, 10).status_code == 201
        for _ in range(20):
            pump()
            clock.advance(86400)
        [delivery] = api.get(f"/v1/webhooks/{created['id']}/deliveries").json()["deliveries"]
        assert delivery["status"] == "failed"
        assert delivery["attempts"] == 13
        assert len(failing.received) == 13
        assert len({item.webhook_id for item in failing.received}) == 1


def test_a_lapsed_hold_tells_its_partner(
    client: Any,
    mobile: PartnerKey,
    clock: Clock,
    pump: Pump,
    receiver: Receiver,
    database: Database,
    settings: Settings,
) -> None:
    from tally.ledger import jobs

    api = Api(client, mobile)
    subscribe(api, receiver.url, types=["hold.lapsed"])
    member = api.enrol("13800000013")
    assert api.earn(member, 100).status_code == 201
    held = api.post(
        f"/v1/members/{member}/holds",
        {"points": 40, "reference": "CART-1", "expires_in_seconds": 60},
    )
    assert held.status_code == 201, held.text
    jobs.expire(database.write, datetime.now(UTC) + timedelta(minutes=5))
    clock.advance(600)
    pump()
    [event] = receiver.events()
    assert event["type"] == "hold.lapsed"
    assert event["data"]["hold_id"] == held.json()["hold"]["id"]
    assert event["data"]["points"] == 40
    assert event["data"]["partner"] == "MOBILE"


def test_an_entry_written_in_a_transaction_that_rolls_back_leaves_no_event(
    client: Any, mobile: PartnerKey, database: Database
) -> None:
    api = Api(client, mobile)
    member = api.enrol("13800000014")
    refused = api.redeem(member, 10)
    assert refused.status_code == 409
    with database.read() as session:
        types = session.scalars(select(OutboxEvent.type)).all()
        assert list(types) == []
        assert session.scalar(select(func.count()).select_from(WebhookDelivery)) == 0


def test_family_and_tier_changes_reach_operator_channels(
    client: Any,
    mobile: PartnerKey,
    clock: Clock,
    pump: Pump,
    receiver: Receiver,
    database: Database,
) -> None:
    from tally.tiers import repository as tiers
    from tally.tiers.models import TierChangeReason

    api = Api(client, mobile)
    subscribe(api, receiver.url, types=["family.changed", "tier.changed"])
    owner = api.enrol("13800000015")
    made = api.post("/v1/families", {"acting_member_id": owner, "mode": "share"})
    assert made.status_code == 201, made.text
    with database.write() as session:
        tiers.insert_changes(
            session,
            [
                {
                    "member_id": owner,
                    "from_code": None,
                    "to_code": "GOLD",
                    "reason": TierChangeReason.UPGRADE,
                    "growth": 5000,
                    "downgrade_at": None,
                    "programme_version": None,
                    "changed_at": clock(),
                }
            ],
        )
    pump()
    events = {event["type"]: event["data"] for event in receiver.events()}
    assert events["family.changed"] == {
        "family_id": made.json()["id"],
        "member_id": owner,
        "change": "joined",
        "role": "owner",
        "changed_at": events["family.changed"]["changed_at"],
    }
    assert events["tier.changed"]["to"] == "GOLD"
    assert events["tier.changed"]["reason"] == "upgrade"
    assert events["tier.changed"]["member_id"] == owner


def test_senders_racing_on_real_connections_send_each_event_once(
    client: Any,
    mobile: PartnerKey,
    clock: Clock,
    pump: Pump,
    receiver: Receiver,
    database: Database,
) -> None:
    """Four senders in threads, each with its own connection, lease and send at once."""
    import threading

    api = Api(client, mobile)
    subscribe(api, receiver.url)
    for number in range(12):
        member = api.enrol(f"1380000060{number:02d}")
        assert api.earn(member, 10).status_code == 201
    with database.read() as session:
        programme = pump.programme.get(session)
    dispatch(database.write, clock(), programme)
    senders = [
        Sender(database, SECRET, SenderOptions(timeout_seconds=2, batch=3), clock=clock)
        for _ in range(4)
    ]
    start = threading.Barrier(len(senders))
    errors: list[BaseException] = []

    def work(sender: Sender) -> None:
        try:
            start.wait(10)
            while sender.run_once().leased:
                pass
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(sender,)) for sender in senders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    ids = [item.webhook_id for item in receiver.received]
    assert len(ids) == 12
    assert len(set(ids)) == 12
