"""The console's programme pages: the version in force and those scheduled, every applied
version, one version in full, and the plan of a pasted programme file, now or from a later
instant (what applying it would change against the version it follows, and its impact on
members). Nothing is applied here: ``tally programme apply`` does that."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Path
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from tally.api.deps import database, settings
from tally.errors import NotFound, TallyError, ValidationFailed
from tally.flows import programme_impact
from tally.kit.clock import as_utc, utcnow
from tally.programme import loader, runtime
from tally.programme import service as programmes
from tally.programme.changes import changes
from tally.programme.domain import Programme
from tally.programme.models import ProgrammeVersion
from tally.staff.service import Permission
from tally.web.console.auth import Staff, require
from tally.web.console.pages import page
from tally.web.http import programme_in_force

router = APIRouter()
Viewer = Annotated[Staff, Depends(require(Permission.VIEW))]
Manager = Annotated[Staff, Depends(require(Permission.MANAGE))]
VersionNumber = Annotated[int, Path(gt=0, le=2**31 - 1)]
MAX_SOURCE = 200_000  # characters of a pasted programme file (the demo's is about 8,000)
Source = Annotated[str, Form(max_length=MAX_SOURCE)]
EffectiveFrom = Annotated[str, Form(max_length=40)]
SOURCE_NAME = "programme.yaml"


def clock_now(request: Request) -> datetime:
    """Now: ``app.state.clock`` when a test injected one (the programme cache's clock too)."""
    clock = getattr(request.app.state, "clock", None)
    return clock() if clock is not None else utcnow()


@dataclass(frozen=True, slots=True)
class PlanResult:
    """A pasted file's plan: its errors (line and field each), or its change and impact lines."""

    source: str
    errors: list[str]
    lines: list[str]
    effective_from: str = ""
    at: datetime | None = None  # when it would take effect (None: now)
    basis: int | None = None  # the version it is planned against (None: the default)
    refusal: str | None = None  # why applying it as it stands would be refused


@dataclass(frozen=True, slots=True)
class VersionRow:
    """One applied version in the list."""

    version: int
    applied_by: str
    applied_at: datetime
    content_hash: str
    currency: str
    tiers: list[str]
    plans: list[str]
    is_running: bool
    effective_from: datetime | None = None
    status: str = "superseded"  # in_force, scheduled, superseded, cancelled
    cancelled_by: str | None = None
    cancelled_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class VersionDetail:
    """One applied version: its content, what it changed, and its neighbours."""

    version: int
    applied_by: str
    applied_at: datetime
    content_hash: str
    source_text: str
    programme: Programme
    changes: list[str]
    previous: int | None
    next: int | None

    @property
    def is_running(self) -> bool:
        return self.next is None


def _row(version: ProgrammeVersion, running: int | None, now: datetime) -> VersionRow:
    programme = Programme.model_validate(version.content)
    return VersionRow(
        version=version.version,
        applied_by=version.applied_by,
        applied_at=version.applied_at,
        content_hash=version.content_hash,
        currency=programme.currency.code,
        tiers=[tier.code for tier in programme.tiers],
        plans=[plan.code for plan in programme.plans],
        is_running=version.version == running,
        effective_from=as_utc(version.effective_from),
        status=programmes.status(version, running, now),
        cancelled_by=version.cancelled_by,
        cancelled_at=version.cancelled_at,
    )


def version_rows(session: Session, now: datetime) -> list[VersionRow]:
    """Every applied version, newest first, with its status at ``now``."""
    found = programmes.versions(session)
    current = programmes.in_force(session, now)
    running = None if current is None else current.version
    return [_row(version, running, now) for version in reversed(found)]


def version_detail(session: Session, number: int) -> VersionDetail:
    """One version and what it changed against the one before (``not_found`` if unknown)."""
    found = programmes.versions(session)
    position = next((i for i, item in enumerate(found) if item.version == number), None)
    if position is None:
        raise NotFound(f"There is no programme version {number}.")
    version = found[position]
    programme = Programme.model_validate(version.content)
    before = found[position - 1] if position > 0 else None
    previous = Programme.model_validate(before.content) if before is not None else None
    return VersionDetail(
        version=version.version,
        applied_by=version.applied_by,
        applied_at=version.applied_at,
        content_hash=version.content_hash,
        source_text=version.source_text,
        programme=programme,
        changes=changes(previous, programme),
        previous=before.version if before is not None else None,
        next=found[position + 1].version if position + 1 < len(found) else None,
    )


def parse_effective_from(value: str, zone: ZoneInfo) -> datetime | None:
    """The form's "takes effect from": empty (now), or a date and time in the programme's zone
    (``2027-01-01T00:00``, what a datetime-local input sends) or with an offset."""
    text_value = value.strip()
    if not text_value:
        return None
    try:
        moment = datetime.fromisoformat(text_value)
    except ValueError:
        raise ValidationFailed(
            f"{text_value} is not a date and time (2027-01-01T00:00).", field="effective_from"
        ) from None
    return as_utc(moment if moment.tzinfo is not None else moment.replace(tzinfo=zone))


def plan_of(request: Request, source: str, effective_from: str = "") -> PlanResult:
    """Validate ``source`` and, when it is valid, plan it from ``effective_from`` (default
    now) against the version it would follow: the latest one applied, in force or scheduled."""
    try:
        programme = programmes.validate(source, SOURCE_NAME)
    except loader.InvalidProgramme as invalid:
        return PlanResult(source, [str(error) for error in invalid.errors], [], effective_from)
    now = clock_now(request)
    with database(request).read() as session:
        running = programme_in_force(request, session)
        try:
            moment = parse_effective_from(effective_from, running.zone)
            at = programmes.effective_instant(now, moment)
        except TallyError as error:
            return PlanResult(source, [error.detail], [], effective_from)
        latest = programmes.latest(session)
        basis = (
            runtime.default_programme(settings(request))
            if latest is None
            else Programme.model_validate(latest.content)
        )
        refusal = None
        try:
            programmes.check_schedule(session, at, now)
        except TallyError as error:
            refusal = error.detail
        lines = programme_impact.plan(session, basis, programme, at)
    return PlanResult(
        source,
        [],
        lines,
        effective_from,
        at=None if moment is None else at,
        basis=None if latest is None else latest.version,
        refusal=refusal,
    )


def _versions_page(
    request: Request, staff: Staff, plan: PlanResult | None = None, status: int = 200
) -> Response:
    now = clock_now(request)
    with database(request).read() as session:
        rows = version_rows(session, now)
    in_force = next((row for row in rows if row.status == "in_force"), None)
    scheduled = sorted(
        (row for row in rows if row.status == "scheduled"), key=lambda row: row.version
    )
    context = {
        "versions": rows,
        "in_force": in_force,
        "scheduled": scheduled,
        "plan": plan,
        "can_plan": staff.can(Permission.MANAGE),
        "page_url": "/console/programme",
        "section": "programme",
    }
    return page(request, "console/programme.html", staff, context, status=status)


@router.get("/programme")
def programme_versions(request: Request, staff: Viewer) -> Response:
    """The version in force and those scheduled, then every applied version: who applied it,
    when, from when it is in force, its hash and a summary."""
    return _versions_page(request, staff)


@router.post("/programme/plan")
def plan_programme(
    request: Request, staff: Manager, source: Source = "", effective_from: EffectiveFrom = ""
) -> Response:
    """What applying a pasted programme file (from ``effective_from``, a date and time in the
    programme's zone; default now) would change and do to members; nothing is applied
    (``tally programme apply`` does that). A file that does not validate, or a moment that
    cannot be read or has passed, is answered 422 with each error."""
    plan = plan_of(request, source, effective_from)
    return _versions_page(request, staff, plan, status=422 if plan.errors else 200)


@router.get("/programme/{version}")
def programme_version(request: Request, staff: Viewer, version: VersionNumber) -> Response:
    """One version: what it changed, its tiers, plans, family rules and its source text."""
    with database(request).read() as session:
        detail = version_detail(session, version)
    context = {
        "detail": detail,
        "page_url": f"/console/programme/{version}",
        "section": "programme",
    }
    return page(request, "console/programme_version.html", staff, context)
