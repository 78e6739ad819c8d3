"""The ``tally`` command line against a fresh SQLite file (and one tampering case on PostgreSQL).

Every command must migrate a database it finds empty; keys it prints must work on the API built
over the same database and secret.
"""

from __future__ import annotations

import json
import os
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import typer.main
from click.testing import Result
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from conftest import SECRET, Api, PartnerKey
from e2e.cli.clikit import jobs_clock
from support.access import with_partner
from tally.cli.main import app as cli
from tally.config import Settings, get_settings
from tally.programme import loader
from tally.programme.runtime import default_programme


def _command_paths() -> list[list[str]]:
    def walk(command: Any, path: list[str]) -> Iterator[list[str]]:
        yield path
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            yield from walk(sub, [*path, name])

    return list(walk(typer.main.get_command(cli), []))


COMMANDS = _command_paths()


@dataclass
class Tally:
    """The CLI pointed at one database, and the API over the same database."""

    url: str
    path: Path | None
    runner: CliRunner = field(default_factory=CliRunner)

    def run(self, *args: str, code: int = 0) -> Result:
        try:
            result = self.runner.invoke(cli, list(args), prog_name="tally")
        finally:
            while ENGINES:  # the CLI leaves its engines open; close their pooled connections
                ENGINES.pop().dispose()
        assert result.exit_code == code, (args, result.exit_code, result.output, result.exception)
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args).stdout)

    def fail(self, *args: str, code: int = 2) -> str:
        """Run a command that must fail; return everything it printed."""
        result = self.run(*args, code=code)
        assert result.exception is None or isinstance(result.exception, SystemExit)
        return result.output

    @contextmanager
    def api(self, partner: dict[str, Any]) -> Iterator[Api]:
        """The partner API over this database, as ``partner`` (what ``partner create`` printed)."""
        from tally.app import create_app

        app = create_app(Settings(database_url=self.url, secret_key=SECRET, job_interval_seconds=0))
        try:
            with TestClient(app) as client:
                yield Api(
                    client, PartnerKey(partner["partner_id"], partner["code"], partner["api_key"])
                )
        finally:
            app.state.db.dispose()

    def sql(self, *statements: str) -> None:
        """Change the database behind the ledger's back."""
        engine = create_engine(self.url)
        try:
            with engine.begin() as connection:
                for statement in statements:
                    connection.execute(text(statement))
        finally:
            engine.dispose()

    def scalar(self, query: str) -> Any:
        engine = create_engine(self.url)
        try:
            with engine.connect() as connection:
                return connection.execute(text(query)).scalar()
        finally:
            engine.dispose()


ENGINES: list[Any] = []


def _recording_build_engine(url: str, **options: Any) -> Any:
    from tally.db.engine import build_engine

    engine = build_engine(url, **options)
    ENGINES.append(engine)
    return engine


@contextmanager
def environment(url: str, directory: Path) -> Iterator[None]:
    """``TALLY_*`` for one database (and nothing else from the outer environment)."""
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("TALLY_"):
                patch.delenv(name)
        patch.chdir(directory)  # a missing secret would be written to ./var: keep it here
        patch.setenv("TALLY_DATABASE_URL", url)
        patch.setenv("TALLY_SECRET_KEY", SECRET)
        patch.setenv("TALLY_JOB_INTERVAL_SECONDS", "0")
        patch.setattr("tally.cli.common.build_engine", _recording_build_engine)
        get_settings.cache_clear()
        try:
            yield
        finally:
            get_settings.cache_clear()


@pytest.fixture
def tally(tmp_path: Path) -> Iterator[Tally]:
    """The CLI on a fresh, not yet created, SQLite file."""
    path = tmp_path / "fresh.db"
    url = f"sqlite:///{path}"
    with environment(url, tmp_path):
        yield Tally(url, path)
    assert not (tmp_path / "var").exists()


# --- A small known ledger, built once and copied per test -----------------------------------


@dataclass
class Seed:
    """Member 1 earned 100, spent 30, got 20 from member 2 and holds 10 (80 available, 10 held);
    member 2 earned 50 and gave 20 (30 available). The hold took 10 of the 20 given."""

    partner: dict[str, Any]
    entries: dict[str, str]
    hold_id: str
    template: Path


