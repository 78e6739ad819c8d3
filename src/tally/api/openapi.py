"""The published OpenAPI document: FastAPI's, completed in one pass over every route.

FastAPI knows each route's parameters, bodies and success answers. This pass adds what the
routes share and FastAPI cannot see: the ``bearerAuth`` security scheme on every ``/v1``
operation; the problem documents (``application/problem+json``) each operation can answer with
their possible ``code``s; the ``Idempotency-Key`` header's constraints; the limits the server
enforces from its settings, and the rules it checks that JSON Schema cannot state, in words; an
example on every request body and success answer (:mod:`tally.api.openapi_examples`); links from
what an operation creates to the operations on it (:mod:`tally.api.openapi_links`); operation ids
named after the endpoints. New routes are covered without edits here: their errors are derived
from their method, parameters and scope, plus any codes their ``responses`` descriptions name and
the table :data:`RAISES`.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts

from tally import errors
from tally.api.intake import body_limit
from tally.api.openapi_examples import add_examples, resolve
from tally.api.openapi_links import add_links
from tally.api.schemas import MAX_POINTS
from tally.config import Settings
from tally.idempotency.service import MAX_KEY_LENGTH
from tally.partners.domain import Scope

JSON = dict[str, Any]
PROBLEM_JSON = "application/problem+json"
WRITE_METHODS = frozenset({"post", "put", "patch", "delete"})
REPLAYED = {
    "description": "`true` when this is the stored answer to an earlier request with the same "
    "Idempotency-Key (nothing was done again).",
    "schema": {"type": "string", "enum": ["true"]},
}
# The Idempotency-Key as a header value carries it (Latin-1), under the text rule: no control
# characters (C0, DEL, C1) and no soft hyphen (U+00AD, a format character).
KEY_PATTERN = "^[ -~\u00a0-\u00ac\u00ae-\u00ff]+$"

# The business errors an operation can answer (by code), beyond those every operation of its
# kind can (see :func:`_codes`). Keyed by "METHOD path" as published; a key ending in "*" covers
# every path it begins. Codes no error class has (yet) are left out.
_MEMBER_STATE = ("member_frozen", "member_merged")
_POSTING = (*_MEMBER_STATE, "duplicate_reference")
_IDENTITY = ("unknown_namespace", "member_merged")
_FAMILY_ROLES = ("not_family_owner", "not_family_member", "not_invitee", "not_member_itself")
_FAMILY_STATE = ("already_in_family", "family_dissolved", "family_full", "invitation_not_pending")
RAISES: dict[str, tuple[str, ...]] = {
    "POST /v1/members": ("identity_conflict", "unknown_namespace"),
    "GET /v1/members/lookup": ("not_found", "unknown_namespace", "rate_limited"),
    "POST /v1/members/{member_id}/identities": (*_IDENTITY, "identity_conflict"),
    "POST /v1/members/{member_id}/identities/unlink": (*_IDENTITY, "conflict"),
    "POST /v1/members/{member_id}/freeze": ("member_merged",),
    "POST /v1/members/{member_id}/unfreeze": ("member_merged",),
    "POST /v1/members/{member_id}/earn": _POSTING,
    "POST /v1/members/{member_id}/redeem": (*_POSTING, "insufficient_points"),
    "POST /v1/members/{member_id}/holds": (*_POSTING, "insufficient_points"),
    "POST /v1/holds/{hold_id}/capture": (*_MEMBER_STATE, "hold_not_active", "insufficient_points"),
    "POST /v1/holds/{hold_id}/void": (*_MEMBER_STATE, "hold_not_active"),
    "POST /v1/transfers": (*_POSTING, "insufficient_points"),
    "POST /v1/transactions/{transaction_id}/reverse": (
        *_MEMBER_STATE,
        "already_reversed",
        "not_reversible",
    ),
    "POST /v1/members/{member_id}/adjustments": (
        *_MEMBER_STATE,
        "insufficient_points",
        "adjustment_too_large",
    ),
    "POST /v1/members/{member_id}/links": ("member_merged",),
    "POST /v1/members/{member_id}/growth/adjustments": (*_MEMBER_STATE, "insufficient_growth"),
    "POST /v1/members/{member_id}/consents": ("unknown_partner", "unknown_purpose"),
    "POST /v1/families*": (*_FAMILY_ROLES, *_FAMILY_STATE, *_MEMBER_STATE),
    "PATCH /v1/families*": (*_FAMILY_ROLES, *_FAMILY_STATE),
    "POST /v1/families/{family_id}/redemptions": (
        *_POSTING,
        "insufficient_points",
        "family_limit_exceeded",
    ),
}


def raised_by(method: str, path: str) -> set[str]:
    """The codes :data:`RAISES` lists for an operation."""
    name = f"{method.upper()} {path}"
    return {
        code
        for key, codes in RAISES.items()
        if key == name or (key.endswith("*") and name.startswith(key[:-1]))
        for code in codes
    }


def install(app: FastAPI, settings: Settings) -> None:
    """Serve the completed document as ``app``'s OpenAPI (built once, on first request)."""

    def openapi() -> JSON:
        if app.openapi_schema is None:
            app.openapi_schema = document(app, settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def document(app: FastAPI, settings: Settings) -> JSON:
    """FastAPI's document for ``app``, completed (see the module's docstring)."""
    spec = get_openapi(
        title=app.title,
        version=app.version,
        openapi_version=app.openapi_version,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
        servers=app.servers,
        # One schema per model, whether read or written: a generated client gets one class.
        separate_input_output_schemas=False,
    )
    components = spec.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.update(problem_schemas())
    components["securitySchemes"] = {
        "bearerAuth": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "API key",
            "description": "A partner API key: `Authorization: Bearer <key>`.",
        }
    }
    _integral_bounds(spec)
    _state_limits(schemas, settings)
    routes = {
        (method.lower(), context.path_format): context
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute) and context.path_format
        for method in context.methods or ()
    }
    for path, item in spec.get("paths", {}).items():
        for method, operation in item.items():
            if method not in WRITE_METHODS | {"get"} or not path.startswith("/v1/"):
                continue
            route = routes.get((method, path))
            complete(operation, method, path, route_scope(route), spec, settings)
    _name_operations(spec, routes)
    _state_rules_in_words(spec)
    add_links(spec)
    for unused in ("HTTPValidationError", "ValidationError"):
        if not _referenced(spec, unused):
            schemas.pop(unused, None)
    return spec


