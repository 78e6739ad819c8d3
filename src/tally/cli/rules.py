"""``tally rules``: simulate a draft programme's earning rules on past (or given) events."""

from __future__ import annotations

import sys
from pathlib import Path
from types import TracebackType
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from rich.table import Table

from tally.cli.common import emit, fail, open_database
from tally.cli.programme import read_programme
from tally.config import get_settings
from tally.errors import TallyError
from tally.events import importing
from tally.flows import simulation
from tally.kit.clock import utcnow
from tally.programme import runtime

app = typer.Typer(help="Earning rules: simulate a draft programme's rules.", no_args_is_help=True)
PROGRESS_FROM = 5_000  # replays from which a progress bar is shown
SHOWN = 50  # rows of members or events listed in the human report


class _Bar:
    """A rich progress bar on stderr, shown only for long simulations."""

    def __init__(self) -> None:
        self._progress: Progress | None = None
        self._task: Any = None

    def start(self, total: int) -> None:
        if total < PROGRESS_FROM:
            return
        self._progress = Progress(
            "simulating",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(file=sys.stderr),
            transient=True,
        )
        self._progress.start()
        self._task = self._progress.add_task("events", total=total)

    def advance(self, count: int) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, count)

    def __enter__(self) -> _Bar:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()


@app.command("simulate")
def simulate(
    file: Annotated[
        Path,
        typer.Argument(
            help="The draft programme file (YAML).", exists=True, dir_okay=False, readable=True
        ),
    ],
    since: Annotated[
        str | None,
        typer.Option("--since", help="First day of events replayed (programme's zone)."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", help="Last day of events replayed, included (programme's zone)."),
    ] = None,
    events: Annotated[
        Path | None,
        typer.Option(
            "--events",
            help="Replay this CSV or Parquet file of events instead of the stored ones (columns "
            "type, event_id, member_id, occurred_at, amount, currency, channel, refers_to, "
            "attr.<name>); "
            "the running programme's side is then computed by the same engine.",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Replay a period's stored events (or a file's) through a draft programme; writes nothing.

    Reports, beside what the running programme awarded: points and growth per campaign and
    rule, members affected, budget use, the cost in money at the point value, and the members
    whose tier would differ (docs/rules.md, "Simulation", says what is approximated).
    """
    draft, _text = read_programme(file)
    settings = get_settings()
    now = utcnow()
    try:
        sent = None if events is None else importing.open_file(events)
        with open_database(settings) as db, db.read() as session, _Bar() as bar:
            simulation.read_only(session)
            zone = runtime.in_force(session, settings, now)[1].zone
            period = simulation.period_of(since, until, zone)
            if sent is None:
                result = simulation.stored(session, settings, draft, period, now, bar)
            else:
                result = simulation.from_file(session, settings, draft, sent, period, now, bar)
    except TallyError as error:
        fail(error)
        return
    if as_json:
        emit(simulation.document(result))
    else:
        _print(result, file)


def _print(result: simulation.Simulation, draft: Path) -> None:
    report = result.report
    console = Console(file=sys.stdout, width=None if sys.stdout.isatty() else 120)
    version = (
        "the default programme"
        if result.running_version is None
        else f"version {result.running_version}"
    )
    source = "stored events" if result.source == simulation.STORED else "events of the file"
    period = result.period
    since = f"from {period.since.isoformat()}" if period.since else "from the first"
    until = f"until {period.until.isoformat()}" if period.until else "to now"
    console.print(
        f"{report.events} {source} ({since} {until}): {version} (running) beside "
        f"{draft.name} (draft). Nothing was written.",
        highlight=False,
    )
    totals = Table(title="Totals", title_justify="left")
    for column in ("", "running", "draft", "change"):
        totals.add_column(column, justify="left" if not column else "right")
    for name, old, new in (
        ("points", report.running.points, report.draft.points),
        ("growth", report.running.growth, report.draft.growth),
        ("events rewarded", report.running.events, report.draft.events),
        ("members affected", report.running.members, report.draft.members),
    ):
        totals.add_row(name, f"{old:,}", f"{new:,}", f"{new - old:+,}")
    totals.add_row(
        "cost",
        simulation.money_text(report.running_cost, report.running_currency),
        simulation.money_text(report.draft_cost, report.draft_currency),
        _signed(report.draft_cost - report.running_cost, report.draft_currency)
        if report.running_currency == report.draft_currency
        else "—",
    )
    console.print(totals)
    rules = Table(title="Campaigns and rules (running → draft)", title_justify="left")
    rules.add_column("campaign / rule")
    for column in ("points", "→ draft", "change", "growth", "→ draft", "members", "→ draft"):
        rules.add_column(column, justify="right")
    for campaign in report.campaigns:
        own = [line for line in report.rules if line.campaign == campaign.campaign]
        for line in (campaign, *own):
            was, now = line.running, line.draft
            rules.add_row(
                line.campaign if line.rule is None else f"  {line.rule}",
                f"{was.points:,}",
                f"{now.points:,}",
                f"{now.points - was.points:+,}",
                f"{was.growth:,}",
                f"{now.growth:,}",
                f"{was.members:,}",
                f"{now.members:,}",
                style="bold" if line.rule is None else None,
            )
    console.print(rules)
    if report.budgets:
        budgets = Table(title="Budgets (used in the period)", title_justify="left")
        budgets.add_column("campaign")
        for column in ("running used", "of", "draft used", "of"):
            budgets.add_column(column, justify="right")
        for budget in report.budgets:
            budgets.add_row(
                budget.campaign,
                f"{budget.running_used:,}",
                "—" if budget.running_limit is None else f"{budget.running_limit:,}",
                f"{budget.draft_used:,}",
                "—" if budget.draft_limit is None else f"{budget.draft_limit:,}",
            )
        console.print(budgets)
    console.print(f"{len(report.tiers)} member(s) would be in another tier.", highlight=False)
    if report.tiers:
        tiers = Table()
        for column in ("member", "growth", "→ draft", "qualifying", "→ draft"):
            tiers.add_column(column, justify="left" if column == "member" else "right")
        tiers.add_column("tier")
        tiers.add_column("→ draft")
        for member in report.tiers[:SHOWN]:
            tiers.add_row(
                member.member_id,
                f"{member.running_growth:,}",
                f"{member.draft_growth:,}",
                f"{member.running_qualifying:,}",
                f"{member.draft_qualifying:,}",
                member.running_tier,
                member.draft_tier,
            )
        console.print(tiers)
    for side, refused in (("running", report.running_refused), ("draft", report.draft_refused)):
        if refused:
            reasons = ", ".join(f"{count} {code}" for code, count in sorted(refused.items()))
            console.print(f"refused by the {side} programme: {reasons}", highlight=False)
    console.print(
        f"{len(report.differences)} event(s) priced differently by the draft.", highlight=False
    )


def _signed(minor_units: int, currency: str) -> str:
    text = simulation.money_text(minor_units, currency)
    return text if minor_units < 0 else f"+{text}"