def operator_channel(tally: Tally) -> dict[str, Any]:
    """MOBILE, made the operator's own channel by a programme (it sees every transaction of
    a member and may transfer points between members), with a key that may do both."""
    partner = tally.json("partner", "create", "MOBILE", "--name", "Cloudway", "--scopes", "read")
    operator = with_partner(default_programme(Settings()), "MOBILE")
    Path("operator.yaml").write_text(loader.dump(operator))
    tally.run("programme", "apply", "operator.yaml")
    scopes = "members,earn,redeem,transfer,read"
    issued = tally.json("partner", "key-create", "MOBILE", "--scopes", scopes)
    return {**partner, "api_key": issued["api_key"]}


def seed_ledger(tally: Tally) -> tuple[dict[str, Any], dict[str, str], str]:
    partner = operator_channel(tally)
    with tally.api(partner) as api:
        one, two = api.enrol("13800000001"), api.enrol("13800000002")
        assert (one, two) == (1, 2)
        entries = {
            "earn 1": api.earn(
                one, 100, reference="e1", expires_at="2031-01-01T12:00:00+08:00"
            ).json()["id"],
            "redeem 1": api.redeem(one, 30, reference="r1").json()["id"],
            "earn 2": api.earn(
                two, 50, reference="e2", expires_at="2029-01-01T12:00:00+08:00"
            ).json()["id"],
        }
        body = {"from_member_id": two, "to_member_id": one, "points": 20, "reference": "g1"}
        entries["transfer"] = api.post("/v1/transfers", body).json()["id"]
        hold = api.post(
            f"/v1/members/{one}/holds",
            {"points": 10, "expires_in_seconds": 3600, "reference": "h1"},
        )
        assert hold.status_code == 201, hold.text
        entries["hold"] = hold.json()["transaction_id"]
        assert api.balance(one) == {
            "available": 80,
            "held": 10,
            "expiring": [
                {"date": "2029-01-01", "points": 10},
                {"date": "2031-01-01", "points": 70},
            ],
        }
        assert api.balance(two)["available"] == 30
    return partner, entries, hold.json()["id"]


def copy_sqlite(source: Path, target: Path) -> None:
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> Seed:
    directory = tmp_path_factory.mktemp("seed")
    path = directory / "seed.db"
    url = f"sqlite:///{path}"
    with environment(url, directory):
        partner, entries, hold_id = seed_ledger(Tally(url, path))
    return Seed(partner, entries, hold_id, path)


@pytest.fixture
def seeded(tally: Tally, seed: Seed) -> Seed:
    """``tally`` with the seed ledger in its database."""
    assert tally.path is not None
    copy_sqlite(seed.template, tally.path)
    return seed


