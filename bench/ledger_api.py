"""Ledger API benchmark: earn, redeem and checkout against a live Tally server, on SQLite and
PostgreSQL.

For each database it starts a fresh Tally server (``tally serve --workers N``) on 127.0.0.1,
creates a partner key and a pool of members through the API, then drives
``POST /v1/members/{id}/earn``, ``.../redeem`` and checkouts (``.../holds`` then
``/v1/holds/{id}/capture``) with wrk (``-t 2 -c <clients> --latency``)
and reports throughput, p50 and p99 latency, non-2xx responses and the server's peak memory,
next to the database's own raw rate measured in the same run (pgbench TPC-B for PostgreSQL,
a plain sqlite3 commit loop for SQLite). Every figure is printed beside the limit it is judged
against. The exit code is 0 when every check passes, 1 when one fails, 2 on a harness error.

    python bench/ledger_api.py --db both --duration 20 --clients 32 --workers 2

``--smoke`` runs every step in seconds (4 members, 1 s runs at 2 clients, one worker, pgbench at
scale 1) and judges only the error checks (no non-2xx answer, no socket error, the server stays
up), not the performance targets; without wrk it drives the load with a small Python client
instead; it writes no report unless ``--output`` is given. The test suite runs it so that a
refactor cannot leave this benchmark broken. ``--postgres-url URL`` runs on an existing server.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import datetime as dt
import http.client
import json
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import verdicts
from rawdb import (
    PgbenchResult,
    SqliteLoopResult,
    free_port,
    postgres,
    sqlite_commit_loop,
)
from server import MemoryReport, ServerError, TallyServer
from verdicts import Row, check, render_markdown_table, render_table

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
WRK_DIR = BENCH_DIR / "wrk"
RESULTS_DIR = BENCH_DIR / "results"

# The product requirement (see bench/README.md).
TARGET_CLIENTS = 32
MIN_EARN_RATE = 1500.0  # earns/s at 32 clients
MAX_EARN_P99_MS = 50.0
MIN_PGBENCH_SHARE = 0.5  # PostgreSQL earns/s >= 50% of pgbench tps
MIN_CHECKOUT_RATE = 1000.0  # checkouts (hold + capture) per second at 32 clients (issue 10)

PREFUND_POINTS = 1000  # every member gets this once before the runs, so redeems never run dry
EARN_POINTS = 10
REDEEM_POINTS = 1
SMOKE_MEMBERS = 4


def log(message: str) -> None:
    stamp = dt.datetime.now(dt.UTC).strftime("%H:%M:%S")
    print(f"[{stamp}] {message}", file=sys.stderr, flush=True)


# -- HTTP set-up: partner members ---------------------------------------------------------------


class ApiClient:
    """A tiny JSON client with one keep-alive connection per thread (set-up only, not load)."""

    def __init__(self, port: int, api_key: str) -> None:
        self.port = port
        self.api_key = api_key
        self._local = threading.local()

    def _conn(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            self._local.conn = conn
        return conn

    def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        headers = {
            "Authorization": f"Bearer {self.api_key}",
            "Content-Type": "application/json",
            "Idempotency-Key": uuid.uuid4().hex,
        }
        payload = json.dumps(body)
        for attempt in (1, 2):
            conn = self._conn()
            try:
                conn.request("POST", path, body=payload, headers=headers)
                resp = conn.getresponse()
                raw = resp.read()
            except (http.client.HTTPException, ConnectionError):
                # The server may close an idle keep-alive connection: reconnect once.
                conn.close()
                self._local.conn = None
                if attempt == 2:
                    raise
                continue
            try:
                data: Any = json.loads(raw) if raw else None
            except ValueError:
                data = raw.decode("utf-8", errors="replace")
            return resp.status, data
        raise AssertionError("unreachable")


def create_members(client: ApiClient, count: int, tag: str, parallel: int) -> list[int]:
    """Create ``count`` members through the API and pre-fund each; return their ids."""

    def one(i: int) -> int:
        status, data = client.post(
            "/v1/members", {"external_id": {"namespace": "phone", "id": f"138{i:08d}"}}
        )
        # 201 enrols; 200 returns the member an identity already has (a re-run of set-up).
        if status not in (200, 201) or not isinstance(data, dict) or "id" not in data:
            raise ServerError(f"POST /v1/members -> {status}: {str(data)[:500]}")
        member_id = int(data["id"])
        status, data = client.post(
            f"/v1/members/{member_id}/earn",
            {"points": PREFUND_POINTS, "reference": f"{tag}-prefund-{member_id}"},
        )
        if status != 201:
            raise ServerError(f"POST /v1/members/{member_id}/earn -> {status}: {str(data)[:500]}")
        return member_id

    with concurrent.futures.ThreadPoolExecutor(max_workers=parallel) as pool:
        return list(pool.map(one, range(count)))


# -- wrk ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WrkResult:
    kind: str
    requests: int
    duration_s: float
    requests_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    non2xx: int
    statuses: dict[str, int]
    first_error: str
    socket_errors: dict[str, int]
    p95_ms: float = float("nan")  # wrk's p95, or the Python client's
    server_cpu_s: float = 0.0  # CPU seconds the server's processes used during the run
    completed: int = 0  # checkouts whose capture was answered 2xx (checkout runs only)

    @property
    def completed_per_s(self) -> float:
        return self.completed / self.duration_s if self.duration_s else float("nan")

    @property
    def server_cpu_ms_per_request(self) -> float:
        return 1000 * self.server_cpu_s / self.requests if self.requests else float("nan")

    @property
    def socket_error_count(self) -> int:
        return sum(self.socket_errors.values())


def run_wrk(
    kind: str,
    *,
    port: int,
    api_key: str,
    members_file: Path,
    tag: str,
    points: int,
    threads: int,
    clients: int,
    duration: int,
) -> WrkResult:
    env = dict(os.environ)
    env.update(
        TALLY_BENCH_KIND=kind,
        TALLY_BENCH_MEMBERS=str(members_file),
        TALLY_BENCH_TOKEN=api_key,
        TALLY_BENCH_TAG=tag,
        TALLY_BENCH_POINTS=str(points),
    )
    cmd = ["wrk", "-t", str(threads), "-c", str(clients), "-d", f"{duration}s", "--latency"]
    cmd += ["--timeout", "10s", "-s", str(WRK_DIR / f"{kind}.lua"), f"http://127.0.0.1:{port}"]
    proc = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=duration + 60, check=False
    )
    for line in proc.stdout.splitlines():
        if line.startswith("TALLY_BENCH_RESULT "):
            data = json.loads(line.split(" ", 1)[1])
            return WrkResult(
                kind=kind,
                requests=int(data["requests"]),
                duration_s=float(data["duration_s"]),
                requests_per_s=float(data["requests_per_s"]),
                p50_ms=float(data["p50_ms"]),
                p90_ms=float(data["p90_ms"]),
                p99_ms=float(data["p99_ms"]),
                max_ms=float(data["max_ms"]),
                mean_ms=float(data["mean_ms"]),
                non2xx=int(data["non2xx"]),
                statuses={str(k): int(v) for k, v in data["statuses"].items()},
                first_error=str(data["first_error"]),
                socket_errors={str(k): int(v) for k, v in data["socket_errors"].items()},
                p95_ms=float(data["p95_ms"]),
                completed=int(data.get("completed", 0)),
            )
    raise RuntimeError(
        f"wrk printed no result ({proc.returncode}): {' '.join(cmd)}\n"
        f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    )


def run_python_load(
    kind: str,
    *,
    port: int,
    api_key: str,
    members_file: Path,
    tag: str,
    points: int,
    threads: int,
    clients: int,
    duration: int,
) -> WrkResult:
    """What :func:`run_wrk` measures, driven by ``clients`` Python threads with one keep-alive
    connection each (for ``--smoke`` where wrk is not installed; far slower than wrk)."""
    del threads  # wrk's threads; here one thread per client
    members = members_file.read_text(encoding="utf-8").split()
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    errors: dict[str, int] = {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    first_error: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + duration

    completed = [0]

    def client(number: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        count = 0
        captures: list[str] = []  # checkout: holds made, to capture next

        def send(path: str, body: dict[str, Any], key: str) -> tuple[int, Any] | None:
            headers = {
                "Authorization": f"Bearer {api_key}",
                "Content-Type": "application/json",
                "Idempotency-Key": key,
            }
            started = time.perf_counter()
            try:
                conn.request("POST", path, body=json.dumps(body), headers=headers)
                resp = conn.getresponse()
                raw = resp.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                with lock:
                    errors["read"] += 1
                return None
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                latencies.append(elapsed)
                if not 200 <= resp.status < 300:
                    statuses[str(resp.status)] = statuses.get(str(resp.status), 0) + 1
                    if not first_error:
                        first_error.append(f"{resp.status} {raw[:200].decode(errors='replace')}")
                    return None
            return resp.status, json.loads(raw)

        while time.monotonic() < deadline:
            count += 1
            key = f"{tag}-c{number}-{count}"
            if captures:
                if send(f"/v1/holds/{captures.pop()}/capture", {}, key) is not None:
                    with lock:
                        completed[0] += 1
                continue
            member = members[(number + count) % len(members)]
            if kind != "checkout":
                send(f"/v1/members/{member}/{kind}", {"points": points, "reference": key}, key)
                continue
            hold = {"points": points, "expires_in_seconds": 600, "reference": key}
            answer = send(f"/v1/members/{member}/holds", hold, key)
            if answer is not None:
                captures.append(answer[1]["hold"]["id"])
        conn.close()

    return run_clients(kind, clients, client, latencies, statuses, first_error, errors, completed)


def run_clients(
    kind: str,
    clients: int,
    client: Any,
    latencies: list[float],
    statuses: dict[str, int],
    first_error: list[str],
    errors: dict[str, int],
    completed: list[int],
) -> WrkResult:
    """Run ``client(n)`` on ``clients`` threads until each returns, and report what they
    gathered (latencies in ms, refused statuses, the first error, socket errors, completed
    operations) as wrk would."""
    started = time.monotonic()
    workers = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    seconds = time.monotonic() - started
    ordered = sorted(latencies) or [float("nan")]

    def at(share: float) -> float:
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]

    return WrkResult(
        kind=kind,
        requests=len(latencies),
        duration_s=seconds,
        requests_per_s=len(latencies) / seconds,
        p50_ms=at(0.5),
        p90_ms=at(0.9),
        p95_ms=at(0.95),
        p99_ms=at(0.99),
        max_ms=ordered[-1],
        mean_ms=sum(latencies) / len(latencies) if latencies else float("nan"),
        non2xx=sum(statuses.values()),
        statuses=statuses,
        first_error=first_error[0] if first_error else "",
        socket_errors=errors,
        completed=completed[0],
    )


def load_runner(smoke: bool) -> Any:
    """wrk, or in a smoke run without wrk the Python client."""
    return run_wrk if shutil.which("wrk") is not None or not smoke else run_python_load


# -- one database -------------------------------------------------------------------------------


@dataclass
class DbRun:
    database: str  # "sqlite" or "postgres"
    server_command: str = ""
    raw_sqlite: SqliteLoopResult | None = None
    raw_pgbench: PgbenchResult | None = None
    db_version: str = ""
    db_settings: str = ""
    earn: WrkResult | None = None
    redeem: WrkResult | None = None
    checkout: WrkResult | None = None
    memory: MemoryReport | None = None
    members: int = 0
    setup_seconds: float = 0.0
    error: str | None = None
    server_log: str = ""
    server_log_tail: str = ""
    server_died: bool = False
    notes: list[str] = field(default_factory=list)


def run_api(run: DbRun, database_url: str, args: argparse.Namespace, log_dir: Path) -> None:
    """Start Tally on ``database_url``, set up members, run earn then redeem; fill ``run``."""
    port = free_port()
    log_path = log_dir / f"{run.database}-server.log"
    run.server_log = str(log_path)
    server = TallyServer(database_url, port=port, workers=args.workers, log_path=log_path)
    run.server_command = f"TALLY_DATABASE_URL={database_url} {' '.join(server.command)}"
    tag = f"b{uuid.uuid4().hex[:8]}"
    log(f"{run.database}: starting {' '.join(server.command)}")
    started = time.monotonic()
    server.start()
    try:
        log(f"{run.database}: server healthy after {time.monotonic() - started:.1f}s")
        api_key = server.create_partner_key()
        setup_started = time.monotonic()
        members = create_members(ApiClient(port, api_key), args.members, tag, parallel=args.clients)
        run.setup_seconds = time.monotonic() - setup_started
        run.members = len(members)
        log(
            f"{run.database}: {len(members)} members created and pre-funded in "
            f"{run.setup_seconds:.1f}s"
        )
        members_file = log_dir / f"{run.database}-members.txt"
        members_file.write_text("".join(f"{m}\n" for m in members), encoding="utf-8")

        def load(kind: str, points: int) -> WrkResult:
            common: dict[str, Any] = {
                "port": port,
                "api_key": api_key,
                "members_file": members_file,
                "points": points,
                "threads": args.threads,
                "clients": args.clients,
            }
            runner = load_runner(args.smoke)
            if args.warmup > 0:
                runner(kind, tag=f"{tag}-{kind}-warm", duration=args.warmup, **common)
            cpu_before = server.cpu_seconds()
            result = runner(kind, tag=f"{tag}-{kind}", duration=args.duration, **common)
            result = dataclasses.replace(result, server_cpu_s=server.cpu_seconds() - cpu_before)
            log(
                f"{run.database}: {kind}: {result.requests_per_s:,.0f} req/s, "
                f"p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms, "
                f"non-2xx {result.non2xx}, socket errors {result.socket_error_count}, "
                f"server CPU {result.server_cpu_ms_per_request:.1f} ms/request"
                + (f"; first error: {result.first_error}" if result.first_error else "")
            )
            return result

        run.earn = load("earn", EARN_POINTS)
        run.redeem = load("redeem", REDEEM_POINTS)
        run.checkout = load("checkout", REDEEM_POINTS)
    finally:
        run.server_died = not server.is_running()
        run.memory = server.stop()
        run.server_log_tail = server.log_tail(3000)
        log(f"{run.database}: server stopped; peak RSS {run.memory.peak_rss_mb:.0f} MB")


def bench_sqlite(args: argparse.Namespace, work: Path, log_dir: Path) -> DbRun:
    run = DbRun("sqlite", db_version=f"SQLite {sqlite3.sqlite_version}")
    try:
        log(f"sqlite: raw sqlite3 commit loop for {args.duration}s")
        run.raw_sqlite = sqlite_commit_loop(work / "raw.db", args.duration)
        run.db_settings = run.raw_sqlite.settings
        log(f"sqlite: raw {run.raw_sqlite.commits_per_s:,.0f} commits/s")
        run_api(run, f"sqlite:///{work / 'tally-bench.db'}", args, log_dir)
    except Exception as exc:  # report, and go on with the other database
        run.error = f"{type(exc).__name__}: {exc}"
        log(f"sqlite: ERROR {run.error}")
    return run


def bench_postgres(args: argparse.Namespace, log_dir: Path) -> DbRun:
    run = DbRun("postgres")
    try:
        with postgres(args.postgres_url) as cluster:
            scale = 1 if args.smoke else 10
            run.db_version = f"PostgreSQL {cluster.version()}"
            run.db_settings = cluster.settings_summary()
            log(f"postgres: {run.db_version} on port {cluster.port}; pgbench -i -s {scale}")
            run.raw_pgbench = cluster.pgbench(
                duration=args.duration, clients=args.clients, threads=args.threads, scale=scale
            )
            log(f"postgres: pgbench {run.raw_pgbench.tps:,.0f} tps")
            cluster.drop_bench_db()
            run_api(run, cluster.sqlalchemy_url, args, log_dir)
    except Exception as exc:  # report, and go on
        run.error = f"{type(exc).__name__}: {exc}"
        log(f"postgres: ERROR {run.error}")
    return run


# -- verdicts -------------------------------------------------------------------------------------


def _load_rows(db: str, res: WrkResult | None, kind: str, judged: bool) -> list[Row]:
    if res is None:
        return [Row(db, f"{kind} run", "did not run", "must run", "FAIL")]
    at = f" at {TARGET_CLIENTS} clients"
    rows = []
    if judged:
        rows.append(
            Row(
                db,
                f"{kind} throughput",
                f"{res.requests_per_s:,.0f} req/s",
                f">= {MIN_EARN_RATE:,.0f} req/s{at}",
                check(res.requests_per_s >= MIN_EARN_RATE),
            )
        )
    else:
        rows.append(
            Row(
                db,
                f"{kind} throughput",
                f"{res.requests_per_s:,.0f} req/s",
                "none in requirement",
                "info",
            )
        )
    rows.append(
        Row(db, f"{kind} latency p50", f"{res.p50_ms:.1f} ms", "none in requirement", "info")
    )
    if judged:
        rows.append(
            Row(
                db,
                f"{kind} latency p99",
                f"{res.p99_ms:.1f} ms",
                f"< {MAX_EARN_P99_MS:.0f} ms{at}",
                check(res.p99_ms < MAX_EARN_P99_MS),
            )
        )
    else:
        rows.append(
            Row(db, f"{kind} latency p99", f"{res.p99_ms:.1f} ms", "none in requirement", "info")
        )
    cpu_budget = 1000 * int(os.cpu_count() or 1) / MIN_EARN_RATE
    rows.append(
        Row(
            db,
            f"{kind} server CPU per request (user+sys, all workers)",
            f"{res.server_cpu_ms_per_request:.2f} ms",
            f"none in requirement ({cpu_budget:.1f} ms = all CPUs at 1,500/s)",
            "info",
        )
    )
    statuses = ", ".join(f"{k}x{v}" for k, v in sorted(res.statuses.items()))
    measured = f"{res.non2xx} non-2xx{f' ({statuses})' if statuses else ''}, "
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(res.socket_errors.items()) if v)
    measured += f"{res.socket_error_count} socket errors{f' ({kinds})' if kinds else ''}, "
    measured += f"of {res.requests:,} requests"
    if res.first_error:
        measured += f"; first: {res.first_error[:100]}"
    ok = res.non2xx == 0 and res.socket_error_count == 0
    rows.append(Row(db, f"{kind} errors", measured, "0", check(ok)))
    return rows


def _checkout_rows(db: str, res: WrkResult | None, *, judged: bool) -> list[Row]:
    """A checkout (hold, then capture) as the mall will make it: checkouts/s and the latency of
    each of its requests, judged against issue 10's target, then the per-request rows."""
    if res is None:
        return []
    at = f" at {TARGET_CLIENTS} clients (issue 10)"
    rate = f"{res.completed_per_s:,.0f} checkouts/s ({res.requests_per_s:,.0f} req/s)"
    p99 = f"{res.p99_ms:.1f} ms"
    if not judged:
        return [
            Row(db, "checkout throughput (hold + capture)", rate, "none (smoke run)", "info"),
            *_load_rows(db, res, "checkout", judged=False),
        ]
    return [
        Row(
            db,
            "checkout throughput (hold + capture)",
            rate,
            f">= {MIN_CHECKOUT_RATE:,.0f} checkouts/s{at}",
            check(res.completed_per_s >= MIN_CHECKOUT_RATE),
        ),
        Row(
            db,
            "checkout request latency p99",
            p99,
            f"< {MAX_EARN_P99_MS:.0f} ms{at}",
            check(res.p99_ms < MAX_EARN_P99_MS),
        ),
        *[
            row
            for row in _load_rows(db, res, "checkout", judged=False)
            if row.figure != "checkout latency p99"
        ],
    ]