def _name_operations(spec: JSON, routes: dict[tuple[str, str], RouteContext]) -> None:
    """Operation ids are the endpoints' names (``get_member``), where no two share one: a
    generated client's functions are called by them."""
    names: dict[str, list[JSON]] = {}
    for path, item in spec.get("paths", {}).items():
        for method, operation in item.items():
            route = routes.get((method, path))
            if route is not None and route.name:
                names.setdefault(route.name, []).append(operation)
    for name, named in names.items():
        if len(named) == 1:
            named[0]["operationId"] = name


def complete(
    operation: JSON,
    method: str,
    path: str,
    scope: Scope | bool | None,
    spec: JSON,
    settings: Settings,
) -> None:
    """Add security, the Idempotency-Key's constraints, problem answers and examples."""
    operation["security"] = [{"bearerAuth": []}]
    for parameter in operation.get("parameters", []):
        if parameter.get("in") == "header" and parameter["name"].lower() == "idempotency-key":
            parameter.update(idempotency_key_parameter())
    needs = (
        f"Needs an API key with the `{scope.value}` scope."
        if isinstance(scope, Scope)
        else "The scope it needs depends on what it acts on (see above)."
    )
    if scope is not None:
        operation["description"] = f"{operation.get('description', '').rstrip()}\n\n{needs}"
    declared = operation.setdefault("responses", {})
    for status, codes in _codes(operation, spec, method, path, declared, scope).items():
        declared[str(status)] = problem_response(
            status, codes, declared.get(str(status)), body_limit(path, settings.max_body_bytes)
        )
    if method in WRITE_METHODS:
        for status, response in declared.items():
            if status.startswith("2"):
                response.setdefault("headers", {})["Idempotent-Replayed"] = REPLAYED
    operation["responses"] = dict(sorted(declared.items()))
    _optional_body(operation)
    add_examples(operation, spec)