# --- Help ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(["tally", *p]) for p in COMMANDS])
def test_every_command_has_help(path: list[str]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"], prog_name="tally")
    assert result.exit_code == 0, result.output
    assert f"Usage: {' '.join(['tally', *path])}" in " ".join(result.stdout.split())
    assert "--help" in result.stdout


def test_the_command_tree_is_complete() -> None:
    expected = {
        "db upgrade", "demo load", "jobs expire", "ledger verify", "member freeze", "member merge",
        "member show", "member unfreeze", "member unmerge", "partner create", "partner key-create",
        "partner key-revoke", "partner list", "programme apply", "programme export",
        "programme plan", "programme schema", "programme validate", "programme versions",
        "programme cancel", "serve", "staff create",
        # campaigns without a new programme version
        "campaign list", "campaign pause", "campaign results", "campaign resume", "campaign show",
        # growth value and tiers
        "jobs tiers", "member growth", "member growth-adjust", "member tier",
        # paid memberships
        "jobs memberships", "membership cancel", "membership list", "membership refund",
        "membership show",
        # family accounts
        "family of", "family show",
        # hold lapses alone; the sign-in housekeeping the scheduler runs
        "jobs lapses", "jobs sign-ins",
        # identities in the programme's namespaces
        "member enrol", "member link",
        # purging Idempotency-Key records past their retention
        "jobs idempotency", "jobs outbox", "jobs failures", "jobs orders", "jobs refunds",
        "jobs offers", "jobs auctions",
        # webhook delivery and expiry reminders
        "jobs deliver", "jobs reminders",
        # a draft programme's rules simulated on past events
        "rules simulate",
        # bulk accrual
        "events import",
        # coupons: templates, issuing as staff, the monthly allowances
        "coupons list", "coupons show", "coupons issue", "jobs coupons",
        # the rewards mall
        "mall items list", "mall items show", "mall items import", "mall items restock",
        "mall codes upload",
        "mall orders list", "mall orders show", "mall orders ship", "mall orders deliver",
        "mall orders cancel", "mall orders refund",
    }  # fmt: skip
    leaves = {
        " ".join(p)
        for p in COMMANDS
        if p and not any(q[: len(p)] == p and q != p for q in COMMANDS)
    }
    assert leaves == expected


# --- Database --------------------------------------------------------------------------------


def test_db_upgrade_creates_a_fresh_database(tally: Tally) -> None:
    assert tally.path is not None
    assert not tally.path.exists()

    assert tally.run("db", "upgrade").stdout.strip() == "database is up to date"
    assert tally.run("db", "upgrade").stdout.strip() == "database is up to date"

    assert tally.scalar("SELECT count(*) FROM journal_entries") == 0
    assert tally.scalar("SELECT count(*) FROM partners") == 0


# --- Partners --------------------------------------------------------------------------------


def test_partner_create_prints_a_key_that_works_on_the_api(tally: Tally) -> None:
    assert tally.path is not None
    assert not tally.path.exists()

    partner = tally.json(
        "partner", "create", "MOBILE", "--name", "Cloudway Mobile", "--scopes", "earn,redeem"
    )

    assert tally.path.exists()  # the command created and migrated the database
    prefix = partner["api_key"].split(".")[0]
    assert partner == {
        "partner_id": 1,
        "code": "MOBILE",
        "name": "Cloudway Mobile",
        "api_key": partner["api_key"],
        "key_prefix": prefix,
        "scopes": ["earn", "redeem"],
    }
    assert prefix.startswith("tly_")
    second = tally.json("partner", "key-create", "MOBILE", "--scopes", "members,read")
    assert set(second) == {"code", "api_key", "key_prefix"}
    assert second["code"] == "MOBILE"
    assert second["api_key"] != partner["api_key"]
    second["partner_id"] = 1

    with tally.api(second) as reader, tally.api(partner) as earner:
        member = reader.enrol("13800000001")
        earned = earner.earn(member, 100)
        assert earned.status_code == 201, earned.text
        assert earned.json()["balance"]["available"] == 100
        assert reader.balance(member)["available"] == 100
        forbidden = earner.get(f"/v1/members/{member}/balance")
        assert (forbidden.status_code, forbidden.json()["code"]) == (403, "forbidden")
        stranger = Api(earner.client, PartnerKey(1, "MOBILE", f"{prefix}.not-the-secret"))
        assert stranger.earn(member, 5).status_code == 401

    listed = tally.json("partner", "list")
    assert listed == [
        {
            "partner_id": 1,
            "code": "MOBILE",
            "name": "Cloudway Mobile",
            "is_active": True,
            "operator_channel": False,  # no programme applied: no operator channel
            "keys": [
                {"prefix": prefix, "scopes": ["earn", "redeem"], "revoked": False},
                {"prefix": second["key_prefix"], "scopes": ["members", "read"], "revoked": False},
            ],
        }
    ]

    assert tally.json("partner", "key-revoke", prefix) == {"revoked": prefix}
    with tally.api(partner) as earner:
        revoked = earner.earn(member, 5)
        assert (revoked.status_code, revoked.json()["code"]) == (401, "unauthorized")
    assert tally.json("partner", "list")[0]["keys"][0]["revoked"] is True
    assert "error [not_found]" in tally.fail("partner", "key-revoke", prefix)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["partner", "create", "SHOP", "--name", "Mall", "--scopes", "earn,bogus"],
            "error [validation_error]: Unknown scope in 'earn,bogus'; "
            "known: members, earn, redeem, transfer, read, admin, webhooks, events, catalog, mall, "
            "coupons.",
        ),
        (
            ["partner", "create", "SHOP", "--name", "Mall", "--scopes", "earn,transfer"],
            "error [validation_error]: Partner SHOP is not one of the operator's channels "
            "(partners[].operator_channel in the programme), so its keys cannot have the "
            "'transfer' scope.",
        ),
        (
            ["partner", "key-create", "MOBILE", "--scopes", "transfer"],
            "error [validation_error]: Partner MOBILE is not one of the operator's channels",
        ),
        (
            ["partner", "create", "SHOP", "--name", "Mall", "--scopes", " , "],
            "error [validation_error]: At least one scope is needed.",
        ),
        (
            ["partner", "create", "bad code!", "--name", "Mall"],
            "error [validation_error]: A partner code is letters, digits, '-' or '_'.",
        ),
        (
            ["partner", "key-create", "NOPE", "--scopes", "read"],
            "error [not_found]: Partner NOPE does not exist.",
        ),
        (
            ["partner", "key-create", "MOBILE", "--scopes", "root"],
            "error [validation_error]: Unknown scope in 'root'",
        ),
        (
            ["partner", "create", "MOBILE", "--name", "Again"],
            "error [conflict]: Partner MOBILE already exists.",
        ),
    ],
    ids=[
        "unknown scope",
        "transfer scope for a partner not an operator channel",
        "transfer scope on another key of such a partner",
        "no scope",
        "bad code",
        "unknown partner",
        "unknown scope for a key",
        "taken code",
    ],
)
def test_partner_commands_refuse_bad_input_clearly(
    tally: Tally, args: list[str], message: str
) -> None:
    tally.json("partner", "create", "MOBILE", "--name", "Cloudway")

    result = tally.run(*args, code=2)

    assert message in result.stderr
    assert result.stdout == ""
    listed = tally.json("partner", "list")
    assert [p["code"] for p in listed] == ["MOBILE"]
    assert len(listed[0]["keys"]) == 1


