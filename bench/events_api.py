"""Events benchmark: ``POST /v1/events`` and ``POST /v1/events/batch`` against a live Tally server
running the demo programme's campaigns, on SQLite and PostgreSQL.

For each database it measures the raw rate first (the sqlite3 commit loop; pgbench TPC-B on the
same cluster), starts a fresh ``tally serve --workers N`` on 127.0.0.1, applies the demo
programme (base rate with growth, tier multiplier, weekend double, beverage bonus, and the
capped campaign HIGH_FREQUENCY with a budget small enough to run out during the run), creates a
partner key and seeds the members set-based (one insert per table), then:

* (a) purchases with 1-3 items, one per request, at ``--clients`` connections (wrk,
  ``bench/wrk/events.lua``) for ``--duration`` seconds; a few hot members draw about 10 % of the
  events, so they reach HIGH_FREQUENCY (8 purchases in 30 days) and its caps;
* (b) ``--batches`` batches of ``--batch-size`` (1,000) purchases, sent by ``--batch-clients``
  keep-alive connections, bodies built before the clock starts.

Then it verifies: every event stored once, the sum of the stored events' points equals what
the members' wallets hold and every event with points has one earn entry, ``tally ledger
verify`` is clean, and no cap or budget counter is over its limit or differs from what the
stored outcomes say they consumed. Every figure is printed beside its limit. Exit code 0 when
every check passes, 1 when one fails, 2 on a harness error (wrk missing).

    python bench/events_api.py --db both --duration 20 --clients 32 --workers 2

``--smoke`` runs every step in seconds (200 members, 1 s at 2 clients without warm-up, 2 batches
of 20, one worker, pgbench at scale 1; without wrk a Python client drives the load) and judges
only the errors and the verification, not the speed; no report unless ``--output``.
``--postgres-url URL`` runs on an existing server.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import http.client
import json
import math
import os
import queue
import random
import shlex
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import verdicts
from ledger_api import WrkResult, loadavg, log, machine_info, run_clients, run_wrk
from rawdb import PgbenchResult, SqliteLoopResult, free_port, postgres, sqlite_commit_loop
from seeding import seed_members
from server import MemoryReport, ServerError, TallyServer
from verdicts import Row, check, render_markdown_table, render_table

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
DEMO_PROGRAMME = REPO_DIR / "src" / "tally" / "demo" / "programme.yaml"

# The requirement (see bench/README.md).
TARGET_CLIENTS = 32
MIN_EVENT_RATE = 1500.0  # events/s, one per request, at 32 clients
MAX_EVENT_P99_MS = 50.0
MIN_BATCH_RATE = 20_000.0  # events/s through POST /v1/events/batch of 1,000

PARTNER = "BENCH"
SCOPES = "events,members,read"
CAPPED = "HIGH_FREQUENCY"  # the demo's capped, budgeted campaign
HOT_SHARE = 0.10  # of the events go to the hot members
CATEGORIES = ("beverages", "snacks", "household", "electronics")
SMOKE = {"members": 200, "hot": 4, "batches": 2, "batch_size": 20}


# -- the programme and the members ---------------------------------------------------------------


def bench_programme(budget: int) -> str:
    """The demo programme with the capped campaign's budget set to ``budget`` and the bench's
    partner declared, as programme-file YAML."""
    from tally.programme import loader
    from tally.programme.domain import Programme

    content = loader.load(DEMO_PROGRAMME.read_text(encoding="utf-8"), DEMO_PROGRAMME.name).dump()
    campaigns = [c for c in content["campaigns"] if c["code"] == CAPPED]
    assert campaigns, f"the demo programme has no campaign {CAPPED}"
    campaigns[0]["budget"] = {"points": budget}
    content["partners"].append({"code": PARTNER, "name": "Bench"})
    return loader.dump(Programme.model_validate(content))


def seed(url: str, count: int) -> list[int]:
    """``count`` members enrolled 60 days ago (:func:`seeding.seed_members`), one transaction."""
    from tally.db.engine import build_engine
    from tally.db.session import Database

    engine = build_engine(url)
    try:
        with Database(engine).write() as session:
            enrolled = dt.datetime.now(dt.UTC) - dt.timedelta(days=60)
            return seed_members(session, count, enrolled)
    finally:
        engine.dispose()


def member_pool(members: list[int], hot: int) -> list[int]:
    """The members requests draw from: all of them once and the first ``hot`` repeated so that
    they draw about :data:`HOT_SHARE` of the events."""
    hot = min(hot, len(members))
    if hot == 0:
        return list(members)
    repeats = math.ceil(HOT_SHARE * len(members) / ((1 - HOT_SHARE) * hot))
    return members + members[:hot] * repeats


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def purchase(event_id: str, member_id: int, rng: random.Random, now: float) -> dict[str, Any]:
    """A purchase of 1-3 items as ``bench/wrk/events.lua`` makes them."""
    items: list[dict[str, Any]] = []
    total = 0
    for _ in range(rng.randint(1, 3)):
        cents = rng.randint(500, 40_000)
        total += cents
        items.append(
            {
                "sku": f"sku-{rng.randint(1, 500)}",
                "amount": _money(cents),
                "category": rng.choice(CATEGORIES),
                "labels": ["sale"] if rng.randint(1, 4) == 1 else [],
            }
        )
    occurred = dt.datetime.fromtimestamp(now - rng.randint(0, 6 * 86400), dt.UTC)
    return {
        "type": "purchase",
        "event_id": event_id,
        "member_id": member_id,
        "occurred_at": occurred.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "amount": {"value": _money(total), "currency": "CNY"},
        "items": items,
    }


def wait_for_campaigns(port: int, api_key: str, member_id: int, timeout: float = 60) -> None:
    """Wait until the server prices with the applied programme: a server re-reads it at most
    every ``programme_refresh_seconds``, so a dry run must show the BASE campaign's rules."""
    event = purchase("bench-probe", member_id, random.Random(0), time.time())
    deadline = time.monotonic() + timeout
    answer = ""
    while time.monotonic() < deadline:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
            "Idempotency-Key": uuid.uuid4().hex,
        }
        try:
            conn.request("POST", "/v1/events?dry_run=true", json.dumps(event), headers)
            resp = conn.getresponse()
            answer = resp.read().decode(errors="replace")
        finally:
            conn.close()
        if resp.status == 200 and any(r["campaign"] == "BASE" for r in json.loads(answer)["rules"]):
            return
        time.sleep(0.2)
    raise ServerError(f"the server did not price with the applied programme: {answer[:300]}")


