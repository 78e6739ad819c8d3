"""Runs the scheduled jobs inside ``tally serve`` (each is also a CLI command)."""

from __future__ import annotations

import logging
import threading

from tally.db.session import Database
from tally.kit.clock import utcnow
from tally.ledger import jobs
from tally.ledger.domain import Policy

log = logging.getLogger("tally.scheduler")


class Scheduler:
    """A daemon thread that runs the jobs every ``interval`` seconds until stopped.

    Jobs are idempotent and safe to run concurrently, so several workers may each run one.
    """

    def __init__(self, db: Database, policy: Policy, interval: int) -> None:
        self._db = db
        self._policy = policy
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tally-jobs", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                report = jobs.expire(self._db.write, utcnow(), self._policy)
                if report.lots or report.holds_lapsed:
                    log.info("expiry: %s", report)
            except Exception:
                log.exception("scheduled expiry failed; retrying next round")
