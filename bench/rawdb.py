"""The databases' own raw rates, measured in the same run as the API benchmark.

* PostgreSQL: a throw-away cluster (temporary directory, random free port, 127.0.0.1 only) and
  pgbench's built-in TPC-B-like script.
* SQLite: a plain ``sqlite3`` loop with the settings Tally uses (WAL, ``synchronous=NORMAL``);
  each iteration is one transaction that inserts one row and updates one row.

Run alone to check the pieces: ``python bench/rawdb.py --duration 10``. ``--postgres-url URL``
(here and in every benchmark) runs on an existing server instead of a throw-away cluster: a
superuser's URL; fresh databases are created on it for the run and dropped after.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from urllib.parse import unquote, urlsplit

PG_BIN = Path(os.environ.get("TALLY_BENCH_PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_OS_USER = "postgres"
PG_SUPERUSER = "postgres"
PG_APP_ROLE = "tally"
PG_APP_DB = "tally"
PG_BENCH_DB = "pgbench"

# The only settings changed from PostgreSQL's defaults. Durability (fsync, synchronous_commit,
# full_page_writes, wal_sync_method) is left at the defaults so pgbench and Tally pay the same
# price per commit.
PG_SETTINGS: dict[str, str] = {
    "listen_addresses": "'127.0.0.1'",
    "max_connections": "200",
    "shared_buffers": "256MB",
}

SQLITE_PRAGMAS: tuple[str, ...] = ("journal_mode=WAL", "synchronous=NORMAL")


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _run(cmd: list[str], *, timeout: float, env: dict[str, str] | None = None) -> str:
    """Run a command, return its stdout, and raise with its output when it fails."""
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, env=env, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"command failed ({proc.returncode}): {' '.join(cmd)}\n"
            f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
        )
    return proc.stdout


def _as_pg_user(cmd: list[str]) -> list[str]:
    """initdb and pg_ctl refuse to run as root: run them as the postgres OS user."""
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", PG_OS_USER, "--", *cmd]


def _ensure_pg_os_user() -> None:
    if os.geteuid() != 0:
        return
    probe = subprocess.run(["id", "-u", PG_OS_USER], capture_output=True, check=False)
    if probe.returncode != 0:
        _run(["useradd", "--system", "--no-create-home", PG_OS_USER], timeout=30)


class PostgresCluster:
    """A throw-away PostgreSQL cluster bound to 127.0.0.1 on a random free port.

    Authentication is ``trust``: the cluster lives for one benchmark run, listens on the
    loopback interface only and its directory is removed on exit.
    """

    def __init__(self, base_dir: Path | None = None) -> None:
        self._own_dir = base_dir is None
        self.root = (
            Path(tempfile.mkdtemp(prefix="tally-bench-pg-")) if base_dir is None else base_dir
        )
        self.data_dir = self.root / "data"
        self.socket_dir = self.root / "sock"
        self.log_file = self.root / "postgres.log"
        self.port = free_port()
        self.started = False
        self.app_db = PG_APP_DB
        self.bench_db = PG_BENCH_DB

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        _ensure_pg_os_user()
        self.root.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, user=PG_OS_USER, group=PG_OS_USER)
            shutil.chown(self.socket_dir, user=PG_OS_USER, group=PG_OS_USER)
        _run(
            _as_pg_user(
                [
                    str(PG_BIN / "initdb"),
                    "--pgdata",
                    str(self.data_dir),
                    "--username",
                    PG_SUPERUSER,
                    "--auth",
                    "trust",
                    "--encoding",
                    "UTF8",
                    "--no-instructions",
                ]
            ),
            timeout=120,
        )
        settings = {
            **PG_SETTINGS,
            "port": str(self.port),
            "unix_socket_directories": f"'{self.socket_dir}'",
        }
        conf = "".join(f"{key} = {value}\n" for key, value in settings.items())
        with (self.data_dir / "postgresql.conf").open("a", encoding="utf-8") as fh:
            fh.write("\n# tally bench\n" + conf)
        _run(
            _as_pg_user(
                [
                    str(PG_BIN / "pg_ctl"),
                    "--pgdata",
                    str(self.data_dir),
                    "--log",
                    str(self.log_file),
                    "--wait",
                    "--timeout",
                    "60",
                    "start",
                ]
            ),
            timeout=90,
        )
        self.started = True
        self.psql(f"CREATE ROLE {PG_APP_ROLE} LOGIN")
        self.psql(f"CREATE DATABASE {PG_APP_DB} OWNER {PG_APP_ROLE}")
        self.psql(f"CREATE DATABASE {PG_BENCH_DB}")

    def stop(self) -> None:
        if self.started:
            subprocess.run(
                _as_pg_user(
                    [
                        str(PG_BIN / "pg_ctl"),
                        *("--pgdata", str(self.data_dir), "--mode", "fast"),
                        *("--wait", "--timeout", "60", "stop"),
                    ]
                ),
                capture_output=True,
                timeout=90,
                check=False,
            )
            self.started = False
        if self._own_dir:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresCluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- helpers -------------------------------------------------------------------------------

    @property
    def sqlalchemy_url(self) -> str:
        return f"postgresql+psycopg://{PG_APP_ROLE}@127.0.0.1:{self.port}/{PG_APP_DB}"

    def _conn_args(self) -> list[str]:
        return ["-h", "127.0.0.1", "-p", str(self.port), "-U", PG_SUPERUSER]

    def psql(self, sql: str, db: str = "postgres") -> str:
        return _run(
            [
                str(PG_BIN / "psql"),
                *self._conn_args(),
                *("-d", db, "-v", "ON_ERROR_STOP=1", "-X", "-q", "-A", "-t", "-c", sql),
            ],
            timeout=300,
        )

    def version(self) -> str:
        return self.psql("SHOW server_version").strip()

    def settings_summary(self) -> str:
        names = ["max_connections", "shared_buffers", "fsync", "synchronous_commit"]
        names += ["full_page_writes", "wal_sync_method"]
        rows = self.psql(
            "SELECT name || '=' || current_setting(name) FROM pg_settings "
            f"WHERE name IN ({', '.join(repr(n) for n in names)}) ORDER BY name"
        )
        return ", ".join(line for line in rows.splitlines() if line)

    def pgbench(self, *, duration: int, clients: int, threads: int, scale: int) -> PgbenchResult:
        """Initialise pgbench at ``scale`` and run its TPC-B-like script; return the tps."""
        pgbench = str(PG_BIN / "pgbench")
        init_started = time.monotonic()
        _run(
            [pgbench, *self._conn_args(), "-i", "-q", "-s", str(scale), self.bench_db],
            timeout=600,
        )
        init_seconds = time.monotonic() - init_started
        # Flush the initial load now, so that no checkpoint of it falls inside the timed run.
        self.psql("CHECKPOINT")
        out = _run(
            [
                pgbench,
                *self._conn_args(),
                *("-c", str(clients), "-j", str(threads), "-T", str(duration)),
                *("-M", "prepared", "-r", self.bench_db),
            ],
            timeout=duration + 120,
        )
        match = re.search(r"^tps = ([0-9.]+) \(without initial connection time\)", out, re.M)
        if match is None:
            raise RuntimeError(f"could not read tps from pgbench output:\n{out}")
        latency = re.search(r"^latency average = ([0-9.]+) ms", out, re.M)
        failed = re.search(r"^number of failed transactions: (\d+)", out, re.M)
        return PgbenchResult(
            tps=float(match.group(1)),
            latency_avg_ms=float(latency.group(1)) if latency else float("nan"),
            failed=int(failed.group(1)) if failed else 0,
            clients=clients,
            threads=threads,
            scale=scale,
            duration=duration,
            init_seconds=init_seconds,
        )

    def drop_bench_db(self) -> None:
        """Drop pgbench's tables and checkpoint, so they don't weigh on the Tally run."""
        self.psql(f"DROP DATABASE IF EXISTS {self.bench_db}")
        self.psql("CHECKPOINT")


class ExistingServer(PostgresCluster):
    """A running PostgreSQL server (a superuser's SQLAlchemy URL) standing in for a throw-away
    cluster: the run's databases are created fresh on it and dropped afterwards."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url.replace("+psycopg", ""))
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 5432
        self.user = unquote(parts.username or PG_SUPERUSER)
        self.started = False
        tag = os.urandom(4).hex()
        self.app_db = f"tally_bench_{tag}"
        self.bench_db = f"pgbench_{tag}"

    def start(self) -> None:
        self.started = True
        self.psql(f"CREATE DATABASE {self.app_db}")
        self.psql(f"CREATE DATABASE {self.bench_db}")

    def stop(self) -> None:
        if self.started:
            for db in (self.app_db, self.bench_db):
                self.psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
            self.started = False

    @property
    def sqlalchemy_url(self) -> str:
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{self.app_db}"

    def _conn_args(self) -> list[str]:
        return ["-h", self.host, "-p", str(self.port), "-U", self.user]


def postgres(url: str | None) -> PostgresCluster:
    """The server a benchmark runs on: ``url``'s (:class:`ExistingServer`), or a throw-away
    cluster when it is ``None``."""
    return PostgresCluster() if url is None else ExistingServer(url)


@dataclass(frozen=True)
class PgbenchResult:
    tps: float
    latency_avg_ms: float
    failed: int
    clients: int
    threads: int
    scale: int
    duration: int
    init_seconds: float

    @property
    def command(self) -> str:
        return (
            f"pgbench -i -s {self.scale}; pgbench -c {self.clients} -j {self.threads} "
            f"-T {self.duration} -M prepared (TPC-B)"
        )


@dataclass(frozen=True)
class SqliteLoopResult:
    commits_per_s: float
    commits: int
    seconds: float
    settings: str


def sqlite_commit_loop(db_path: Path, duration: float) -> SqliteLoopResult:
    """Commits per second of one connection doing insert-one-row + update-one-row transactions."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    conn = sqlite3.connect(db_path, isolation_level=None)  # explicit BEGIN/COMMIT below
    try:
        for pragma in SQLITE_PRAGMAS:
            conn.execute(f"PRAGMA {pragma}")
        conn.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL)")
        conn.execute(
            "CREATE TABLE entries (id INTEGER PRIMARY KEY, account_id INTEGER NOT NULL, "
            "points INTEGER NOT NULL, reference TEXT NOT NULL UNIQUE)"
        )
        accounts = 2000
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO accounts (id, balance) VALUES (?, 0)", ((i,) for i in range(accounts))
        )
        conn.execute("COMMIT")
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        sync = conn.execute("PRAGMA synchronous").fetchone()[0]
        settings = f"journal_mode={mode}, synchronous={sync} (1=NORMAL), one connection"

        commits = 0
        started = time.perf_counter()
        deadline = started + duration
        now = started
        while now < deadline:
            # Check the clock every 100 commits only; the loop should measure SQLite, not time().
            for _ in range(100):
                account = commits % accounts
                conn.execute("BEGIN")
                conn.execute(
                    "INSERT INTO entries (account_id, points, reference) VALUES (?, 10, ?)",
                    (account, f"ref-{commits}"),
                )
                conn.execute("UPDATE accounts SET balance = balance + 10 WHERE id = ?", (account,))
                conn.execute("COMMIT")
                commits += 1
            now = time.perf_counter()
        seconds = now - started
    finally:
        conn.close()
    return SqliteLoopResult(
        commits_per_s=commits / seconds, commits=commits, seconds=seconds, settings=settings
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--postgres-url", help="an existing server (superuser URL) to run on")
    parser.add_argument(
        "--smoke", action="store_true", help="1 s runs, pgbench at scale 1 with 2 clients"
    )
    args = parser.parse_args()
    duration, clients, scale = (1, 2, 1) if args.smoke else (args.duration, 32, 10)
    if args.db in ("sqlite", "both"):
        with tempfile.TemporaryDirectory(prefix="tally-bench-sqlite-") as tmp:
            res = sqlite_commit_loop(Path(tmp) / "raw.db", duration)
        print(f"sqlite3 commit loop: {res.commits_per_s:,.0f} commits/s ({res.settings})")
    if args.db in ("postgres", "both"):
        with postgres(args.postgres_url) as cluster:
            print(f"PostgreSQL {cluster.version()}: {cluster.settings_summary()}")
            pg = cluster.pgbench(duration=duration, clients=clients, threads=2, scale=scale)
        print(f"{pg.command}: {pg.tps:,.0f} tps, avg latency {pg.latency_avg_ms} ms")


if __name__ == "__main__":
    main()
