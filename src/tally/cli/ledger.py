"""``tally ledger``: verification."""

from __future__ import annotations

import typer

from tally.cli.common import open_database
from tally.ledger.verify import verify as verify_ledger
from tally.tiers.verify import check_history

ledger_app = typer.Typer(help="Inspect the points ledger.", no_args_is_help=True)


@ledger_app.command("verify")
def verify() -> None:
    """Check every hash chain, that every entry balances, that balances match postings, lots
    and holds, and that every posting, account, stripe and tier change belongs to something, in one
    snapshot; exit 1 and list the problems when anything is wrong."""
    with open_database() as db, db.read() as session:
        report = verify_ledger(session, also=(check_history,))
    typer.echo(
        f"checked {report.entries} entries, {report.links} chain links, {report.wallets} wallets,"
        f" {report.accounts} accounts"
    )
    if report.ok:
        typer.echo("ledger OK")
        return
    for problem in report.problems:
        typer.echo(f"PROBLEM: {problem}", err=True)
    raise typer.Exit(code=1)
