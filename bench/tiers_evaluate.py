"""Tier evaluation benchmark: ``tally.tiers.jobs.evaluate`` over N members, SQLite and PostgreSQL.

For each database and each size (``--small`` members, then ``--members``) it builds a fresh
database (a SQLite file in a temporary directory; a throw-away PostgreSQL cluster), migrates it,
applies the demo programme (six tiers, rolling 365-day window, 30-day grace, at most one level
down), loads members, their tier rows spread over all six tiers and about three growth entries
each over the last two years, set-based in SQL, then ANALYZEs. It measures:

* the raw read: one streamed pass over ``member_tiers`` left-joined with each member's growth
  sum in the same window, the least the job must read (run twice; the faster is the reference);
* the job, ``evaluate(db.write, as_of, programme)``, in a child process of its own, so its peak
  RSS (VmHWM) is the job's alone: time, members, changes by reason, members/s;
* the job again at the same ``as_of``: it must change nothing.

Every figure is printed beside its limit with PASS/FAIL (``info`` where there is none). The exit
code is 0 when every check passes, 1 when one fails (a harness error is a failed check).

    .venv/bin/python bench/tiers_evaluate.py --db both --members 1000000

``--smoke`` runs the same steps at 200 members in seconds (one raw read pass), with no
performance targets (only the checks that the job read every member and that a second run
changes nothing), and writes no report unless ``--output`` is given: the test suite runs it so
that a refactor cannot leave this benchmark broken. ``--postgres-url URL`` runs on an existing
server.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
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
from rawdb import PostgresCluster, postgres
from verdicts import Row, check, render_markdown_table, render_table

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
DEMO_PROGRAMME = REPO_DIR / "src" / "tally" / "demo" / "programme.yaml"

# The limits (see bench/README.md for why these).
MAX_JOB_OVER_RAW = 20.0  # job time <= 20x the time to read the same rows once
MAX_PEAK_RSS_MB = 300.0  # the job process's peak RSS, at any N
MAX_PEAK_GROWTH_MB = 32.0  # peak RSS at --members minus peak RSS at --small

# The moment evaluated; the data is generated relative to it, so any moment gives the same run.
DEFAULT_AS_OF = "2026-11-26T02:00:00+00:00"

# Generated data, deterministic (multiplicative hashes of the member id): tier index
# 0..5 uniform; 1..5 growth entries (3 on average) spread over the last 730 days, so about half
# count in the 365-day window; each entry 1..2*MEAN[tier] points, so a member's window sum
# straddles its own tier's threshold (keeps, upgrades and grace starts). Of the tier rows, 10 %
# have a grace period that ran out 3 days ago (-> downgrade if still below) and 10 % one that
# ends in 10 days; all were last evaluated a day before.
MEAN_POINTS = (400, 2000, 6000, 16000, 40000, 90000)
SPREAD_SECONDS = 730 * 86400
RAW_FETCH = 10_000  # rows per fetch of the streamed raw read
SMOKE_MEMBERS = 200  # --smoke: one size that runs in seconds


def log(message: str) -> None:
    stamp = dt.datetime.now(dt.UTC).strftime("%H:%M:%S")
    print(f"[{stamp}] {message}", file=sys.stderr, flush=True)


# -- building a database --------------------------------------------------------------------------


def prepare(url: str, as_of: dt.datetime) -> None:
    """Migrate a fresh database and apply the demo programme."""
    from tally.db.engine import build_engine
    from tally.db.session import Database
    from tally.programme import service
    from tally.schema import migrate

    engine = build_engine(url)
    try:
        migrate(engine)
        text = DEMO_PROGRAMME.read_text(encoding="utf-8")
        programme = service.validate(text, str(DEMO_PROGRAMME))
        db = Database(engine)
        with db.write() as session:
            service.apply(session, programme, text, "bench", as_of)
    finally:
        engine.dispose()


def _tier_case(codes: list[str], index: str) -> str:
    whens = " ".join(f"WHEN {i} THEN '{code}'" for i, code in enumerate(codes))
    return f"CASE {index} {whens} END"


def _mean_case(index: str) -> str:
    whens = " ".join(f"WHEN {i} THEN {mean}" for i, mean in enumerate(MEAN_POINTS))
    return f"CASE {index} {whens} END"


# Integer expressions of the member id ``m`` (and entry number ``j``) shared by both dialects.
TIER_IDX = "((m * 2654435761) % 1000003 % 6)"
GRACE_KIND = "((m * 40503) % 1000033 % 10)"
ENTRIES = "(1 + (m * 69069) % 1000037 % 5)"
POINTS = "(1 + (m * 1103515245 + j * 12345) % 2147483647 % (2 * {mean}))"
AGE_S = f"((m * 22695477 + j * 134775813) % 2147483647 % {SPREAD_SECONDS})"


def load_sqlite(path: Path, members: int, as_of: dt.datetime, codes: list[str]) -> None:
    epoch = int(as_of.timestamp())

    def ts(offset: str) -> str:
        # SQLAlchemy's SQLite DATETIME text format, UTC, as UTCDateTime stores it.
        return f"strftime('%Y-%m-%d %H:%M:%S', {epoch} + ({offset}), 'unixepoch') || '.000000'"

    series = f"WITH RECURSIVE s(m) AS (SELECT 1 UNION ALL SELECT m + 1 FROM s WHERE m < {members})"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("BEGIN")
        conn.execute(
            f"{series} INSERT INTO members (id, status, created_at, updated_at) "
            f"SELECT m, 'active', {ts('-800 * 86400')}, {ts('-800 * 86400')} FROM s"
        )
        conn.execute(
            f"{series} INSERT INTO member_tiers (member_id, tier_code, since, downgrade_at, "
            "evaluated_at, lifetime_growth, version) "
            f"SELECT m, {_tier_case(codes, TIER_IDX)}, {ts('-400 * 86400')}, "
            f"CASE {GRACE_KIND} WHEN 0 THEN {ts('-3 * 86400')} WHEN 1 THEN {ts('10 * 86400')} "
            f"END, {ts('-86400')}, 0, 0 FROM s"
        )
        points = POINTS.format(mean=_mean_case(TIER_IDX))
        conn.execute(
            f"{series}, e(j) AS (SELECT 1 UNION ALL SELECT j + 1 FROM e WHERE j < 5) "
            "INSERT INTO growth_entries (member_id, origin_member_id, points, kind, counted_at, "
            f"created_at) SELECT m, m, {points}, 'earn', {ts('-' + AGE_S)}, {ts('-' + AGE_S)} "
            f"FROM s JOIN e ON j <= {ENTRIES} ORDER BY m, j"
        )
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def load_postgres(cluster: PostgresCluster, members: int, as_of: dt.datetime, codes: list[str]):
    epoch = int(as_of.timestamp())

    def ts(offset: str) -> str:
        return f"to_timestamp({epoch} + ({offset}))"

    series = f"generate_series(1::bigint, {members}::bigint) AS s(m)"
    points = POINTS.format(mean=_mean_case(TIER_IDX))
    cluster.psql(
        "BEGIN;"
        f"INSERT INTO members (id, status, created_at, updated_at) "
        f"SELECT m, 'active', {ts('-800 * 86400')}, {ts('-800 * 86400')} FROM {series};"
        "INSERT INTO member_tiers (member_id, tier_code, since, downgrade_at, evaluated_at, "
        f"lifetime_growth, version) SELECT m, {_tier_case(codes, TIER_IDX)}, "
        f"{ts('-400 * 86400')}, CASE {GRACE_KIND} WHEN 0 THEN {ts('-3 * 86400')} "
        f"WHEN 1 THEN {ts('10 * 86400')} END, {ts('-86400')}, 0, 0 FROM {series};"
        "INSERT INTO growth_entries (member_id, origin_member_id, points, kind, counted_at, "
        f"created_at) SELECT m, m, {points}, 'earn', {ts('-' + AGE_S)}, {ts('-' + AGE_S)} "
        f"FROM {series} JOIN generate_series(1, 5) AS e(j) ON j <= {ENTRIES} ORDER BY m, j;"
        "COMMIT;",
        db=cluster.app_db,
    )
    cluster.psql("VACUUM (ANALYZE)", db=cluster.app_db)
    cluster.psql("CHECKPOINT")


def tier_codes() -> list[str]:
    from tally.programme import service

    text = DEMO_PROGRAMME.read_text(encoding="utf-8")
    return [tier.code for tier in service.validate(text).tiers]


# -- the measured work, each in a child process ---------------------------------------------------


def _status_kb(name: str) -> int:
    for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
        if line.startswith(f"{name}:"):
            return int(line.split()[1])
    return 0


def child_main(kind: str, url: str, as_of_text: str) -> None:
    """Run in a child process: the raw read or the job; print one JSON line of results."""
    from sqlalchemy import func, select

    from tally.db.engine import build_engine
    from tally.db.session import Database
    from tally.programme import service
    from tally.tiers import domain, jobs
    from tally.tiers import repository as tier_repository
    from tally.tiers.models import GrowthEntry, MemberTier

    as_of = dt.datetime.fromisoformat(as_of_text)
    engine = build_engine(url)
    db = Database(engine)
    with db.read() as session:
        # The demo programme, applied when the data set was built (after ``as_of``): in force now.
        now = dt.datetime.now(dt.UTC)
        programme = service.running(session, now)
        version = tier_repository.programme_version(session, now)
    assert programme is not None
    out: dict[str, Any] = {"baseline_rss_kb": _status_kb("VmRSS")}
    if kind == "job":
        started = time.perf_counter()
        report = jobs.evaluate(db.write, as_of, programme, programme_version=version)
        out["seconds"] = time.perf_counter() - started
        out.update(report.as_dict())
    else:
        window = domain.windows(programme.tier_model, as_of, programme.zone).current
        sums = (
            select(GrowthEntry.member_id, func.sum(GrowthEntry.points).label("points"))
            .where(GrowthEntry.counted_at >= window.start, GrowthEntry.counted_at < window.end)
            .group_by(GrowthEntry.member_id)
            .subquery()
        )
        query = (
            select(
                MemberTier.member_id,
                MemberTier.tier_code,
                MemberTier.downgrade_at,
                MemberTier.evaluated_at,
                MemberTier.lifetime_growth,
                MemberTier.version,
                func.coalesce(sums.c.points, 0),
            )
            .outerjoin(sums, sums.c.member_id == MemberTier.member_id)
            .order_by(MemberTier.member_id)
        )
        rows = total = 0
        started = time.perf_counter()
        with engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=RAW_FETCH).execute(query)
            for row in result:
                rows += 1
                total += row[6]
        out["seconds"] = time.perf_counter() - started
        out["members"] = rows
        out["growth_in_window"] = int(total)
    engine.dispose()
    out["peak_rss_kb"] = _status_kb("VmHWM")
    print(json.dumps(out), flush=True)


@dataclass
class ChildResult:
    seconds: float
    peak_rss_mb: float
    baseline_rss_mb: float
    wait4_maxrss_mb: float
    cpu_seconds: float  # user + system time of the child process (wait4)
    data: dict[str, Any]


def run_child(kind: str, url: str, as_of: dt.datetime) -> ChildResult:
    """Run ``kind`` in a fresh interpreter; its peak RSS is its own (VmHWM, and wait4's)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", kind]
    cmd += ["--url", url, "--as-of", as_of.isoformat()]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=REPO_DIR)
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"child {kind} exited with {proc.returncode}: {output[-2000:]}")
    data = json.loads(output.strip().splitlines()[-1])
    return ChildResult(
        seconds=data.pop("seconds"),
        peak_rss_mb=data.pop("peak_rss_kb") / 1024,
        baseline_rss_mb=data.pop("baseline_rss_kb") / 1024,
        wait4_maxrss_mb=usage.ru_maxrss / 1024,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        data=data,
    )


