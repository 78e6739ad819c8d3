"""``tally events``: bulk accrual from a file of events."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from tally.cli.common import emit, fail, open_database
from tally.config import get_settings
from tally.errors import TallyError
from tally.flows import event_import
from tally.flows.event_import import ImportReport

app = typer.Typer(help="Events members earn from.", no_args_is_help=True)


@app.command("import")
def import_events(
    file: Annotated[Path, typer.Argument(help="A .csv or .parquet file of events, one a row.")],
    partner: Annotated[str, typer.Option("--partner", help="Code of the partner reporting them.")],
    rejects: Annotated[
        Path | None,
        typer.Option("--rejects", help="Write refused rows, with reason and code, to this CSV."),
    ] = None,
    chunk: Annotated[
        int,
        typer.Option("--chunk", min=1, max=100_000, help="Rows per chunk (one transaction each)."),
    ] = event_import.CHUNK,
) -> None:
    """Apply a file of a partner's events through the programme's rules, as POST /v1/events
    would, a chunk per transaction. Columns: type, event_id, member_id, occurred_at, amount,
    currency, channel, refers_to and attr.<name>. A re-run (after a crash, say) skips the
    events stored already and credits nothing twice. Prints a summary as JSON; exits 2, having
    written nothing, when the file, its columns or the partner are wrong."""
    settings = get_settings()
    console = Console(stderr=True)
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]} events/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    try:
        with open_database(settings) as db, Progress(*columns, console=console) as progress:
            task = progress.add_task("importing", total=None, rate="-")

            def advance(report: ImportReport) -> None:
                rate = f"{report.read / report.seconds:,.0f}" if report.seconds else "-"
                progress.update(task, total=report.rows, completed=report.read, rate=rate)

            report = event_import.run(
                db.write, settings, file, partner, chunk=chunk, rejects=rejects, on_chunk=advance
            )
    except TallyError as error:
        fail(error)
    emit(report.as_dict())
