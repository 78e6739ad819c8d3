"""``tally programme``: validate, plan, apply and export the programme file."""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Annotated

import typer

from tally.cli.common import emit, fail, open_database
from tally.config import get_settings
from tally.errors import TallyError
from tally.flows import programme_impact
from tally.kit.clock import utcnow
from tally.programme import runtime, service
from tally.programme.domain import Programme
from tally.programme.loader import InvalidProgramme

app = typer.Typer(
    help="The programme file: currency, tiers, paid plans and partners, applied as versions.",
    no_args_is_help=True,
)

FileArgument = Annotated[
    Path,
    typer.Argument(help="The programme file (YAML).", exists=True, dir_okay=False, readable=True),
]


def _default_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _read(path: Path) -> tuple[Programme, str]:
    """The validated programme in ``path`` and its text; prints every error and exits 1."""
    try:
        text = path.read_text(encoding="utf-8")
        return service.validate(text, str(path)), text
    except UnicodeDecodeError:
        typer.echo(f"{path}:1: programme: the file is not UTF-8 text", err=True)
        raise typer.Exit(code=1) from None
    except InvalidProgramme as invalid:
        for error in invalid.errors:
            typer.echo(str(error), err=True)
        raise typer.Exit(code=1) from None


def programme_schema() -> str:
    """The JSON Schema of the programme file (``docs/programme.schema.json``)."""
    schema = Programme.model_json_schema(by_alias=True)
    return json.dumps(schema, ensure_ascii=False, indent=2) + "\n"


@app.command("validate")
def validate(file: FileArgument) -> None:
    """Check a programme file; print "valid", or each error with its line and field (exit 1)."""
    _read(file)
    typer.echo("valid")


@app.command("plan")
def plan(file: FileArgument) -> None:
    """Show what applying a programme file would change against the running programme, and
    what it would do to members at the next tier evaluation."""
    programme, _text = _read(file)
    settings = get_settings()
    with open_database(settings) as db, db.read() as session:
        running = runtime.effective(session, settings)
        lines = programme_impact.plan(session, running, programme, utcnow())
    for line in lines:
        typer.echo(line)


@app.command("apply")
def apply(
    file: FileArgument,
    by: Annotated[
        str | None, typer.Option("--by", help="Who applies it (default: the OS user).")
    ] = None,
) -> None:
    """Apply a programme file as the next version, atomically; an identical file is refused.
    Prints what it changed and its impact on members (read just before)."""
    programme, text = _read(file)
    settings = get_settings()
    try:
        with open_database(settings) as db:
            with db.read() as session:  # members are read outside the write: it may take a while
                impact = programme_impact.impact(
                    session, runtime.effective(session, settings), programme, utcnow()
                )
            with db.write() as session:
                lines = impact.merged(service.plan(session, programme), programme)
                version = service.apply(session, programme, text, by or _default_user(), utcnow())
            typer.echo(f"applied version {version.version}")
            for line in lines:
                typer.echo(f"  {line}")
    except TallyError as error:
        fail(error)


@app.command("export")
def export(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file, not stdout.")
    ] = None,
) -> None:
    """Write the running programme out as a programme file."""
    try:
        with open_database() as db, db.read() as session:
            text = service.export(session)
    except TallyError as error:
        fail(error)
        return
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}")


@app.command("versions")
def versions() -> None:
    """List every applied version: number, who, when, content hash."""
    with open_database() as db, db.read() as session:
        emit(
            [
                {
                    "version": version.version,
                    "applied_by": version.applied_by,
                    "applied_at": version.applied_at.isoformat(),
                    "content_hash": version.content_hash,
                }
                for version in service.versions(session)
            ]
        )


@app.command("schema")
def schema() -> None:
    """Print the JSON Schema of the programme file."""
    typer.echo(programme_schema(), nl=False)
