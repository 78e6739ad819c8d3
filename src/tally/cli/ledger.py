"""``tally ledger`` and ``tally jobs``: verification and scheduled jobs."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import typer

from tally.cli.common import emit, open_database, programme_in_force
from tally.config import get_settings
from tally.kit.clock import as_utc, end_of_day, utcnow
from tally.ledger import jobs
from tally.ledger.posting import policy_for
from tally.ledger.verify import verify as verify_ledger

ledger_app = typer.Typer(help="Inspect the points ledger.", no_args_is_help=True)
jobs_app = typer.Typer(help="Run scheduled jobs once, for any moment.", no_args_is_help=True)


@ledger_app.command("verify")
def verify() -> None:
    """Check every hash chain, that every entry balances, and that balances match postings, lots
    and holds; exit 1 and list the problems when anything is wrong."""
    with open_database() as db, db.read() as session:
        report = verify_ledger(session)
    typer.echo(
        f"checked {report.entries} entries, {report.links} chain links, {report.wallets} wallets"
    )
    if report.ok:
        typer.echo("ledger OK")
        return
    for problem in report.problems:
        typer.echo(f"PROBLEM: {problem}", err=True)
    raise typer.Exit(code=1)


def parse_as_of(value: str | None) -> datetime:
    """``--as-of``: an ISO date (the end of that day, programme time) or datetime (UTC if naive)."""
    if value is None:
        return utcnow()
    try:
        day = date.fromisoformat(value)
    except ValueError:
        pass
    else:
        return end_of_day(day, programme_in_force().zone)
    try:
        return as_utc(datetime.fromisoformat(value))
    except ValueError as exc:
        raise typer.BadParameter(f"not an ISO-8601 date or datetime: {value!r}") from exc


@jobs_app.command("expire")
def expire(
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Expire what is due by this ISO-8601 date (through the end of that day in the "
            "programme's zone) or datetime; default now.",
        ),
    ] = None,
) -> None:
    """Expire due points and lapse timed-out holds (idempotent; safe to re-run)."""
    moment = parse_as_of(as_of)
    with open_database() as db:
        report = jobs.expire(db.write, moment, policy_for(programme_in_force(), get_settings()))
    emit(
        {
            "as_of": moment.isoformat(),
            "members": report.members,
            "lots_expired": report.lots,
            "points_expired": report.points,
            "holds_lapsed": report.holds_lapsed,
        }
    )
