"""Expiry benchmark: ``tally jobs expire`` over N members' due lots (and timed-out holds), on
SQLite and PostgreSQL, beside the raw rate of writing as many rows.

For each database it builds a fresh database (a SQLite file in a temporary directory; a
throw-away PostgreSQL cluster), migrates it, applies the demo programme, seeds ``--members``
members set-based and gives each three lots through the ledger's own set-based earn path
(``tally.ledger.orders.post_orders``, 2,000 members per transaction), 30 days before the
expiry date: one lot that outlives it, one due 3 days before it and one due on it; every
tenth member also holds part of its lasting lot for an hour, long timed out by then. Then:

* the job: ``tally jobs expire --as-of <date>`` as an operator runs it (its own process; the
  wall time includes its start-up), expiring two lots per member and lapsing the holds;
* the rows it wrote: the rows added to every table, plus the lots, wallets and holds it
  changed (read from the counts before and after, and its report);
* the raw rate: as many rows written into a plain table of five columns by the database driver
  (sqlite3's ``executemany``; PostgreSQL: one insert from ``unnest`` of arrays a transaction),
  in as many transactions as the job used, in the same run;
* the checks: the report's counts, every balance exact (each member keeps its lasting lot,
  nothing held), no due lot left, ``tally ledger verify`` clean, and a second run that finds
  nothing to do.

Every figure is printed beside its limit (job time within 3x the raw time). Exit code 0 when
every check passes, 1 when one fails.

    .venv/bin/python bench/expiry.py --db both --members 100000

``--smoke`` runs the same steps at 300 members in seconds and judges only the checks, not the
time; no report unless ``--output``. ``--postgres-url URL`` runs on an existing server.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import verdicts
from rawdb import postgres
from seeding import seed_members
from server import TALLY
from verdicts import Row, check, render_markdown_table, render_table

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
DEMO_PROGRAMME = REPO_DIR / "src" / "tally" / "demo" / "programme.yaml"

MAX_JOB_OVER_RAW = 3.0  # the job's time within 3x the raw time to write as many rows
CHUNK = 2000  # members per seeding transaction (the job's own batch is 2,000 too)
JOB_BATCH = 2000  # tally.ledger.jobs.expire's default batch
HOLD_EVERY = 10  # every tenth member holds points, timed out by the expiry date
SMOKE_MEMBERS = 300


# Each member's lots, deterministic in its id: lasting, due 3 days early, due on the date; the
# hold is taken from the lasting lot (the only one when it is made).
def lasting_points(m: int) -> int:
    return 100 + m % 900


def early_points(m: int) -> int:
    return 10 + m % 90


def on_date_points(m: int) -> int:
    return 20 + m % 50


def held_points(m: int) -> int:
    return 5 + m % 20


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def log(message: str) -> None:
    stamp = dt.datetime.now(dt.UTC).strftime("%H:%M:%S")
    print(f"[{stamp}] {message}", file=sys.stderr, flush=True)


# -- building -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Moments:
    date: dt.date  # the expiry date the job runs at
    as_of: dt.datetime  # the end of that day in the programme's zone
    earned: dt.datetime  # when the lots were earned
    zone: str


def moments(zone_name: str) -> Moments:
    """The expiry date two days ago (so the job may run at it) and its moments."""
    from zoneinfo import ZoneInfo

    from tally.kit.clock import end_of_day

    zone = ZoneInfo(zone_name)
    date = (dt.datetime.now(zone) - dt.timedelta(days=2)).date()
    as_of = end_of_day(date, zone)
    return Moments(date, as_of, as_of - dt.timedelta(days=30), zone_name)


def build(url: str, members: int) -> tuple[Moments, list[int], float, float]:
    """Migrate, apply the demo programme, seed the members and their lots and holds; return
    the moments, the member ids and the seconds the members and the lots took."""
    from zoneinfo import ZoneInfo

    from tally.accounts import service as accounts
    from tally.config import Settings
    from tally.db.engine import build_engine
    from tally.db.session import Database
    from tally.kit.clock import end_of_day
    from tally.ledger.domain import Origin
    from tally.ledger.models import EntryKind
    from tally.ledger.orders import Line, Order, hold_order, post_orders
    from tally.ledger.posting import Posted, policy_for
    from tally.partners import service as partners
    from tally.programme import service
    from tally.schema import migrate

    engine = build_engine(url)
    try:
        migrate(engine)
        text = DEMO_PROGRAMME.read_text(encoding="utf-8")
        programme = service.validate(text, str(DEMO_PROGRAMME))
        when = moments(programme.currency.timezone)
        zone = ZoneInfo(when.zone)
        db = Database(engine)
        with db.write() as session:
            service.apply(session, programme, text, "bench", when.earned - dt.timedelta(days=1))
            accounts.open_system(session)
            partner_id = partners.create_partner(session, "BENCH", "Bench", when.earned).id
        started = time.perf_counter()
        with db.write() as session:
            ids = seed_members(session, members, when.earned - dt.timedelta(days=60))
        members_seconds = time.perf_counter() - started
        settings = Settings(database_url=url, secret_key=os.urandom(32).hex())
        policy = policy_for(programme, settings)
        origin = Origin(partner_id=partner_id)
        lasting = end_of_day(when.date + dt.timedelta(days=200), zone)
        early = end_of_day(when.date - dt.timedelta(days=3), zone)
        started = time.perf_counter()
        for first in range(0, len(ids), CHUNK):
            orders = []
            for m in ids[first : first + CHUNK]:
                orders.append(
                    Order(EntryKind.EARN, origin, m, lasting_points(m), f"l-{m}", lasting)
                )
                if m % HOLD_EVERY == 0:
                    orders.append(hold_order(origin, m, held_points(m), f"h-{m}", 3600))
                lines = (Line(early_points(m), early), Line(on_date_points(m), when.as_of))
                due = early_points(m) + on_date_points(m)
                orders.append(Order(EntryKind.EARN, origin, m, due, f"d-{m}", lines=lines))
            with db.write() as session:
                outcomes = post_orders(session, orders, when.earned, policy)
            refused = [o for o in outcomes if not isinstance(o, Posted)]
            if refused:
                raise RuntimeError(f"seeding refused {len(refused)} orders: {refused[0]!r}")
            if (first // CHUNK) % 10 == 9:
                log(f"  lots of {first + CHUNK:,} members seeded")
        lots_seconds = time.perf_counter() - started
    finally:
        engine.dispose()
    return when, ids, members_seconds, lots_seconds


# -- counting and the raw rate -------------------------------------------------------------------


def table_counts(url: str) -> dict[str, int]:
    """The rows of every table."""
    from sqlalchemy import inspect, text

    from tally.db.engine import build_engine

    engine = build_engine(url)
    try:
        names = inspect(engine).get_table_names()
        with engine.connect() as conn:
            return {
                name: int(conn.execute(text(f'SELECT COUNT(*) FROM "{name}"')).scalar_one())
                for name in names
            }
    finally:
        engine.dispose()


@dataclass(frozen=True)
class RawResult:
    rows: int
    transactions: int
    seconds: float

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds else float("nan")


RAW_TABLE = (
    "CREATE TABLE bench_raw_rows (id BIGINT PRIMARY KEY, member_id BIGINT NOT NULL, "
    "points BIGINT NOT NULL, reference VARCHAR(64) NOT NULL, created_at {ts} NOT NULL)"
)


RAW_UNNEST = (
    "INSERT INTO bench_raw_rows SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], "
    "%s::text[], %s::timestamptz[])"
)


def raw_writes(url: str, rows: int, transactions: int) -> RawResult:
    """Write ``rows`` rows into a plain table with the database's driver, in ``transactions``
    transactions, as fast as it goes: sqlite3's ``executemany``; on PostgreSQL one insert from
    ``unnest`` of arrays per transaction, as Tally's own set-based writes do. Then drop it."""
    transactions = max(1, transactions)
    per = math.ceil(rows / transactions)
    now = dt.datetime.now(dt.UTC)
    batches = [
        [(i, i % 100_003, 10, f"raw-{i}", now) for i in range(start, min(rows, start + per))]
        for start in range(0, rows, per)
    ]
    if url.startswith("sqlite"):
        lite = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            lite.execute("PRAGMA journal_mode=WAL")
            lite.execute("PRAGMA synchronous=NORMAL")
            lite.execute(RAW_TABLE.format(ts="TEXT"))
            texts = [[(*r[:4], r[4].isoformat()) for r in batch] for batch in batches]
            started = time.perf_counter()
            for batch_text in texts:
                lite.execute("BEGIN")
                lite.executemany("INSERT INTO bench_raw_rows VALUES (?, ?, ?, ?, ?)", batch_text)
                lite.execute("COMMIT")
            seconds = time.perf_counter() - started
            lite.execute("DROP TABLE bench_raw_rows")
        finally:
            lite.close()
    else:
        import psycopg

        with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
            conn.execute(RAW_TABLE.format(ts="TIMESTAMPTZ"))
            conn.commit()
            columns = [[list(column) for column in zip(*batch, strict=True)] for batch in batches]
            started = time.perf_counter()
            for arrays in columns:
                conn.execute(RAW_UNNEST, arrays)
                conn.commit()
            seconds = time.perf_counter() - started
            conn.execute("DROP TABLE bench_raw_rows")
            conn.commit()
    return RawResult(rows, len(batches), seconds)