# --- Staff -----------------------------------------------------------------------------------


def test_staff_create(tally: Tally) -> None:
    created = tally.json(
        "staff", "create", "Alice", "--role", "support", "--password", "correct horse 1"
    )

    assert created == {"staff_id": 1, "username": "alice", "role": "support"}
    stored = tally.scalar("SELECT password_hash FROM staff_users WHERE username = 'alice'")
    assert stored.startswith("$argon2")
    assert "correct horse" not in stored
    assert (
        "error [conflict]"
        in tally.run(
            "staff", "create", "alice", "--role", "admin", "--password", "another pass 2", code=2
        ).stderr
    )
    short = tally.run("staff", "create", "bob", "--role", "ops", "--password", "short", code=2)
    assert "error [validation_error]: A password has at least 10 characters." in short.stderr
    assert "Invalid value for '--role'" in tally.fail(
        "staff", "create", "carol", "--role", "boss", "--password", "long enough 3"
    )
    assert tally.scalar("SELECT count(*) FROM staff_users") == 1


# --- Ledger verification ---------------------------------------------------------------------


def verify(tally: Tally, code: int) -> tuple[str, set[str]]:
    result = tally.run("ledger", "verify", code=code)
    problems = {
        line.removeprefix("PROBLEM: ")
        for line in result.stderr.splitlines()
        if line.startswith("PROBLEM: ")
    }
    return result.stdout, problems


def test_verify_passes_on_a_healthy_ledger(tally: Tally, seeded: Seed) -> None:
    out, problems = verify(tally, 0)
    assert out.splitlines() == [
        "checked 5 entries, 6 chain links, 2 wallets, 9 accounts",
        "ledger OK",
    ]
    assert problems == set()


def test_verify_passes_on_a_fresh_database(tally: Tally) -> None:
    out, _ = verify(tally, 0)
    assert out.splitlines() == [
        "checked 0 entries, 0 chain links, 0 wallets, 3 accounts",
        "ledger OK",
    ]


