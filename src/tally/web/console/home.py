"""The console's home page: find a member by any identity (live results with htmx)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import Response

from tally.api.deps import database
from tally.audit.domain import Action
from tally.kit.clock import utcnow
from tally.web.console import views
from tally.web.console.auth import CurrentStaff, record_view
from tally.web.console.forms import has_control_characters
from tally.web.console.pages import page
from tally.web.http import is_htmx, programme_in_force

router = APIRouter()
MAX_QUERY = 191


@router.get("")
def home(
    request: Request,
    staff: CurrentStaff,
    q: Annotated[str, Query(max_length=MAX_QUERY)] = "",
) -> Response:
    """Search members; htmx asks for the ``results`` block only."""
    results: list[views.MemberSummary] = []
    if q.strip() and not has_control_characters(q):
        with database(request).read() as session:
            results = views.search(
                session,
                q,
                reveal_phone=staff.sees_full_phone,
                now=utcnow(),
                zone=programme_in_force(request, session).zone,
            )
    if results:  # a look at members' personal data
        shown: dict[str, object] = {"query": q.strip(), "members": [item.id for item in results]}
        record_view(request, staff, Action.MEMBER_SEARCH, details=shown)
    context = {"q": q.strip(), "results": results, "page_url": "/console"}
    block = "results" if is_htmx(request) else None
    return page(request, "console/home.html", staff, context, block=block)
