"""``tally programme``: validate, plan, apply (now or from a later instant), cancel a scheduled
version, and export the programme file."""

from __future__ import annotations

import getpass
import json
from datetime import date, datetime, time
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.orm import Session

from tally.cli.common import emit, fail, open_database
from tally.config import Settings, get_settings
from tally.errors import TallyError, ValidationFailed
from tally.flows import programme_impact
from tally.kit.clock import as_utc, utcnow
from tally.programme import runtime, service
from tally.programme.domain import Programme
from tally.programme.loader import InvalidProgramme
from tally.programme.models import ProgrammeVersion

app = typer.Typer(
    help="The programme file: currency, tiers, paid plans and partners, applied as versions.",
    no_args_is_help=True,
)

FileArgument = Annotated[
    Path,
    typer.Argument(help="The programme file (YAML).", exists=True, dir_okay=False, readable=True),
]


EffectiveFromOption = Annotated[
    str | None,
    typer.Option(
        "--effective-from",
        help="When the version takes effect: an ISO-8601 datetime with its UTC offset "
        "(2027-01-01T00:00:00+08:00, or Z), or a date (the start of that day in the file's "
        "time zone); default now. Not in the past, and after any version still scheduled.",
    ),
]


def parse_effective_from(value: str | None, programme: Programme) -> datetime | None:
    """``--effective-from``: a datetime with an offset, or a date (midnight, programme zone)."""
    if value is None:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        pass
    else:
        return as_utc(datetime.combine(day, time.min, tzinfo=programme.zone))
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationFailed(
            f"--effective-from {value!r} is not an ISO-8601 date or datetime.",
            field="effective_from",
        ) from None
    if moment.tzinfo is None:
        raise ValidationFailed(
            f"--effective-from {value!r} has no UTC offset: write it as {value}Z or with the "
            "programme's offset (e.g. +08:00).",
            field="effective_from",
        )
    return as_utc(moment)


def _describe(version: ProgrammeVersion | None, now: datetime) -> str:
    if version is None:
        return "the built-in default (no programme applied yet)"
    starts = as_utc(version.effective_from)
    when = "since" if starts <= now else "from"
    return (
        f"version {version.version} {when} {starts.isoformat()} "
        f"(applied by {' '.join(version.applied_by.split())} at "
        f"{as_utc(version.applied_at).isoformat()})"
    )


def schedule_lines(session: Session, now: datetime, effective_from: datetime | None) -> list[str]:
    """What is in force and scheduled at ``now``, and what a draft taking effect at
    ``effective_from`` (now by default) is planned against: the latest live version, which is
    the one in force just before it (a version must follow every scheduled one)."""
    lines = [f"in force: {_describe(service.in_force(session, now), now)}"]
    lines += [
        f"scheduled: {_describe(version, now)}" for version in service.scheduled(session, now)
    ] or ["scheduled: nothing"]
    at = service.effective_instant(now, effective_from)
    basis = service.latest(session)
    number = "the built-in default" if basis is None else f"version {basis.version}"
    moment = "now" if effective_from is None else at.isoformat()
    lines.append(f"planned against {number}, to take effect {moment}:")
    try:
        service.check_schedule(session, at, now)
    except TallyError as refusal:
        lines.append(f"refused as it stands: {refusal.detail}")
    return lines


def _basis(session: Session, settings: Settings) -> Programme:
    """The programme a new version follows: the latest live one (the default before any)."""
    latest = service.latest(session)
    if latest is None:
        return runtime.default_programme(settings)
    return Programme.model_validate(latest.content)


def _default_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def read_programme(path: Path) -> tuple[Programme, str]:
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
    read_programme(file)
    typer.echo("valid")


@app.command("plan")
def plan(file: FileArgument, effective_from: EffectiveFromOption = None) -> None:
    """Show what is in force and scheduled, then what applying a programme file (now, or from
    --effective-from) would change against the version it follows, and what it would do to
    members at the next tier evaluation. Applies nothing."""
    programme, _text = read_programme(file)
    settings = get_settings()
    now = utcnow()
    try:
        moment = parse_effective_from(effective_from, programme)
        with open_database(settings) as db, db.read() as session:
            at = service.effective_instant(now, moment)
            header = schedule_lines(session, now, moment)
            lines = programme_impact.plan(session, _basis(session, settings), programme, at)
    except TallyError as error:
        fail(error)
        return
    for line in [*header, *lines]:
        typer.echo(line)


@app.command("apply")
def apply(
    file: FileArgument,
    by: Annotated[
        str | None, typer.Option("--by", help="Who applies it (default: the OS user).")
    ] = None,
    effective_from: EffectiveFromOption = None,
) -> None:
    """Apply a programme file as the next version, atomically, in force now or from
    --effective-from (every server switches then, without a restart); an identical file is
    refused. Prints what it changed and its impact on members (read just before)."""
    programme, text = read_programme(file)
    settings = get_settings()
    try:
        now = utcnow()
        moment = parse_effective_from(effective_from, programme)
        at = service.effective_instant(now, moment)
        with open_database(settings) as db:
            with db.read() as session:  # members are read outside the write: it may take a while
                impact = programme_impact.impact(session, _basis(session, settings), programme, at)
            with db.write() as session:
                lines = impact.merged(service.plan(session, programme), programme)
                version = service.apply(
                    session, programme, text, by or _default_user(), now, moment
                )
            starts = as_utc(version.effective_from)
            if starts > now:
                typer.echo(f"scheduled version {version.version} from {starts.isoformat()}")
            else:
                typer.echo(f"applied version {version.version}")
            for line in lines:
                typer.echo(f"  {line}")
    except TallyError as error:
        fail(error)


@app.command("cancel")
def cancel(
    version: Annotated[int, typer.Argument(help="The scheduled version to cancel.", min=1)],
    by: Annotated[
        str | None, typer.Option("--by", help="Who cancels it (default: the OS user).")
    ] = None,
) -> None:
    """Cancel a scheduled version before it takes effect (the latest scheduled first); a
    version in force is never cancelled: apply a new one instead."""
    try:
        with open_database() as db, db.write() as session:
            found = service.cancel(session, version, by or _default_user(), utcnow())
            starts = as_utc(found.effective_from).isoformat()
    except TallyError as error:
        fail(error)
        return
    typer.echo(f"cancelled version {version} (it was to take effect at {starts})")


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
    """List every applied version: number, who, when, from when it is in force, its status
    (in_force, scheduled, superseded, cancelled) and content hash."""
    now = utcnow()
    with open_database() as db, db.read() as session:
        current = service.in_force(session, now)
        number = None if current is None else current.version
        emit(
            [
                {
                    "version": version.version,
                    "status": service.status(version, number, now),
                    "applied_by": version.applied_by,
                    "applied_at": as_utc(version.applied_at).isoformat(),
                    "effective_from": as_utc(version.effective_from).isoformat(),
                    "cancelled_by": version.cancelled_by,
                    "cancelled_at": None
                    if version.cancelled_at is None
                    else as_utc(version.cancelled_at).isoformat(),
                    "content_hash": version.content_hash,
                }
                for version in service.versions(session)
            ]
        )


@app.command("schema")
def schema() -> None:
    """Print the JSON Schema of the programme file."""
    typer.echo(programme_schema(), nl=False)
