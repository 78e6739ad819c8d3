"""Auctions benchmark: many bidders on one auction in its last minute, through the HTTP API of a
live Tally server, on SQLite and PostgreSQL (issue 12).

For each database it starts a fresh ``tally serve --workers N`` on 127.0.0.1, applies the demo
programme (MOBILE, the operator's channel, places the bids), enrols ``--bidders`` members
through the API with points enough, and creates one auction ending ``--duration`` seconds
later with a soft close (late bids push the end back, up to ``--max-extension`` seconds).
``--clients`` connections then bid for random bidders, each at the minimum its last answer gave
plus a random number of steps, until the auction refuses bids (``auction_closed``). A bid
refused as ``bid_too_low`` lost a race to another bid: it is answered, not an error. Then
``tally jobs auctions`` closes the auction once its end has passed, and the run verifies:

* while bidding ended and after the close, the auction's holds are consistent (the only active
  hold is the leader's, of its maximum; none after the close);
* every bidder holds nothing after the close and has exactly its points back, but the winner,
  who paid the price once (one capture);
* ``tally ledger verify`` is clean.

It reports the p50 and p99 of a bid and bids per second (the issue sets no target: ``info``),
beside PASS/FAIL for the errors and every verification. Exit code 0 when every check passes,
1 when one fails, 2 on a harness error.

    python bench/auctions.py --db both --bidders 200 --clients 32 --duration 60

``--smoke`` runs every step in seconds (12 bidders, 4 clients, a 4-second auction) and judges
only the errors and the verification; ``--postgres-url URL`` runs on an existing server.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import random
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
from ledger_api import log
from rawdb import free_port, postgres
from server import ServerError, TallyServer
from verdicts import Row, check, render_markdown_table, render_table

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
DEMO_PROGRAMME = REPO_DIR / "src" / "tally" / "demo" / "programme.yaml"
OPERATOR = "MOBILE"
SCOPES = "members,earn,read,catalog,mall"
WALLET = 1_000_000
START_POINTS = 100
SMOKE = {"bidders": 12, "clients": 4, "duration": 4, "soft_close": 1, "max_extension": 3}


@dataclass
class Load:
    """What the bidding answered."""

    latencies_ms: list[float] = field(default_factory=list)
    accepted: int = 0
    too_low: int = 0
    errors: int = 0
    first_error: str = ""
    seconds: float = 0.0

    def percentile(self, share: float) -> float:
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


@dataclass
class DbRun:
    database: str
    load: Load | None = None
    holds_at_end: list[str] = field(default_factory=list)
    holds_after_close: list[str] = field(default_factory=list)
    wallets: list[str] = field(default_factory=list)
    captures: int = -1
    sold: bool = False
    price: int = 0
    extended_s: float = 0.0
    ledger_ok: bool = False
    error: str = ""


class Client:
    """One keep-alive connection with the operator channel's key."""

    def __init__(self, port: int, key: str) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.key = key

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}
        if method == "POST":
            headers["Idempotency-Key"] = uuid.uuid4().hex
        data = None if body is None else json.dumps(body)
        self.connection.request(method, path, body=data, headers=headers)
        response = self.connection.getresponse()
        text = response.read()
        return response.status, json.loads(text) if text else None


def _enrol(port: int, key: str, count: int, tag: str) -> list[int]:
    client = Client(port, key)
    members = []
    for index in range(count):
        body = {"external_id": {"namespace": "phone", "id": f"{tag}{index:05d}"}}
        status, found = client.call("POST", "/v1/members", body)
        if status not in (200, 201):
            raise ServerError(f"enrolling answered {status}: {found}")
        member = int(found["id"])
        status, found = client.call(
            "POST", f"/v1/members/{member}/earn", {"points": WALLET, "reference": f"{tag}-{index}"}
        )
        if status != 201:
            raise ServerError(f"earning answered {status}: {found}")
        members.append(member)
    return members


