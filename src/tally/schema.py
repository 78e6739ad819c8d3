"""The complete schema (every domain's models) and its migrations."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, MetaData, text

from tally.accounts import models as account_models
from tally.adjustments import models as adjustment_models
from tally.auctions import models as auction_models
from tally.audit import models as audit_models
from tally.campaigns import models as campaign_models
from tally.coupons import models as coupon_models
from tally.db.base import Base
from tally.engagement import models as engagement_models
from tally.events import models as event_models
from tally.families import models as family_models
from tally.idempotency import models as idempotency_models
from tally.job_failures import models as job_failure_models
from tally.ledger import models as ledger_models
from tally.mall import models as mall_models
from tally.member_codes import models as member_code_models
from tally.members import models as member_models
from tally.memberships import models as membership_models
from tally.offers import models as offer_models
from tally.outbox import models as outbox_models
from tally.partners import models as partner_models
from tally.privacy import models as privacy_models
from tally.programme import models as programme_models
from tally.sessions import models as session_models
from tally.staff import models as staff_models
from tally.throttling import models as throttling_models
from tally.tiers import models as tier_models
from tally.webhooks import models as webhook_models

MODEL_MODULES = (
    member_models,
    partner_models,
    staff_models,
    ledger_models,
    idempotency_models,
    programme_models,
    family_models,
    tier_models,
    membership_models,
    privacy_models,
    audit_models,
    session_models,
    throttling_models,
    adjustment_models,
    member_code_models,
    job_failure_models,
    outbox_models,
    webhook_models,
    account_models,
    event_models,
    campaign_models,
    engagement_models,
    mall_models,
    coupon_models,
    auction_models,
    offer_models,
)
MIGRATIONS = Path(__file__).parent / "migrations"


def metadata() -> MetaData:
    """The metadata of every table Tally owns."""
    return Base.metadata


def alembic_config(engine: Engine) -> Config:
    """An Alembic configuration bound to ``engine`` (no ini file needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


# The key of the PostgreSQL advisory lock that migrations run under ("tally" in ASCII).
MIGRATION_LOCK_KEY = 0x74616C6C79


def migrate(engine: Engine) -> None:
    """Bring the database to the newest schema (safe to call on every start).

    Processes starting at once on a new database (workers, several servers, a command beside
    them) migrate it once: each migrates under one lock — an advisory lock on PostgreSQL, a
    file lock beside the database on SQLite — so the others wait, then find it up to date.
    """
    with _migration_lock(engine):
        command.upgrade(alembic_config(engine), "head")


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            connection.commit()
            try:
                yield
            finally:
                connection.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY}
                )
                connection.commit()
        return
    path = engine.url.database if engine.dialect.name == "sqlite" else None
    if not path or path == ":memory:" or path.startswith("file:"):
        yield  # a database only this process sees
        return
    descriptor = os.open(f"{path}.migrate-lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock
