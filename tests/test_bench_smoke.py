"""Every benchmark script in ``bench/`` runs in smoke mode (tiny sizes, no targets, seconds), on
SQLite and on the test session's PostgreSQL server, so that a refactor cannot leave one broken.

The scripts run as their own processes, as an operator runs them, side by side (they mostly wait
on a server starting or a one-second load). Each must exit 0: in smoke mode that means every
step ran and every error check passed (no failed request, the job read every member, a second
evaluation changed nothing); the performance targets are not judged.
"""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import sys
from pathlib import Path

import pytest

from support.postgres import PostgresServer, find_pg_bin

pytestmark = pytest.mark.postgres

BENCH = Path(__file__).resolve().parents[1] / "bench"
#: Modules other scripts import; they have no command of their own.
LIBRARIES = {"seeding.py", "server.py", "verdicts.py"}
#: Each script's smoke command; ``{pg}`` is the PostgreSQL server's URL.
SMOKE = {
    "rawdb.py": ["--smoke", "--db", "both", "--postgres-url", "{pg}"],
    "tiers_evaluate.py": ["--smoke", "--db", "both", "--postgres-url", "{pg}"],
    "ledger_api.py": ["--smoke", "--db", "both", "--postgres-url", "{pg}"],
    "ledger_quick.py": ["--smoke", "--db", "postgres", "--postgres-url", "{pg}"],
    "ledger_inprocess.py": ["--smoke", "--db", "postgres", "--postgres-url", "{pg}"],
    "events_api.py": ["--smoke", "--db", "both", "--postgres-url", "{pg}"],
    "expiry.py": ["--smoke", "--db", "both", "--postgres-url", "{pg}"],
    "events_import.py": ["--smoke", "--db", "both", "--postgres-url", "{pg}"],
    "flash_sale.py": ["--smoke", "--db", "both", "--postgres-url", "{pg}"],
    "auctions.py": ["--smoke", "--db", "both", "--postgres-url", "{pg}"],
    "offers_eval.py": ["--smoke"],
}
#: A verification row each script's table must show passed (its exit code says so too).
VERIFIED = {
    "events_api.py": "tally ledger verify",
    "expiry.py": "tally ledger verify",
    "events_import.py": "tally ledger verify",
    "flash_sale.py": "tally ledger verify",
    "auctions.py": "tally ledger verify",
}
TIMEOUT = 240


def test_every_script_has_a_smoke_command() -> None:
    scripts = {path.name for path in BENCH.glob("*.py")}
    assert scripts == set(SMOKE) | LIBRARIES
    for name in SMOKE:
        assert "--smoke" in (BENCH / name).read_text(encoding="utf-8")
    for name in LIBRARIES:
        assert '__name__ == "__main__"' not in (BENCH / name).read_text(encoding="utf-8")


def _run(script: str, args: list[str], env: dict[str, str]) -> tuple[str, int, str]:
    try:
        done = subprocess.run(
            [sys.executable, str(BENCH / script), *args],
            cwd=BENCH.parent,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as expired:
        return script, -1, f"timed out after {TIMEOUT} s\n{expired.stderr!s}"
    return script, done.returncode, done.stdout[-12000:] + "\n" + done.stderr[-4000:]


def test_every_benchmark_runs_in_smoke_mode(postgres_server: PostgresServer) -> None:
    pg_bin = find_pg_bin()
    assert pg_bin is not None
    env = {
        **os.environ,
        "TALLY_BENCH_VENV_BIN": str(Path(sys.executable).parent),
        "TALLY_BENCH_PG_BIN": str(pg_bin),
    }
    env.pop("TALLY_DATABASE_URL", None)
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(SMOKE)) as pool:
        runs = [
            pool.submit(_run, script, [a.format(pg=postgres_server.url) for a in args], env)
            for script, args in SMOKE.items()
        ]
        results = [run.result() for run in runs]

    failed = {script: output for script, code, output in results if code != 0}
    assert not failed, "\n\n".join(f"== {s} ==\n{o}" for s, o in failed.items())
    for script, _code, output in results:
        if script in VERIFIED:
            rows = [line for line in output.splitlines() if VERIFIED[script] in line]
            assert rows, f"{script} printed no {VERIFIED[script]!r} row:\n{output}"
            assert all(row.rstrip().endswith("PASS") for row in rows), "\n".join(rows)
