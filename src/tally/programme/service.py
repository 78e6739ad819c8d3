"""Validate, plan, apply and export the programme; every applied version is kept.

Each function works inside the caller's transaction: ``apply`` writes the version and creates
the partners it names in that one transaction, so a failure leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tally.errors import Conflict, NotFound
from tally.partners import service as partners
from tally.partners.models import Partner
from tally.programme import loader
from tally.programme.domain import Programme, changes
from tally.programme.models import ProgrammeVersion

APPLY_LOCK = 0x7A11_0001  # PostgreSQL advisory lock serialising applies (SQLite: the write gate)


def validate(text: str, source: str = loader.DEFAULT_SOURCE) -> Programme:
    """The programme in ``text``; :class:`~tally.programme.loader.InvalidProgramme` otherwise."""
    return loader.load(text, source)


def content_hash(programme: Programme) -> str:
    """SHA-256 of the normalised content (key order and formatting of the file do not count)."""
    canonical = json.dumps(
        programme.dump(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def latest(session: Session) -> ProgrammeVersion | None:
    """The running (most recently applied) version, if any."""
    return session.scalar(
        select(ProgrammeVersion).order_by(ProgrammeVersion.version.desc()).limit(1)
    )


def running(session: Session) -> Programme | None:
    """The running programme, or ``None`` before the first apply."""
    version = latest(session)
    return None if version is None else Programme.model_validate(version.content)


def plan(session: Session, programme: Programme) -> list[str]:
    """What applying ``programme`` would change, one line each (``["no changes"]`` if none)."""
    lines = changes(running(session), programme)
    wanted = [spec.code for spec in programme.partners]
    existing = set(session.scalars(select(Partner.code).where(Partner.code.in_(wanted))))
    lines += [
        f"partner {code} is new: it will be registered" for code in wanted if code not in existing
    ]
    return lines


def apply(
    session: Session, programme: Programme, source_text: str, applied_by: str, now: datetime
) -> ProgrammeVersion:
    """Record ``programme`` as the next version and register partners not yet known.

    An identical programme (same normalised content as the running one) is refused. Concurrent
    applies are serialised: each sees the version the one before it recorded.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": APPLY_LOCK})
    current = latest(session)
    digest = content_hash(programme)
    if current is not None and current.content_hash == digest:
        raise Conflict(f"The programme is identical to the running version {current.version}.")
    for spec in programme.partners:
        try:
            partners.partner_by_code(session, spec.code)
        except NotFound:
            partners.create_partner(session, spec.code, spec.name, now)
    version = ProgrammeVersion(
        version=1 if current is None else current.version + 1,
        content=programme.dump(),
        source_text=source_text,
        content_hash=digest,
        applied_by=applied_by.strip() or "unknown",
        applied_at=now,
    )
    session.add(version)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(
            f"Another apply recorded version {version.version} first; plan again."
        ) from None
    return version


def export(session: Session) -> str:
    """The running programme as YAML that validates back to the same model."""
    version = latest(session)
    if version is None:
        raise NotFound("No programme has been applied yet.")
    programme = Programme.model_validate(version.content)
    who = " ".join(version.applied_by.split())
    header = (
        f"# Tally programme, version {version.version}, applied by {who} "
        f"at {version.applied_at.isoformat()}\n"
    )
    return header + loader.dump(programme)


def versions(session: Session) -> list[ProgrammeVersion]:
    """Every applied version, oldest first."""
    return list(session.scalars(select(ProgrammeVersion).order_by(ProgrammeVersion.version)))
