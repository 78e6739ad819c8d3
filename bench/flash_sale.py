"""Flash-sale benchmark: ``POST /v1/members/{id}/orders`` for one item's flash sale through the
HTTP API of a live Tally server, on SQLite and PostgreSQL (issue 12, ADR 29).

For each database it starts a fresh ``tally serve --workers N`` on 127.0.0.1, applies the demo
programme, creates an item whose sale is open with ``--units`` units and a per-member limit of
one (``POST /v1/mall/items``), seeds ``--buyers`` enrolled members set-based with enough points
for two units (one insert per table, then earns posted set-based), and then lets them arrive in
a burst: ``--clients`` keep-alive connections take the buyers in order, each buyer ordering once
(and every ``--repeat-every``-th buyer a second time, which must be refused). Measured: the time
from the first attempt to the last unit sold, attempts/s and the p99 of an attempt; then, in the
same run, the same server's plain ``GET /v1/mall/items/{code}`` rate for ``--get-seconds``.

Verified: exactly ``--units`` orders, nobody over the limit, no negative balance, the sale's
stock 0, every refusal ``sold_out`` or ``limit_reached`` and ``tally ledger verify`` clean. Every
figure is printed beside its limit with its verdict (``bench/verdicts.py``). Exit code 0 when
every check passes, 1 when one fails.

    python bench/flash_sale.py --db both --units 1000 --buyers 20000 --clients 64

``--smoke`` runs every step in seconds (20 units, 200 buyers, 8 clients, 1 s of GETs) and judges
only the checks, not the speed. ``--postgres-url URL`` runs on an existing server.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import shlex
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
from ledger_api import WrkResult, log, run_clients
from rawdb import free_port, postgres
from seeding import seed_members
from server import ServerError, TallyServer
from verdicts import Row, check, render_markdown_table, render_table

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
DEMO_PROGRAMME = REPO_DIR / "src" / "tally" / "demo" / "programme.yaml"

PARTNER = "MOBILE"  # the demo programme's operator channel (the operator's app orders)
SCOPES = "mall,catalog,read"
ITEM = "FLASH1"
SALE_POINTS = 100
CHUNK = 2000  # members whose points are posted per transaction
# What the figures are judged against (issue 12 asks for them beside the GET rate; the sell-out
# must be no slower than the burst's plain reads would allow, and a refusal as fast as a read).
MAX_SELL_OUT_SECONDS = 30.0
MAX_ATTEMPT_P99_MS = 250.0
SMOKE = {"units": 20, "buyers": 200, "clients": 8, "get_seconds": 1}


@dataclass
class Burst:
    """What the burst's clients saw."""

    result: WrkResult | None = None
    sold: int = 0
    answers: dict[str, int] = field(default_factory=dict)  # by code: 201, sold_out, ...
    first_attempt: float = 0.0
    last_sale: float = 0.0

    @property
    def sell_out_seconds(self) -> float:
        return self.last_sale - self.first_attempt if self.last_sale else float("nan")


@dataclass
class Verification:
    orders: int = -1
    over_limit: int = -1
    negative: int = -1
    stock_left: int | None = -1
    ledger_verify: str = "not run"
    ledger_ok: bool = False


@dataclass
class DbRun:
    database: str
    server_command: str = ""
    seed_seconds: float = 0.0
    burst_cpu_s: float = 0.0  # CPU seconds the server's processes used during the burst
    burst: Burst = field(default_factory=Burst)
    gets: WrkResult | None = None
    verification: Verification = field(default_factory=Verification)
    error: str | None = None
    server_log_tail: str = ""


# -- set-up ----------------------------------------------------------------------------------------


def seed(url: str, count: int, points: int) -> list[int]:
    """``count`` members enrolled 60 days ago, each earning ``points`` from the operator's
    channel (earns posted set-based, :data:`CHUNK` members a transaction)."""
    from tally.config import Settings
    from tally.db.engine import build_engine
    from tally.db.session import Database
    from tally.ledger.domain import Origin
    from tally.ledger.models import EntryKind
    from tally.ledger.orders import Order, post_orders
    from tally.ledger.posting import Posted, policy_for
    from tally.partners import service as partners
    from tally.programme import service

    engine = build_engine(url)
    try:
        db = Database(engine)
        now = dt.datetime.now(dt.UTC)
        with db.write() as session:
            ids = seed_members(session, count, now - dt.timedelta(days=60))
            partner_id = partners.partner_by_code(session, PARTNER).id
            programme = service.running(session, now)
            assert programme is not None, "the demo programme is applied first"
        policy = policy_for(programme, Settings(database_url=url, secret_key="x" * 64))
        origin = Origin(partner_id=partner_id)
        for first in range(0, len(ids), CHUNK):
            orders = [
                Order(EntryKind.EARN, origin, m, points, f"flash-seed-{m}")
                for m in ids[first : first + CHUNK]
            ]
            with db.write() as session:
                outcomes = post_orders(session, orders, now, policy)
            refused = [o for o in outcomes if not isinstance(o, Posted)]
            if refused:
                raise RuntimeError(f"seeding refused {len(refused)} earns: {refused[0]!r}")
        return ids
    finally:
        engine.dispose()


