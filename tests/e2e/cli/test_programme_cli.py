"""``tally programme`` against a fresh SQLite file: validate, plan, apply, export, versions."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from e2e.cli.clikit import run
from tally.config import get_settings

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "src" / "tally" / "demo" / "programme.yaml"


def count(url: str, table: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
    finally:
        engine.dispose()


def test_validate_a_good_file() -> None:
    assert run("programme", "validate", str(DEMO)).stdout == "valid\n"


def test_validate_prints_every_error_with_its_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        DEMO.read_text()
        .replace("threshold: 15000", "threshold: 4000")
        .replace("Asia/Shanghai", "Asia/Nowhere")
    )
    result = run("programme", "validate", str(broken), code=1)
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{broken}:8: currency.timezone: 'Asia/Nowhere' is not an IANA time zone "
        "(e.g. Asia/Shanghai)",
    ]
    broken.write_text(DEMO.read_text().replace("threshold: 15000", "threshold: 4000"))
    result = run("programme", "validate", str(broken), code=1)
    assert result.stderr.splitlines() == [
        f"{broken}:31: tiers[3].threshold: must be greater than tiers[2].threshold (5000)"
    ]


def test_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    run("programme", "validate", str(tmp_path / "nope.yaml"), code=2)


def test_plan_apply_export_versions(database_url: str, tmp_path: Path) -> None:
    plan = run("programme", "plan", str(DEMO)).stdout.splitlines()
    assert "tier BLACK_DIAMOND added (Black Diamond)" in plan
    assert count(database_url, "programme_versions") == 0

    applied = run("programme", "apply", str(DEMO), "--by", "alice").stdout.splitlines()
    assert applied[0] == "applied version 1"
    assert count(database_url, "partners") == 4

    refused = run("programme", "apply", str(DEMO), code=2)
    assert "identical to the running version 1" in refused.stderr
    assert run("programme", "plan", str(DEMO)).stdout.splitlines()[-1] == "no changes"

    exported = tmp_path / "running.yaml"
    assert run("programme", "export", "--output", str(exported)).stdout == f"wrote {exported}\n"
    assert run("programme", "validate", str(exported)).stdout == "valid\n"
    changed = tmp_path / "changed.yaml"
    changed.write_text(
        exported.read_text().replace("default_validity_days: 365", "default_validity_days: 400")
    )
    assert run("programme", "plan", str(changed)).stdout.endswith(
        "planned against version 1, to take effect now:\n"
        "currency.default_validity_days: 365 → 400\n"
    )
    run("programme", "apply", str(changed))

    versions = json.loads(run("programme", "versions").stdout)
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[0]["applied_by"] == "alice"
    assert versions[1]["applied_by"]  # the OS user by default
    assert "default_validity_days: 400" in run("programme", "export").stdout


def test_export_before_any_apply_fails(database_url: str) -> None:
    assert "No programme has been applied yet" in run("programme", "export", code=2).stderr


def test_an_invalid_file_is_not_applied(database_url: str, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    run("db", "upgrade")
    broken.write_text(DEMO.read_text().replace('"88.00"', "88.00"))
    result = run("programme", "apply", str(broken), code=1)
    assert "plans[0].price.amount: must be a quoted decimal string" in result.stderr
    assert count(database_url, "programme_versions") == 0


def test_schema_is_the_published_one() -> None:
    schema = run("programme", "schema").stdout
    assert schema == (ROOT / "docs" / "programme.schema.json").read_text()
    assert json.loads(schema)["title"] == "Tally programme"


def test_a_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("currency: {code: \xe9}\n".encode("latin-1"))
    result = run("programme", "validate", str(latin), code=1)
    assert result.stderr == f"{latin}:1: programme: the file is not UTF-8 text\n"


def test_the_demo_ecosystem_runs_the_demo_programme(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """`tally demo load` applies src/tally/demo/programme.yaml as version 1."""
    import json

    from tally.cli.main import app

    monkeypatch.setenv("TALLY_DATABASE_URL", f"sqlite:///{tmp_path / 'demo.db'}")
    monkeypatch.setenv("TALLY_SECRET_KEY", "demo-test-secret-" + "x" * 20)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        assert runner.invoke(app, ["demo", "load"]).exit_code == 0
        versions = runner.invoke(app, ["programme", "versions"])
        assert versions.exit_code == 0, versions.output
        assert [item["applied_by"] for item in json.loads(versions.output)] == ["demo"]
    finally:
        get_settings.cache_clear()
