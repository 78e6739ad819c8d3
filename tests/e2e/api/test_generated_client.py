"""A partner developer's generated client is whole: ``openapi-python-client`` turns the live
document into a client without a single warning, and that client parses real answers — members,
postings, problems — from a running Tally."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from conftest import OPERATOR_SCOPES, SECRET, make_partner
from support.live import serving
from tally.config import Settings
from tally.db.engine import build_engine
from tally.db.session import Database

PACKAGE = "tally_client"  # what the generator names the client of an API titled "Tally"


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path
) -> Iterator[tuple[str, str]]:
    """Tally on uvicorn over a fresh SQLite copy: (base URL, an API key with every scope)."""
    from tally.app import create_app

    path = tmp_path_factory.mktemp("served") / "tally.db"
    shutil.copy(sqlite_template, path)
    url = f"sqlite:///{path}"
    db = Database(build_engine(url))
    key = make_partner(db, "MOBILE", OPERATOR_SCOPES, operator_channel=True)
    settings = Settings(database_url=url, secret_key=SECRET, job_interval_seconds=0)
    with serving(create_app(settings, db)) as base:
        yield base, key.api_key
    db.dispose()


def generate(base: str, into: Path) -> str:
    """Generate the client from the served document into ``into``; the tool's whole output."""
    tool = Path(sys.executable).with_name("openapi-python-client")
    environment = {**os.environ, "PATH": f"{tool.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(
        [str(tool), "generate", "--url", f"{base}/openapi.json", "--meta", "none"],
        cwd=into,
        env=environment,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


@pytest.fixture(scope="module")
def client_package(
    served: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ModuleType]:
    """The generated client, importable (removed from ``sys.modules`` afterwards)."""
    base, _key = served
    into = tmp_path_factory.mktemp("generated")
    output = generate(base, into)
    # Anything but the one "Generating …" line is a warning: a model dropped, a type missing.
    lines = [line for line in output.splitlines() if line.strip()]
    assert lines == [f"Generating {into / PACKAGE}"], output
    sys.path.insert(0, str(into))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(into))
        for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
            del sys.modules[name]


def _module(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.{name}")


def test_the_generated_client_parses_members_postings_and_problems(
    served: tuple[str, str], client_package: ModuleType
) -> None:
    base, api_key = served
    models = _module("models")
    with client_package.AuthenticatedClient(base_url=base, token=api_key) as client:
        check_members_and_postings(client, models)


def check_members_and_postings(client: Any, models: Any) -> None:
    enrol = _module("api.members.create_member").sync_detailed(
        client=client,
        body=models.MemberCreate(
            external_id=models.ExternalIdentity(namespace="phone", id="13800138000")
        ),
        idempotency_key=str(uuid.uuid4()),
    )
    assert enrol.status_code == 201, enrol.content
    member = enrol.parsed
    assert isinstance(member, models.Member)
    assert member.status == "active"
    assert [(i.namespace, i.id) for i in member.identities] == [("phone", "13800138000")]

    fetched = _module("api.members.get_member").sync(member_id=member.id, client=client)
    assert isinstance(fetched, models.Member)
    assert fetched.id == member.id
    assert fetched.created_at == member.created_at

    earned = _module("api.ledger.earn").sync(
        member_id=member.id,
        client=client,
        body=models.EarnRequest(points=120, reference="ORDER-1"),
        idempotency_key=str(uuid.uuid4()),
    )
    assert isinstance(earned, models.Posted)
    assert earned.member_id == member.id
    assert earned.balance.available == 120

    page = _module("api.ledger.list_transactions").sync(member_id=member.id, client=client)
    assert isinstance(page, models.TransactionPage)
    assert [(item.kind, item.points) for item in page.items] == [("earn", 120)]


def test_problems_parse_as_problem_documents(
    served: tuple[str, str], client_package: ModuleType
) -> None:
    base, api_key = served
    models = _module("models")
    with (
        client_package.AuthenticatedClient(base_url=base, token=api_key) as client,
        client_package.Client(base_url=base) as anonymous,
    ):
        check_problems(client, anonymous, models)


def check_problems(client: Any, anonymous: Any, models: Any) -> None:
    missing = _module("api.members.get_member").sync(member_id=987_654, client=client)
    assert isinstance(missing, models.Problem)
    assert (missing.status, missing.code) == (404, "not_found")

    refused = _module("api.members.get_member").sync(member_id=1, client=anonymous)
    assert isinstance(refused, models.Problem)
    assert (refused.status, refused.code) == (401, "unauthorized")

    invalid = _module("api.ledger.earn").sync(
        member_id=1,
        client=client,
        body=models.EarnRequest(points=0, reference="ORDER-2"),
        idempotency_key=str(uuid.uuid4()),
    )
    assert isinstance(invalid, models.ValidationProblem)
    assert invalid.code == "validation_error"
    assert [error.field for error in invalid.errors] == ["points"]
