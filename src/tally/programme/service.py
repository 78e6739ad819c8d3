"""Validate, plan, apply (now or from a later instant), cancel and export the programme;
every applied version is kept.

Each function works inside the caller's transaction: ``apply`` writes the version and creates
the partners it names in that one transaction, so a failure leaves nothing behind.

Versions take effect in version order (ADR 11): a new version takes effect no earlier than now
(give or take :data:`SKEW`) and strictly after every version still scheduled, so the version in
force at any instant is the highest live one whose ``effective_from`` has come, and each
scheduled version was planned against the one that will be in force just before it. A
scheduled version can be cancelled before its instant, the latest first.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta

from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tally.errors import Conflict, NotFound, ValidationFailed
from tally.kit.clock import as_utc, utcnow
from tally.partners import service as partners
from tally.partners.models import Partner
from tally.programme import loader
from tally.programme.changes import changes
from tally.programme.domain import Programme
from tally.programme.models import ProgrammeVersion

APPLY_LOCK = 0x7A11_0001  # PostgreSQL advisory lock serialising applies (SQLite: the write gate)
#: How far in the past ``effective_from`` may be (clocks differ a little): taken as now.
SKEW = timedelta(seconds=60)


def validate(text: str, source: str = loader.DEFAULT_SOURCE) -> Programme:
    """The programme in ``text``; :class:`~tally.programme.loader.InvalidProgramme` otherwise."""
    return loader.load(text, source)


def content_hash(programme: Programme) -> str:
    """SHA-256 of the normalised content (key order and formatting of the file do not count)."""
    canonical = json.dumps(
        programme.dump(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _lock(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": APPLY_LOCK})


def latest(session: Session) -> ProgrammeVersion | None:
    """The highest version not cancelled (in force or scheduled): the one a new version follows."""
    return session.scalar(
        select(ProgrammeVersion)
        .where(ProgrammeVersion.cancelled_at.is_(None))
        .order_by(ProgrammeVersion.version.desc())
        .limit(1)
    )


def in_force(session: Session, at: datetime) -> ProgrammeVersion | None:
    """The version in force at ``at`` (``None``: the built-in default, nothing applied yet)."""
    return session.scalar(
        select(ProgrammeVersion)
        .where(
            ProgrammeVersion.cancelled_at.is_(None),
            ProgrammeVersion.effective_from <= as_utc(at),
        )
        .order_by(ProgrammeVersion.version.desc())
        .limit(1)
    )


def scheduled(session: Session, now: datetime) -> list[ProgrammeVersion]:
    """The versions still to take effect after ``now``, soonest first."""
    return list(
        session.scalars(
            select(ProgrammeVersion)
            .where(
                ProgrammeVersion.cancelled_at.is_(None),
                ProgrammeVersion.effective_from > as_utc(now),
            )
            .order_by(ProgrammeVersion.version)
        )
    )


def running(session: Session, at: datetime | None = None) -> Programme | None:
    """The programme in force at ``at`` (default: the latest live version, scheduled or not),
    or ``None`` before the first apply."""
    version = latest(session) if at is None else in_force(session, at)
    return None if version is None else Programme.model_validate(version.content)


def effective_instant(now: datetime, effective_from: datetime | None) -> datetime:
    """When a version applied at ``now`` takes effect: now, or ``effective_from`` when it is
    later; more than :data:`SKEW` in the past is refused."""
    if effective_from is None:
        return now
    if effective_from.tzinfo is None:
        raise ValidationFailed(
            "effective_from needs a UTC offset (e.g. 2027-01-01T00:00:00+08:00).",
            field="effective_from",
        )
    moment = as_utc(effective_from)
    if moment < now - SKEW:
        raise ValidationFailed(
            f"effective_from {moment.isoformat()} is in the past (now {now.isoformat()}).",
            field="effective_from",
        )
    return max(moment, now)


def check_schedule(session: Session, effective_from: datetime, now: datetime) -> None:
    """Refuse a version taking effect at ``effective_from`` that would not follow every live
    version (one still scheduled at or after that instant). A version applied to take effect at
    once is never in the way, even when the caller's ``now`` is earlier than its apply."""
    last = latest(session)
    if last is None:
        return
    last_from = as_utc(last.effective_from)
    scheduled = last_from > as_utc(last.applied_at)
    if scheduled and last_from > now and effective_from <= last_from:
        raise Conflict(
            f"Version {last.version} is scheduled for {last_from.isoformat()}: a new version "
            "must take effect after it (or cancel it first with `tally programme cancel "
            f"{last.version}`, then plan again)."
        )