def _optional_body(operation: JSON) -> None:
    """A body the operation may go without may also be JSON ``null`` (the server reads both as
    no body)."""
    body = operation.get("requestBody")
    if body is None or body.get("required"):
        return
    for media in body.get("content", {}).values():
        schema = media.get("schema", {})
        if "anyOf" not in schema:
            media["schema"] = {"anyOf": [schema, {"type": "null"}]}


def route_scope(route: RouteContext | None) -> Scope | bool | None:
    """The scope a route's API key needs (from its ``reader``/``mutation`` dependency):
    ``True`` when the route checks it itself, ``None`` when it has no such dependency."""
    if route is None:
        return None
    for dependant in _dependants(route.dependant):
        call = dependant.call
        if call is None or not inspect.isfunction(call):
            continue
        variables = inspect.getclosurevars(call).nonlocals
        if "scope" in variables:
            found = variables["scope"]
            return found if isinstance(found, Scope) else True
    return None


def _dependants(root: Dependant) -> Iterator[Dependant]:
    yield root
    for dependency in root.dependencies:
        yield from _dependants(dependency)


def registry() -> dict[str, type[errors.TallyError]]:
    """Every Tally error by code (every subclass, listed in ``ALL_ERRORS`` or not)."""
    found: dict[str, type[errors.TallyError]] = {}
    pending = list(errors.TallyError.__subclasses__())
    while pending:
        error = pending.pop()
        found.setdefault(error.code, error)
        pending.extend(error.__subclasses__())
    return found


def _codes(
    operation: JSON, spec: JSON, method: str, path: str, declared: JSON, scope: object
) -> dict[int, list[str]]:
    """Every problem status the operation can answer, with its possible codes (``forbidden``
    only where a scope is needed, or the route says it may refuse)."""
    by_code = registry()
    codes: dict[int, set[str]] = {401: {"unauthorized"}, 422: {"validation_error"}}
    if scope is not None:
        codes[403] = {"forbidden"}
    if "{" in path or _names_ids(operation, spec):
        codes[404] = {"not_found"}
    if method in WRITE_METHODS:
        codes[400] = {"idempotency_key_required"}
        codes[409] = {"idempotency_conflict", "conflict"}
        codes[413] = {"payload_too_large"}
    for code in raised_by(method, path):
        if code in by_code:
            codes.setdefault(by_code[code].status, set()).add(code)
    # Codes a route names in its own ``responses`` (e.g. "member_frozen, conflict: …").
    for status, response in declared.items():
        if not status.isdigit() or int(status) < 400:
            continue
        for word in re.findall(r"[a-z][a-z0-9_]+", response.get("description", "")):
            named = by_code.get(word)
            if named is not None:
                codes.setdefault(named.status, set()).add(named.code)
    return {status: sorted(found) for status, found in sorted(codes.items())}


def _names_ids(operation: JSON, spec: JSON) -> bool:
    """Whether the operation's body names something by its id (``member_id``), which may not
    exist."""
    body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
    fields = resolve(body.get("schema", {}), spec).get("properties", {})
    return any(
        name.endswith("_id") and resolve(field, spec).get("type") == "integer"
        for name, field in fields.items()
    )


