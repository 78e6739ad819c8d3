"""The ``tally`` command."""

from __future__ import annotations

from typing import Annotated

import typer
import uvicorn

from tally.cli import (
    campaigns,
    coupons,
    events,
    families,
    jobs,
    ledger,
    mall,
    members,
    memberships,
    partners,
    programme,
    rules,
    staff,
    tiers,
)
from tally.cli.common import emit, open_database
from tally.config import get_settings

app = typer.Typer(
    help="Tally: one loyalty economy across an operator's businesses and partner brands.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(partners.app, name="partner")
app.add_typer(staff.app, name="staff")
app.add_typer(members.app, name="member")
app.add_typer(memberships.app, name="membership")
app.add_typer(families.app, name="family")
app.add_typer(ledger.ledger_app, name="ledger")
app.add_typer(events.app, name="events")
app.add_typer(jobs.jobs_app, name="jobs")
tiers.register(members.app)
app.add_typer(programme.app, name="programme")
app.add_typer(rules.app, name="rules")
app.add_typer(campaigns.app, name="campaign")
app.add_typer(coupons.app, name="coupons")
app.add_typer(mall.app, name="mall")
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
demo_app = typer.Typer(help="The demo ecosystem.", no_args_is_help=True)
app.add_typer(demo_app, name="demo")


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Worker processes.")] = 1,
    demo: Annotated[
        bool, typer.Option("--demo", help="Load the demo ecosystem into an empty database first.")
    ] = False,
) -> None:
    """Serve the API, the operator console and the member pages (migrating the database first)."""
    from tally.demo import loader

    settings = get_settings()
    with open_database(settings) as db:
        if demo:
            with db.write() as session:
                summary = loader.load_if_empty(session, settings)
            typer.echo(loader.welcome(summary, host, port))
    uvicorn.run(
        "tally.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
        proxy_headers=False,
    )


@db_app.command("upgrade")
def upgrade() -> None:
    """Create or migrate the database to the newest schema (processes starting at once migrate
    it once: the others wait for it)."""
    with open_database():
        typer.echo("database is up to date")


@demo_app.command("load")
def demo_load() -> None:
    """Load the demo ecosystem (a carrier, three partner brands, members with history)."""
    from tally.demo import loader

    settings = get_settings()
    with open_database(settings) as db, db.write() as session:
        emit(loader.load_if_empty(session, settings).as_dict())