def create_item(port: int, api_key: str, units: int) -> None:
    """The flash-sale item, its sale open for an hour from a minute ago."""
    now = dt.datetime.now(dt.UTC)
    body = {
        "code": ITEM,
        "kind": "donation",
        "names": {"zh-CN": "秒杀", "en": "Flash sale"},
        "price": {"points": SALE_POINTS * 10},
        "sale": {
            "starts_at": (now - dt.timedelta(minutes=1)).isoformat(),
            "ends_at": (now + dt.timedelta(hours=1)).isoformat(),
            "points": SALE_POINTS,
            "stock": units,
            "per_member_limit": 1,
        },
    }
    status, answer = request(port, api_key, "POST", "/v1/mall/items", body, "flash-item")
    if status != 201:
        raise ServerError(f"POST /v1/mall/items answered {status}: {answer}")


def request(
    port: int, api_key: str, method: str, path: str, body: Any = None, key: str | None = None
) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
    if key:
        headers["Idempotency-Key"] = key
    try:
        conn.request(
            method, path, body=json.dumps(body) if body is not None else None, headers=headers
        )
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"null")
    finally:
        conn.close()


# -- the load --------------------------------------------------------------------------------------


def burst(port: int, api_key: str, buyers: list[int], clients: int, repeat_every: int) -> Burst:
    """Every buyer orders once (every ``repeat_every``-th twice in a row), taken in order by
    ``clients`` connections started together."""
    attempts: list[int] = []
    for number, member in enumerate(buyers):
        attempts.append(member)
        if repeat_every and number % repeat_every == repeat_every - 1:
            attempts.append(member)  # again at once: limit_reached while stock remains
    tag = uuid.uuid4().hex[:8]
    out = Burst()
    latencies: list[float] = []
    statuses: dict[str, int] = {}  # unexpected answers only
    first_error: list[str] = []
    errors = {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    completed = [0]
    lock = threading.Lock()
    cursor = [0]
    start = threading.Barrier(clients)

    def client(number: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        start.wait()
        with lock:
            if not out.first_attempt:
                out.first_attempt = time.monotonic()
        while True:
            with lock:
                if cursor[0] >= len(attempts):
                    break
                index = cursor[0]
                cursor[0] += 1
            member = attempts[index]
            headers = {
                "Authorization": f"Bearer {api_key}",
                "Content-Type": "application/json",
                "Idempotency-Key": f"{tag}-{index}",
            }
            began = time.perf_counter()
            try:
                conn.request(
                    "POST",
                    f"/v1/members/{member}/orders",
                    body=f'{{"item": "{ITEM}"}}',
                    headers=headers,
                )
                resp = conn.getresponse()
                raw = resp.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                with lock:
                    errors["read"] += 1
                continue
            elapsed = (time.perf_counter() - began) * 1000
            code = "201" if resp.status == 201 else str(json.loads(raw).get("code", resp.status))
            with lock:
                latencies.append(elapsed)
                out.answers[code] = out.answers.get(code, 0) + 1
                if resp.status == 201:
                    out.sold += 1
                    completed[0] += 1
                    out.last_sale = time.monotonic()
                elif code not in ("sold_out", "limit_reached"):
                    statuses[code] = statuses.get(code, 0) + 1
                    if not first_error:
                        first_error.append(f"{resp.status} {raw[:200].decode(errors='replace')}")
        conn.close()

    out.result = run_clients(
        "flash-order", clients, client, latencies, statuses, first_error, errors, completed
    )
    return out


def gets(port: int, api_key: str, clients: int, seconds: float) -> WrkResult:
    """The same server's plain ``GET /v1/mall/items/{code}`` rate for ``seconds``."""
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    first_error: list[str] = []
    errors = {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(number: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Authorization": f"Bearer {api_key}"}
        while time.monotonic() < deadline:
            began = time.perf_counter()
            try:
                conn.request("GET", f"/v1/mall/items/{ITEM}", headers=headers)
                resp = conn.getresponse()
                raw = resp.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                with lock:
                    errors["read"] += 1
                continue
            with lock:
                latencies.append((time.perf_counter() - began) * 1000)
                if resp.status != 200:
                    statuses[str(resp.status)] = statuses.get(str(resp.status), 0) + 1
                    if not first_error:
                        first_error.append(f"{resp.status} {raw[:200].decode(errors='replace')}")
        conn.close()

    return run_clients("get-item", clients, client, latencies, statuses, first_error, errors, [0])


# -- checks ----------------------------------------------------------------------------------------


def verify(url: str, server: TallyServer, buyers: list[int]) -> Verification:
    from sqlalchemy import func, select

    from tally.db.engine import build_engine
    from tally.db.session import Database
    from tally.ledger.models import Wallet
    from tally.mall.models import Item, LimitCounter, Order

    out = Verification()
    engine = build_engine(url)
    try:
        with Database(engine).read() as session:
            item_id = session.scalar(select(Item.id).where(Item.code == ITEM))
            out.orders = int(
                session.scalar(
                    select(func.count()).select_from(Order).where(Order.item_id == item_id)
                )
                or 0
            )
            per_member = (
                select(Order.member_id)
                .where(Order.item_id == item_id)
                .group_by(Order.member_id)
                .having(func.count() > 1)
            )
            twice = int(
                session.scalar(select(func.count()).select_from(per_member.subquery())) or 0
            )
            counted = int(
                session.scalar(
                    select(func.count())
                    .select_from(LimitCounter)
                    .where(LimitCounter.item_id == item_id, LimitCounter.count > 1)
                )
                or 0
            )
            out.over_limit = twice + counted
            out.negative = int(
                session.scalar(
                    select(func.count())
                    .select_from(Wallet)
                    .where((Wallet.available < 0) | (Wallet.held < 0))
                )
                or 0
            )
            out.stock_left = session.scalar(select(Item.sale_stock).where(Item.id == item_id))
    finally:
        engine.dispose()
    verified = server.cli("ledger", "verify", timeout=1800)
    out.ledger_ok = verified.returncode == 0
    out.ledger_verify = (verified.stdout.strip().splitlines() or ["(no output)"])[-1][:160]
    return out


# -- one database ----------------------------------------------------------------------------------


def run_api(run: DbRun, url: str, args: argparse.Namespace, log_dir: Path) -> None:
    port = free_port()
    server = TallyServer(
        url, port=port, workers=args.workers, log_path=log_dir / f"flash-{run.database}.log"
    )
    run.server_command = f"TALLY_DATABASE_URL={url} {' '.join(server.command)}"
    log(f"{run.database}: starting {' '.join(server.command)}")
    server.start()
    try:
        applied = server.cli("programme", "apply", str(DEMO_PROGRAMME), "--by", "bench")
        if applied.returncode != 0:
            raise ServerError(f"tally programme apply failed:\n{applied.stdout}\n{applied.stderr}")
        api_key = server.issue_key(PARTNER, SCOPES)
        started = time.monotonic()
        buyers = seed(url, args.buyers, 2 * SALE_POINTS)
        run.seed_seconds = time.monotonic() - started
        log(f"{run.database}: {len(buyers):,} buyers seeded in {run.seed_seconds:.1f}s")
        create_item(port, api_key, args.units)
        gets(port, api_key, args.clients, 1.0)  # warm-up: connections, caches (not reported)
        cpu_before = server.cpu_seconds()
        run.burst = burst(port, api_key, buyers, args.clients, args.repeat_every)
        run.burst_cpu_s = server.cpu_seconds() - cpu_before
        res = run.burst.result
        assert res is not None
        log(
            f"{run.database}: sold {run.burst.sold:,} in {run.burst.sell_out_seconds:.2f}s, "
            f"{res.requests_per_s:,.0f} attempts/s, p99 {res.p99_ms:.1f} ms, server CPU "
            f"{1000 * run.burst_cpu_s / max(res.requests, 1):.2f} ms/attempt, answers "
            f"{run.burst.answers}"
        )
        run.gets = gets(port, api_key, args.clients, args.get_seconds)
        log(f"{run.database}: GET {run.gets.requests_per_s:,.0f}/s, p99 {run.gets.p99_ms:.1f} ms")
        run.verification = verify(url, server, buyers)
        log(f"{run.database}: verified: {run.verification}")
    finally:
        server.stop()
        run.server_log_tail = server.log_tail(3000)


def bench_database(name: str, args: argparse.Namespace, work: Path, log_dir: Path) -> DbRun:
    run = DbRun(name)
    try:
        if name == "sqlite":
            run_api(run, f"sqlite:///{work / 'tally-flash.db'}", args, log_dir)
        else:
            with postgres(args.postgres_url) as cluster:
                run_api(run, cluster.sqlalchemy_url, args, log_dir)
    except Exception as exc:  # report, and go on with the other database
        run.error = f"{type(exc).__name__}: {exc}"
        log(f"{name}: ERROR {run.error}")
    return run


# -- verdicts --------------------------------------------------------------------------------------


def build_rows(runs: list[DbRun], args: argparse.Namespace) -> list[Row]:
    rows: list[Row] = []
    judged = not args.smoke
    for run in runs:
        db, burst_, check_ = run.database, run.burst, run.verification
        res, get = burst_.result, run.gets
        if run.error or res is None or get is None:
            rows.append(Row(db, "flash sale run", run.error or "did not run", "must run", "FAIL"))
            continue
        unexpected = res.non2xx + res.socket_error_count
        rows += [
            Row(
                db,
                "orders",
                f"{check_.orders:,}",
                f"= {args.units:,}",
                check(check_.orders == args.units == burst_.sold),
            ),
            Row(
                db,
                "members over the limit of 1",
                str(check_.over_limit),
                "0",
                check(check_.over_limit == 0),
            ),
            Row(db, "negative balances", str(check_.negative), "0", check(check_.negative == 0)),
            Row(db, "sale stock left", str(check_.stock_left), "0", check(check_.stock_left == 0)),
            Row(
                db,
                "answers other than 201, sold_out, limit_reached",
                f"{unexpected} ({res.first_error[:80] or 'none'})",
                "0",
                check(unexpected == 0),
            ),
            Row(db, "tally ledger verify", check_.ledger_verify, "clean", check(check_.ledger_ok)),
            Row(
                db,
                "time to sell out",
                f"{burst_.sell_out_seconds:.2f} s "
                f"({args.units:,} units, {len(burst_.answers) and sum(burst_.answers.values()):,} "
                f"attempts, {args.clients} clients)",
                f"<= {MAX_SELL_OUT_SECONDS:.0f} s" if judged else "not judged (smoke)",
                check(burst_.sell_out_seconds <= MAX_SELL_OUT_SECONDS) if judged else "info",
            ),
            Row(db, "attempts/s", f"{res.requests_per_s:,.0f}", "none in requirement", "info"),
            Row(
                db,
                "server CPU per attempt",
                f"{1000 * run.burst_cpu_s / max(res.requests, 1):.2f} ms",
                "none in requirement",
                "info",
            ),
            Row(
                db,
                "attempt p99",
                f"{res.p99_ms:.1f} ms (p50 {res.p50_ms:.1f})",
                f"<= {MAX_ATTEMPT_P99_MS:.0f} ms" if judged else "not judged (smoke)",
                check(res.p99_ms <= MAX_ATTEMPT_P99_MS) if judged else "info",
            ),
            Row(
                db,
                "plain GET /v1/mall/items/{code}",
                f"{get.requests_per_s:,.0f}/s, p99 {get.p99_ms:.1f} ms, {get.non2xx} failed",
                "0 failed",
                check(get.non2xx == 0 and get.socket_error_count == 0),
            ),
            Row(
                db,
                "attempts/s beside GET/s",
                f"{res.requests_per_s / get.requests_per_s:.2f}",
                "none in requirement",
                "info",
            ),
        ]
    return rows


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description="A flash sale under a burst, through the API.")
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--units", type=int, default=1000)
    parser.add_argument("--buyers", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=64, help="concurrent connections")
    parser.add_argument("--repeat-every", type=int, default=10, help="buyers who try twice")
    parser.add_argument("--get-seconds", type=float, default=10)
    parser.add_argument("--workers", type=int, default=1, help="tally serve --workers")
    parser.add_argument("--postgres-url", help="an existing server (superuser URL) to run on")
    parser.add_argument("--output", type=Path, help="a Markdown report (and JSON beside it)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, checks only")
    args = parser.parse_args(argv)
    if args.smoke:
        for name, value in SMOKE.items():
            setattr(args, name, value)
    command = shlex.join(["python", "bench/flash_sale.py", *argv])
    started = dt.datetime.now(dt.UTC)
    info = verdicts.machine_info(REPO_DIR)
    info["loadavg_start"] = f"{os.getloadavg()[0]:.2f}"
    work = Path(tempfile.mkdtemp(prefix="tally-flash-"))
    log_dir = work / "logs"
    log_dir.mkdir(parents=True)
    names = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    runs = [bench_database(name, args, work, log_dir) for name in names]
    rows = build_rows(runs, args)
    overall = verdicts.overall(rows)
    print()
    print(
        f"{command}   ({started:%Y-%m-%d %H:%M} UTC, {info['nproc']} CPUs, load "
        f"{info['loadavg_start']})"
    )
    print(render_table(rows))
    print(f"\nOverall: {overall}")
    for run in runs:
        if run.error and run.server_log_tail:
            print(f"\n{run.database} server log tail:\n{run.server_log_tail}")
    if args.output is not None:
        args.output.write_text(
            f"`{command}` ({started:%Y-%m-%d %H:%M} UTC, {info.get('tally_commit')})\n\n"
            + render_markdown_table(rows)
            + f"\n\nOverall: **{overall}**\n",
            encoding="utf-8",
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
    return 0 if "FAIL" not in overall else 1


if __name__ == "__main__":
    sys.exit(main())
