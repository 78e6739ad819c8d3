"""Shared fixtures: a migrated database on SQLite and on a real PostgreSQL server, the app,
a partner with an API key, and a staff member.

Every test that takes ``database`` runs twice: once on SQLite, once on PostgreSQL. Databases are
migrated once per session; each SQLite test gets a copy of a migrated file, and before each
PostgreSQL test every row is deleted and every used sequence restarted. Catalogs and
templates are compiled once per session and staff passwords hashed cheaply
(``tests/support/fast.py`` says how, and why nothing checked changes).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from support import fast
from support.postgres import PostgresServer, find_pg_bin
from tally.accounts import service as accounts
from tally.config import Settings
from tally.db.engine import build_engine
from tally.db.session import Database
from tally.kit.clock import utcnow
from tally.schema import metadata, migrate

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
SECRET = "test-secret-" + "x" * 32
DIALECTS = ("sqlite", "postgresql")
# Fixtures shared by one suite, kept beside it.
pytest_plugins = ["e2e.cli.clikit", "support.event_import"]


#: Modules whose tests each take long alone (benchmarks in smoke mode, Schemathesis, the
#: stateful machines, a server killed mid-delivery, mypy). On pytest-xdist's workers
#: (``make test``) they are sent first, so that no worker is left running one of them after the
#: others have finished.
SLOW_FIRST = (
    "tests/test_bench_smoke.py",
    "tests/e2e/api/test_schemathesis.py",
    "tests/integration/test_ledger_stateful.py",
    "tests/integration/test_batched_orders.py",
    "tests/test_gates.py",
    "tests/integration/test_webhook_kill.py",
    "tests/e2e/api/test_generated_client.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not hasattr(config, "workerinput"):
        return  # one process: the collection order
    first = {path: rank for rank, path in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: first.get(item.nodeid.split("::", 1)[0], len(first)))


def require_or_skip(available: bool, what: str) -> None:
    """Missing PostgreSQL or Chromium fails in CI and skips elsewhere."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"{what} is required in CI but is not installed")
    pytest.skip(f"{what} is not installed")


@pytest.fixture(scope="session", autouse=True)
def _compiled_once_and_cheap_hashes() -> Iterator[None]:
    """Catalogs and templates compiled once, staff passwords hashed cheaply (support/fast.py)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        fast.install(monkeypatch)
        yield


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    require_or_skip(find_pg_bin() is not None, "PostgreSQL")
    with PostgresServer() as server:
        yield server


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that each test copies."""
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    engine = build_engine(f"sqlite:///{path}")
    migrate(engine)
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_database(postgres_server: PostgresServer) -> Iterator[Database]:
    url = postgres_server.create_database("tally_tests")
    db = Database(build_engine(url, pool_size=20))
    migrate(db.engine)
    yield db
    db.dispose()


def _empty(db: Database) -> None:
    """Every table empty and every sequence restarted, as a fresh migration leaves them: with
    the system's accounts, which migration 0018 made."""
    fast.empty_postgres(db.engine, [table.name for table in metadata().sorted_tables])
    with db.write() as session:
        accounts.open_system(session)


@pytest.fixture(params=DIALECTS)
def dialect(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database(
    dialect: str, request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> Iterator[Database]:
    """A migrated, empty database of the parametrised dialect."""
    if dialect == "sqlite":
        path = tmp_path / "tally.db"
        shutil.copy(sqlite_template, path)
        db = Database(build_engine(f"sqlite:///{path}"))
        yield db
        db.dispose()
        return
    db = request.getfixturevalue("postgres_database")
    _empty(db)
    yield db


@pytest.fixture
def settings(database: Database) -> Settings:
    return Settings(
        database_url=database.engine.url.render_as_string(hide_password=False),
        secret_key=SECRET,
        job_interval_seconds=0,
        # A programme a test applies (an operator channel, a namespace) is in force at once.
        programme_refresh_seconds=0,
    )


@dataclass
class PartnerKey:
    partner_id: int
    code: str
    api_key: str

    def headers(self, idempotency_key: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.api_key}"}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        return headers


def make_partner(
    db: Database,
    code: str,
    scopes: str = "members,earn,redeem,read",
    *,
    operator_channel: bool = False,
) -> PartnerKey:
    """Register a partner (or take the one a programme registered) with one API key.

    ``operator_channel=True`` makes it one of the operator's own channels in the programme in
    force (a new version is applied when it is not one yet); only those may hold ``transfer``.
    """
    from sqlalchemy import select

    from support.access import ensure_operator_channel
    from tally.partners import service as partners
    from tally.partners.models import Partner

    with db.write() as session:
        partner = session.scalar(select(Partner).where(Partner.code == code))
        if partner is None:
            partner = partners.create_partner(session, code, f"{code} partner", utcnow())
        if operator_channel:
            ensure_operator_channel(session, code)
        _key, plain = partners.issue_key(
            session,
            partner,
            partners.parse_scopes(scopes),
            SECRET,
            utcnow(),
            operator_channel=operator_channel,
        )
        return PartnerKey(partner.id, code, plain)


#: The scopes of the ``partner`` fixture: every scope (it is the operator's own channel).
OPERATOR_SCOPES = "members,earn,redeem,transfer,read,admin"


@pytest.fixture
def partner(database: Database) -> PartnerKey:
    """MOBILE, the operator's own channel, with every scope."""
    return make_partner(database, "MOBILE", OPERATOR_SCOPES, operator_channel=True)


@pytest.fixture
def app(settings: Settings, database: Database):  # type: ignore[no-untyped-def]
    from tally.app import create_app

    return create_app(settings, database)


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    with TestClient(app) as test_client:
        yield test_client


class Api:
    """A thin partner-API client for tests: unique idempotency keys unless one is given."""

    def __init__(self, client, key: PartnerKey) -> None:  # type: ignore[no-untyped-def]
        self.client = client
        self.key = key
        self._serial = 0

    def post(self, path: str, json=None, idempotency_key: str | None = None, **kwargs):  # type: ignore[no-untyped-def]
        self._serial += 1
        key = idempotency_key or f"test-{self.key.code}-{self._serial}-{os.urandom(4).hex()}"
        return self.client.post(path, json=json, headers=self.key.headers(key), **kwargs)

    def get(self, path: str, **kwargs):  # type: ignore[no-untyped-def]
        return self.client.get(path, headers=self.key.headers(), **kwargs)

    def enrol(self, external_id: str, namespace: str = "phone") -> int:
        response = self.post(
            "/v1/members", {"external_id": {"namespace": namespace, "id": external_id}}
        )
        assert response.status_code in (200, 201), response.text
        return int(response.json()["id"])

    def earn(self, member_id: int, points: int, reference: str | None = None, **extra):  # type: ignore[no-untyped-def]
        reference = reference or f"earn-{os.urandom(6).hex()}"
        return self.post(
            f"/v1/members/{member_id}/earn", {"points": points, "reference": reference, **extra}
        )

    def redeem(self, member_id: int, points: int, reference: str | None = None):  # type: ignore[no-untyped-def]
        reference = reference or f"redeem-{os.urandom(6).hex()}"
        return self.post(
            f"/v1/members/{member_id}/redeem", {"points": points, "reference": reference}
        )

    def balance(self, member_id: int) -> dict:  # type: ignore[type-arg]
        response = self.get(f"/v1/members/{member_id}/balance")
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]


@pytest.fixture
def api(client, partner: PartnerKey) -> Api:  # type: ignore[no-untyped-def]
    return Api(client, partner)
