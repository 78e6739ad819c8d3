"""The console's programme pages: every applied version, one version in full, and the plan of
a pasted programme file (what applying it would change, and its impact on members)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from tally.api.deps import database
from tally.errors import NotFound
from tally.flows import programme_impact
from tally.kit.clock import utcnow
from tally.programme import loader
from tally.programme import service as programmes
from tally.programme.domain import Programme, changes
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
SOURCE_NAME = "programme.yaml"


@dataclass(frozen=True, slots=True)
class PlanResult:
    """A pasted file's plan: its errors (line and field each), or its change and impact lines."""

    source: str
    errors: list[str]
    lines: list[str]


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


def _row(version: ProgrammeVersion, running: int) -> VersionRow:
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
    )


def version_rows(session: Session) -> list[VersionRow]:
    """Every applied version, newest first."""
    found = programmes.versions(session)
    running = found[-1].version if found else 0
    return [_row(version, running) for version in reversed(found)]


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


def plan_of(request: Request, source: str) -> PlanResult:
    """Validate ``source`` and, when it is valid, plan it against the programme in force."""
    try:
        programme = programmes.validate(source, SOURCE_NAME)
    except loader.InvalidProgramme as invalid:
        return PlanResult(source, [str(error) for error in invalid.errors], [])
    with database(request).read() as session:
        running = programme_in_force(request, session)
        lines = programme_impact.plan(session, running, programme, utcnow())
    return PlanResult(source, [], lines)


def _versions_page(
    request: Request, staff: Staff, plan: PlanResult | None = None, status: int = 200
) -> Response:
    with database(request).read() as session:
        rows = version_rows(session)
    context = {
        "versions": rows,
        "plan": plan,
        "can_plan": staff.can(Permission.MANAGE),
        "page_url": "/console/programme",
        "section": "programme",
    }
    return page(request, "console/programme.html", staff, context, status=status)


@router.get("/programme")
def programme_versions(request: Request, staff: Viewer) -> Response:
    """Every applied version: who applied it, when, its hash and a summary."""
    return _versions_page(request, staff)


@router.post("/programme/plan")
def plan_programme(request: Request, staff: Manager, source: Source = "") -> Response:
    """What applying a pasted programme file would change and do to members; nothing is
    applied (``tally programme apply`` does that). A file that does not validate is answered
    422 with each error's line and field."""
    plan = plan_of(request, source)
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