def problem_response(
    status: int, codes: list[str], declared: JSON | None, max_body_bytes: int
) -> JSON:
    """A problem answer listing ``codes`` (a route's own description is kept in front)."""
    by_code = registry()
    titles = {code: by_code[code].title if code in by_code else code for code in codes}
    description = (declared or {}).get("description", "")
    if not description or description in {"Validation Error", "Successful Response"}:
        description = _STATUS_TEXT.get(status, "Refused")
    if status == 413:
        description += f" (over {max_body_bytes:,} bytes, `TALLY_MAX_BODY_BYTES`)"
    reference = "ValidationProblem" if status == 422 else "Problem"
    schema = {"$ref": f"#/components/schemas/{reference}"}
    description += ". Codes: " + ", ".join(f"`{code}`" for code in codes) + "."
    examples = {
        code: {
            "summary": titles[code],
            "value": _problem_example(status, code, titles[code]),
        }
        for code in codes
    }
    answer: JSON = {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": schema, "examples": examples}},
    }
    if status == 401:
        answer["headers"] = {
            "WWW-Authenticate": {
                "description": "`Bearer`: send the API key as a bearer token.",
                "schema": {"type": "string"},
                "required": True,
            }
        }
    if status == 429:
        answer["headers"] = {
            "Retry-After": {
                "description": "Seconds until the limit lifts.",
                "schema": {"type": "integer", "minimum": 0},
                "required": True,
            }
        }
    return answer


_STATUS_TEXT = {
    400: "No Idempotency-Key header (`idempotency_key_required`)",
    401: "No API key, or one that is unknown or revoked",
    403: "The API key lacks the scope, or the partner may not act on this member",
    404: "Not found (or not visible to the calling partner)",
    409: "Refused in the current state",
    413: "The request body is too large; refused before it is read",
    422: "The request is not valid",
}


def _problem_example(status: int, code: str, title: str) -> JSON:
    body: JSON = {
        "type": f"https://tally.dev/problems/{code}",
        "title": title,
        "status": status,
        "detail": title + ".",
        "code": code,
    }
    if code == "validation_error":
        body["errors"] = [
            {"field": "points", "message": "Input should be greater than 0", "type": "greater_than"}
        ]
    return body


def problem_schemas() -> JSON:
    """The RFC 9457 problem document every error is, and its validation variant."""
    return {
        "Problem": {
            "title": "Problem",
            "description": "An RFC 9457 problem document; `code` is stable, match on it. "
            "Some problems carry extra members (e.g. `scope`, `field`).",
            "type": "object",
            "required": ["type", "title", "status", "detail", "code"],
            "properties": {
                "type": {"type": "string", "description": "A URI naming the problem."},
                "title": {"type": "string"},
                "status": {"type": "integer", "description": "The HTTP status."},
                "detail": {"type": "string", "description": "What went wrong, for people."},
                "code": {"type": "string", "description": "The stable error code."},
            },
            "additionalProperties": True,
        },
        "ValidationProblem": {
            "title": "ValidationProblem",
            "description": "A problem document; `validation_error` lists each field refused.",
            "allOf": [
                {"$ref": "#/components/schemas/Problem"},
                {
                    "type": "object",
                    "properties": {
                        "errors": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/FieldError"},
                        }
                    },
                },
            ],
        },
        "FieldError": {
            "title": "FieldError",
            "type": "object",
            "required": ["field", "message", "type"],
            "properties": {
                "field": {"type": "string", "description": "The field, dotted (`profile.phone`)."},
                "message": {"type": "string"},
                "type": {"type": "string", "description": "The kind of error (`missing`…)."},
            },
        },
    }


def idempotency_key_parameter() -> JSON:
    """The documented constraints of the Idempotency-Key header."""
    return {
        "required": True,
        "description": "Unique per write (a UUID is a good choice); a retry with the same key and "
        "the same request returns the first answer (with `Idempotent-Replayed: true`), the same "
        f"key with a different request is refused (`idempotency_conflict`). 1 to {MAX_KEY_LENGTH} "
        "printable characters.",
        "schema": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_KEY_LENGTH,
            "pattern": KEY_PATTERN,
        },
        "example": "5f0c8f6e-2b1d-4c1e-9d8a-3c0b7e1f2a45",
    }