TAMPERING: dict[str, tuple[list[str], list[str]]] = {
    # name: (statements, problems verify must name — {earn 1} … stand for entry ids)
    "a posting's amount": (
        [
            "UPDATE postings SET amount = amount + 1"
            " WHERE account = 'member:2:available' AND amount = 50"
        ],
        [
            "entry {earn 2} does not balance: [Leg(account='partner:1:issued', amount=-50), "
            "Leg(account='member:2:available', amount=51)]",
            "entry {earn 2} was altered: its content no longer matches its hash",
            "member 2's balance 30/0 differs from its postings 31/0",
        ],
    ),
    "an entry's reference": (
        ["UPDATE journal_entries SET reference = 'x' WHERE reference = 'r1'"],
        ["entry {redeem 1} was altered: its content no longer matches its hash"],
    ),
    "an entry's kind": (
        ["UPDATE journal_entries SET kind = 'adjust' WHERE reference = 'e2'"],
        ["entry {earn 2} was altered: its content no longer matches its hash"],
    ),
    "the newest chain link deleted": (
        ["DELETE FROM chain_links WHERE member_id = 1 AND seq = 4"],
        [
            "member 1's chain head does not match its wallet (entries removed?)",
            "1 entries are in no member's chain (inserted outside the ledger?)",
        ],
    ),
    "a chain link in the middle deleted": (
        ["DELETE FROM chain_links WHERE member_id = 1 AND seq = 2"],
        [
            "member 1's chain skips from 1 to 3",
            "member 1's chain is broken at link 3 (changed or reordered)",
            "1 entries are in no member's chain (inserted outside the ledger?)",
        ],
    ),
    "two chain links swapped": (
        [
            "UPDATE chain_links SET seq = -1 WHERE member_id = 1 AND seq = 1",
            "UPDATE chain_links SET seq = 1 WHERE member_id = 1 AND seq = 2",
            "UPDATE chain_links SET seq = 2 WHERE member_id = 1 AND seq = -1",
        ],
        [
            "member 1's chain is broken at link 1 (changed or reordered)",
            "member 1's chain is broken at link 2 (changed or reordered)",
            # link 3 was computed over the original link 2, which is no longer before it
            "member 1's chain is broken at link 3 (changed or reordered)",
        ],
    ),
    "a wallet's balance": (
        ["UPDATE wallets SET available = available + 5 WHERE member_id = 1"],
        [
            "member 1's balance 85/10 differs from its postings 80/10",
            "member 1's available 85 differs from its lots 80",
        ],
    ),
    "a lot's remaining points": (
        ["UPDATE lots SET remaining = remaining + 5 WHERE member_id = 2 AND points = 50"],
        [
            "lot {lot 2} holds 35, but 50 less 20 used is 30",
            "member 2's available 30 differs from its lots 35",
        ],
    ),
    "a hold's status": (
        ["UPDATE holds SET status = 'voided'"],
        ["member 1's held 10 differs from its active holds 0"],
    ),
    "a partner account's balance": (
        [
            "UPDATE account_stripes SET balance = balance - 5"
            " WHERE account_id = (SELECT id FROM accounts WHERE code = 'partner:1:issued')"
        ],
        ["account partner:1:issued's balance -155 differs from its postings -150"],
    ),
    "a posting moved to an account without a row": (
        ["UPDATE postings SET account = 'partner:9:redeemed' WHERE account = 'partner:1:redeemed'"],
        [
            "entry {redeem 1} was altered: its content no longer matches its hash",
            "1 postings name account partner:9:redeemed, which has no row",
            "account partner:1:redeemed's balance 30 differs from its postings 0",
        ],
    ),
    "an account's owner": (
        ["UPDATE accounts SET owner_id = 7 WHERE code = 'partner:1:issued'"],
        [
            "account partner:1:issued is owned by no partner",
            "account partner:1:issued is recorded as the issued account of partner 7",
            "partner 1 has 1 accounts, not 2",
        ],
    ),
    "a member's account deleted": (
        ["DELETE FROM accounts WHERE code = 'member:2:held'"],
        ["member 2 has 1 accounts, not 2"],
    ),
    "a wallet deleted": (
        ["DELETE FROM wallets WHERE member_id = 2"],
        [
            "account member:2:available belongs to a member without a wallet",
            "account member:2:held belongs to a member without a wallet",
            "member 2 has chain links but no wallet",
        ],
    ),
    "a tier change of a member that does not exist": (
        [
            "INSERT INTO tier_changes (member_id, to_code, reason, growth, changed_at)"
            " VALUES (99, 'GOLD', 'upgrade', 0, '2026-12-04 00:00:00.000000')"
        ],
        ["1 tier changes name member 99, which does not exist"],
    ),
}


