"""A throw-away PostgreSQL server for the test session.

Usage::

    with PostgresServer() as pg:
        engine = sqlalchemy.create_engine(pg.url)      # database "tally"
        other_url = pg.create_database("tally_w1")

``start()`` runs ``initdb`` into a fresh temporary directory, starts the server with
``pg_ctl`` on a free loopback port and returns a SQLAlchemy URL
(``postgresql+psycopg://tally@127.0.0.1:<port>/tally``). ``stop()`` runs
``pg_ctl stop -m immediate`` and deletes the directory.

Behaviour:

* Binaries come from :func:`find_pg_bin` (``TALLY_PG_BIN``, then ``pg_config --bindir``,
  then the newest ``/usr/lib/postgresql/*/bin``).
* The server listens on 127.0.0.1 only; its Unix socket lives inside the temporary
  directory, so it never collides with a system cluster. Auth is ``trust``; the only
  role is the superuser ``tally``. Locale C.UTF-8, encoding UTF8, time zone UTC.
* Durability is switched off (fsync, synchronous_commit, full_page_writes), WAL is
  minimal and JIT is off: data does not survive a crash, which is the point.
* initdb and postgres refuse to run as root. Under euid 0 the server runs as the
  ``postgres`` system user (created with ``useradd --system`` if missing) and the
  temporary directory is owned by that user.
* Cleanup: ``stop()`` is idempotent and also registered with :mod:`atexit`. In addition
  a tiny watchdog process waits on a pipe from the test process; if the test process
  dies without cleaning up (SIGKILL, SIGTERM, segfault) the watchdog kills the server
  and removes the directory.
* Start-up takes about 1 s on 2 cores (initdb ~0.8 s with ``--no-sync``, ``pg_ctl start``
  ~0.1 s, creating database ``tally`` ~0.2 s); ``stop()`` about 0.15 s.

Environment variables: ``TALLY_PG_BIN`` (bin directory), ``TALLY_PG_LOCALE``
(default ``C.UTF-8``).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import quote

__all__ = ["PostgresError", "PostgresServer", "find_pg_bin"]

SUPERUSER = "tally"
DEFAULT_DATABASE = "tally"
SERVER_USER = "postgres"
HOST = "127.0.0.1"

#: postgresql.conf settings tuned for tests; values are written single-quoted.
TEST_SETTINGS: Mapping[str, str] = {
    "listen_addresses": HOST,
    "max_connections": "200",
    "shared_buffers": "128MB",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "jit": "off",
    "timezone": "UTC",
    "log_timezone": "UTC",
    "logging_collector": "off",
}

_SERVER_BINARIES = ("initdb", "pg_ctl", "postgres")
_BIND_ERRORS = ("could not bind", "Address already in use", "could not create listen socket")


class PostgresError(RuntimeError):
    """The test server could not be set up, started or used."""


def _is_server_bin(path: Path) -> bool:
    return all((path / name).is_file() for name in _SERVER_BINARIES)


def _version_key(path: Path) -> tuple[int, ...]:
    # /usr/lib/postgresql/<version>/bin -> (15,) or (9, 6)
    return tuple(int(part) for part in re.findall(r"\d+", path.parent.name))


def find_pg_bin() -> Path | None:
    """Return the directory holding initdb/pg_ctl/postgres, or None when not installed.

    An explicit ``TALLY_PG_BIN`` is authoritative: if it is set but lacks the server
    binaries, the result is None rather than some other installation.
    """
    explicit = os.environ.get("TALLY_PG_BIN")
    if explicit:
        path = Path(explicit).expanduser()
        return path if _is_server_bin(path) else None

    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=10
            ).stdout.strip()
            if out and _is_server_bin(Path(out)):
                return Path(out)

    candidates = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if _is_server_bin(p)]
    if candidates:
        return max(candidates, key=_version_key)
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _server_account() -> pwd.struct_passwd:
    """Return the ``postgres`` account, creating it as a system user if needed."""
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        pass
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--user-group",
         "--shell", "/usr/sbin/nologin", SERVER_USER],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return pwd.getpwnam(SERVER_USER)


def _temp_base() -> str | None:
    """A base directory every user can traverse (the server user must reach its data)."""
    base = Path(tempfile.gettempdir()).resolve()
    for part in (base, *base.parents):
        if not part.stat().st_mode & stat.S_IXOTH:
            return "/tmp"
    return None


def _read_postmaster_pid(data_dir: Path) -> int | None:
    try:
        first_line = (data_dir / "postmaster.pid").read_text().split("\n", 1)[0]
        return int(first_line)
    except (OSError, ValueError):
        return None


def _pid_alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (exited, not yet reaped) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def _kill_postmaster(data_dir: Path, grace: float = 5.0) -> None:
    """Immediate shutdown by signal (SIGQUIT, then SIGKILL); used when pg_ctl cannot be."""
    pid = _read_postmaster_pid(data_dir)
    if pid is None or not _pid_alive(pid):
        return
    for sig, wait in ((signal.SIGQUIT, grace), (signal.SIGKILL, grace)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _pid_alive(pid):
                return
            time.sleep(0.02)


class PostgresServer:
    """One disposable PostgreSQL server; see the module docstring."""

    def __init__(
        self,
        bin_dir: Path | str | None = None,
        *,
        settings: Mapping[str, str] | None = None,
        locale: str | None = None,
        timeout: float = 60.0,
    ) -> None:
        self._bin_dir = Path(bin_dir) if bin_dir is not None else None
        self._settings = {**TEST_SETTINGS, **(settings or {})}
        self._locale = locale or os.environ.get("TALLY_PG_LOCALE", "C.UTF-8")
        self._timeout = timeout
        self._tmp: Path | None = None
        self._port: int | None = None
        self._uid: int | None = None
        self._gid: int | None = None
        self._owner_pid = os.getpid()
        self._watchdog: subprocess.Popen[bytes] | None = None

    # -- properties -------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._port is not None

    @property
    def port(self) -> int:
        if self._port is None:
            raise PostgresError("server is not running")
        return self._port

    @property
    def host(self) -> str:
        return HOST

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the default database ``tally``."""
        return self.url_for(DEFAULT_DATABASE)

    @property
    def data_dir(self) -> Path:
        return self._require_tmp() / "data"

    @property
    def log_path(self) -> Path:
        return self._require_tmp() / "postgres.log"

    def url_for(self, dbname: str, driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://{SUPERUSER}@{HOST}:{self.port}/{quote(dbname, safe='')}"

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> str:
        """Create and start the server; return the URL of database ``tally``."""
        if self.running:
            return self.url
        bin_dir = self._bin_dir or find_pg_bin()
        if bin_dir is None or not _is_server_bin(bin_dir):
            raise PostgresError(
                "PostgreSQL server binaries not found; install the Debian 'postgresql' "
                "package or set TALLY_PG_BIN to the directory holding initdb and pg_ctl"
            )
        self._bin_dir = bin_dir
        self._owner_pid = os.getpid()
        atexit.register(self._atexit)
        try:
            self._create_tmp()
            self._initdb()
            self._launch()
            self._spawn_watchdog()
            self._execute("postgres", f'CREATE DATABASE "{DEFAULT_DATABASE}"')
        except BaseException:
            self.stop()
            raise
        return self.url

    def stop(self) -> None:
        """Stop the server (``pg_ctl stop -m immediate``) and delete its directory.

        Safe to call repeatedly and on a server that never started.
        """
        tmp, self._tmp, self._port = self._tmp, None, None
        if tmp is not None:
            data_dir = tmp / "data"
            if _read_postmaster_pid(data_dir) is not None:
                with contextlib.suppress(OSError, subprocess.SubprocessError):
                    self._run(["pg_ctl", "stop", "-D", str(data_dir), "-m", "immediate",
                               "-w", "-t", "10"], cwd=tmp, timeout=20)  # fmt: skip
                _kill_postmaster(data_dir)  # no-op when pg_ctl succeeded
            shutil.rmtree(tmp, ignore_errors=True)
        if self._watchdog is not None:
            watchdog, self._watchdog = self._watchdog, None
            with contextlib.suppress(OSError):
                if watchdog.stdin is not None:
                    watchdog.stdin.close()
            try:
                watchdog.wait(timeout=5)
            except subprocess.TimeoutExpired:
                watchdog.kill()
        atexit.unregister(self._atexit)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- databases --------------------------------------------------------------------

    def create_database(self, name: str, *, template: str | None = None) -> str:
        """Create database ``name`` (optionally cloned from ``template``); return its URL.

        Cloning a migrated template is much faster than migrating each database; note
        that the template must have no open connections while it is being copied.
        """
        statement = f"CREATE DATABASE {_ident(name)}"
        if template is not None:
            statement += f" TEMPLATE {_ident(template)}"
        self._execute("postgres", statement)
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop database ``name`` if it exists, terminating its connections."""
        self._execute("postgres", f"DROP DATABASE IF EXISTS {_ident(name)} WITH (FORCE)")

    # -- internals --------------------------------------------------------------------

    def _require_tmp(self) -> Path:
        if self._tmp is None:
            raise PostgresError("server is not running")
        return self._tmp

    def _create_tmp(self) -> None:
        root = os.geteuid() == 0
        tmp = Path(tempfile.mkdtemp(prefix="tally-pg-", dir=_temp_base() if root else None))
        self._tmp = tmp
        (tmp / "socket").mkdir(mode=0o700)
        if root:
            account = _server_account()
            self._uid, self._gid = account.pw_uid, account.pw_gid
            for path in (tmp, tmp / "socket"):
                os.chown(path, account.pw_uid, account.pw_gid)

    def _run(
        self, args: list[str], *, cwd: Path, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL binary, as the server user when we are root."""
        assert self._bin_dir is not None
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = env["LANG"] = self._locale
        return subprocess.run(
            [str(self._bin_dir / args[0]), *args[1:]],
            cwd=cwd,
            env=env,
            user=self._uid,
            group=self._gid,
            extra_groups=[] if self._uid is not None else None,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def _initdb(self) -> None:
        tmp = self._require_tmp()
        result = self._run(
            ["initdb", "-D", str(tmp / "data"), "-U", SUPERUSER, "--auth=trust",
             "--encoding=UTF8", f"--locale={self._locale}", "--no-sync",
             "--no-instructions"],
            cwd=tmp, timeout=self._timeout,
        )  # fmt: skip
        if result.returncode != 0:
            raise PostgresError(f"initdb failed:\n{result.stdout}{result.stderr}")
        settings = {**self._settings, "unix_socket_directories": str(tmp / "socket")}
        lines = "".join(f"{key} = {_conf_value(value)}\n" for key, value in settings.items())
        with (tmp / "data" / "postgresql.conf").open("a") as conf:
            conf.write("\n# tests/support/postgres.py\n" + lines)

    def _launch(self) -> None:
        tmp = self._require_tmp()
        for _attempt in range(5):
            port = _free_port()
            result = self._run(
                ["pg_ctl", "start", "-w", "-t", str(int(self._timeout)), "-D",
                 str(tmp / "data"), "-l", str(tmp / "postgres.log"), "-o", f"-p {port}"],
                cwd=tmp, timeout=self._timeout + 10,
            )  # fmt: skip
            if result.returncode == 0:
                self._port = port
                return
            log = self._log_tail()
            if not any(marker in log for marker in _BIND_ERRORS):
                raise PostgresError(f"pg_ctl start failed:\n{result.stdout}{result.stderr}{log}")
            _kill_postmaster(tmp / "data")  # lost the race for the port; try another one
        raise PostgresError(f"could not find a free port for PostgreSQL:\n{self._log_tail()}")

    def _log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text().splitlines()[-lines:])
        except OSError:
            return ""

    def _spawn_watchdog(self) -> None:
        tmp = self._require_tmp()
        self._watchdog = subprocess.Popen(
            [sys.executable, "-I", str(Path(__file__).resolve()), "--watchdog", str(tmp)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # survives Ctrl-C and process-group kills of pytest
        )

    def _execute(self, dbname: str, statement: str) -> None:
        import psycopg

        with psycopg.connect(
            host=HOST, port=self.port, user=SUPERUSER, dbname=dbname, autocommit=True,
            connect_timeout=10,
        ) as conn:  # fmt: skip
            conn.execute(statement.encode())

    def _atexit(self) -> None:
        if os.getpid() == self._owner_pid:  # not in a forked child
            self.stop()


def _ident(name: str) -> str:
    if not name or "\x00" in name:
        raise ValueError(f"invalid identifier: {name!r}")
    return '"' + name.replace('"', '""') + '"'


def _conf_value(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _watchdog_main(tmp: Path) -> None:
    """Wait until the test process closes the pipe (or dies), then clean up after it."""
    with contextlib.suppress(OSError):
        sys.stdin.buffer.read()
    if tmp.is_dir():
        _kill_postmaster(tmp / "data")
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--watchdog":
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _watchdog_main(Path(sys.argv[2]))
    else:
        sys.exit("usage: postgres.py --watchdog TMPDIR")