# -- the Python load client ----------------------------------------------------------------------


def closed_loop(
    *,
    port: int,
    api_key: str,
    path: str,
    next_body: Callable[[int], str | None],
    clients: int,
    deadline: float | None,
    failures_in: Callable[[Any], tuple[int, str]] = lambda data: (0, ""),
    kind: str,
) -> WrkResult:
    """``clients`` threads with one keep-alive connection each POST ``next_body(client)`` until
    it answers None or ``deadline`` (monotonic) passes; ``completed`` counts the events
    processed, ``failures_in(answer)`` the refusals inside a 2xx answer (a batch's)."""
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    errors = {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    first_error: list[str] = []
    completed = [0]
    lock = threading.Lock()

    def client(number: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while deadline is None or time.monotonic() < deadline:
            body = next_body(number)
            if body is None:
                break
            headers = {
                "Authorization": f"Bearer {api_key}",
                "Content-Type": "application/json",
                "Idempotency-Key": uuid.uuid4().hex,
            }
            started = time.perf_counter()
            try:
                conn.request("POST", path, body=body, headers=headers)
                resp = conn.getresponse()
                raw = resp.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                with lock:
                    errors["read"] += 1
                continue
            elapsed = (time.perf_counter() - started) * 1000
            ok = 200 <= resp.status < 300
            failed, detail = failures_in(json.loads(raw)) if ok else (1, "")
            with lock:
                latencies.append(elapsed)
                if not ok or failed:
                    key = str(resp.status) if not ok else f"{resp.status}-with-refusals"
                    statuses[key] = statuses.get(key, 0) + 1
                    if not first_error:
                        text = detail or raw[:300].decode(errors="replace")
                        first_error.append(f"{resp.status} {text}")
                if ok:
                    completed[0] += body.count('"event_id"') - failed
        conn.close()

    return run_clients(kind, clients, client, latencies, statuses, first_error, errors, completed)


def singles(
    port: int, api_key: str, pool: list[int], tag: str, args: argparse.Namespace, duration: int
) -> WrkResult:
    """Load (a): one purchase per request for ``duration`` seconds, by wrk (or, in a smoke run
    without wrk, the Python client)."""
    if shutil.which("wrk") is not None:
        pool_file = Path(args.work) / f"{tag}-pool.txt"
        pool_file.write_text("".join(f"{m}\n" for m in pool), encoding="utf-8")
        result = run_wrk(
            "events",
            port=port,
            api_key=api_key,
            members_file=pool_file,
            tag=tag,
            points=0,
            threads=args.threads,
            clients=args.clients,
            duration=duration,
        )
        return dataclasses.replace(result, completed=result.requests - result.non2xx)
    rngs = [random.Random(f"{tag}-{n}") for n in range(args.clients)]
    serials = [0] * args.clients

    def body(number: int) -> str:
        serials[number] += 1
        rng = rngs[number]
        event = purchase(f"{tag}-c{number}-{serials[number]}", rng.choice(pool), rng, time.time())
        return json.dumps(event)

    return closed_loop(
        port=port,
        api_key=api_key,
        path="/v1/events",
        next_body=body,
        clients=args.clients,
        deadline=time.monotonic() + duration,
        kind="events",
    )


def batches(
    port: int, api_key: str, pool: list[int], tag: str, args: argparse.Namespace
) -> WrkResult:
    """Load (b): ``--batches`` bodies of ``--batch-size`` purchases, built first, sent by
    ``--batch-clients`` connections; each answer must process every event."""
    rng = random.Random(tag)
    now = time.time()
    bodies: queue.SimpleQueue[str] = queue.SimpleQueue()
    for b in range(args.batches):
        events = [
            purchase(f"{tag}-{b}-{i}", rng.choice(pool), rng, now) for i in range(args.batch_size)
        ]
        bodies.put(json.dumps({"events": events}))

    def body(_number: int) -> str | None:
        try:
            return bodies.get_nowait()
        except queue.Empty:
            return None

    def refusals(data: Any) -> tuple[int, str]:
        bad = [r for r in data["results"] if r.get("status") not in ("processed",)]
        return len(bad), json.dumps(bad[0])[:300] if bad else ""

    return closed_loop(
        port=port,
        api_key=api_key,
        path="/v1/events/batch",
        next_body=body,
        clients=args.batch_clients,
        deadline=None,
        failures_in=refusals,
        kind="batch",
    )


# -- verification ----------------------------------------------------------------------------------


@dataclass
class Verification:
    stored: int = 0
    distinct: int = 0
    answered: int = 0  # events answered processed by the loads
    slack: int = 0  # events wrk may have sent and not seen answered when it stopped
    batch_sent: int = 0
    batch_stored: int = 0
    event_points: int = 0
    wallet_points: int = 0
    events_with_points: int = 0
    earn_entries: int = 0
    ledger_ok: bool = False
    ledger_output: str = ""
    counters: int = 0
    over_limit: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    capped: int = 0  # events that a cap cut or skipped
    budget_exhausted: int = 0  # events the budget cut or skipped
    budget_used: int = 0
    budget: int = 0


def limits_of(key: str, programme: Any) -> int | None:
    """The limit of counter ``key`` (``budget:<campaign>`` or ``cap:<campaign>:<index>:...``)."""
    kind, code, *rest = key.split(":")
    campaign = next((c for c in programme.campaigns if c.code == code), None)
    if campaign is None:
        return None
    if kind == "budget":
        return None if campaign.budget is None else int(campaign.budget.points)
    return int(campaign.caps[int(rest[0])].points)


def verify_run(
    url: str, server: TallyServer, programme_text: str, batch_tag: str, check_: Verification
) -> Verification:
    """Read the database after the loads: stored once, points = earns, counters within their
    limits and equal to what the outcomes consumed; then ``tally ledger verify``."""
    from sqlalchemy import func, select, text

    from tally.db.engine import build_engine
    from tally.db.session import Database
    from tally.events.models import RuleCounter, StoredEvent
    from tally.programme import service

    programme = service.validate(programme_text)
    out = check_
    engine = build_engine(url)
    try:
        with Database(engine).read() as session:
            out.stored, out.distinct = session.execute(
                select(func.count(), func.count(func.distinct(StoredEvent.event_id)))
            ).one()
            out.batch_stored = int(
                session.scalar(
                    select(func.count()).where(StoredEvent.event_id.like(f"{batch_tag}-%"))
                )
                or 0
            )
            out.event_points = int(session.scalar(select(func.sum(StoredEvent.points))) or 0)
            out.events_with_points = int(
                session.scalar(select(func.count()).where(StoredEvent.points > 0)) or 0
            )
            out.wallet_points = int(
                session.scalar(text("SELECT COALESCE(SUM(available + held), 0) FROM wallets")) or 0
            )
            out.earn_entries = int(
                session.scalar(text("SELECT COUNT(*) FROM journal_entries WHERE kind = 'earn'"))
                or 0
            )
            consumed: dict[str, int] = {}
            rows = session.execute(
                select(StoredEvent.outcome).execution_options(yield_per=5000)
            ).scalars()
            for outcome in rows:
                for key, amount in outcome.get("consumption", {}).items():
                    consumed[key] = consumed.get(key, 0) + int(amount)
                reasons = {s["reason"] for s in outcome["skipped"]}
                reasons |= {r["cut_by"] for r in outcome["rules"] if r.get("cut_by")}
                out.capped += "capped" in reasons
                out.budget_exhausted += "budget_exhausted" in reasons
            counters = {c.key: int(c.used) for c in session.scalars(select(RuleCounter))}
    finally:
        engine.dispose()
    out.counters = len(counters)
    for key in sorted(set(counters) | {k for k in consumed if not k.startswith("event:")}):
        used = counters.get(key, 0)
        limit = limits_of(key, programme)
        if limit is None or used > limit:
            out.over_limit.append(f"{key} used {used} of {limit}")
        if used != consumed.get(key, 0):
            out.mismatched.append(f"{key} used {used}, outcomes consumed {consumed.get(key, 0)}")
    budget_key = f"budget:{CAPPED}"
    out.budget_used = counters.get(budget_key, 0)
    out.budget = limits_of(budget_key, programme) or 0
    done = server.cli("ledger", "verify")
    out.ledger_ok = done.returncode == 0
    out.ledger_output = (done.stdout + done.stderr).strip()[-1000:]
    return out


# -- one database -------------------------------------------------------------------------------


@dataclass
class DbRun:
    database: str
    server_command: str = ""
    raw_sqlite: SqliteLoopResult | None = None
    raw_pgbench: PgbenchResult | None = None
    db_version: str = ""
    db_settings: str = ""
    members: int = 0
    seed_seconds: float = 0.0
    singles: WrkResult | None = None
    batch: WrkResult | None = None
    verification: Verification | None = None
    memory: MemoryReport | None = None
    error: str | None = None
    server_log: str = ""
    server_log_tail: str = ""
    server_died: bool = False


def run_api(run: DbRun, url: str, args: argparse.Namespace, log_dir: Path) -> None:
    port = free_port()
    log_path = log_dir / f"events-{run.database}-server.log"
    run.server_log = str(log_path)
    server = TallyServer(url, port=port, workers=args.workers, log_path=log_path)
    run.server_command = f"TALLY_DATABASE_URL={url} {' '.join(server.command)}"
    tag = f"e{uuid.uuid4().hex[:8]}"
    log(f"{run.database}: starting {' '.join(server.command)}")
    server.start()
    try:
        programme_text = bench_programme(args.budget)
        programme_file = Path(args.work) / f"{run.database}-programme.yaml"
        programme_file.write_text(programme_text, encoding="utf-8")
        applied = server.cli("programme", "apply", str(programme_file), "--by", "bench")
        if applied.returncode != 0:
            raise ServerError(f"tally programme apply failed:\n{applied.stdout}\n{applied.stderr}")
        api_key = server.issue_key(PARTNER, SCOPES)  # the programme declares it
        started = time.monotonic()
        members = seed(url, args.members)
        run.seed_seconds = time.monotonic() - started
        run.members = len(members)
        log(f"{run.database}: {len(members):,} members seeded in {run.seed_seconds:.1f}s")
        pool = member_pool(members, args.hot)
        wait_for_campaigns(port, api_key, members[0])
        check_ = Verification()
        wrk_runs = 0
        if args.warmup > 0:
            warm = singles(port, api_key, pool, f"{tag}-warm", args, args.warmup)
            check_.answered += warm.completed
            wrk_runs += 1
        cpu_before = server.cpu_seconds()
        one = singles(port, api_key, pool, f"{tag}-one", args, args.duration)
        run.singles = dataclasses.replace(one, server_cpu_s=server.cpu_seconds() - cpu_before)
        check_.answered += one.completed
        wrk_runs += 1
        log(
            f"{run.database}: events: {one.requests_per_s:,.0f} events/s, p50 {one.p50_ms:.1f} "
            f"ms, p99 {one.p99_ms:.1f} ms, non-2xx {one.non2xx}"
            + (f"; first error: {one.first_error}" if one.first_error else "")
        )
        cpu_before = server.cpu_seconds()
        many = batches(port, api_key, pool, f"{tag}-batch", args)
        run.batch = dataclasses.replace(many, server_cpu_s=server.cpu_seconds() - cpu_before)
        check_.answered += many.completed
        check_.batch_sent = args.batches * args.batch_size
        log(
            f"{run.database}: batches: {many.completed_per_s:,.0f} events/s, "
            f"p50 {many.p50_ms:.0f} ms per batch, refused {many.non2xx}"
            + (f"; first error: {many.first_error}" if many.first_error else "")
        )
        if shutil.which("wrk") is not None:
            check_.slack = args.clients * wrk_runs
        run.verification = verify_run(url, server, programme_text, f"{tag}-batch", check_)
        log(f"{run.database}: verified: {run.verification}")
    finally:
        run.server_died = not server.is_running()
        run.memory = server.stop()
        run.server_log_tail = server.log_tail(3000)


def bench_sqlite(args: argparse.Namespace, work: Path, log_dir: Path) -> DbRun:
    run = DbRun("sqlite", db_version=f"SQLite {sqlite3.sqlite_version}")
    try:
        run.raw_sqlite = sqlite_commit_loop(work / "raw.db", args.duration)
        run.db_settings = run.raw_sqlite.settings
        log(f"sqlite: raw {run.raw_sqlite.commits_per_s:,.0f} commits/s")
        run_api(run, f"sqlite:///{work / 'tally-events.db'}", args, log_dir)
    except Exception as exc:  # report, and go on with the other database
        run.error = f"{type(exc).__name__}: {exc}"
        log(f"sqlite: ERROR {run.error}")
    return run


def bench_postgres(args: argparse.Namespace, log_dir: Path) -> DbRun:
    run = DbRun("postgres")
    try:
        with postgres(args.postgres_url) as cluster:
            run.db_version = f"PostgreSQL {cluster.version()}"
            run.db_settings = cluster.settings_summary()
            run.raw_pgbench = cluster.pgbench(
                duration=args.duration,
                clients=args.clients,
                threads=args.threads,
                scale=1 if args.smoke else 10,
            )
            log(f"postgres: pgbench {run.raw_pgbench.tps:,.0f} tps")
            cluster.drop_bench_db()
            run_api(run, cluster.sqlalchemy_url, args, log_dir)
    except Exception as exc:  # report, and go on
        run.error = f"{type(exc).__name__}: {exc}"
        log(f"postgres: ERROR {run.error}")
    return run


# -- verdicts -------------------------------------------------------------------------------------


def _errors_row(db: str, figure: str, res: WrkResult) -> Row:
    statuses = ", ".join(f"{k}x{v}" for k, v in sorted(res.statuses.items()))
    measured = f"{res.non2xx} failed{f' ({statuses})' if statuses else ''}, "
    measured += f"{res.socket_error_count} socket errors, of {res.requests:,} requests"
    if res.first_error:
        measured += f"; first: {res.first_error[:100]}"
    return Row(db, figure, measured, "0", check(res.non2xx == 0 and res.socket_error_count == 0))


def _load_rows(run: DbRun, targets: bool) -> list[Row]:
    db, rows = run.database, []
    at = f" at {TARGET_CLIENTS} clients"
    one, many = run.singles, run.batch
    if one is None:
        rows.append(Row(db, "POST /v1/events run", "did not run", "must run", "FAIL"))
    else:
        rate = f"{one.requests_per_s:,.0f} events/s"
        limit = f">= {MIN_EVENT_RATE:,.0f} events/s{at}"
        rows += [
            Row(
                db,
                "events throughput (one per request)",
                rate,
                limit if targets else "none (smoke run)",
                check(one.requests_per_s >= MIN_EVENT_RATE) if targets else "info",
            ),
            Row(db, "events latency p50", f"{one.p50_ms:.1f} ms", "none in requirement", "info"),
            Row(db, "events latency p95", f"{one.p95_ms:.1f} ms", "none in requirement", "info"),
            Row(
                db,
                "events latency p99",
                f"{one.p99_ms:.1f} ms",
                f"< {MAX_EVENT_P99_MS:.0f} ms{at}" if targets else "none (smoke run)",
                check(one.p99_ms < MAX_EVENT_P99_MS) if targets else "info",
            ),
            Row(
                db,
                "events server CPU per event (user+sys, all workers)",
                f"{one.server_cpu_ms_per_request:.2f} ms",
                f"none in requirement ({1000 * (os.cpu_count() or 1) / MIN_EVENT_RATE:.2f} ms = "
                "all CPUs at 1,500/s)",
                "info",
            ),
            _errors_row(db, "events errors", one),
        ]
    if many is None:
        rows.append(Row(db, "POST /v1/events/batch run", "did not run", "must run", "FAIL"))
    else:
        rate = (
            f"{many.completed_per_s:,.0f} events/s ({many.requests} batches in "
            f"{many.duration_s:.2f} s)"
        )
        rows += [
            Row(
                db,
                "batch throughput",
                rate,
                f">= {MIN_BATCH_RATE:,.0f} events/s" if targets else "none (smoke run)",
                check(many.completed_per_s >= MIN_BATCH_RATE) if targets else "info",
            ),
            Row(
                db,
                "batch latency p50 / p99 (per batch)",
                f"{many.p50_ms:,.0f} / {many.p99_ms:,.0f} ms",
                "none in requirement",
                "info",
            ),
            Row(
                db,
                "batch server CPU per event (user+sys, all workers)",
                f"{1000 * many.server_cpu_s / max(many.completed, 1):.2f} ms",
                f"none in requirement ({1000 * (os.cpu_count() or 1) / MIN_BATCH_RATE:.2f} ms = "
                "all CPUs at 20,000/s)",
                "info",
            ),
            _errors_row(db, "batch errors (a refused event counts)", many),
        ]
    return rows


def _verify_rows(run: DbRun, targets: bool) -> list[Row]:
    db, v = run.database, run.verification
    if v is None:
        return [Row(db, "verification", "did not run", "must run", "FAIL")]
    stored_ok = v.stored == v.distinct and v.answered <= v.stored <= v.answered + v.slack
    slack = f" (+ up to {v.slack} in flight when wrk stopped)" if v.slack else ""
    over = "; ".join(v.over_limit[:3]) or "none"
    mismatched = "; ".join(v.mismatched[:3]) or "none"
    return [
        Row(
            db,
            "events stored, once each (distinct event ids)",
            f"{v.stored:,} stored, {v.distinct:,} distinct",
            f"= {v.answered:,} answered{slack}",
            check(stored_ok),
        ),
        Row(
            db,
            "batch events stored",
            f"{v.batch_stored:,}",
            f"= {v.batch_sent:,} sent",
            check(v.batch_stored == v.batch_sent),
        ),
        Row(
            db,
            "sum of events' points = points in wallets",
            f"{v.event_points:,} = {v.wallet_points:,}",
            "equal",
            check(v.event_points == v.wallet_points),
        ),
        Row(
            db,
            "events with points = earn entries",
            f"{v.events_with_points:,} = {v.earn_entries:,}",
            "equal",
            check(v.events_with_points == v.earn_entries),
        ),
        Row(
            db,
            "tally ledger verify",
            "clean" if v.ledger_ok else v.ledger_output[:160],
            "clean",
            check(v.ledger_ok),
        ),
        Row(
            db,
            f"cap and budget counters over their limit (of {v.counters:,})",
            over,
            "none",
            check(not v.over_limit),
        ),
        Row(
            db,
            "counters = what the stored outcomes consumed",
            mismatched,
            "none differs",
            check(not v.mismatched),
        ),
        Row(
            db,
            f"{CAPPED} budget used",
            f"{v.budget_used:,} of {v.budget:,} points",
            f"<= {v.budget:,}",
            check(v.budget_used <= v.budget),
        ),
        Row(
            db,
            "events cut by a cap / by the budget (the load reached both)",
            f"{v.capped:,} / {v.budget_exhausted:,}",
            "> 0 / > 0" if targets else "none (smoke run)",
            check(v.capped > 0 and v.budget_exhausted > 0) if targets else "info",
        ),
    ]


def build_rows(runs: list[DbRun], args: argparse.Namespace) -> list[Row]:
    rows: list[Row] = []
    targets = not args.smoke
    for run in runs:
        db = run.database
        if run.error is not None:
            rows.append(
                Row(db, "harness/server error", run.error.splitlines()[0][:160], "no error", "FAIL")
            )
        if run.server_died:
            rows.append(Row(db, "server process", "exited during the run", "stays up", "FAIL"))
        rows.append(
            Row(
                db,
                "members seeded (set-based)",
                f"{run.members:,} in {run.seed_seconds:.1f} s",
                "none",
                "info",
            )
        )
        rows += _load_rows(run, targets)
        rows += _verify_rows(run, targets)
        one = run.singles
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
            if one is not None:
                rows.append(
                    Row(
                        db,
                        "events rate / raw sqlite3 rate",
                        f"{one.requests_per_s / raw.commits_per_s:.1%}",
                        "none in requirement",
                        "info",
                    )
                )
        if run.raw_pgbench is not None:
            pg = run.raw_pgbench
            rows.append(
                Row(
                    db,
                    f"raw pgbench TPC-B (-c {pg.clients} -j {pg.threads} -M "
                    f"prepared, scale {pg.scale})",
                    f"{pg.tps:,.0f} tps",
                    "reference",
                    "info",
                )
            )
            if one is not None:
                rows.append(
                    Row(
                        db,
                        "events rate / pgbench tps",
                        f"{one.requests_per_s / pg.tps:.1%}",
                        "none in requirement",
                        "info",
                    )
                )
        if run.memory is not None and run.memory.samples:
            mem = run.memory
            rows.append(
                Row(
                    db,
                    f"server peak RSS (--workers {args.workers})",
                    f"{mem.peak_rss_mb:,.0f} MB (sum of VmHWM {mem.hwm_sum_mb:,.0f} MB)",
                    "none in requirement",
                    "info",
                )
            )
    return rows


def write_markdown(
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
        f"### Events API benchmark, {started:%Y-%m-%d %H:%M} UTC",
        "",
        f"- Command: `{command}`",
        f"- Machine: {info.get('nproc')} CPUs ({info.get('cpu', '?')}), {info.get('ram', '?')} "
        f"RAM, {info['os']}; Python {info['python']}, {info['wrk']}",
        f"- Tally commit: {info['tally_commit']}",
        f"- 1-minute load average: {info['loadavg_start']} before, {info['loadavg_end']} after",
        f"- Programme: the demo's campaigns, {CAPPED}'s budget set to {args.budget:,} points; "
        f"{args.members:,} members seeded set-based, {args.hot} hot members drawing "
        f"~{HOT_SHARE:.0%} of the events; purchases of 1-3 items over the last 6 days.",
        f"- (a) wrk -t {args.threads} -c {args.clients} -d {args.duration}s after a "
        f"{args.warmup}s warm-up; (b) {args.batches} batches of {args.batch_size:,} by "
        f"{args.batch_clients} connections. Server: `tally serve --workers {args.workers}`.",
    ]
    for run in runs:
        lines.append(f"- {run.database}: {run.db_version}; {run.db_settings}")
    lines += ["", render_markdown_table(rows), "", f"Overall: **{overall}**", ""]
    for run in runs:
        if run.error:
            lines += [f"{run.database} error:", "", "```", run.error[-3000:], "```", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description="Events API throughput, latency and checks.")
    parser.add_argument(
        "--db", choices=["sqlite", "postgres", "postgresql", "both"], default="both"
    )
    parser.add_argument("--duration", type=int, default=20, help="seconds of load (a)")
    parser.add_argument("--clients", type=int, default=TARGET_CLIENTS, help="wrk connections")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (and pgbench -j)")
    parser.add_argument(
        "--workers",
        type=int,
        default=len(os.sched_getaffinity(0)),
        help="tally serve --workers (default: CPUs)",
    )
    parser.add_argument("--members", type=int, default=10_000, help="members seeded")
    parser.add_argument("--hot", type=int, default=20, help="members drawing ~10%% of events")
    parser.add_argument(
        "--budget",
        type=int,
        default=20_000,
        help=f"points of {CAPPED}'s budget (small enough to run out)",
    )
    parser.add_argument("--batches", type=int, default=20, help="batches sent in load (b)")
    parser.add_argument("--batch-size", type=int, default=1000, help="events per batch")
    parser.add_argument("--batch-clients", type=int, default=2, help="connections for (b)")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up seconds before (a)")
    parser.add_argument("--output", type=Path, help="default bench/results/events-latest.md")
    parser.add_argument("--keep", action="store_true", help="keep the SQLite work directory")
    parser.add_argument("--postgres-url", help="an existing server (superuser URL) to run on")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="seconds, tiny sizes, no targets; no report unless --output",
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.members, args.hot = SMOKE["members"], SMOKE["hot"]
        args.batches, args.batch_size = SMOKE["batches"], SMOKE["batch_size"]
        args.duration, args.warmup, args.clients, args.threads = 1, 0, 2, 1
        args.workers, args.batch_clients = 1, 1
    elif args.output is None:
        args.output = RESULTS_DIR / "events-latest.md"
    if shutil.which("wrk") is None and not args.smoke:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    command = shlex.join(["python", "bench/events_api.py", *argv])
    started = dt.datetime.now(dt.UTC)
    info = machine_info()
    work = Path(tempfile.mkdtemp(prefix="tally-bench-events-"))
    args.work = str(work)
    log_dir = work / "logs" if args.smoke else RESULTS_DIR / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    runs: list[DbRun] = []
    try:
        if args.db in ("sqlite", "both"):
            runs.append(bench_sqlite(args, work, log_dir))
        if args.db in ("postgres", "postgresql", "both"):
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
        if run.error or run.server_died:
            print(f"\n{run.database} error (server log {run.server_log}):\n{run.error}")
            print(f"\n{run.database} server log tail:\n{run.server_log_tail}")
    if args.output is not None:
        write_markdown(args.output, command, started, info, runs, rows, args, overall)
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
