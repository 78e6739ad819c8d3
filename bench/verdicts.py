"""What the benchmarks share: a figure beside its limit and verdict, the tables, the machine."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Row:
    database: str
    figure: str
    measured: str
    limit: str
    verdict: str  # "PASS", "FAIL" or "info" (no limit in the requirement)


def check(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def overall(rows: list[Row]) -> str:
    """The run's verdict: ``PASS``, or ``FAIL (n of m checks failed)``."""
    failed = sum(r.verdict == "FAIL" for r in rows)
    checks = sum(r.verdict != "info" for r in rows)
    return "PASS" if not failed else f"FAIL ({failed} of {checks} checks failed)"


def render_table(rows: list[Row]) -> str:
    """The rows as aligned text columns, for the terminal."""
    headers = ("database", "figure", "measured", "limit", "verdict")
    cells = [headers] + [(r.database, r.figure, r.measured, r.limit, r.verdict) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(headers))]
    lines = ["  ".join(c[i].ljust(widths[i]) for i in range(len(headers))).rstrip() for c in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render_markdown_table(rows: list[Row]) -> str:
    """The rows as a Markdown table, verdicts in bold."""
    out = ["| database | figure | measured | limit | verdict |", "|---|---|---|---|---|"]
    for r in rows:
        verdict = f"**{r.verdict}**" if r.verdict in ("PASS", "FAIL") else r.verdict
        cells = [r.database, r.figure, r.measured, r.limit, verdict]
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(out)


def machine_info(repo_dir: Path) -> dict[str, str]:
    """CPUs, memory, OS, Python and the Tally commit measured (noting uncommitted changes)."""
    info: dict[str, str] = {"nproc": str(len(os.sched_getaffinity(0)))}
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                info["ram"] = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    info["os"] = f"{platform.system()} {platform.release()}"
    info["python"] = platform.python_version()
    git = subprocess.run(
        ["git", "-C", str(repo_dir), "log", "-1", "--format=%h %s"],
        capture_output=True,
        text=True,
        check=False,
    )
    info["tally_commit"] = git.stdout.strip()[:120] or "(no commit)"
    dirty = subprocess.run(
        ["git", "-C", str(repo_dir), "status", "--porcelain", "--", "src"],
        capture_output=True,
        text=True,
        check=False,
    )
    if dirty.stdout.strip():
        info["tally_commit"] += " (with uncommitted changes in src/)"
    return info


def write_json_report(path: Path, repo_dir: Path, **report: Any) -> None:
    """``report`` (lists of dataclasses become lists of dicts) as JSON at ``path``, and say where
    the Markdown beside it is."""
    document = {
        name: [asdict(item) for item in value] if name in ("runs", "rows") else value
        for name, value in report.items()
    }
    path.write_text(json.dumps(document, indent=2, default=str), encoding="utf-8")
    markdown = path.with_suffix(".md")
    shown = markdown.relative_to(repo_dir) if markdown.is_relative_to(repo_dir) else markdown
    print(f"\nMarkdown: {shown}")