# -- the job and the checks ---------------------------------------------------------------------


@dataclass
class JobRun:
    seconds: float
    report: dict[str, Any]
    code: int
    output: str


def run_job(url: str, date: dt.date) -> JobRun:
    """``tally jobs expire --as-of <date>`` in its own process."""
    env = {**os.environ, "TALLY_DATABASE_URL": url, "TALLY_SECRET_KEY": os.urandom(32).hex()}
    cmd = [str(TALLY), "jobs", "expire", "--as-of", date.isoformat()]
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600, check=False)
    seconds = time.perf_counter() - started
    output = done.stdout + done.stderr
    report: dict[str, Any] = {}
    if done.returncode == 0:
        report = json.loads(done.stdout[done.stdout.find("{") : done.stdout.rfind("}") + 1])
    return JobRun(seconds, report, done.returncode, output[-2000:])


def ledger_verify(url: str) -> tuple[bool, str]:
    env = {**os.environ, "TALLY_DATABASE_URL": url, "TALLY_SECRET_KEY": os.urandom(32).hex()}
    done = subprocess.run(
        [str(TALLY), "ledger", "verify"],
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    return done.returncode == 0, (done.stdout + done.stderr).strip()[-600:]


@dataclass
class Balances:
    wrong: int  # members whose wallet is not exactly their lasting lot, nothing held
    first_wrong: str
    due_left: int  # points still in lots due by the date


def check_balances(url: str, ids: list[int], as_of: dt.datetime) -> Balances:
    from sqlalchemy import select, text

    from tally.db.engine import build_engine
    from tally.ledger.models import Lot, Wallet

    engine = build_engine(url)
    wrong, first = 0, ""
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(Wallet.member_id, Wallet.available, Wallet.held).order_by(Wallet.member_id)
            )
            found = {int(m): (int(a), int(h)) for m, a, h in rows}
            for m in ids:
                expected = (lasting_points(m), 0)
                if found.get(m) != expected:
                    wrong += 1
                    first = first or f"member {m}: {found.get(m)} != {expected}"
            due_left = conn.execute(
                select(text("COALESCE(SUM(remaining), 0)"))
                .select_from(Lot)
                .where(Lot.expires_at <= as_of)
            ).scalar_one()
    finally:
        engine.dispose()
    return Balances(wrong, first, int(due_left))