def expected_problems(tally: Tally, seed: Seed, problems: list[str]) -> set[str]:
    names = {
        **seed.entries,
        "lot 2": str(tally.scalar("SELECT id FROM lots WHERE member_id = 2 AND points = 50")),
    }
    return {problem.format(**names) for problem in problems}


@pytest.mark.parametrize(("statements", "problems"), list(TAMPERING.values()), ids=list(TAMPERING))
def test_verify_names_what_was_tampered_with(
    tally: Tally, seeded: Seed, statements: list[str], problems: list[str]
) -> None:
    expected = expected_problems(tally, seeded, problems)
    tally.sql(*statements)

    out, found = verify(tally, 1)

    assert out.splitlines()[0].startswith("checked ")
    assert "ledger OK" not in out
    assert found == expected


def test_verify_names_tampering_on_postgresql(postgres_server: Any, tmp_path: Path) -> None:
    url = postgres_server.create_database(f"cli_{uuid.uuid4().hex[:12]}")
    with environment(url, tmp_path):
        tally = Tally(url, None)
        _partner, entries, _hold = seed_ledger(tally)  # on a fresh, unmigrated PostgreSQL database
        out, _problems = verify(tally, 0)
        assert out.splitlines() == [
            "checked 5 entries, 6 chain links, 2 wallets, 9 accounts",
            "ledger OK",
        ]
        statements, expected = TAMPERING["a posting's amount"]
        tally.sql(*statements)

        _out, found = verify(tally, 1)

    assert found == {problem.format(**entries) for problem in expected}


# --- Jobs ------------------------------------------------------------------------------------


@dataclass
class ExpirySeed:
    """Member 1 holds lots expiring around the end of 2027-03-01 (Asia/Shanghai, UTC+8):
    A 10 at 02-28T16:00Z, B 20 at 03-01T15:59:59Z, C 40 at 03-01T16:00Z, D 80 at 03-01T16:00:01Z.
    Member 2 earned 30 (default expiry) and holds 5 for an hour."""

    partner: dict[str, Any]
    template: Path


@pytest.fixture(scope="module")
def expiry_seed(tmp_path_factory: pytest.TempPathFactory) -> ExpirySeed:
    directory = tmp_path_factory.mktemp("expiry")
    path = directory / "expiry.db"
    url = f"sqlite:///{path}"
    with environment(url, directory):
        tally = Tally(url, path)
        partner = operator_channel(tally)
        with tally.api(partner) as api:
            one, two = api.enrol("13800000001"), api.enrol("13800000002")
            for points, expires_at in [
                (10, "2027-03-01T00:00:00+08:00"),
                (20, "2027-03-01T15:59:59Z"),
                (40, "2027-03-01T16:00:00Z"),
                (80, "2027-03-01T16:00:01Z"),
            ]:
                assert api.earn(one, points, expires_at=expires_at).status_code == 201
            assert api.earn(two, 30).status_code == 201
            held = api.post(
                f"/v1/members/{two}/holds",
                {"points": 5, "expires_in_seconds": 3600, "reference": "h"},
            )
            assert held.status_code == 201, held.text
    return ExpirySeed(partner, path)


@pytest.fixture
def expiring(tally: Tally, expiry_seed: ExpirySeed) -> ExpirySeed:
    assert tally.path is not None
    copy_sqlite(expiry_seed.template, tally.path)
    return expiry_seed


@pytest.fixture
def in_march_2027(monkeypatch: pytest.MonkeyPatch) -> None:
    """``tally jobs`` runs on 2 March 2027 (UTC), after every moment the expiry tests ask for."""
    jobs_clock(monkeypatch, datetime(2027, 3, 2, tzinfo=UTC))


