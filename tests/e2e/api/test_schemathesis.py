"""Schemathesis against the live app: what the server answers is what the document says.

One bounded, deterministic run of Schemathesis' engine (what its CLI runs) on SQLite with a
partner key holding every scope: every check, in every phase — the document's examples, the
coverage cases (boundaries, missing and malformed parameters), a few generated cases per
operation, and stateful sequences following the document's links (enrol, then earn, redeem,
hold, capture, reverse… on the member just made). It must find nothing: every status, content
type, header and problem body is one the document declares, and every problem's ``code`` one it
lists for that operation and status (a check of our own).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from schemathesis.checks import CHECKS
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events, from_schema
from schemathesis.hooks import GLOBAL_HOOK_DISPATCHER
from schemathesis.openapi.checks import RejectedPositiveData

from conftest import OPERATOR_SCOPES, SECRET, make_partner
from tally.config import Settings
from tally.db.engine import build_engine
from tally.db.session import Database

PROBLEM_JSON = "application/problem+json"
CODES_SEEN: set[tuple[str, int, str]] = set()  # (operation, status, code) of the problems seen
SEED = 20261203
EXAMPLES_PER_OPERATION = 4
STATEFUL_STEPS = 8
CONFIG = f"""
seed = {SEED}

[generation]
deterministic = true
max-examples = {EXAMPLES_PER_OPERATION}
database = "none"

[checks]
enabled = true

# A body over the size limit is rejected too: 413 payload_too_large, before it is read.
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "406", "409", "413", "422", "428", "5XX"]

[phases.stateful]
max-steps = {STATEFUL_STEPS}
"""


@pytest.fixture(scope="module")
def api(
    tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path
) -> Iterator[tuple[Any, str]]:
    """The app on a fresh SQLite copy, and an API key with every scope (an operator channel)."""
    from tally.app import create_app

    path = tmp_path_factory.mktemp("schemathesis") / "tally.db"
    shutil.copy(sqlite_template, path)
    url = f"sqlite:///{path}"
    db = Database(build_engine(url))
    key = make_partner(db, "MOBILE", OPERATOR_SCOPES, operator_channel=True)
    settings = Settings(
        database_url=url, secret_key=SECRET, job_interval_seconds=0, programme_refresh_seconds=0
    )
    yield create_app(settings, db), key.api_key
    db.dispose()


def _whole(value: Any) -> Any:
    """``value`` with every whole float as an int (``100.0`` as ``100``)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _whole(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_whole(item) for item in value]
    return value


@pytest.fixture(autouse=True)
def integers_as_integers() -> Iterator[None]:
    """JSON Schema counts ``100.0`` as an integer; Tally's API, by design, does not (points and
    ids are JSON integers: ``100``). Schemathesis sends whole floats for integers and no keyword
    can tell it otherwise, so they are sent as the integers they stand for."""

    def before_call(_context: Any, case: Any, _kwargs: Any) -> None:
        case.body = _whole(case.body)

    schemathesis.hook(before_call)
    yield
    GLOBAL_HOOK_DISPATCHER.unregister(before_call)


# Rules the server checks that JSON Schema cannot state, said in words in the document instead:
# a schema-valid request may be refused 422 naming one of these fields (the operation, "*": any).
RULES_IN_WORDS = {
    ("*", "expires_at"): "a time in the future, within 100 years",
    ("*", "paid_at"): "a payment time neither in the future nor long past",
    ("*", "cursor"): "a cursor only as the server issued it",
    ("GET /v1/members/lookup", "code"): "either namespace and id, or a member code",
    ("POST /v1/transfers", "to_member_id"): "another member than the one it is from",
    ("POST /v1/holds/{hold_id}/capture", "points"): "at most the points held",
    ("POST /v1/members/{member_id}/earn", "lines"): "lines whose points add up to the earn's",
    ("POST /v1/members/{member_id}/memberships", "plan"): "a plan of the programme in force",
    ("*", "images"): "an https URL or a path under /static/",
    ("*", "ship_within"): "an ISO-8601 duration",
    ("*", "sale"): "a sale that ends after it starts",
    ("*", "price.cash.currency"): "an ISO 4217 currency",
    ("*", "price"): "points, a cash part or both, above zero",
    # An item's rules across its fields: its window in order, slots for a booking only, a plan
    # for a plan item only, a digital-code item's stock from its pool (docs/mall.md).
    ("POST /v1/mall/items", ""): "an item's rules across its fields",
    ("PATCH /v1/mall/items/{code}", ""): "an item's rules across its fields",
}