# -- one database ---------------------------------------------------------------------------------


@dataclass
class DbRun:
    database: str
    members: int
    settings: str = ""
    date: str = ""
    members_seconds: float = 0.0
    lots_seconds: float = 0.0
    job: JobRun | None = None
    again: JobRun | None = None
    inserted: dict[str, int] = field(default_factory=dict)
    updated: int = 0
    raw: RawResult | None = None
    expected: dict[str, int] = field(default_factory=dict)
    balances: Balances | None = None
    ledger_ok: bool = False
    ledger_output: str = ""
    error: str | None = None

    @property
    def rows_written(self) -> int:
        return sum(self.inserted.values()) + self.updated


def measure(run: DbRun, url: str) -> None:
    log(f"{run.database}: seeding {run.members:,} members and their lots")
    when, ids, run.members_seconds, run.lots_seconds = build(url, run.members)
    run.date = when.date.isoformat()
    log(
        f"{run.database}: members in {run.members_seconds:.1f}s, lots in {run.lots_seconds:.1f}s; "
        f"running tally jobs expire --as-of {run.date}"
    )
    run.expected = {
        "members": len(ids),
        "lots_expired": 2 * len(ids),
        "points_expired": sum(early_points(m) + on_date_points(m) for m in ids),
        "holds_lapsed": sum(1 for m in ids if m % HOLD_EVERY == 0),
    }
    before = table_counts(url)
    run.job = run_job(url, when.date)
    after = table_counts(url)
    if run.job.code != 0:
        raise RuntimeError(f"tally jobs expire failed ({run.job.code}): {run.job.output}")
    log(f"{run.database}: job {run.job.seconds:.2f}s: {run.job.report}")
    run.inserted = {
        name: after[name] - before[name] for name in after if after[name] > before[name]
    }
    report = run.job.report
    # Changed in place: the lots taken to zero, each member's wallet, each lapsed hold.
    run.updated = report["lots_expired"] + report["members"] + report["holds_lapsed"]
    transactions = math.ceil(report["members"] / JOB_BATCH) + math.ceil(
        report["holds_lapsed"] / JOB_BATCH
    )
    run.raw = raw_writes(url, run.rows_written, transactions)
    log(
        f"{run.database}: raw {run.raw.rows:,} rows in {run.raw.seconds:.2f}s "
        f"({run.raw.rows_per_s:,.0f} rows/s)"
    )
    run.balances = check_balances(url, ids, when.as_of)
    run.ledger_ok, run.ledger_output = ledger_verify(url)
    run.again = run_job(url, when.date)
    log(f"{run.database}: job again {run.again.seconds:.2f}s: {run.again.report}")