AS_OF = [
    # --as-of, the moment it means, lots expired, points expired
    pytest.param("2027-02-28", "2027-02-28T16:00:00+00:00", 1, 10, id="date: through Feb 28 local"),
    pytest.param("2027-03-01", "2027-03-01T16:00:00+00:00", 3, 70, id="date: through Mar 1 local"),
    pytest.param(
        "2027-03-01T12:00:00+08:00", "2027-03-01T04:00:00+00:00", 1, 10, id="datetime with offset"
    ),
    pytest.param("2027-03-01T15:59:59Z", "2027-03-01T15:59:59+00:00", 2, 30, id="datetime in UTC"),
    pytest.param(
        "2027-03-01T16:00:00", "2027-03-01T16:00:00+00:00", 3, 70, id="naive datetime is UTC"
    ),
    pytest.param("20270301", "2027-03-01T16:00:00+00:00", 3, 70, id="basic-format date"),
]


@pytest.mark.parametrize(("as_of", "moment", "lots", "points"), AS_OF)
@pytest.mark.usefixtures("in_march_2027")
def test_jobs_expire_expires_due_lots_once_and_lapses_holds(
    tally: Tally, expiring: ExpirySeed, as_of: str, moment: str, lots: int, points: int
) -> None:
    report = tally.json("jobs", "expire", "--as-of", as_of)

    assert report == {
        "as_of": moment,
        "members": 1,
        "lots_expired": lots,
        "points_expired": points,
        "holds_lapsed": 1,
    }
    again = tally.json("jobs", "expire", "--as-of", as_of)
    assert again == {
        "as_of": moment,
        "members": 0,
        "lots_expired": 0,
        "points_expired": 0,
        "holds_lapsed": 0,
    }
    with tally.api(expiring.partner) as api:
        assert api.balance(1)["available"] == 150 - points
        assert api.balance(2) == {
            "available": 30,
            "held": 0,
            "expiring": api.balance(2)["expiring"],
        }
        kinds = [item["kind"] for item in api.get("/v1/members/2/transactions").json()["items"]]
        assert kinds == ["lapse", "hold", "earn"]


@pytest.mark.usefixtures("in_march_2027")
def test_jobs_expire_then_the_ledger_still_verifies(tally: Tally, expiring: ExpirySeed) -> None:
    assert tally.json("jobs", "expire", "--as-of", "2027-03-01")["points_expired"] == 70
    out, problems = verify(tally, 0)
    assert problems == set()
    assert out.splitlines()[-1] == "ledger OK"
    with tally.api(expiring.partner) as api:
        assert api.balance(1) == {
            "available": 80,
            "held": 0,
            "expiring": [{"date": "2027-03-02", "points": 80}],
        }
        [newest] = api.get("/v1/members/1/transactions", params={"limit": 1}).json()["items"]
        assert (newest["kind"], newest["points"]) == ("expire", -70)


def test_jobs_expire_now_has_nothing_to_do(tally: Tally, expiring: ExpirySeed) -> None:
    report = tally.json("jobs", "expire")
    assert {k: v for k, v in report.items() if k != "as_of"} == {
        "members": 0,
        "lots_expired": 0,
        "points_expired": 0,
        "holds_lapsed": 0,
    }


def test_jobs_expire_refuses_a_bad_moment(tally: Tally) -> None:
    output = tally.fail("jobs", "expire", "--as-of", "next tuesday")
    assert "not an ISO-8601 date or datetime: 'next tuesday'" in " ".join(output.split())


# --- Members ---------------------------------------------------------------------------------


def test_member_freeze_and_unfreeze(tally: Tally, seeded: Seed) -> None:
    assert tally.json("member", "freeze", "1", "--reason", "card fraud") == {
        "member_id": 1,
        "status": "frozen",
    }
    with tally.api(seeded.partner) as api:
        refused = api.earn(1, 5)
        assert (refused.status_code, refused.json()["code"]) == (409, "member_frozen")
        assert api.get("/v1/members/1").json()["status"] == "frozen"
    assert (
        "error [conflict]" in tally.run("member", "freeze", "1", "--reason", "again", code=2).stderr
    )

    assert tally.json("member", "unfreeze", "1") == {"member_id": 1, "status": "active"}
    with tally.api(seeded.partner) as api:
        assert api.earn(1, 5).json()["balance"]["available"] == 85
    assert "error [conflict]" in tally.run("member", "unfreeze", "1", code=2).stderr
    assert (
        "error [not_found]" in tally.run("member", "freeze", "99", "--reason", "x", code=2).stderr
    )


