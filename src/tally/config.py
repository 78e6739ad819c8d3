"""Settings read from the environment (prefix ``TALLY_``)."""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATA_DIR = Path("var")


class Settings(BaseSettings):
    """Process-wide configuration; programme settings move to the programme file later."""

    model_config = SettingsConfigDict(env_prefix="TALLY_", extra="ignore")

    database_url: str = Field(
        default=f"sqlite:///{DEFAULT_DATA_DIR / 'tally.db'}",
        description="SQLAlchemy URL of the database (SQLite by default, PostgreSQL in production).",
    )
    secret_key: str = Field(
        default="",
        description="Secret for API-key hashing, session cookies and member links. "
        "Generated and stored next to a SQLite database when empty.",
    )
    currency_code: str = Field(default="AIB", description="Code of the points currency.")
    currency_name_zh: str = Field(default="AI豆", description="Currency name in Chinese.")
    currency_name_en: str = Field(default="AI Beans", description="Currency name in English.")
    points_validity_days: int = Field(default=365, ge=1, le=36_500)
    reversal_grace_days: int = Field(
        default=30,
        ge=0,
        le=3650,
        description="Validity of points returned by a reversal when their lot has expired.",
    )
    timezone: str = Field(default="Asia/Shanghai", description="The programme's time zone.")
    default_locale: str = Field(default="zh-CN")
    max_points_per_operation: int = Field(default=1_000_000_000, ge=1)
    outbox_retention_days: int = Field(
        default=30,
        ge=1,
        le=3650,
        description="Days an outbox event is kept after it was fanned out, once each of its "
        "webhook deliveries is final (delivered or given up); older ones and their deliveries "
        "are purged by `tally jobs outbox` (and in `tally serve`).",
    )
    idempotency_retention_days: int = Field(
        default=30,
        ge=1,
        le=3650,
        description="Days an Idempotency-Key's answer is kept; older records are purged by "
        "`tally jobs idempotency` (and in `tally serve`), after which the key is new again.",
    )
    hold_max_seconds: int = Field(default=7 * 24 * 3600, ge=1)
    checkout_window_seconds: int = Field(
        default=30 * 60,
        ge=60,
        le=24 * 3600,
        description="How long a partner may spend a member's points after the member showed it "
        "its member code (a look-up by code).",
    )
    programme_refresh_seconds: float = Field(
        default=5,
        ge=0,
        le=3600,
        description="How often a server checks for a newly applied programme version.",
    )
    job_interval_seconds: int = Field(
        default=300,
        ge=0,
        description="Seconds between scheduled job runs in `tally serve` (0: never).",
    )
    sign_in_free_failures: int = Field(
        default=3,
        ge=0,
        le=100,
        description="Failed console sign-ins of one account before each further attempt waits "
        "(1 s, then twice as long each time).",
    )
    sign_in_lock_failures: int = Field(
        default=10,
        ge=1,
        le=1000,
        description="Failed sign-ins of one account that lock it for `sign_in_lock_seconds`.",
    )
    sign_in_address_lock_failures: int = Field(
        default=30,
        ge=1,
        le=10_000,
        description="Failed sign-ins from one address (any accounts) that lock the address; "
        "a third of them are free.",
    )
    sign_in_lock_seconds: int = Field(
        default=900,
        ge=1,
        le=7 * 24 * 3600,
        description="How long a locked account or address waits.",
    )
    max_body_bytes: int = Field(
        default=64 * 1024,
        ge=1024,
        le=64 * 1024 * 1024,
        description="Largest request body accepted; a larger one is refused 413 before it is "
        "parsed (counted while read when it comes without Content-Length).",
    )
    webhook_poll_seconds: float = Field(
        default=1.0,
        ge=0,
        le=3600,
        description="How often `tally serve` fans out new outbox events and sends due webhook "
        "deliveries (0: never; it also needs `job_interval_seconds`).",
    )
    webhook_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=120,
        description="How long one webhook attempt waits for the receiver's answer.",
    )
    webhook_allow_private_targets: bool = Field(
        default=False,
        description="Allow webhook URLs that resolve to private, link-local or reserved "
        "addresses (an on-premises receiver).",
    )
    webhook_disable_after_failures: int = Field(
        default=100,
        ge=1,
        le=100_000,
        description="Consecutive failed attempts after which a webhook subscription is disabled.",
    )
    webhook_disable_after_hours: int = Field(
        default=72,
        ge=1,
        le=24 * 365,
        description="Hours of nothing but failed attempts after which a webhook subscription is "
        "disabled.",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        ZoneInfo(value)
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def resolved_secret(self) -> str:
        """Return the configured secret, or a per-installation one kept beside the data."""
        if self.secret_key:
            return self.secret_key
        return installation_secret(DEFAULT_DATA_DIR / "secret.key")


def installation_secret(path: Path) -> str:
    """The secret kept in ``path``, created on first use.

    A new secret is written whole to a temporary file that is private (0600) from its first
    byte, then linked into place under its name, which fails if the name exists: of several
    processes starting at once exactly one secret wins, every process reads that one, and no
    process ever reads a partly written file.
    """
    try:
        return _read_secret(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".secret-", suffix=".tmp")
    try:
        os.fchmod(descriptor, 0o600)  # mkstemp's mode already; said once more, whatever umask
        os.write(descriptor, secrets.token_urlsafe(32).encode())
        os.fsync(descriptor)
        os.close(descriptor)
        # Fails when another process linked its secret first: that one is the secret then.
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        os.unlink(temporary)
    return _read_secret(path)


def _read_secret(path: Path) -> str:
    secret = path.read_text().strip()
    if not secret:
        raise RuntimeError(f"{path} is empty; remove it to have a new secret made")
    return secret


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process (cached; tests build their own)."""
    return Settings()