def plan(session: Session, programme: Programme, at: datetime | None = None) -> list[str]:
    """What applying ``programme`` would change, one line each (``["no changes"]`` if none),
    against the version that will be in force at ``at`` (its effective instant; default: the
    latest live version)."""
    lines = changes(running(session, at), programme)
    wanted = [spec.code for spec in programme.partners]
    existing = set(session.scalars(select(Partner.code).where(Partner.code.in_(wanted))))
    lines += [
        f"partner {code} is new: it will be registered" for code in wanted if code not in existing
    ]
    return lines


def apply(
    session: Session,
    programme: Programme,
    source_text: str,
    applied_by: str,
    now: datetime,
    effective_from: datetime | None = None,
) -> ProgrammeVersion:
    """Record ``programme`` as the next version, in force from ``effective_from`` (default:
    now), and register partners not yet known (at once, even for a scheduled version: a
    partner unknown to the programme in force can do nothing until it is declared).

    Refused: an ``effective_from`` in the past, one not after a version still scheduled, and
    a programme identical to the latest live version. Concurrent applies are serialised: each
    sees the version the one before it recorded.
    """
    _lock(session)
    moment = effective_instant(now, effective_from)
    check_schedule(session, moment, now)
    current = latest(session)
    digest = content_hash(programme)
    if current is not None and current.content_hash == digest:
        state = "running" if as_utc(current.effective_from) <= now else "scheduled"
        raise Conflict(f"The programme is identical to the {state} version {current.version}.")
    for spec in programme.partners:
        try:
            partners.partner_by_code(session, spec.code)
        except NotFound:
            partners.create_partner(session, spec.code, spec.name, now)
    highest = session.scalar(select(func.max(ProgrammeVersion.version)))
    version = ProgrammeVersion(
        version=1 if highest is None else highest + 1,
        content=programme.dump(),
        source_text=source_text,
        content_hash=digest,
        applied_by=applied_by.strip() or "unknown",
        applied_at=now,
        effective_from=moment,
    )
    session.add(version)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(
            f"Another apply recorded version {version.version} first; plan again."
        ) from None
    return version


def cancel(session: Session, number: int, cancelled_by: str, now: datetime) -> ProgrammeVersion:
    """Withdraw a scheduled version before its instant; refused once it is in force, when it
    was cancelled already, and while a later version is scheduled after it (cancel that one
    first: it was planned against this one)."""
    _lock(session)
    found = session.scalar(select(ProgrammeVersion).where(ProgrammeVersion.version == number))
    if found is None:
        raise NotFound(f"There is no programme version {number}.")
    if found.cancelled_at is not None:
        raise Conflict(f"Version {number} was cancelled already.")
    starts = as_utc(found.effective_from)
    if starts <= now:
        raise Conflict(
            f"Version {number} took effect at {starts.isoformat()}: a version in force cannot "
            "be cancelled (apply a new one)."
        )
    last = latest(session)
    if last is not None and last.version != number:
        raise Conflict(
            f"Version {last.version} is scheduled after version {number}: cancel it first."
        )
    found.cancelled_at = now
    found.cancelled_by = cancelled_by.strip() or "unknown"
    session.flush()
    return found


def export(session: Session, now: datetime | None = None) -> str:
    """The programme in force at ``now`` (default: the clock's) as YAML that validates back to
    the same model."""
    version = in_force(session, now or utcnow())
    if version is None:
        raise NotFound("No programme has been applied yet.")
    programme = Programme.model_validate(version.content)
    who = " ".join(version.applied_by.split())
    header = (
        f"# Tally programme, version {version.version}, applied by {who} "
        f"at {version.applied_at.isoformat()}\n"
    )
    return header + loader.dump(programme)


def status(version: ProgrammeVersion, in_force_number: int | None, now: datetime) -> str:
    """``in_force``, ``scheduled``, ``cancelled`` or ``superseded`` (was in force, no more)."""
    if version.cancelled_at is not None:
        return "cancelled"
    if version.version == in_force_number:
        return "in_force"
    return "scheduled" if as_utc(version.effective_from) > now else "superseded"


def versions(session: Session) -> list[ProgrammeVersion]:
    """Every applied version (scheduled and cancelled ones too), oldest first."""
    return list(session.scalars(select(ProgrammeVersion).order_by(ProgrammeVersion.version)))