def test_member_merge_and_unmerge(tally: Tally, seeded: Seed) -> None:
    tally.json("staff", "create", "ops.admin", "--role", "admin", "--password", "a long password")
    assert tally.json("member", "show", "2") == {
        "id": 2,
        "status": "active",
        "merged_into_id": None,
        "identities": ["phone:13800000002"],
    }

    merged = tally.json(
        "member", "merge", "1", "2", "--staff", "ops.admin", "--reason", "same person"
    )

    assert (merged["merge_id"], merged["survivor_id"], merged["merged_id"]) == (1, 1, 2)
    assert len(merged["moved"]["identities"]) == 1
    assert tally.json("member", "show", "2") == {
        "id": 2,
        "status": "merged",
        "merged_into_id": 1,
        "identities": [],
    }
    assert tally.json("member", "show", "1")["identities"] == [
        "phone:13800000001",
        "phone:13800000002",
    ]
    with tally.api(seeded.partner) as api:
        assert (api.balance(1)["available"], api.balance(1)["held"]) == (110, 10)
        found = api.get("/v1/members/lookup", params={"namespace": "phone", "id": "13800000002"})
        assert found.json()["id"] == 1
    assert verify(tally, 0)[1] == set()

    unmerged = tally.json("member", "unmerge", "1", "--staff", "ops.admin")

    assert unmerged["merge_id"] == 1
    assert unmerged["reversed_at"]
    assert tally.json("member", "show", "2")["status"] == "active"
    with tally.api(seeded.partner) as api:
        assert (api.balance(1)["available"], api.balance(1)["held"]) == (80, 10)
        assert api.balance(2)["available"] == 30
    assert verify(tally, 0)[1] == set()
    assert (
        "error [conflict]"
        in tally.run("member", "unmerge", "1", "--staff", "ops.admin", code=2).stderr
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["member", "merge", "1", "2", "--staff", "nobody", "--reason", "x"],
            "error [not_found]: No staff member nobody.",
        ),
        (
            ["member", "merge", "1", "1", "--staff", "ops.admin", "--reason", "x"],
            "error [validation_error]",
        ),
        (
            ["member", "merge", "1", "99", "--staff", "ops.admin", "--reason", "x"],
            "error [not_found]",
        ),
        (
            ["member", "unmerge", "7", "--staff", "ops.admin"],
            "error [not_found]: Merge 7 does not exist.",
        ),
        (["member", "show", "99"], "error [not_found]: Member 99 does not exist."),
    ],
    ids=["unknown staff", "into itself", "unknown member", "unknown merge", "show unknown"],
)
def test_member_commands_refuse_bad_input(
    tally: Tally, seeded: Seed, args: list[str], message: str
) -> None:
    tally.json("staff", "create", "ops.admin", "--role", "admin", "--password", "a long password")

    result = tally.run(*args, code=2)

    assert message in result.stderr
    assert tally.json("member", "show", "2")["status"] == "active"


def test_member_merge_needs_a_staff_member(tally: Tally, seeded: Seed) -> None:
    output = tally.fail("member", "merge", "1", "2", "--reason", "x")
    assert "Missing option '--staff'" in output


# --- Demo ------------------------------------------------------------------------------------


def test_demo_load_on_an_empty_database_verifies(tally: Tally) -> None:
    summary = tally.json("demo", "load")

    assert summary["loaded"] is True
    assert summary["members"] == 300
    assert sorted(summary["api_keys"]) == ["FOOD", "HOTEL", "MOBILE", "SHOP"]
    assert summary["staff"] == ["admin", "support", "auditor"]
    out, problems = verify(tally, 0)
    assert problems == set()
    assert out.splitlines()[-1] == "ledger OK"
    assert tally.json("demo", "load")["loaded"] is False
    mobile = {"partner_id": 1, "code": "MOBILE", "api_key": summary["api_keys"]["MOBILE"]}
    with tally.api(mobile) as api:
        assert api.get(f"/v1/members/{summary['sample_member_id']}").status_code == 200