def build_rows(runs: list[DbRun], args: argparse.Namespace) -> list[Row]:
    """Every figure beside its limit; a smoke run judges only errors, not the targets."""
    targets = not args.smoke
    rows: list[Row] = []
    for run in runs:
        db = run.database
        if run.error is not None:
            rows.append(
                Row(db, "harness/server error", run.error.splitlines()[0][:160], "no error", "FAIL")
            )
        if run.server_died:
            rows.append(Row(db, "server process", "exited during the run", "stays up", "FAIL"))
        rows += _load_rows(db, run.earn, "earn", judged=targets)
        rows += _load_rows(db, run.redeem, "redeem", judged=False)
        rows += _checkout_rows(db, run.checkout, judged=targets)
        if run.raw_sqlite is not None:
            raw = run.raw_sqlite
            rows.append(
                Row(
                    db,
                    "raw sqlite3 commit loop (1 insert + 1 update per commit)",
                    f"{raw.commits_per_s:,.0f} commits/s",
                    "reference",
                    "info",
                )
            )
            if run.earn is not None:
                share = run.earn.requests_per_s / raw.commits_per_s
                rows.append(
                    Row(
                        db,
                        "earn rate / raw sqlite3 rate",
                        f"{share:.1%}",
                        "none in requirement",
                        "info",
                    )
                )
        if run.raw_pgbench is not None:
            pg = run.raw_pgbench
            rows.append(
                Row(
                    db,
                    f"raw pgbench TPC-B (-c {pg.clients} -j {pg.threads} -M prepared,"
                    f" scale {pg.scale})",
                    f"{pg.tps:,.0f} tps",
                    "reference",
                    "info",
                )
            )
            if run.earn is not None:
                share = run.earn.requests_per_s / pg.tps
                rows.append(
                    Row(
                        db,
                        "earn rate / pgbench tps",
                        f"{share:.1%}",
                        f">= {MIN_PGBENCH_SHARE:.0%}" if targets else "none (smoke run)",
                        check(share >= MIN_PGBENCH_SHARE) if targets else "info",
                    )
                )
        elif db == "postgres":
            rows.append(
                Row(
                    db,
                    "earn rate / pgbench tps",
                    "pgbench did not run",
                    f">= {MIN_PGBENCH_SHARE:.0%}",
                    "FAIL",
                )
            )
        if run.memory is not None and run.memory.samples:
            mem = run.memory
            rows.append(
                Row(
                    db,
                    f"server peak RSS (--workers {args.workers}, {mem.processes} "
                    "processes, sampled every 100 ms)",
                    f"{mem.peak_rss_mb:,.0f} MB (sum of VmHWM {mem.hwm_sum_mb:,.0f} MB)",
                    "none in requirement",
                    "info",
                )
            )
    return rows


