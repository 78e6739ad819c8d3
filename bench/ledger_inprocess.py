"""Server CPU per earn (or redeem) measured in one process, for telling two commits apart on a
busy machine.

A live run (``ledger_api.py``, ``ledger_quick.py``) loses throughput, and CPU per request, to
whatever else runs on the host. This drives the app in-process instead: httpx's ASGI transport
through the real middleware, fast lane, batcher and database (a fresh SQLite file, or a fresh
database on PostgreSQL), in rounds of ``--clients`` concurrent requests, so every batch holds
that many; it prints the process's CPU time per request (the driver's share included, the same
for every commit) and the wall time. To compare commits, run it alternately with each tree's
sources first on the path (``git worktree add /tmp/a <commit>``), on the same database kind::

    PYTHONPATH=/tmp/a/src .venv/bin/python bench/ledger_inprocess.py --db postgres
    .venv/bin/python bench/ledger_inprocess.py --db postgres

Not judged against the targets (that is ``bench/ledger_api.py``). ``--smoke`` (2 rounds of 2)
is what the test suite runs, so that a refactor cannot leave this tool broken.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from rawdb import postgres

SECRET = "bench-secret-" + "x" * 32


def measure(
    url: str,
    kind: str,
    members: int,
    clients: int,
    rounds: int,
    warmup: int,
    profile: Path | None = None,
) -> str:
    """Set up a partner and ``members`` members, then time ``rounds`` rounds of ``clients``
    (a checkout round is a round of holds, then a round of their captures); ``profile``, when
    given, receives a cProfile of the measured rounds."""
    from tally.app import create_app
    from tally.config import Settings
    from tally.db.engine import build_engine
    from tally.db.session import Database
    from tally.kit.clock import utcnow
    from tally.partners import service as partners
    from tally.schema import migrate

    db = Database(build_engine(url, pool_size=20))
    migrate(db.engine)
    with db.write() as session:
        partner = partners.create_partner(session, "BENCH", "Bench", utcnow())
        scopes = partners.parse_scopes("members,earn,redeem,read")
        _key, key = partners.issue_key(session, partner, scopes, SECRET, utcnow())
    app = create_app(Settings(database_url=url, secret_key=SECRET, job_interval_seconds=0), db)
    auth = {"Authorization": f"Bearer {key}"}

    def headers() -> dict[str, str]:
        return {**auth, "Idempotency-Key": uuid.uuid4().hex}

    async def run() -> str:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                ids = []
                for number in range(members):
                    identity = {"namespace": "phone", "id": f"1390000{number:04d}"}
                    answer = await client.post(
                        "/v1/members", json={"external_id": identity}, headers=headers()
                    )
                    answer.raise_for_status()
                    ids.append(answer.json()["id"])
                    funded = await client.post(
                        f"/v1/members/{ids[-1]}/earn",
                        json={"points": 100_000, "reference": uuid.uuid4().hex},
                        headers=headers(),
                    )
                    funded.raise_for_status()

                async def post(path: str, body: dict[str, object]) -> dict[str, Any]:
                    answer = await client.post(path, json=body, headers=headers())
                    if answer.status_code not in (200, 201):
                        raise RuntimeError(f"{answer.status_code} {answer.text[:300]}")
                    found: dict[str, Any] = answer.json()
                    return found

                async def one(serial: int) -> None:
                    member = ids[serial % len(ids)]
                    reference = uuid.uuid4().hex
                    if kind != "checkout":
                        points = 10 if kind == "earn" else 1
                        body = {"points": points, "reference": reference}
                        await post(f"/v1/members/{member}/{kind}", body)
                        return
                    hold = {"points": 1, "expires_in_seconds": 600, "reference": reference}
                    made = await post(f"/v1/members/{member}/holds", hold)
                    captures.append(made["hold"]["id"])

                captures: list[str] = []

                async def rounds_of(count: int, start: int) -> None:
                    for round_ in range(count):
                        base = (start + round_) * clients
                        await asyncio.gather(*(one(base + i) for i in range(clients)))
                        if captures:
                            held, captures[:] = list(captures), []
                            await asyncio.gather(
                                *(post(f"/v1/holds/{hold}/capture", {}) for hold in held)
                            )

                await rounds_of(warmup, 0)
                profiler = cProfile.Profile() if profile is not None else None
                cpu, wall = time.process_time(), time.perf_counter()
                if profiler is not None:
                    profiler.enable()
                await rounds_of(rounds, warmup)
                if profiler is not None:
                    profiler.disable()
                    profiler.dump_stats(profile)
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                n = rounds * clients * (2 if kind == "checkout" else 1)
                return (
                    f"{kind}: {n} requests in rounds of {clients}, CPU per request "
                    f"{cpu / n * 1000:.3f} ms, wall per request {wall / n * 1000:.3f} ms"
                )

    try:
        return asyncio.run(run())
    finally:
        db.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="postgres")
    parser.add_argument("--kind", choices=("earn", "redeem", "checkout"), default="earn")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=30, help="unmeasured rounds first")
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--postgres-url", help="an existing server (superuser URL) to run on")
    parser.add_argument("--profile", type=Path, help="write a cProfile of the measured rounds")
    parser.add_argument("--smoke", action="store_true", help="seconds: 2 rounds of 2, 4 members")
    args = parser.parse_args()
    if args.smoke:
        args.clients, args.rounds, args.warmup, args.members = 2, 2, 1, 4
    sizes = (args.kind, args.members, args.clients, args.rounds, args.warmup, args.profile)
    if args.db == "sqlite":
        with tempfile.TemporaryDirectory(prefix="tally-inprocess-") as work:
            print(measure(f"sqlite:///{Path(work) / 'tally.db'}", *sizes))
    else:
        with postgres(args.postgres_url) as cluster:
            print(measure(cluster.sqlalchemy_url, *sizes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
