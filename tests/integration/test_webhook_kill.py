"""Killing `tally serve` (kill -9) in the middle of a delivery loses nothing: once the dead
sender's lease runs out, the event is delivered again, with the same `webhook-id`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from conftest import SECRET, Api, make_partner
from support.receiver import receiving, verify
from tally.config import Settings
from tally.db.session import Database
from tally.kit.clock import utcnow
from tally.webhooks import service as webhooks
from tally.webhooks.models import WebhookDelivery

TALLY = Path(sys.executable).with_name("tally")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(condition: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_kill_9_mid_delivery_loses_nothing_and_resends_the_same_webhook_id(
    client: Any, database: Database, settings: Settings, tmp_path: Path
) -> None:
    key = make_partner(database, "MOBILE", "members,earn,read,webhooks", operator_channel=True)
    api = Api(client, key)
    with receiving() as receiver:
        with database.write() as session:
            created = webhooks.subscribe(
                session,
                key.partner_id,
                receiver.url,
                ["entry.posted"],
                utcnow(),
                app_secret=SECRET,
                allow_private=False,
                resolver=lambda _host, _port: [],
            )
        member = api.enrol("13800000099")
        assert api.earn(member, 10, reference="KILL-1").status_code == 201
        receiver.answers = ["hang"]  # the first attempt never gets its answer
        env = {
            **os.environ,
            "TALLY_DATABASE_URL": settings.database_url,
            "TALLY_SECRET_KEY": SECRET,
            "TALLY_JOB_INTERVAL_SECONDS": "3600",
            "TALLY_WEBHOOK_POLL_SECONDS": "0.2",
            "TALLY_WEBHOOK_TIMEOUT_SECONDS": "2",
        }
        log = tmp_path / "serve.log"
        with log.open("w") as errors:
            server = subprocess.Popen(
                [str(TALLY), "serve", "--port", str(free_port())],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=errors,
            )
            try:
                assert receiver.arrived.wait(30), log.read_text()
            finally:
                server.send_signal(signal.SIGKILL)
                server.wait(10)
        receiver.release()
        with database.read() as session:
            [delivery] = session.scalars(select(WebhookDelivery)).all()
        assert delivery.status.value == "pending"
        assert delivery.lease_token is not None  # the dead sender's lease stands
        assert delivery.locked_until is not None

        # Before the lease ends nobody sends it again; after, `tally jobs deliver` does.
        def deliver(at: Any) -> str:
            done = subprocess.run(
                [str(TALLY), "jobs", "deliver", "--as-of", at.isoformat()],
                env=env,
                capture_output=True,
                text=True,
                check=False,
                timeout=60,
            )
            assert done.returncode == 0, done.stderr
            return done.stdout

        assert '"leased": 0' in deliver(utcnow())
        assert len(receiver.received) == 1
        out = deliver(delivery.locked_until + timedelta(seconds=1))
        assert '"delivered": 1' in out, out
        wait_for(lambda: len(receiver.received) == 2, 5, "the re-delivery")
        first, second = receiver.received
        assert first.webhook_id == second.webhook_id
        assert first.body == second.body
        assert verify(created.secret, second.headers, second.body)
        assert second.json["data"]["reference"] == "KILL-1"
        with database.read() as session:
            [delivery] = session.scalars(select(WebhookDelivery)).all()
        assert delivery.status.value == "delivered"
