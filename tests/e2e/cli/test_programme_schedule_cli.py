"""``tally programme apply --effective-from``, ``cancel``, and what ``plan`` and ``versions`` say
about versions in force and scheduled, against a fresh SQLite file."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from e2e.cli.clikit import run
from e2e.cli.test_programme_cli import DEMO, count


def _file(tmp_path: Path, name: str, validity: int) -> Path:
    path = tmp_path / name
    path.write_text(
        DEMO.read_text().replace("default_validity_days: 365", f"default_validity_days: {validity}")
    )
    return path


def _statuses() -> list[tuple[int, str]]:
    return [
        (item["version"], item["status"])
        for item in json.loads(run("programme", "versions").stdout)
    ]


def test_schedule_plan_and_cancel(database_url: str, tmp_path: Path) -> None:
    run("programme", "apply", str(DEMO), "--by", "alice")
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    local = tomorrow.astimezone(datetime.now().astimezone().tzinfo).isoformat()
    longer = _file(tmp_path, "longer.yaml", 400)

    plan = run("programme", "plan", str(longer), "--effective-from", local).stdout.splitlines()
    assert plan[0].startswith("in force: version 1 since ")
    assert "(applied by alice at " in plan[0]
    assert plan[1:] == [
        "scheduled: nothing",
        f"planned against version 1, to take effect {tomorrow.isoformat()}:",
        "currency.default_validity_days: 365 → 400",
    ]
    assert count(database_url, "programme_versions") == 1

    applied = run(
        "programme", "apply", str(longer), "--effective-from", local, "--by", "bob"
    ).stdout.splitlines()
    assert applied[0] == f"scheduled version 2 from {tomorrow.isoformat()}"
    versions = json.loads(run("programme", "versions").stdout)
    assert [(v["version"], v["status"], v["applied_by"]) for v in versions] == [
        (1, "in_force", "alice"),
        (2, "scheduled", "bob"),
    ]
    assert versions[1]["effective_from"] == tomorrow.isoformat()
    assert "default_validity_days: 365" in run("programme", "export").stdout  # still v1

    # A draft taking effect now would come before version 2: planned against it, and refused.
    shorter = _file(tmp_path, "shorter.yaml", 30)
    plan = run("programme", "plan", str(shorter)).stdout.splitlines()
    assert plan[1].startswith(f"scheduled: version 2 from {tomorrow.isoformat()} (applied by bob")
    assert plan[2] == "planned against version 2, to take effect now:"
    assert plan[3].startswith("refused as it stands: Version 2 is scheduled for ")
    assert "currency.default_validity_days: 400 → 30" in plan
    refused = run("programme", "apply", str(shorter), code=2)
    assert "must take effect after it" in refused.stderr
    # A date means the start of that day in the programme's zone (Asia/Shanghai).
    plan = run("programme", "plan", str(shorter), "--effective-from", "2030-01-01").stdout
    assert "planned against version 2, to take effect 2029-12-31T16:00:00+00:00:" in plan
    for moment, message in (
        ("2030-01-01T00:00:00", "has no UTC offset"),
        ("2020-01-01T00:00:00Z", "is in the past"),
        ("next tuesday", "is not an ISO-8601 date or datetime"),
    ):
        refused = run("programme", "apply", str(shorter), "--effective-from", moment, code=2)
        assert message in refused.stderr, refused.stderr
    assert count(database_url, "programme_versions") == 2

    assert "cannot be cancelled" in run("programme", "cancel", "1", code=2).stderr
    cancelled = run("programme", "cancel", "2", "--by", "carol").stdout
    assert cancelled == f"cancelled version 2 (it was to take effect at {tomorrow.isoformat()})\n"
    assert "cancelled already" in run("programme", "cancel", "2", code=2).stderr
    assert "no programme version 7" in run("programme", "cancel", "7", code=2).stderr
    versions = json.loads(run("programme", "versions").stdout)
    assert [(v["version"], v["status"], v["cancelled_by"]) for v in versions] == [
        (1, "in_force", None),
        (2, "cancelled", "carol"),
    ]
    # Cancelled, it no longer stands in the way: the draft applies now, as version 3.
    assert run("programme", "apply", str(shorter)).stdout.splitlines()[0] == "applied version 3"
    assert _statuses() == [(1, "superseded"), (2, "cancelled"), (3, "in_force")]