def bench_sqlite(members: int) -> DbRun:
    run = DbRun("sqlite", members, settings=f"SQLite {sqlite3.sqlite_version}; WAL, NORMAL")
    work = Path(tempfile.mkdtemp(prefix="tally-bench-expiry-"))
    try:
        measure(run, f"sqlite:///{work / 'tally.db'}")
    except Exception as exc:  # report, and go on
        run.error = f"{type(exc).__name__}: {exc}"
        log(f"sqlite: ERROR {run.error}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return run


def bench_postgres(members: int, server_url: str | None) -> DbRun:
    run = DbRun("postgres", members)
    try:
        with postgres(server_url) as cluster:
            run.settings = f"PostgreSQL {cluster.version()}; {cluster.settings_summary()}"
            measure(run, cluster.sqlalchemy_url)
    except Exception as exc:  # report, and go on
        run.error = f"{type(exc).__name__}: {exc}"
        log(f"postgres: ERROR {run.error}")
    return run


# -- verdicts ------------------------------------------------------------------------------------


def build_rows(runs: list[DbRun], targets: bool) -> list[Row]:
    rows: list[Row] = []
    for run in runs:
        db, n = run.database, f"{run.members:,}"
        if run.error is not None:
            rows.append(Row(db, "harness error", run.error.splitlines()[0][:160], "none", "FAIL"))
            continue
        job, again, raw, bal = run.job, run.again, run.raw, run.balances
        assert job is not None
        assert again is not None
        assert raw is not None
        assert bal is not None
        rows.append(
            Row(
                db,
                f"seed: {n} members (set-based) + 3 lots each (post_orders, {CHUNK:,} a batch)",
                f"{run.members_seconds:.1f} s + {run.lots_seconds:.1f} s",
                "none",
                "info",
            )
        )
        written = ", ".join(f"{k} {v:,}" for k, v in sorted(run.inserted.items()))
        rows.append(
            Row(
                db,
                f"tally jobs expire --as-of {run.date}: rows written",
                f"{run.rows_written:,} ({written}; {run.updated:,} lots, wallets and holds "
                "changed)",
                "none",
                "info",
            )
        )
        rows.append(
            Row(
                db,
                "job time (its own process, start-up included)",
                f"{job.seconds:.2f} s, {run.rows_written / job.seconds:,.0f} rows/s, "
                f"{job.report['members'] / job.seconds:,.0f} members/s",
                "none",
                "info",
            )
        )
        rows.append(
            Row(
                db,
                f"raw: as many rows into a plain table in {raw.transactions:,} transactions",
                f"{raw.seconds:.2f} s, {raw.rows_per_s:,.0f} rows/s",
                "reference",
                "info",
            )
        )
        # The second run finds nothing to do: its time is the command's fixed cost (start-up,
        # connecting, one empty read), taken off the first run's to judge the work alone.
        net = max(job.seconds - again.seconds, 0.0)
        rows.append(
            Row(
                db,
                "job time / raw time, whole command (start-up included)",
                f"{job.seconds / raw.seconds:.1f}x",
                "none",
                "info",
            )
        )
        rows.append(
            Row(
                db,
                "job time less the second run's (fixed cost) / raw time",
                f"{net / raw.seconds:.1f}x ({net:.2f} s, {run.rows_written / max(net, 1e-9):,.0f} "
                "rows/s)",
                f"<= {MAX_JOB_OVER_RAW:.0f}x" if targets else "none (smoke run)",
                check(net <= MAX_JOB_OVER_RAW * raw.seconds) if targets else "info",
            )
        )
        got = {k: job.report.get(k) for k in run.expected}
        rows.append(
            Row(
                db,
                "job report (members, lots, points expired, holds lapsed)",
                ", ".join(f"{v:,}" for v in got.values() if v is not None),
                "= " + ", ".join(f"{v:,}" for v in run.expected.values()),
                check(got == run.expected and not job.report.get("failures")),
            )
        )
        rows.append(
            Row(
                db,
                "balances exact (lasting lot available, nothing held); due points left",
                f"{bal.wrong:,} wrong{f' ({bal.first_wrong})' if bal.first_wrong else ''}; "
                f"{bal.due_left:,} left",
                "0 wrong; 0 left",
                check(bal.wrong == 0 and bal.due_left == 0),
            )
        )
        rows.append(
            Row(
                db,
                "tally ledger verify",
                "clean" if run.ledger_ok else run.ledger_output[:160],
                "clean",
                check(run.ledger_ok),
            )
        )
        rows.append(
            Row(
                db,
                "second run at the same date: members, holds",
                f"{again.report.get('members')}, {again.report.get('holds_lapsed')} "
                f"({again.seconds:.2f} s)",
                "0, 0",
                check(
                    again.code == 0
                    and again.report.get("members") == 0
                    and again.report.get("holds_lapsed") == 0
                ),
            )
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description="tally jobs expire over N members.")
    parser.add_argument(
        "--db", choices=["sqlite", "postgres", "postgresql", "both"], default="both"
    )
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--output", type=Path, help="default bench/results/expiry-latest.md")
    parser.add_argument("--postgres-url", help="an existing server (superuser URL) to run on")
    parser.add_argument(
        "--smoke", action="store_true", help="300 members, no time limit, no report"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.members = SMOKE_MEMBERS
    elif args.output is None:
        args.output = RESULTS_DIR / "expiry-latest.md"
    command = shlex.join([".venv/bin/python", "bench/expiry.py", *argv])
    started = dt.datetime.now(dt.UTC)
    info = verdicts.machine_info(REPO_DIR)
    info["loadavg_start"] = loadavg()
    runs: list[DbRun] = []
    if args.db in ("sqlite", "both"):
        runs.append(bench_sqlite(args.members))
    if args.db in ("postgres", "postgresql", "both"):
        runs.append(bench_postgres(args.members, args.postgres_url))
    info["loadavg_end"] = loadavg()
    rows = build_rows(runs, targets=not args.smoke)
    failed = [r for r in rows if r.verdict == "FAIL"]
    overall = verdicts.overall(rows)
    print()
    print(f"{command}   ({started:%Y-%m-%d %H:%M} UTC, {info['nproc']} CPUs, {info.get('cpu')})")
    print(render_table(rows))
    print(f"\nOverall: {overall}")
    print(f"Load average: {info['loadavg_start']} before, {info['loadavg_end']} after.")
    if args.output is not None:
        lines = [
            f"### Expiry benchmark, {started:%Y-%m-%d %H:%M} UTC",
            "",
            f"- Command: `{command}`",
            f"- Machine: {info['nproc']} CPUs ({info.get('cpu', '?')}), {info.get('ram', '?')} "
            f"RAM, {info['os']}; Python {info['python']}",
            f"- Tally commit: {info['tally_commit']}",
            f"- Load average: {info['loadavg_start']} before, {info['loadavg_end']} after",
            *(f"- {run.database}: {run.settings}" for run in runs),
            "",
            render_markdown_table(rows),
            "",
            f"Overall: **{overall}**",
            "",
        ]
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text("\n".join(lines), encoding="utf-8")
        verdicts.write_json_report(
            args.output.with_suffix(".json"),
            REPO_DIR,
            command=command,
            started=started.isoformat(),
            machine=info,
            runs=runs,
            rows=rows,
            overall=overall,
        )
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