# -- one run ------------------------------------------------------------------------------------


@dataclass
class SizeRun:
    database: str
    members: int
    load_seconds: float = 0.0
    db_size_mb: float = 0.0
    growth_entries: int = 0
    raw: list[ChildResult] = field(default_factory=list)
    job: ChildResult | None = None
    again: ChildResult | None = None
    error: str | None = None

    @property
    def raw_best(self) -> ChildResult | None:
        return min(self.raw, key=lambda r: r.seconds) if self.raw else None


def measure(run: SizeRun, url: str, as_of: dt.datetime, passes: int) -> None:
    """The raw read ``passes`` times (the fastest is the reference: the first warms the caches),
    the job, and the job again."""
    tag = f"{run.database} {run.members:,}"
    for attempt in range(1, passes + 1):
        res = run_child("read", url, as_of)
        run.raw.append(res)
        log(f"{tag}: raw read {attempt}: {res.seconds:.2f} s, {res.data['members']:,} rows")
    run.job = run_child("job", url, as_of)
    log(f"{tag}: job: {run.job.seconds:.2f} s, {run.job.data}, peak {run.job.peak_rss_mb:.0f} MB")
    run.again = run_child("job", url, as_of)
    log(f"{tag}: job again: {run.again.seconds:.2f} s, {run.again.data}")