def _refused_by_a_stated_rule(operation: str, response: Any) -> bool:
    """A 422 that is a documented business refusal (a code of its own, listed for the
    operation) or names a field whose rule the document states in words."""
    if response.status_code != 422:
        return False
    try:
        problem = response.json()
    except ValueError:
        return False
    if problem.get("code") != "validation_error":
        return True  # e.g. unknown_namespace, payment_mismatch: listed for the operation
    fields = {problem.get("field")} | {e.get("field") for e in problem.get("errors", [])}
    return any((operation, f) in RULES_IN_WORDS or ("*", f) in RULES_IN_WORDS for f in fields)


def documented_problem_code(_ctx: Any, response: Any, case: Any) -> None:
    """A problem answer's ``code`` is one the document lists for that operation and status."""
    if response.status_code < 400 or response.status_code in {405, 406, 415}:
        return  # 405 and the like are answered before any route: not an operation's own
    types = [
        v for k, values in response.headers.items() if k.lower() == "content-type" for v in values
    ]
    if not types or not types[0].startswith(PROBLEM_JSON):
        return  # content_type_conformance reports it
    declared = case.operation.definition.raw.get("responses", {}).get(str(response.status_code))
    if declared is None:
        return  # status_code_conformance reports it
    listed = set(declared.get("content", {}).get(PROBLEM_JSON, {}).get("examples", {}))
    code = response.json().get("code")
    CODES_SEEN.add((f"{case.method} {case.path}", response.status_code, code))
    if code not in listed:
        raise AssertionError(
            f"{case.method} {case.path} answered {response.status_code} `{code}`, "
            f"which the document does not list (it lists {sorted(listed)})"
        )


@pytest.fixture(autouse=True)
def problem_codes_checked() -> Iterator[None]:
    """Run :func:`documented_problem_code` as a check of its own."""
    schemathesis.check(documented_problem_code)
    yield
    CHECKS.unregister(documented_problem_code.__name__)


def run(app: Any, api_key: str) -> tuple[list[str], dict[str, int]]:
    """Every failure the run found (one line each), and how many scenarios each phase ran."""
    config = SchemathesisConfig.from_str(
        CONFIG + f'\n[headers]\nAuthorization = "Bearer {api_key}"\n'
    )
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)

    @schema.hook
    def filter_failure(_context: Any, failure: Any, case: Any, response: Any) -> bool:
        if not isinstance(failure, RejectedPositiveData):
            return True
        return not _refused_by_a_stated_rule(f"{case.method} {case.path}", response)

    failures: list[str] = []
    scenarios: dict[str, int] = {}
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            scenarios[event.phase.value] = scenarios.get(event.phase.value, 0) + 1
            if event.status in (Status.FAILURE, Status.ERROR):
                failures.extend(_described(event))
        elif isinstance(event, events.NonFatalError):
            failures.append(f"{event.label}: error {event.info.format()}")
        elif isinstance(event, events.FatalError):
            failures.append(f"fatal: {event.exception!r}")
    return sorted(set(failures)), scenarios


def _described(event: events.ScenarioFinished) -> list[str]:
    found = []
    for case_id, checks in event.recorder.checks.items():
        for check in checks:
            if check.status is Status.FAILURE and check.failure_info is not None:
                failure = check.failure_info.failure
                interaction = event.recorder.interactions.get(case_id)
                answer = interaction.response if interaction is not None else None
                said = "" if answer is None else f"{answer.status_code} {answer.content[:300]!r}"
                found.append(
                    f"[{event.phase.value}] {failure.operation}: {check.name}: "
                    f"{failure.title}: {failure.message}\n    {check.failure_info.code_sample}"
                    f"\n    -> {said}"
                )
    return found or [f"[{event.phase.value}] {event.label}: {event.status.value}"]


def test_the_server_answers_as_the_document_says(api: tuple[Any, str]) -> None:
    app, api_key = api
    failures, scenarios = run(app, api_key)
    assert failures == [], "\n".join(failures)
    # The problem codes were checked (on every operation, with many codes).
    assert len({operation for operation, _status, _code in CODES_SEEN}) > 40
    assert len({code for _operation, _status, code in CODES_SEEN}) > 5
    assert {"examples", "coverage", "fuzzing", "stateful"} <= set(scenarios), scenarios
