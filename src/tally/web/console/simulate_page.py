"""The console's simulation page: an administrator uploads a draft programme file (and
optionally a period) and reads what its rules would have given the stored events, beside what
the running programme gave them (``tally rules simulate``'s report). Nothing is written."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, UploadFile
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from tally.api.deps import database, settings
from tally.errors import TallyError
from tally.flows import simulation
from tally.programme import loader
from tally.programme import service as programmes
from tally.programme.domain import Money
from tally.staff.service import Permission
from tally.web.console.auth import Staff, require
from tally.web.console.pages import page
from tally.web.console.programme_page import MAX_SOURCE, SOURCE_NAME, clock_now
from tally.web.http import gettext, programme_in_force
from tally.web.i18n import N_

router = APIRouter()
Manager = Annotated[Staff, Depends(require(Permission.MANAGE))]
Day = Annotated[str, Form(max_length=10)]
SHOWN = 50  # members and events listed


@dataclass(frozen=True, slots=True)
class Outcome:
    """A simulation's report, or why there is none."""

    since: str
    until: str
    name: str = ""
    errors: tuple[str, ...] = ()
    result: simulation.Simulation | None = None

    @property
    def running_cost(self) -> Money | None:
        if self.result is None:
            return None
        report = self.result.report
        return Money(report.running_cost, report.running_currency)

    @property
    def draft_cost(self) -> Money | None:
        if self.result is None:
            return None
        report = self.result.report
        return Money(report.draft_cost, report.draft_currency)

    @property
    def cost_change(self) -> Money | None:
        """The draft's extra cost (negative: a saving), when both sides price in one money."""
        if self.result is None:
            return None
        report = self.result.report
        if report.running_currency != report.draft_currency:
            return None
        return Money(report.draft_cost - report.running_cost, report.draft_currency)


TOO_LARGE = N_("The file is larger than %(size)s characters.")
NOT_TEXT = N_("The file is not UTF-8 text.")
NO_FILE = N_("Choose a draft programme file.")


def simulate_upload(request: Request, name: str, content: bytes, since: str, until: str) -> Outcome:
    """Validate the uploaded draft and simulate it on the stored events of the period."""
    if not content:
        return Outcome(since, until, name, (gettext(request, NO_FILE),))
    if len(content) > MAX_SOURCE:
        return Outcome(since, until, name, (gettext(request, TOO_LARGE, size=MAX_SOURCE),))
    try:
        source = content.decode("utf-8")
    except UnicodeDecodeError:
        return Outcome(since, until, name, (gettext(request, NOT_TEXT),))
    try:
        draft = programmes.validate(source, name or SOURCE_NAME)
    except loader.InvalidProgramme as invalid:
        return Outcome(since, until, name, tuple(str(error) for error in invalid.errors))
    now = clock_now(request)
    with database(request).read() as session:
        simulation.read_only(session)
        zone = programme_in_force(request, session).zone
        try:
            period = simulation.period_of(since, until, zone)
        except TallyError as error:
            return Outcome(since, until, name, (error.detail,))
        result = simulation.stored(session, settings(request), draft, period, now)
    return Outcome(since, until, name, result=result)


def _page(request: Request, staff: Staff, outcome: Outcome | None, status: int = 200) -> Response:
    context = {
        "outcome": outcome,
        "shown": SHOWN,
        "page_url": "/console/programme/simulate",
        "section": "programme",
    }
    return page(request, "console/simulate.html", staff, context, status=status)


@router.get("/programme/simulate")
def simulate_form(request: Request, staff: Manager) -> Response:
    """The form: a draft programme file and an optional period."""
    return _page(request, staff, None)


@router.post("/programme/simulate")
async def simulate_draft(
    request: Request,
    staff: Manager,
    draft: Annotated[UploadFile | None, File()] = None,
    since: Day = "",
    until: Day = "",
) -> Response:
    """The report of an uploaded draft on the stored events of the period (days of the running
    programme's zone, both included; empty: unbounded). A file that does not validate, or a
    period that cannot be read, is answered 422 with each error."""
    content = b"" if draft is None else await draft.read(MAX_SOURCE + 1)
    name = "" if draft is None or not draft.filename else draft.filename.rsplit("/", 1)[-1]
    outcome = await run_in_threadpool(simulate_upload, request, name, content, since, until)
    return _page(request, staff, outcome, status=422 if outcome.errors else 200)