# Rules the server checks that JSON Schema cannot state, said in the fields' descriptions.
RULES_IN_WORDS = {
    "expires_at": "A time in the future, within 100 years.",
    "paid_at": "Not more than 5 minutes ahead of the server's clock, nor more than 7 days ago, "
    "nor before the subscription.",
    "cursor": "Pass back a `next_cursor` as it came; anything else is `validation_error`.",
    "plan": "The code of a plan of the programme in force.",
    "TransferRequest.to_member_id": "Another member than `from_member_id`.",
    "CaptureRequest.points": "At most the points held; all of them when absent.",
}


def _state_rules_in_words(spec: JSON) -> None:
    """Add :data:`RULES_IN_WORDS` to the request fields and query parameters they concern."""
    targets: list[tuple[JSON, str]] = []
    for name, schema in spec.get("components", {}).get("schemas", {}).items():
        if schema.get("additionalProperties") is False or name.endswith("Request"):
            targets += [
                (field, rule)
                for field_name, field in schema.get("properties", {}).items()
                for rule in (f"{name}.{field_name}", field_name)
                if rule in RULES_IN_WORDS
            ]
    for item in spec.get("paths", {}).values():
        for operation in item.values():
            targets += [
                (parameter, parameter["name"])
                for parameter in operation.get("parameters", [])
                if parameter.get("in") == "query" and parameter["name"] in RULES_IN_WORDS
            ]
    for target, key in targets:
        described = target.get("description", "")
        if RULES_IN_WORDS[key] not in described:
            target["description"] = f"{described.rstrip()} {RULES_IN_WORDS[key]}".strip()


def _state_limits(schemas: JSON, settings: Settings) -> None:
    """Limits the server takes from its settings, stated as they are in force."""
    limit = min(MAX_POINTS, settings.max_points_per_operation)
    stated = f"Whole points, 1 to {limit:,} (`TALLY_MAX_POINTS_PER_OPERATION`)."
    for name, schema in schemas.items():
        if not name.endswith("Request") and schema.get("additionalProperties") is not False:
            continue
        for field in schema.get("properties", {}).values():
            for option in [field, *field.get("anyOf", [])]:
                if option.get("maximum") == MAX_POINTS and option.get("exclusiveMinimum") == 0:
                    option["maximum"] = limit
                    for described in (field, option):
                        if described.get("description", "").startswith("Whole points"):
                            described["description"] = stated
    hold = schemas.get("HoldRequest", {}).get("properties", {}).get("expires_in_seconds")
    if hold is not None:
        hold["maximum"] = settings.hold_max_seconds
        hold["description"] = (
            f"Seconds until the hold lapses: 1 to {settings.hold_max_seconds:,} "
            "(`TALLY_HOLD_MAX_SECONDS`)."
        )


def _integral_bounds(node: Any) -> None:
    """Integer bounds as integers: pydantic writes some as floats (``4.611686018427388e+18``
    for 2⁶²), which tools then compare in floating point, off by up to hundreds."""
    if isinstance(node, dict):
        if node.get("type") == "integer":
            for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
                if isinstance(node.get(key), float) and node[key].is_integer():
                    node[key] = int(node[key])
        for value in node.values():
            _integral_bounds(value)
    elif isinstance(node, list):
        for value in node:
            _integral_bounds(value)


def _referenced(spec: JSON, name: str) -> bool:
    target = f"#/components/schemas/{name}"
    return any(value == target for value in _values(spec, "$ref"))


def _values(node: Any, key: str) -> Iterator[Any]:
    if isinstance(node, dict):
        for name, value in node.items():
            if name == key:
                yield value
            else:
                yield from _values(value, key)
    elif isinstance(node, list):
        for value in node:
            yield from _values(value, key)
