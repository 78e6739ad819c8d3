"""The console's programme pages: every applied version, and one version in full."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from tally.api.deps import database
from tally.errors import NotFound
from tally.programme import service as programmes
from tally.programme.domain import Programme, changes
from tally.programme.models import ProgrammeVersion
from tally.staff.service import Permission
from tally.web.console.auth import Staff, require
from tally.web.console.pages import page

router = APIRouter()
Viewer = Annotated[Staff, Depends(require(Permission.VIEW))]
VersionNumber = Annotated[int, Path(gt=0, le=2**31 - 1)]


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


@router.get("/programme")
def programme_versions(request: Request, staff: Viewer) -> Response:
    """Every applied version: who applied it, when, its hash and a summary."""
    with database(request).read() as session:
        rows = version_rows(session)
    context = {"versions": rows, "page_url": "/console/programme", "section": "programme"}
    return page(request, "console/programme.html", staff, context)


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