def run_sqlite(
    members: int, as_of: dt.datetime, codes: list[str], passes: int = 2
) -> tuple[SizeRun, str]:
    run = SizeRun("sqlite", members)
    version = sqlite3.sqlite_version
    work = Path(tempfile.mkdtemp(prefix="tally-bench-tiers-"))
    try:
        path = work / "tally.db"
        url = f"sqlite:///{path}"
        prepare(url, as_of)
        started = time.perf_counter()
        load_sqlite(path, members, as_of, codes)
        run.load_seconds = time.perf_counter() - started
        run.db_size_mb = path.stat().st_size / 1024 / 1024
        with sqlite3.connect(path) as conn:
            run.growth_entries = conn.execute("SELECT count(*) FROM growth_entries").fetchone()[0]
        log(f"sqlite {members:,}: loaded in {run.load_seconds:.1f} s ({run.db_size_mb:,.0f} MB)")
        measure(run, url, as_of, passes)
    except Exception as exc:  # report, and go on
        run.error = f"{type(exc).__name__}: {exc}"
        log(f"sqlite {members:,}: ERROR {run.error}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return run, f"SQLite {version}; journal_mode=WAL, synchronous=NORMAL (Tally's engine)"


def run_postgres(
    members: int,
    as_of: dt.datetime,
    codes: list[str],
    server_url: str | None = None,
    passes: int = 2,
) -> tuple[SizeRun, str]:
    run = SizeRun("postgres", members)
    settings = ""
    try:
        with postgres(server_url) as cluster:
            settings = f"PostgreSQL {cluster.version()}; {cluster.settings_summary()}"
            for name in ("work_mem", "effective_cache_size", "random_page_cost"):
                settings += f", {name}={cluster.psql(f'SHOW {name}').strip()}"
            url = cluster.sqlalchemy_url
            prepare(url, as_of)
            started = time.perf_counter()
            load_postgres(cluster, members, as_of, codes)
            run.load_seconds = time.perf_counter() - started
            size = cluster.psql(f"SELECT pg_database_size('{cluster.app_db}')").strip()
            run.db_size_mb = int(size) / 1024 / 1024
            count = cluster.psql("SELECT count(*) FROM growth_entries", db=cluster.app_db)
            run.growth_entries = int(count.strip())
            log(f"postgres {members:,}: loaded in {run.load_seconds:.1f} s")
            measure(run, url, as_of, passes)
    except Exception as exc:  # report, and go on
        run.error = f"{type(exc).__name__}: {exc}"
        log(f"postgres {members:,}: ERROR {run.error}")
    return run, settings


# -- verdicts ------------------------------------------------------------------------------------


def size_rows(run: SizeRun, judged: bool, targets: bool = True) -> list[Row]:
    """The rows of one size; ``judged``: the time ratio is judged at this size; ``targets``:
    the performance limits are judged at all (not in a smoke run)."""
    db = run.database
    n = f"{run.members:,}"
    none = "none"
    if run.error is not None:
        return [Row(db, f"{n}: harness error", run.error.splitlines()[0][:160], "no error", "FAIL")]
    rows = [
        Row(
            db,
            f"{n}: load (members, tier rows, {run.growth_entries:,} growth entries) + ANALYZE",
            f"{run.load_seconds:,.1f} s ({run.db_size_mb:,.0f} MB on disk)",
            none,
            "info",
        )
    ]
    raw = run.raw_best
    job, again = run.job, run.again
    if raw is None or job is None or again is None:
        return [*rows, Row(db, f"{n}: measured runs", "did not run", "must run", "FAIL")]
    raws = ", ".join(f"{r.seconds:.2f}" for r in run.raw)
    rows.append(
        Row(
            db,
            f"{n}: raw read, member_tiers + window sums, streamed "
            f"(faster of {len(run.raw)} passes: {raws} s)",
            f"{raw.seconds:.2f} s ({run.members / raw.seconds:,.0f} rows/s), "
            f"peak RSS {raw.peak_rss_mb:.0f} MB",
            "reference",
            "info",
        )
    )
    from tally.tiers.jobs import CHUNK

    changes = job.data["changes"]
    rows.append(
        Row(
            db,
            f"{n}: job, evaluate(db.write, as_of, programme), chunk {CHUNK:,}",
            f"{job.seconds:.2f} s, {job.data['members'] / job.seconds:,.0f} members/s; "
            f"process CPU {job.cpu_seconds:.1f} s (incl. ~1 s start-up)",
            none,
            "info",
        )
    )
    reasons = ", ".join(f"{k} {v:,}" for k, v in changes.items()) or "none"
    rows.append(
        Row(
            db,
            f"{n}: job changes by reason ({sum(changes.values()):,} in all)",
            reasons,
            none,
            "info",
        )
    )
    rows.append(
        Row(
            db,
            f"{n}: members evaluated; updates lost to a concurrent writer",
            f"{job.data['members']:,}; {job.data['skipped']:,} lost",
            f"= {run.members:,}; 0 lost",
            check(job.data["members"] == run.members and job.data["skipped"] == 0),
        )
    )
    ratio = job.seconds / raw.seconds
    rows.append(
        Row(
            db,
            f"{n}: job time / raw read time",
            f"{ratio:.1f}x",
            f"<= {MAX_JOB_OVER_RAW:.0f}x" if judged else none,
            check(ratio <= MAX_JOB_OVER_RAW) if judged else "info",
        )
    )
    rows.append(
        Row(
            db,
            f"{n}: job process peak RSS (VmHWM; after imports and engine "
            f"{job.baseline_rss_mb:.0f} MB)",
            f"{job.peak_rss_mb:.0f} MB",
            f"<= {MAX_PEAK_RSS_MB:.0f} MB" if targets else none,
            check(job.peak_rss_mb <= MAX_PEAK_RSS_MB) if targets else "info",
        )
    )
    again_changes = sum(again.data["changes"].values())
    rows.append(
        Row(
            db,
            f"{n}: second run at the same as_of: changes",
            f"{again_changes:,} ({again.seconds:.2f} s, {again.seconds / raw.seconds:.1f}x raw)",
            "0",
            check(again_changes == 0 and again.data["members"] == run.members),
        )
    )
    return rows


def build_rows(runs: list[SizeRun], big: int, targets: bool = True) -> list[Row]:
    rows: list[Row] = []
    for run in runs:
        rows += size_rows(run, judged=targets and run.members == big, targets=targets)
    for db in ("sqlite", "postgres"):
        sized = {r.members: r for r in runs if r.database == db and r.job is not None}
        small = [n for n in sized if n != big]
        if big in sized and small:
            low, high = sized[min(small)].job, sized[big].job
            assert low is not None
            assert high is not None
            growth = high.peak_rss_mb - low.peak_rss_mb
            rows.append(
                Row(
                    db,
                    f"job peak RSS at {big:,} minus at {min(small):,} members (bounded memory)",
                    f"{growth:+.1f} MB ({high.peak_rss_mb:.0f} vs {low.peak_rss_mb:.0f} MB)",
                    f"<= {MAX_PEAK_GROWTH_MB:.0f} MB" if targets else "none",
                    check(growth <= MAX_PEAK_GROWTH_MB) if targets else "info",
                )
            )
    return rows


# -- machine and report ---------------------------------------------------------------------------


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text(encoding="utf-8").split()[:3])
    except OSError:
        return "?"


def write_markdown(
    path: Path,
    command: str,
    started: dt.datetime,
    info: dict[str, str],
    settings: dict[str, str],
    rows: list[Row],
    overall: str,
    as_of: dt.datetime,
    runs: list[SizeRun],
) -> None:
    lines = [
        f"### Tier evaluation benchmark, {started:%Y-%m-%d %H:%M} UTC",
        "",
        f"- Command: `{command}`",
        f"- Machine: {info['nproc']} CPUs ({info.get('cpu', '?')}), {info.get('ram', '?')} RAM, "
        f"{info['os']}; Python {info['python']}",
        f"- Tally commit: {info['tally_commit']}",
        f"- Load average (1, 5, 15 min): {info['loadavg_start']} before, {info['loadavg_end']} "
        "after (other work on this shared 2-core machine lowers every figure)",
        f"- Data: the demo programme (six tiers, rolling 365-day window, 30-day grace, at most "
        f"one level down); tier rows uniform over the six tiers, 1-5 growth entries per member "
        f"(3 on average) over the 730 days before as_of = {as_of.isoformat()}; 10 % of rows in a "
        "grace period that ran out 3 days earlier, 10 % in one that ends in 10 days.",
        "- The raw read and each job run are separate child processes; peak RSS is that "
        "process's VmHWM (the database server's memory is not in it).",
    ]
    lines += [f"- {db}: {text}" for db, text in settings.items()]
    lines += ["", render_markdown_table(rows), "", f"Overall: **{overall}**", ""]
    for run in runs:
        if run.error:
            lines += [f"{run.database} {run.members:,} error:", "", "```", run.error, "```", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description="Tier evaluation over N members.")
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument(
        "--small",
        type=int,
        default=100_000,
        help="also run at this many members first and compare the job's peak RSS (0: skip)",
    )
    parser.add_argument("--as-of", default=DEFAULT_AS_OF, help="ISO-8601 moment evaluated")
    parser.add_argument("--output", type=Path, help="default bench/results/tiers-latest.md")
    parser.add_argument("--postgres-url", help="an existing server (superuser URL) to run on")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="200 members, one raw pass, no performance targets, no report unless --output",
    )
    parser.add_argument("--child", choices=["job", "read"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child_main(args.child, args.url, args.as_of)
        return 0
    passes = 1 if args.smoke else 2
    if args.smoke:
        args.members, args.small = SMOKE_MEMBERS, 0
    elif args.output is None:
        args.output = RESULTS_DIR / "tiers-latest.md"

    as_of = dt.datetime.fromisoformat(args.as_of)
    if as_of.tzinfo is None:
        parser.error("--as-of needs a time zone, e.g. +00:00")
    command = shlex.join([".venv/bin/python", "bench/tiers_evaluate.py", *argv])
    started = dt.datetime.now(dt.UTC)
    info = verdicts.machine_info(REPO_DIR)
    info["loadavg_start"] = loadavg()
    codes = tier_codes()
    sizes = sorted({args.members, *([args.small] if 0 < args.small < args.members else [])})
    runs: list[SizeRun] = []
    settings: dict[str, str] = {}
    for db in ("sqlite", "postgres"):
        if args.db not in (db, "both"):
            continue
        for n in sizes:
            log(f"{db} {n:,}: building")
            if db == "sqlite":
                run, settings[db] = run_sqlite(n, as_of, codes, passes)
            else:
                run, settings[db] = run_postgres(n, as_of, codes, args.postgres_url, passes)
            runs.append(run)
    info["loadavg_end"] = loadavg()

    rows = build_rows(runs, args.members, targets=not args.smoke)
    failed = [r for r in rows if r.verdict == "FAIL"]
    overall = verdicts.overall(rows)
    print()
    print(f"{command}   ({started:%Y-%m-%d %H:%M} UTC, {info['nproc']} CPUs, {info.get('cpu')})")
    print(render_table(rows))
    print(f"\nOverall: {overall}")
    print(
        f"Load average (1, 5, 15 min): {info['loadavg_start']} before, {info['loadavg_end']} after."
    )
    if args.output is not None:
        write_markdown(args.output, command, started, info, settings, rows, overall, as_of, runs)
        verdicts.write_json_report(
            args.output.with_suffix(".json"),
            REPO_DIR,
            command=command,
            started=started.isoformat(),
            machine=info,
            settings=settings,
            runs=runs,
            rows=rows,
            overall=overall,
        )
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
