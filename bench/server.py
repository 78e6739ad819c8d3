"""Start and stop a live Tally server for a benchmark, and measure its peak memory.

The server runs as a subprocess in its own session (so its workers can be stopped together);
a sampler thread sums VmRSS over the server process and all its descendants every 100 ms and
keeps the peak. VmHWM (each process's own high-water mark) is read too, as an upper bound.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

VENV_BIN = Path(os.environ.get("TALLY_BENCH_VENV_BIN", "/work/main/.venv/bin"))
TALLY = VENV_BIN / "tally"


# -- /proc helpers ------------------------------------------------------------------------------


def _status_kb(pid: int, field: str) -> int:
    """A ``kB`` field of /proc/<pid>/status (0 when the process is gone or has no such field)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return 0
    return 0


def _stat(pid: int | str) -> tuple[str, list[str]] | None:
    """The command name of ``pid`` and the fields of /proc/<pid>/stat after it (None if gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            stat = fh.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name is in parentheses and may contain spaces: split after the last ')'.
    # After it: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
    return stat[stat.find("(") + 1 : stat.rfind(")")], stat[stat.rfind(")") + 2 :].split()


def _all_stats() -> Iterator[tuple[int, str, list[str]]]:
    """(pid, command name, stat fields) of every living process."""
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (stat := _stat(entry.name)) is not None:
            yield int(entry.name), *stat


def _parent_map() -> dict[int, int]:
    """pid -> ppid for every process (the kernel here has no /proc/<pid>/task/*/children)."""
    return {pid: int(fields[1]) for pid, _, fields in _all_stats()}


def _cpu_ticks(pid: int) -> int:
    """utime + stime of ``pid``, plus that of its children already reaped, in clock ticks."""
    stat = _stat(pid)
    return 0 if stat is None else sum(int(stat[1][i]) for i in (11, 12, 13, 14))


def command_cpu_seconds(prefix: str) -> float:
    """CPU seconds (user + system) used so far by every living process whose name starts so."""
    ticks = sum(
        int(fields[11]) + int(fields[12])
        for _, command, fields in _all_stats()
        if command.startswith(prefix)
    )
    return ticks / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds (user + system) used so far by ``root`` and its living descendants."""
    ticks = sum(_cpu_ticks(pid) for pid in process_tree(root))
    return ticks / os.sysconf("SC_CLK_TCK")


def process_tree(root: int) -> list[int]:
    """``root`` and all its living descendants."""
    children: dict[int, list[int]] = {}
    for pid, ppid in _parent_map().items():
        children.setdefault(ppid, []).append(pid)
    tree: list[int] = []
    stack = [root]
    while stack:
        pid = stack.pop()
        tree.append(pid)
        stack.extend(children.get(pid, []))
    return tree


class MemorySampler:
    """Samples the summed VmRSS of a process tree every ``interval`` seconds; keeps the peak."""

    def __init__(self, root_pid: int, interval: float = 0.1) -> None:
        self.root_pid = root_pid
        self.interval = interval
        self.peak_rss_kb = 0
        self.peak_processes = 0
        self.hwm_kb: dict[int, int] = {}  # last VmHWM seen per pid (kept after the pid exits)
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def sample(self) -> None:
        pids = process_tree(self.root_pid)
        total = 0
        for pid in pids:
            total += _status_kb(pid, "VmRSS")
            hwm = _status_kb(pid, "VmHWM")
            if hwm:
                self.hwm_kb[pid] = max(hwm, self.hwm_kb.get(pid, 0))
        self.samples += 1
        if total > self.peak_rss_kb:
            self.peak_rss_kb = total
            self.peak_processes = len(pids)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    @property
    def peak_mb(self) -> float:
        return self.peak_rss_kb / 1024

    @property
    def hwm_sum_mb(self) -> float:
        return sum(self.hwm_kb.values()) / 1024


@dataclass(frozen=True)
class MemoryReport:
    peak_rss_mb: float  # peak of the summed VmRSS of the tree, sampled every 100 ms
    hwm_sum_mb: float  # sum of each process's VmHWM: an upper bound (peaks need not coincide)
    processes: int  # processes in the tree at the sampled peak
    samples: int


# -- the server ---------------------------------------------------------------------------------


class ServerError(RuntimeError):
    """The server did not start, or a set-up command failed; carries the log tail."""


class TallyServer:
    """``tally serve`` on 127.0.0.1 for one database URL, with its log in ``log_path``."""

    def __init__(
        self,
        database_url: str,
        *,
        port: int,
        workers: int,
        log_path: Path,
        secret_key: str | None = None,
        startup_timeout: float = 120.0,
    ) -> None:
        self.database_url = database_url
        self.port = port
        self.workers = workers
        self.log_path = log_path
        self.startup_timeout = startup_timeout
        self.env = dict(os.environ)
        self.env["TALLY_DATABASE_URL"] = database_url
        self.env["TALLY_SECRET_KEY"] = secret_key or os.urandom(32).hex()
        self.proc: subprocess.Popen[bytes] | None = None
        self.sampler: MemorySampler | None = None
        self._log_fh: IO[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def command(self) -> list[str]:
        return [
            str(TALLY),
            *("serve", "--host", "127.0.0.1", "--port", str(self.port)),
            *("--workers", str(self.workers)),
        ]

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]
        except FileNotFoundError:
            return "(no log)"

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log_fh = self.log_path.open("wb")
        self._log_fh = log_fh
        self.proc = subprocess.Popen(
            self.command,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log_fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() ends the workers too
        )
        self.sampler = MemorySampler(self.proc.pid)
        self.sampler.start()
        self._wait_healthy()

    def _wait_healthy(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + self.startup_timeout
        last_error = ""
        while time.monotonic() < deadline:
            code = self.proc.poll()
            if code is not None:
                raise ServerError(
                    f"tally serve exited with code {code} before /healthz answered.\n"
                    f"command: {' '.join(self.command)}\nlog tail:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(self.base_url + "/healthz", timeout=2) as resp:
                    if resp.status == 200:
                        return
                    last_error = f"status {resp.status}"
            except urllib.error.HTTPError as exc:
                last_error = f"status {exc.code}"
            except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
                last_error = str(exc)
            time.sleep(0.2)
        raise ServerError(
            f"/healthz not ready after {self.startup_timeout:.0f}s (last: {last_error}).\n"
            f"log tail:\n{self.log_tail()}"
        )

    def cpu_seconds(self) -> float:
        """CPU seconds used so far by the server's process tree."""
        return 0.0 if self.proc is None else tree_cpu_seconds(self.proc.pid)

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> MemoryReport:
        """Stop the server (SIGTERM, then SIGKILL of its group) and return its memory figures."""
        if self.sampler is not None:
            self.sampler.sample()  # one last sample, with the latest VmHWM of every process
            self.sampler.stop()
        if self.proc is not None and self.proc.poll() is None:
            pgid = self.proc.pid  # start_new_session: the group id is the server's pid
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(pgid, signal.SIGKILL)
                self.proc.wait(timeout=10)
            # Workers that outlived their parent are still in our group.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
        if self._log_fh is not None:
            self._log_fh.close()
            self._log_fh = None
        sampler = self.sampler
        if sampler is None:
            return MemoryReport(0.0, 0.0, 0, 0)
        return MemoryReport(
            peak_rss_mb=sampler.peak_mb,
            hwm_sum_mb=sampler.hwm_sum_mb,
            processes=sampler.peak_processes,
            samples=sampler.samples,
        )

    def __enter__(self) -> TallyServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- CLI set-up ------------------------------------------------------------------------------

    def cli(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """``tally <args>`` on the server's database (its exit code is the caller's to judge)."""
        return subprocess.run(
            [str(TALLY), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def create_partner_key(
        self, code: str = "BENCH", scopes: str = "members,earn,redeem,read"
    ) -> str:
        """``tally partner create`` with the scopes the benchmark needs; returns the API key."""
        return self._api_key("partner", "create", code, "--name", "Bench", "--scopes", scopes)

    def issue_key(self, code: str, scopes: str) -> str:
        """``tally partner key-create`` for a partner that exists (e.g. one a programme file
        declares); returns the API key."""
        return self._api_key("partner", "key-create", code, "--scopes", scopes)

    def _api_key(self, *args: str) -> str:
        proc = self.cli(*args, timeout=120)
        cmd = " ".join((str(TALLY), *args))
        if proc.returncode != 0:
            raise ServerError(f"`{cmd}` failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        key = _find_api_key(proc.stdout)
        if key is None:
            raise ServerError(f"no api_key in the output of `{cmd}`:\n{proc.stdout}")
        return key


def _find_api_key(output: str) -> str | None:
    """The ``api_key`` of the JSON object printed by ``tally partner create``."""
    candidates = [output, output[output.find("{") : output.rfind("}") + 1]]
    candidates += output.splitlines()
    for text in candidates:
        try:
            data = json.loads(text)
        except ValueError:
            continue
        if isinstance(data, dict) and isinstance(data.get("api_key"), str):
            return str(data["api_key"])
    return None
