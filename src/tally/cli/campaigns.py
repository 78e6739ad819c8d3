"""``tally campaign list|show|results|pause|resume``: the programme's campaigns as they stand,
their per-arm results, and pauses without a new programme version (audited, as from the
console and the API)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

import typer
from sqlalchemy import select

from tally.audit.domain import staff_actor
from tally.campaigns import service as campaigns
from tally.cli.common import emit, fail, open_database
from tally.config import get_settings
from tally.errors import Forbidden, NotFound, TallyError
from tally.flows.event_intake import book_for
from tally.kit.clock import utcnow
from tally.programme import runtime
from tally.staff import service as staff
from tally.staff.models import StaffUser

app = typer.Typer(
    help="Campaigns of the programme in force: status, results, pause and resume.",
    no_args_is_help=True,
)
CodeArgument = Annotated[str, typer.Argument(help="The campaign's code, e.g. BASE.")]
StaffOption = Annotated[
    str, typer.Option("--staff", help="Username of the staff member acting (audited).")
]


def _view(view: campaigns.CampaignView) -> dict[str, Any]:
    found = asdict(view)
    found["status"] = view.status.value
    return found


def _actor(session: Any, username: str) -> str:
    user = session.scalar(select(StaffUser).where(StaffUser.username == username))
    if user is None or not user.is_active:
        raise NotFound(f"No active staff member {username}.")
    if not staff.can(user.role, staff.Permission.CAMPAIGNS):
        raise Forbidden(
            f"Staff member {username} ({user.role.value}) may not pause or resume campaigns."
        )
    return staff_actor(user.id)


@app.command("list")
def list_campaigns() -> None:
    """Every campaign in file order: status, schedule, budget used and today's points."""
    settings = get_settings()
    now = utcnow()
    with open_database(settings) as db, db.read() as session:
        programme = runtime.effective(session, settings, now)
        views = campaigns.campaigns(session, programme, book_for(programme), now)
    emit([_view(view) for view in views])


@app.command("show")
def show(code: CodeArgument) -> None:
    """One campaign as it stands now."""
    settings = get_settings()
    now = utcnow()
    try:
        with open_database(settings) as db, db.read() as session:
            programme = runtime.effective(session, settings, now)
            emit(_view(campaigns.campaign(session, programme, book_for(programme), code, now)))
    except TallyError as error:
        fail(error)


@app.command("results")
def results(code: CodeArgument) -> None:
    """The campaign's totals per arm (A/B variants and the holdout), net of refunds."""
    settings = get_settings()
    try:
        with open_database(settings) as db, db.read() as session:
            programme = runtime.effective(session, settings, utcnow())
            emit([asdict(arm) for arm in campaigns.results(session, book_for(programme), code)])
    except TallyError as error:
        fail(error)


def _set_paused(code: str, username: str, *, paused: bool) -> None:
    settings = get_settings()
    now = utcnow()
    try:
        with open_database(settings) as db, db.write() as session:
            programme = runtime.effective(session, settings, now)
            view = campaigns.set_paused(
                session,
                programme,
                book_for(programme),
                code,
                paused=paused,
                actor=_actor(session, username),
                now=now,
            )
            emit(_view(view))
    except TallyError as error:
        fail(error)


@app.command("pause")
def pause(code: CodeArgument, staff_user: StaffOption) -> None:
    """Pause a campaign: its rules give nothing (skipped as ``paused``) until resumed.
    Pausing a paused campaign changes nothing."""
    _set_paused(code, staff_user, paused=True)


@app.command("resume")
def resume(code: CodeArgument, staff_user: StaffOption) -> None:
    """Resume a paused campaign from the next event."""
    _set_paused(code, staff_user, paused=False)
