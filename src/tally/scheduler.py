"""Runs the scheduled jobs inside ``tally serve`` (each is also a CLI command)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from tally.auctions import jobs as auction_jobs
from tally.config import Settings
from tally.db.session import Database
from tally.flows import coupon_allowances, mall_jobs, mall_orders, sign_ins
from tally.idempotency import service as idempotency
from tally.kit.clock import utcnow
from tally.kit.periodic import Periodic
from tally.ledger import jobs, reminders
from tally.ledger.posting import policy_for
from tally.memberships import jobs as membership_jobs
from tally.offers import jobs as offer_jobs
from tally.programme.runtime import ProgrammeCache
from tally.tiers import jobs as tier_jobs
from tally.webhooks import retention as outbox_retention
from tally.webhooks.dispatch import dispatch
from tally.webhooks.sender import Sender, SenderOptions

log = logging.getLogger("tally.scheduler")


class Scheduler:
    """A daemon thread that runs the jobs every ``interval`` seconds until stopped.

    Jobs are idempotent and safe to run concurrently, so several workers may each run one.
    """

    def __init__(
        self, db: Database, settings: Settings, programme: ProgrammeCache, interval: int
    ) -> None:
        self._db = db
        self._settings = settings
        self._programme = programme
        self._thread = Periodic("tally-jobs", interval, self.run_once)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._thread.stop()

    def run_once(self) -> None:
        """Run every job once for now; a job that fails is logged and retried next round."""
        now = utcnow()
        try:
            with self._db.read() as session:
                programme = self._programme.get(session)
        except Exception:
            log.exception("could not read the programme; retrying next round")
            return
        policy = policy_for(programme, self._settings)
        scheduled: list[tuple[str, Callable[[], object]]] = [
            ("expiry", lambda: jobs.expire(self._db.write, now)),
            (
                "tiers",
                lambda: tier_jobs.evaluate(
                    self._db.write, now, programme, programme_version=self._programme.version
                ),
            ),
            ("memberships", lambda: membership_jobs.expire(self._db.write, now)),
            (
                "coupons",
                lambda: coupon_allowances.issue_allowances(self._db.write, now, programme),
            ),
            (
                "auctions",
                lambda: auction_jobs.close_due(
                    self._db.write,
                    now,
                    policy_for(programme, self._settings),
                    on_sold=mall_orders.place_won,
                ),
            ),
            (
                "offers",
                lambda: offer_jobs.refresh(self._db.read, self._db.write, programme, now),
            ),
            ("sign-ins", lambda: sign_ins.sweep(self._db.write, now)),
            ("orders", lambda: mall_jobs.lapse_unpaid(self._db.write, now, policy)),
            ("refunds", lambda: mall_jobs.refund_late(self._db.write, now, policy)),
            (
                "idempotency",
                lambda: idempotency.purge(
                    self._db.write,
                    now - timedelta(days=self._settings.idempotency_retention_days),
                ),
            ),
            (
                "outbox",
                lambda: outbox_retention.purge(
                    self._db.write, now - timedelta(days=self._settings.outbox_retention_days)
                ),
            ),
            (
                "reminders",
                lambda: reminders.remind(
                    self._db.write, now, programme.zone, programme.reminders.expiry.days_before
                ),
            ),
        ]
        for name, job in scheduled:
            try:
                log.info("%s: %s", name, job())
            except Exception:
                log.exception("scheduled %s failed; retrying next round", name)


def sender_options(settings: Settings) -> SenderOptions:
    """How webhook senders behave, from the settings."""
    from datetime import timedelta

    return SenderOptions(
        timeout_seconds=settings.webhook_timeout_seconds,
        allow_private=settings.webhook_allow_private_targets,
        disable_after_failures=settings.webhook_disable_after_failures,
        disable_after=timedelta(hours=settings.webhook_disable_after_hours),
    )


class Deliverer:
    """A daemon thread that fans out new outbox events and sends due webhook deliveries every
    ``interval`` seconds (about a second: the first attempt follows the commit within seconds).

    Safe in every worker at once: fan-out takes turns, sends are leased.
    """

    def __init__(
        self, db: Database, settings: Settings, programme: ProgrammeCache, interval: float
    ) -> None:
        self._db = db
        self._programme = programme
        self._sender = Sender(db, settings.resolved_secret(), sender_options(settings))
        self._thread = Periodic("tally-webhooks", interval, self.run_once)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._thread.stop()

    def run_once(self) -> None:
        """Fan out, then send until nothing more is due (a failure is logged, retried next)."""
        try:
            with self._db.read() as session:
                programme = self._programme.get(session)
            dispatch(self._db.write, utcnow(), programme)
            for _ in range(10):
                if not self._sender.run_once().leased:
                    break
        except Exception:
            log.exception("webhook delivery failed; retrying next round")