def _bidding(
    port: int, key: str, auction: str, members: list[int], clients: int, stop_at: float
) -> Load:
    """``clients`` threads bid until the auction refuses bids (or ``stop_at``, a safeguard)."""
    load = Load()
    lock = threading.Lock()
    closed = threading.Event()

    def bidder(seed: int) -> None:
        rng = random.Random(seed)
        client = Client(port, key)
        minimum = START_POINTS
        while not closed.is_set() and time.monotonic() < stop_at:
            member = rng.choice(members)
            body = {"member_id": member, "max_points": minimum + rng.randint(0, 3) * 10}
            started = time.perf_counter()
            try:
                status, found = client.call("POST", f"/v1/auctions/{auction}/bids", body)
            except (OSError, http.client.HTTPException) as error:
                with lock:
                    load.errors += 1
                    load.first_error = load.first_error or repr(error)
                client = Client(port, key)
                continue
            elapsed = (time.perf_counter() - started) * 1000
            code = (found or {}).get("code")
            with lock:
                if status == 201:
                    load.accepted += 1
                    load.latencies_ms.append(elapsed)
                    minimum = int(found["auction"]["minimum_bid"])
                elif code == "bid_too_low":
                    load.too_low += 1
                    load.latencies_ms.append(elapsed)
                    minimum = int(found["minimum"])
                elif code == "auction_closed":
                    closed.set()
                elif code == "insufficient_points":
                    load.latencies_ms.append(elapsed)  # a bidder out of points: answered
                else:
                    load.errors += 1
                    load.first_error = load.first_error or f"{status} {found}"

    started = time.monotonic()
    threads = [threading.Thread(target=bidder, args=(seed,)) for seed in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    load.seconds = time.monotonic() - started
    return load


def _verify(run: DbRun, url: str, auction: str, members: list[int], closed: bool) -> None:
    """Read the auction's holds (and, once closed, every bidder's wallet) from the database."""
    from sqlalchemy import func, select

    from tally.auctions import service as auctions
    from tally.db.engine import build_engine
    from tally.db.session import Database
    from tally.ledger import repository as ledger
    from tally.ledger.models import EntryKind, JournalEntry

    db = Database(build_engine(url))
    try:
        with db.read() as session:
            problems = auctions.check_holds(session, uuid.UUID(auction))
            if not closed:
                run.holds_at_end = problems
                return
            run.holds_after_close = problems
            result = auctions.result_for_order(session, uuid.UUID(auction))
            run.sold = result is not None
            run.price = result.points if result is not None else 0
            winner = result.member_id if result is not None else None
            for member in members:
                wallet = ledger.wallet(session, member)
                expected = WALLET - (run.price if member == winner else 0)
                if wallet is None or (wallet.available, wallet.held) != (expected, 0):
                    found = None if wallet is None else (wallet.available, wallet.held)
                    run.wallets.append(f"member {member}: {found}, expected ({expected}, 0)")
            run.captures = int(
                session.scalar(
                    select(func.count())
                    .select_from(JournalEntry)
                    .where(JournalEntry.kind == EntryKind.CAPTURE)
                    .where(JournalEntry.reference.like(f"auction:{auction}:%"))
                )
                or 0
            )
    finally:
        db.dispose()


def run_api(run: DbRun, url: str, args: argparse.Namespace, log_dir: Path) -> None:
    server = TallyServer(
        url,
        port=free_port(),
        workers=args.workers,
        log_path=log_dir / f"auctions-{run.database}.log",
    )
    log(f"{run.database}: starting {' '.join(server.command)}")
    server.start()
    try:
        applied = server.cli("programme", "apply", str(DEMO_PROGRAMME), "--by", "bench")
        if applied.returncode != 0:
            raise ServerError(f"tally programme apply failed:\n{applied.stdout}\n{applied.stderr}")
        key = server.issue_key(OPERATOR, SCOPES)
        time.sleep(1.5)  # the programme cache sees the new version (MOBILE an operator channel)
        members = _enrol(server.port, key, args.bidders, f"137{uuid.uuid4().int % 10**4:04d}")
        now = dt.datetime.now(dt.UTC)
        body = {
            "item": f"BENCH-{uuid.uuid4().hex[:6]}",
            "names": {"zh-CN": "压测拍品", "en": "Benchmark lot"},
            "starts_at": (now - dt.timedelta(seconds=5)).isoformat(),
            "ends_at": (now + dt.timedelta(seconds=args.duration)).isoformat(),
            "start_points": START_POINTS,
            "increments": [{"from": 0, "step": 10}, {"from": 100_000, "step": 100}],
            "soft_close_seconds": args.soft_close,
            "max_extension_seconds": args.max_extension,
        }
        status, made = Client(server.port, key).call("POST", "/v1/mall/auctions", body)
        if status != 201:
            raise ServerError(f"creating the auction answered {status}: {made}")
        auction = str(made["id"])
        stop_at = time.monotonic() + args.duration + args.max_extension + 30
        run.load = _bidding(server.port, key, auction, members, args.clients, stop_at)
        status, final = Client(server.port, key).call("GET", f"/v1/auctions/{auction}")
        ends_at = dt.datetime.fromisoformat(final["ends_at"])
        run.extended_s = (ends_at - dt.datetime.fromisoformat(made["ends_at"])).total_seconds()
        log(
            f"{run.database}: {run.load.accepted} bids accepted, {run.load.too_low} too low, "
            f"p99 {run.load.percentile(0.99):.1f} ms, end extended by {run.extended_s:.0f} s"
        )
        _verify(run, url, auction, members, closed=False)
        time.sleep(max(0.0, (ends_at - dt.datetime.now(dt.UTC)).total_seconds()) + 0.2)
        closing = server.cli("jobs", "auctions")
        if closing.returncode != 0:
            raise ServerError(f"tally jobs auctions failed:\n{closing.stdout}\n{closing.stderr}")
        _verify(run, url, auction, members, closed=True)
        done = server.cli("ledger", "verify")
        run.ledger_ok = done.returncode == 0
    finally:
        server.stop()


def build_rows(runs: list[DbRun], smoke: bool) -> list[Row]:
    rows = []
    for run in runs:
        db = run.database
        if run.error or run.load is None:
            rows.append(Row(db, "run", run.error or "no load", "completes", "FAIL"))
            continue
        load = run.load
        rate = (load.accepted + load.too_low) / load.seconds if load.seconds else 0.0
        rows += [
            Row(db, "bid p50", f"{load.percentile(0.5):.1f} ms", "none", "info"),
            Row(db, "bid p99", f"{load.percentile(0.99):.1f} ms", "none", "info"),
            Row(
                db,
                "bids answered",
                f"{rate:,.0f}/s ({load.accepted} accepted, {load.too_low} too low)",
                "none",
                "info",
            ),
            Row(db, "end extended by late bids", f"{run.extended_s:.0f} s", "none", "info"),
            Row(
                db,
                "failed bids and socket errors",
                f"{load.errors}" + (f" ({load.first_error[:80]})" if load.first_error else ""),
                "0",
                check(load.errors == 0),
            ),
            Row(
                db,
                "holds when bidding ended",
                "; ".join(run.holds_at_end) or "consistent",
                "only the leader's maximum held",
                check(not run.holds_at_end),
            ),
            Row(
                db,
                "holds after the close",
                "; ".join(run.holds_after_close) or "none active",
                "none active",
                check(not run.holds_after_close),
            ),
            Row(
                db,
                "wallets after the close",
                "; ".join(run.wallets[:3]) or "all exact",
                "the winner paid the price once, others all back",
                check(run.sold and not run.wallets and run.captures == 1),
            ),
            Row(
                db,
                "tally ledger verify",
                "clean" if run.ledger_ok else "failed",
                "clean",
                check(run.ledger_ok),
            ),
        ]
        if not smoke:
            rows.append(
                Row(db, "bids accepted", str(load.accepted), ">= 1", check(load.accepted > 0))
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--bidders", type=int, default=200)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration", type=int, default=60, help="seconds until the scheduled end")
    parser.add_argument("--soft-close", type=int, default=10)
    parser.add_argument("--max-extension", type=int, default=60)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--postgres-url", default=None)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--output", type=Path, default=None, help="write a Markdown report here")
    args = parser.parse_args(argv)
    if args.smoke:
        args.bidders, args.clients, args.duration = (
            SMOKE[k] for k in ("bidders", "clients", "duration")
        )
        args.soft_close, args.max_extension = SMOKE["soft_close"], SMOKE["max_extension"]
        args.workers = 1
    runs: list[DbRun] = []
    with tempfile.TemporaryDirectory(prefix="tally-auctions-") as work:
        log_dir = Path(work) / "logs"
        log_dir.mkdir()
        if args.db in ("sqlite", "both"):
            run = DbRun("sqlite")
            try:
                run_api(run, f"sqlite:///{Path(work) / 'auctions.db'}", args, log_dir)
            except Exception as error:  # report, and go on with the other database
                run.error = f"{type(error).__name__}: {error}"
            runs.append(run)
        if args.db in ("postgres", "both"):
            run = DbRun("postgres")
            try:
                with postgres(args.postgres_url) as cluster:
                    run_api(run, cluster.sqlalchemy_url, args, log_dir)
            except Exception as error:
                run.error = f"{type(error).__name__}: {error}"
            runs.append(run)
    rows = build_rows(runs, args.smoke)
    print(render_table(rows))
    verdict = verdicts.overall(rows)
    print(f"\nverdict: {verdict}")
    if args.output is not None:
        args.output.write_text(
            f"# Auctions benchmark\n\n{render_markdown_table(rows)}\n\nverdict: {verdict}\n",
            encoding="utf-8",
        )
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