# -- machine and report ---------------------------------------------------------------------------


def machine_info() -> dict[str, str]:
    info = verdicts.machine_info(REPO_DIR)
    if shutil.which("wrk") is None:
        info["wrk"] = "no wrk (the Python client drove the load)"
    else:
        wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
        info["wrk"] = (wrk.stdout or wrk.stderr).split("Copyright")[0].strip()
    info["loadavg_start"] = loadavg()
    return info


def loadavg() -> str:
    """The 1-minute load average: other work on the machine skews every figure."""
    try:
        return Path("/proc/loadavg").read_text(encoding="utf-8").split()[0]
    except OSError:
        return "?"


def write_markdown(
    *,
    path: Path,
    command: str,
    started: dt.datetime,
    info: dict[str, str],
    runs: list[DbRun],
    rows: list[Row],
    args: argparse.Namespace,
    overall: str,
) -> None:
    lines = [
        f"### Ledger API benchmark, {started:%Y-%m-%d %H:%M} UTC",
        "",
        f"- Command: `{command}`",
        f"- Machine: {info.get('nproc')} CPUs ({info.get('cpu', '?')}), {info.get('ram', '?')} "
        f"RAM, {info['os']}; Python {info['python']}, {info['wrk']}",
        f"- Tally commit: {info['tally_commit']}",
        f"- 1-minute load average: {info['loadavg_start']} before, {info['loadavg_end']} after "
        "(anything above ~0.5 before means other work shared the CPUs)",
        f"- Load: wrk -t {args.threads} -c {args.clients} -d {args.duration}s --latency after a "
        f"{args.warmup}s warm-up, on 127.0.0.1; {args.members:,} members created through the "
        f"API and pre-funded with {PREFUND_POINTS:,} points each; earn {EARN_POINTS} / redeem "
        f"{REDEEM_POINTS} point(s) per request on a random member; unique Idempotency-Key and "
        "reference per request; redeem runs after earn; then checkouts: a hold of "
        f"{REDEEM_POINTS} point(s) (600 s timeout) and its full capture, each capture sent as "
        "its connection's thread's next request.",
        f"- Server: `tally serve --workers {args.workers}`, a fresh database per run.",
    ]
    for run in runs:
        lines.append(f"- {run.database}: {run.db_version}; {run.db_settings}")
        if run.raw_pgbench is not None:
            lines.append(f"  - raw rate: `{run.raw_pgbench.command}` on the same cluster")
    lines += ["", render_markdown_table(rows), "", f"Overall: **{overall}**", ""]
    for run in runs:
        if run.error:
            lines += [f"{run.database} error:", "", "```", run.error[-3000:], "```", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(
        description="Earn/redeem throughput and latency of a live Tally server."
    )
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--duration", type=int, default=20, help="seconds per measured run")
    parser.add_argument("--clients", type=int, default=TARGET_CLIENTS, help="wrk connections")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (and pgbench -j)")
    parser.add_argument(
        "--workers",
        type=int,
        default=len(os.sched_getaffinity(0)),
        help="tally serve --workers (default: CPUs)",
    )
    parser.add_argument("--members", type=int, default=2000, help="member pool size")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up seconds before each run")
    parser.add_argument("--output", type=Path, help="default bench/results/latest.md")
    parser.add_argument("--keep", action="store_true", help="keep the SQLite work directory")
    parser.add_argument("--postgres-url", help="an existing server (superuser URL) to run on")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="seconds: 4 members, 1 s runs, 2 clients, 1 worker; no targets; no report "
        "unless --output",
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.members, args.duration, args.warmup = SMOKE_MEMBERS, 1, 0
        args.clients, args.threads, args.workers = 2, 1, 1
    elif args.output is None:
        args.output = RESULTS_DIR / "latest.md"

    if shutil.which("wrk") is None and not args.smoke:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    command = shlex.join(["python", "bench/ledger_api.py", *argv])
    started = dt.datetime.now(dt.UTC)
    info = machine_info()
    work = Path(tempfile.mkdtemp(prefix="tally-bench-"))
    log_dir = work / "logs" if args.smoke else RESULTS_DIR / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    runs: list[DbRun] = []
    try:
        if args.db in ("sqlite", "both"):
            runs.append(bench_sqlite(args, work, log_dir))
        if args.db in ("postgres", "both"):
            runs.append(bench_postgres(args, log_dir))
    finally:
        if args.keep:
            log(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    info["loadavg_end"] = loadavg()
    rows = build_rows(runs, args)
    failed = [r for r in rows if r.verdict == "FAIL"]
    overall = verdicts.overall(rows)
    print()
    print(f"{command}   ({started:%Y-%m-%d %H:%M} UTC, {info['nproc']} CPUs, {info.get('cpu')})")
    print(render_table(rows))
    print(f"\nOverall: {overall}")
    for run in runs:
        if run.error:
            print(f"\n{run.database} error (server log: {run.server_log or 'n/a'}):\n{run.error}")
        bad_load = any(r is not None and r.non2xx for r in (run.earn, run.redeem, run.checkout))
        if (run.error or run.server_died or bad_load) and run.server_log_tail:
            print(f"\n{run.database} server log tail ({run.server_log}):\n{run.server_log_tail}")
    if info["loadavg_start"] != "?" and float(info["loadavg_start"]) > 0.5:
        print(
            f"\nNote: load average was {info['loadavg_start']} before the run: other work on "
            "this machine competes for its CPUs and lowers every figure."
        )
    if args.output is not None:
        write_markdown(
            path=args.output,
            command=command,
            started=started,
            info=info,
            runs=runs,
            rows=rows,
            args=args,
            overall=overall,
        )
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
