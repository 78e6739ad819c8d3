"""``tally staff``: console users."""

from __future__ import annotations

from typing import Annotated

import typer

from tally.cli.common import emit, fail, open_database
from tally.errors import TallyError
from tally.kit.clock import utcnow
from tally.staff import service as staff
from tally.staff.models import StaffRole

app = typer.Typer(help="Operator staff who sign in to the console.", no_args_is_help=True)


@app.command("create")
def create(
    username: Annotated[str, typer.Argument(help="Sign-in name.")],
    role: Annotated[
        StaffRole, typer.Option("--role", help="admin, ops, finance, support or auditor.")
    ],
    password: Annotated[
        str,
        typer.Option(
            "--password",
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            envvar="TALLY_STAFF_PASSWORD",
            help="At least 10 characters (prompted when omitted).",
        ),
    ],
    name: Annotated[str, typer.Option("--name", help="Display name.")] = "",
) -> None:
    """Add a staff member who signs in to the console with a password (stored as argon2)."""
    try:
        with open_database() as db, db.write() as session:
            user = staff.create(session, username, password, role, name, utcnow())
            emit({"staff_id": user.id, "username": user.username, "role": user.role.value})
    except TallyError as error:
        fail(error)
