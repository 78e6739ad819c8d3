"""Bulk accrual benchmark: ``tally events import`` of N bill events for M members, end to end
(file read to committed, verified ledger), on SQLite and PostgreSQL.

For each database it builds a fresh database (a SQLite file in a temporary directory; a
throw-away PostgreSQL cluster, or ``--postgres-url``), migrates it, applies the demo programme
(base rate with growth and the tier multiplier on ``bill_paid``; the purchase campaigns are
evaluated and skipped), seeds M members (ids 1 to M) set-based, and writes
a CSV of N ``bill_paid`` events (``bill-<i>`` for member ``i mod M + 1``, amounts 10.00 to
209.99). It measures, each in a child process of its own:

* the import: ``tally events import FILE --partner MOBILE``, its events/s beside the limit
  (100,000/s SQLite, 50,000/s PostgreSQL) and its peak RSS;
* the raw rate: the same N ``events`` rows (the same columns, one typical outcome document)
  written into a copy of the table, chunk by chunk, one transaction each (``executemany`` on
  SQLite, ``COPY`` on PostgreSQL) — what the database alone takes to store the events;
* ``tally ledger verify`` after the import, which must pass, and the summary's counts
  (every event imported, none refused).

    .venv/bin/python bench/events_import.py --db both --events 10000000 --members 1000000

``--smoke`` runs the same steps at 2,000 events for 200 members in seconds with no performance
targets (the counts and the ledger are still checked): the test suite runs it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import shutil
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
from verdicts import Row, check, render_markdown_table, render_table

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
DEMO_PROGRAMME = REPO_DIR / "src" / "tally" / "demo" / "programme.yaml"
LIMITS = {"sqlite": 100_000, "postgres": 50_000}  # events/s, end to end
CHUNK = 5_000
SMOKE_EVENTS, SMOKE_MEMBERS = 2_000, 200
SECRET = "bench-secret-" + "z" * 32
OUTCOME = {  # a typical outcome document, for the raw rate's rows
    "rules": [
        {"campaign": "BASE", "rule": "per-yuan", "points": 118, "growth": 0, "variant": None,
         "badge": None, "cut": 0, "cut_by": None, "counters": []},
        {"campaign": "BASE", "rule": "growth-per-yuan", "points": 0, "growth": 118,
         "variant": None, "badge": None, "cut": 0, "cut_by": None, "counters": []},
        {"campaign": "BASE", "rule": "tier-multiplier", "points": 0, "growth": 0,
         "variant": None, "badge": None, "cut": 0, "cut_by": None, "counters": []},
    ],
    "skipped": [
        {"campaign": code, "rule": rule, "reason": "not_this_event_type", "detail": None}
        for code, rule in [("BEVERAGES", "per-yuan-on-beverages"), ("WEEKEND", "double"),
                           ("HIGH_FREQUENCY", "triple"), ("HIGH_FREQUENCY", "big-spender-badge")]
    ],
    "arms": {},
    "consumption": {},
}  # fmt: skip


def log(message: str) -> None:
    stamp = dt.datetime.now(dt.UTC).strftime("%H:%M:%S")
    print(f"[{stamp}] {message}", file=sys.stderr, flush=True)


# -- building a database and a file ---------------------------------------------------------------


def prepare(url: str, members: int) -> None:
    """Migrate, apply the demo programme (a day ago), seed ``members`` members set-based
    (:func:`seeding.seed_members`, 100,000 a transaction)."""
    from tally.db.engine import build_engine
    from tally.db.session import Database
    from tally.programme import service
    from tally.schema import migrate

    engine = build_engine(url)
    db = Database(engine)
    try:
        migrate(engine)
        programme_text = DEMO_PROGRAMME.read_text(encoding="utf-8")
        programme = service.validate(programme_text, str(DEMO_PROGRAMME))
        now = dt.datetime.now(dt.UTC)
        with db.write() as session:
            service.apply(session, programme, programme_text, "bench", now - dt.timedelta(days=1))
        for start in range(0, members, 100_000):
            with db.write() as session:
                seed_members(session, min(100_000, members - start), now - dt.timedelta(days=400))
    finally:
        engine.dispose()


def write_file(path: Path, events: int, members: int) -> None:
    """N bills as a CSV, vectorised."""
    import polars as pl

    index = pl.int_range(0, events, eager=True).alias("i")
    cents = 1000 + (index * 7919) % 20000
    frame = pl.DataFrame({"i": index, "cents": cents}).select(
        pl.lit("bill_paid").alias("type"),
        pl.format("bill-{}", pl.col("i")).alias("event_id"),
        (pl.col("i") % members + 1).cast(pl.String).alias("member_id"),
        pl.format(
            "2026-11-{}T09:30:00+08:00", (1 + pl.col("i") % 28).cast(pl.String).str.zfill(2)
        ).alias("occurred_at"),
        pl.format(
            "{}.{}",
            (pl.col("cents") // 100).cast(pl.String),
            (pl.col("cents") % 100).cast(pl.String).str.zfill(2),
        ).alias("amount"),
        pl.lit("CNY").alias("currency"),
        pl.lit("billing").alias("channel"),
    )
    frame.write_csv(path)


# -- the measured work, each in a child process ---------------------------------------------------


@dataclass
class Child:
    seconds: float
    peak_rss_mb: float
    cpu_seconds: float
    code: int
    stdout: str


def run_child(args: list[str], url: str) -> Child:
    env = {**os.environ, "TALLY_DATABASE_URL": url, "TALLY_SECRET_KEY": SECRET}
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, *args], stdout=subprocess.PIPE, text=True, cwd=REPO_DIR, env=env
    )
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    return Child(
        seconds=time.perf_counter() - started,
        peak_rss_mb=usage.ru_maxrss / 1024,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        code=os.waitstatus_to_exitcode(status),
        stdout=output,
    )


def tally(*args: str) -> list[str]:
    return ["-c", "from tally.cli.main import app; app(prog_name='tally')", *args]


def raw_main(url: str, path: str, chunk: int) -> None:
    """In a child: the file's events as ``events`` rows, written into a copy of the table a chunk
    per transaction; print the seconds of the writing alone."""
    import polars as pl
    from sqlalchemy import text

    from tally.db.engine import build_engine
    from tally.db.frames import write_frame
    from tally.db.session import Database

    db = Database(build_engine(url))
    with db.write() as session:
        if db.dialect == "sqlite":
            session.execute(text("CREATE TABLE events_raw AS SELECT * FROM events WHERE 0"))
            session.execute(
                text("CREATE UNIQUE INDEX uq_events_raw ON events_raw (source, event_id)")
            )
        else:
            session.execute(text("CREATE TABLE events_raw (LIKE events INCLUDING ALL)"))
    outcome = json.dumps(OUTCOME)
    now = dt.datetime.now(dt.UTC)
    seconds = 0.0
    for frame in pl.scan_csv(path, infer_schema=False).collect_batches(chunk_size=chunk):
        rows = frame.with_row_index("n").select(
            pl.format(
                "00000000-0000-7000-8000-{}", pl.col("event_id").str.slice(5).str.zfill(12)
            ).alias("id"),
            pl.lit("p1").alias("source"),
            "event_id",
            pl.lit(1).alias("partner_id"),
            "type",
            pl.col("member_id").cast(pl.Int64),
            pl.col("occurred_at").str.to_datetime(time_zone="UTC"),
            pl.lit(now).alias("received_at"),
            (pl.col("amount").str.replace(".", "", literal=True).cast(pl.Int64)).alias(
                "amount_minor"
            ),
            "currency",
            "channel",
            pl.lit(None, pl.String).alias("refers_to"),
            pl.lit('{"amount": null, "items": [], "attributes": {}}').alias("payload"),
            pl.lit(118).alias("points"),
            pl.lit(118).alias("growth"),
            pl.lit(outcome).alias("outcome"),
            pl.lit(None, pl.String).alias("transaction_id"),
            pl.lit(1).alias("programme_version"),
            pl.lit(0).alias("refunded_minor"),
        )
        if db.dialect == "sqlite":
            rows = rows.with_columns(
                pl.col("id").str.replace_all("-", ""),
                pl.col("occurred_at", "received_at").dt.strftime("%Y-%m-%d %H:%M:%S.%6f"),
            )
        started = time.perf_counter()
        with db.write() as session:
            write_frame(session, "events_raw", rows)
        seconds += time.perf_counter() - started
    db.dispose()
    print(json.dumps({"seconds": seconds}), flush=True)


# -- one database -------------------------------------------------------------------------------


@dataclass
class Run:
    database: str
    events: int
    members: int
    prepare_seconds: float = 0.0
    summary: dict[str, Any] = field(default_factory=dict)
    child: Child | None = None
    raw_seconds: float | None = None
    verified: bool = False
    error: str | None = None


def measure(run: Run, url: str, work: Path, chunk: int) -> None:
    started = time.perf_counter()
    prepare(url, run.members)
    path = work / "bills.csv"
    write_file(path, run.events, run.members)
    run.prepare_seconds = time.perf_counter() - started
    tag = f"{run.database} {run.events:,}"
    log(f"{tag}: prepared in {run.prepare_seconds:.1f} s ({path.stat().st_size / 2**20:.0f} MiB)")
    args = ["events", "import", str(path), "--partner", "MOBILE", "--chunk", str(chunk)]
    child = run_child(tally(*args), url)
    run.child = child
    if child.code != 0:
        raise RuntimeError(f"tally events import exited {child.code}: {child.stdout[-2000:]}")
    run.summary = json.loads(child.stdout)
    log(f"{tag}: imported in {child.seconds:.1f} s: {run.summary}")
    verify = run_child(tally("ledger", "verify"), url)
    run.verified = verify.code == 0 and "ledger OK" in verify.stdout
    log(f"{tag}: ledger verify: {verify.stdout.strip()}")
    raw = run_child([str(Path(__file__).resolve()), "--raw", url, str(path), str(chunk)], url)
    if raw.code != 0:
        raise RuntimeError(f"the raw write exited {raw.code}")
    run.raw_seconds = float(json.loads(raw.stdout.strip().splitlines()[-1])["seconds"])
    log(f"{tag}: raw write of the events rows: {run.raw_seconds:.2f} s")


def run_database(database: str, events: int, members: int, chunk: int, pg_url: str | None) -> Run:
    run = Run(database, events, members)
    work = Path(tempfile.mkdtemp(prefix="tally-bench-import-"))
    try:
        if database == "sqlite":
            measure(run, f"sqlite:///{work / 'tally.db'}", work, chunk)
        else:
            with postgres(pg_url) as cluster:
                measure(run, cluster.sqlalchemy_url, work, chunk)
    except Exception as exc:  # report, and go on
        run.error = f"{type(exc).__name__}: {exc}"
        log(f"{database}: ERROR {run.error}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return run


def rows_of(run: Run, targets: bool) -> list[Row]:
    db, n = run.database, f"{run.events:,} events, {run.members:,} members"
    if run.error is not None or run.child is None:
        return [Row(db, f"{n}: harness error", (run.error or "?")[:160], "no error", "FAIL")]
    summary, child = run.summary, run.child
    rate = run.events / child.seconds
    limit = LIMITS[db]
    rows = [
        Row(db, f"{n}: prepare (migrate, programme, members, file)",
            f"{run.prepare_seconds:.1f} s", "none", "info"),
        Row(db, "tally events import, end to end (process start to committed)",
            f"{child.seconds:.2f} s, {rate:,.0f} events/s (importer's own: "
            f"{summary['events_per_second']:,} events/s); CPU {child.cpu_seconds:.1f} s",
            f">= {limit:,} events/s" if targets else "none",
            check(rate >= limit) if targets else "info"),
        Row(db, "events imported / refused / points / growth",
            f"{summary['imported']:,} / {summary['rejected']:,} / {summary['points']:,} / "
            f"{summary['growth']:,}", f"= {run.events:,} / 0", check(
                summary["imported"] == run.events and summary["rejected"] == 0)),
        Row(db, "import process peak RSS", f"{child.peak_rss_mb:.0f} MB", "none", "info"),
        Row(db, "tally ledger verify after the import", "OK" if run.verified else "PROBLEMS",
            "OK", check(run.verified)),
    ]  # fmt: skip
    if run.raw_seconds:
        raw_rate = run.events / run.raw_seconds
        rows.append(
            Row(db, "raw rate: the same events rows written a chunk per transaction",
                f"{raw_rate:,.0f} rows/s; import / raw = {rate / raw_rate:.0%}", "reference",
                "info")
        )  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--raw"]:
        raw_main(argv[1], argv[2], int(argv[3]))
        return 0
    parser = argparse.ArgumentParser(description="tally events import of N bills for M members.")
    parser.add_argument(
        "--db", choices=["sqlite", "postgres", "postgresql", "both"], default="both"
    )
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=CHUNK)
    parser.add_argument("--output", type=Path, help="default bench/results/events-import-latest.md")
    parser.add_argument("--postgres-url", help="an existing server (superuser URL) to run on")
    parser.add_argument("--smoke", action="store_true", help="2,000 events, no targets")
    args = parser.parse_args(argv)
    if args.smoke:
        args.events, args.members, args.chunk = SMOKE_EVENTS, SMOKE_MEMBERS, 500
    elif args.output is None:
        args.output = RESULTS_DIR / "events-import-latest.md"
    command = shlex.join([".venv/bin/python", "bench/events_import.py", *argv])
    started = dt.datetime.now(dt.UTC)
    info = verdicts.machine_info(REPO_DIR)
    load_before = " ".join(Path("/proc/loadavg").read_text(encoding="utf-8").split()[:3])
    wanted = {"both": ("sqlite", "postgres"), "postgresql": ("postgres",)}.get(args.db, (args.db,))
    runs = [
        run_database(db, args.events, args.members, args.chunk, args.postgres_url) for db in wanted
    ]
    rows = [row for run in runs for row in rows_of(run, targets=not args.smoke)]
    overall = "PASS" if all(row.verdict != "FAIL" for row in rows) else "FAIL"
    print(render_table(rows))
    print(f"\nOverall: {overall}")
    if args.output is not None:
        lines = [
            f"### Bulk import benchmark, {started:%Y-%m-%d %H:%M} UTC",
            "",
            f"- Command: `{command}`",
            f"- Machine: {info['nproc']} CPUs, {info.get('ram', '?')} RAM; "
            f"Python {info['python']}; load before {load_before}",
            f"- Tally commit: {info['tally_commit']}",
            "",
            render_markdown_table(rows),
            "",
            f"Overall: **{overall}**",
        ]
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0 if overall == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
