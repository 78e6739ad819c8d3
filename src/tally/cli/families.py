"""``tally family``: look at family accounts."""

from __future__ import annotations

from typing import Annotated

import typer

from tally.cli.common import emit, fail, open_database
from tally.config import get_settings
from tally.errors import NotFound, TallyError
from tally.families import service as families
from tally.kit.clock import utcnow
from tally.programme import runtime

app = typer.Typer(help="Look at family accounts.", no_args_is_help=True)


@app.command("show")
def show(family_id: Annotated[int, typer.Argument(help="The family's id.")]) -> None:
    """Print a family: members, roles, mode, limits, this month's spend, pooled points."""
    try:
        settings = get_settings()
        with open_database(settings) as db, db.read() as session:
            programme = runtime.effective(session, settings)
            view = families.view(session, family_id, utcnow(), programme)
        emit(view.as_dict())
    except TallyError as error:
        fail(error)


@app.command("of")
def family_of(member_id: Annotated[int, typer.Argument(help="Tally member id.")]) -> None:
    """Print the family a member is in (an error when it is in none)."""
    try:
        settings = get_settings()
        with open_database(settings) as db, db.read() as session:
            programme = runtime.effective(session, settings)
            view = families.family_of(session, member_id, utcnow(), programme=programme)
        if view is None:
            raise NotFound(f"Member {member_id} is not in a family.")
        emit(view.as_dict())
    except TallyError as error:
        fail(error)
