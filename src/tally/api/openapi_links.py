"""OpenAPI links: the answer of an operation that creates something (a member, a hold, a
transaction, a membership, a family) links to every operation taking its id in their path, so
that readers and stateful testers know how calls follow one another (enrol, then earn; hold,
then capture; earn, then reverse). Ids the request itself named are not linked again."""

from __future__ import annotations

import re
from typing import Any

from tally.api.openapi_examples import resolve

JSON = dict[str, Any]
_SUFFIXES = ("_out", "_posted", "_result")


def add_links(spec: JSON) -> None:
    """Add the links of every ``/v1`` operation's JSON success answers (see the module)."""
    takers: dict[str, list[JSON]] = {}  # path parameter -> the operations taking it
    for operation in _operations(spec):
        for parameter in operation.get("parameters", []):
            if parameter.get("in") == "path":
                takers.setdefault(parameter["name"], []).append(operation)
    for operation in _operations(spec):
        if "201" not in operation.get("responses", {}):
            continue  # creates nothing
        known = _named_by_request(operation, spec)
        for status, response in operation["responses"].items():
            media = response.get("content", {}).get("application/json")
            if not status.startswith("2") or media is None:
                continue
            named = {
                parameter: pointer
                for parameter, pointer in ids_in(media.get("schema", {}), spec).items()
                if parameter not in known
            }
            links: JSON = {}
            for parameter, pointer in sorted(named.items()):
                for target in takers.get(parameter, []):
                    link = links.setdefault(
                        target["operationId"],
                        {"operationId": target["operationId"], "parameters": {}},
                    )
                    link["parameters"][parameter] = f"$response.body#{pointer}"
            if links:
                response["links"] = links


def ids_in(schema: JSON, spec: JSON) -> dict[str, str]:
    """The path parameters an answer of ``schema`` can fill in, with the JSON pointer of each:
    ``id`` of a ``Member`` is ``member_id``; a ``member_id`` field is itself; ``hold.id`` is
    ``hold_id``."""
    resolved = resolve(schema, spec)
    found: dict[str, str] = {}
    stem = _stem(resolved.get("title", ""))
    fields = resolved.get("properties", {})
    # The most explicit first: a nested object's own id, a field naming its id, then ``id``.
    for name, field in fields.items():
        if "id" in resolve(field, spec).get("properties", {}):
            found.setdefault(f"{name}_id", f"/{name}/id")
    for name in fields:
        if name.endswith("_id"):
            found.setdefault(name, f"/{name}")
    if "id" in fields and stem:
        found.setdefault(f"{stem}_id", "/id")
    return found


def _named_by_request(operation: JSON, spec: JSON) -> set[str]:
    """The ids the request names itself: its path parameters and its body's ``*_id`` fields."""
    named = {p["name"] for p in operation.get("parameters", []) if p.get("in") == "path"}
    body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
    for option in [body.get("schema", {}), *body.get("schema", {}).get("anyOf", [])]:
        named |= {
            name for name in resolve(option, spec).get("properties", {}) if name.endswith("_id")
        }
    return named


def _stem(title: str) -> str:
    """``MembershipOut`` → ``membership``: the thing a model is."""
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", title.replace(" ", "")).lower()
    for suffix in _SUFFIXES:
        snake = snake.removesuffix(suffix)
    return snake


def _operations(spec: JSON) -> list[JSON]:
    return [
        operation
        for path, item in spec.get("paths", {}).items()
        if path.startswith("/v1/")
        for operation in item.values()
        if isinstance(operation, dict) and "operationId" in operation
    ]
