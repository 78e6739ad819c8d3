"""A quick earn (or redeem) load on one database, for measuring one change at a time.

Starts ``tally serve`` on a fresh database, creates and pre-funds members through the API,
runs wrk for a few seconds and prints throughput, p50/p99, and the CPU per request of Tally's
processes and of PostgreSQL's (from /proc). ``--spy`` records a py-spy profile (raw folded
stacks, GIL samples) of each worker. Not judged against the targets: that is
``bench/ledger_api.py``.

    .venv/bin/python bench/ledger_quick.py --db postgres --duration 10 [--spy]

``--smoke`` (4 members, a 1 s run at 2 clients, one worker, no warm-up; without wrk the Python
client of ``ledger_api.py`` drives the load) is what the test suite runs, so that a refactor
cannot leave this tool broken; it exits 1 when a request failed. ``--postgres-url URL`` runs on
an existing server.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from ledger_api import (
    EARN_POINTS,
    REDEEM_POINTS,
    SMOKE_MEMBERS,
    ApiClient,
    create_members,
    load_runner,
)
from rawdb import free_port, postgres
from server import VENV_BIN, TallyServer, command_cpu_seconds, process_tree


def measure(args: argparse.Namespace, database_url: str, work: Path) -> bool:
    """One warm-up and one measured run; whether every request succeeded."""
    server = TallyServer(
        database_url, port=free_port(), workers=args.workers, log_path=work / "server.log"
    )
    server.start()
    try:
        key = server.create_partner_key()
        members = create_members(ApiClient(server.port, key), args.members, "q", parallel=32)
        members_file = work / "members.txt"
        members_file.write_text("".join(f"{m}\n" for m in members), encoding="utf-8")
        points = EARN_POINTS if args.kind == "earn" else REDEEM_POINTS
        load = {
            "port": server.port,
            "api_key": key,
            "members_file": members_file,
            "points": points,
            "threads": 2,
            "clients": args.clients,
        }
        runner = load_runner(args.smoke)
        if args.warmup > 0:
            runner(args.kind, tag="warm", duration=args.warmup, **load)
        spies = [_spy(pid, work, args.duration) for pid in _workers(server)] if args.spy else []
        tally_before, pg_before = server.cpu_seconds(), command_cpu_seconds("postgres")
        result = runner(args.kind, tag="run", duration=args.duration, **load)
        tally = server.cpu_seconds() - tally_before
        postgres = command_cpu_seconds("postgres") - pg_before
        for spy in spies:
            spy.wait()
    finally:
        server.stop()
    per = 1000 / result.requests if result.requests else float("nan")
    print(
        f"{args.db} {args.kind}: {result.requests_per_s:,.0f}/s, p50 {result.p50_ms:.1f} ms,"
        f" p99 {result.p99_ms:.1f} ms, non-2xx {result.non2xx};"
        f" CPU per request: Tally {tally * per:.3f} ms, PostgreSQL {postgres * per:.3f} ms"
    )
    if spies:
        print(f"profiles: {work}/spy-*.txt")
    if result.first_error:
        print(f"first error: {result.first_error}")
    return result.non2xx == 0 and result.socket_error_count == 0


def _workers(server: TallyServer) -> list[int]:
    assert server.proc is not None
    children = [pid for pid in process_tree(server.proc.pid) if pid != server.proc.pid]
    return children or [server.proc.pid]


def _spy(pid: int, work: Path, duration: int) -> subprocess.Popen[bytes]:
    command = [str(VENV_BIN / "py-spy"), "record", "-p", str(pid), "-d", str(duration)]
    command += ["-r", "200", "-f", "raw", "-o", str(work / f"spy-{pid}.txt"), "--nonblocking"]
    command += ["--gil"]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--kind", choices=("earn", "redeem"), default="earn")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=3, help="warm-up seconds")
    parser.add_argument(
        "--spy", action="store_true", help="py-spy each worker (pip install py-spy)"
    )
    parser.add_argument("--postgres-url", help="an existing server (superuser URL) to run on")
    parser.add_argument("--smoke", action="store_true", help="seconds: tiny sizes, no warm-up")
    args = parser.parse_args()
    if args.smoke:
        args.members, args.duration, args.warmup = SMOKE_MEMBERS, 1, 0
        args.clients, args.workers = 2, 1
    work = Path(tempfile.mkdtemp(prefix="tally-quick-"))
    if args.db == "sqlite":
        ok = measure(args, f"sqlite:///{work}/tally-{uuid.uuid4().hex[:6]}.db", work)
    else:
        with postgres(args.postgres_url) as cluster:
            ok = measure(args, cluster.sqlalchemy_url, work)
    if args.smoke:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
