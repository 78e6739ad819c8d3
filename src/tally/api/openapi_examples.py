"""Examples for the OpenAPI document: a request body's or a success answer's, made from its
schema where the schema has none of its own (a model's ``examples`` win)."""

from __future__ import annotations

import copy
import re
from typing import Any

JSON = dict[str, Any]


def add_examples(operation: JSON, spec: JSON) -> None:
    """An example on the operation's JSON body and on each of its JSON success answers."""
    body = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if body is not None and "example" not in body and "examples" not in body:
        body["example"] = example(body.get("schema", {}), spec)
    for status, response in operation.get("responses", {}).items():
        if not status.startswith("2"):
            continue
        media = response.get("content", {}).get("application/json")
        if media is not None and "example" not in media and "examples" not in media:
            media["example"] = example(media.get("schema", {}), spec)


# Values for fields by name, where a type alone would make a poor example.
_NAMED: dict[str, Any] = {
    "namespace": "phone",
    "reference": "ORDER-20260501-0001",
    "reason": "Goodwill: a late delivery",
    "memo": "Goodwill: a late delivery",
    "name": "Li Wei",
    "phone": "+86 138 0013 8000",
    "city": "Shanghai",
    "currency": "CNY",
    "plan": "PLUS",
    "url": "/m/sign-in?token=…",
    "status": "active",
    "kind": "earn",
    "tier": "GOLD",
    "birthday": "1990-08-15",
    "expires_at": "2030-12-31T23:59:59+08:00",
}
_NAMED_INTS = {"points": 100, "available": 1200, "held": 0, "growth": 100, "amount": 1500}
_FORMATS = {
    "date-time": "2026-05-01T10:00:00+08:00",
    "date": "2026-05-01",
    "uuid": "0190f3c5-7d2a-7b4e-9a61-2f0c1d9e8b70",
    "uri": "https://example.com/",
}


def example(schema: JSON, spec: JSON, name: str = "", depth: int = 0) -> Any:
    """An example value for ``schema`` (its own example when it has one)."""
    schema = resolve(schema, spec)
    if depth > 8:
        return None
    for key in ("examples",):
        if isinstance(schema.get(key), list) and schema[key]:
            return copy.deepcopy(schema[key][0])
    if "example" in schema:
        return copy.deepcopy(schema["example"])
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    if schema.get("default") is not None:
        return copy.deepcopy(schema["default"])
    options = schema.get("anyOf") or schema.get("oneOf")
    if options:
        usable = [option for option in options if resolve(option, spec).get("type") != "null"]
        return example(usable[0], spec, name, depth + 1) if usable else None
    if "allOf" in schema:
        merged: JSON = {}
        for part in schema["allOf"]:
            value = example(part, spec, name, depth + 1)
            if isinstance(value, dict):
                merged.update(value)
        return merged
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        fields = schema.get("properties", {})
        identity = "namespace" in fields  # an external identity: its id is the partner's
        return {
            field: example(
                sub, spec, "external_id" if identity and field == "id" else field, depth + 1
            )
            for field, sub in fields.items()
        }
    if kind == "array":
        return [example(schema.get("items", {}), spec, name, depth + 1)] * max(
            1, schema.get("minItems", 1)
        )
    if kind == "string":
        return _string(schema, name)
    if kind == "integer":
        return _integer(schema, name)
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return False
    return None


def _string(schema: JSON, name: str) -> str:
    """The first of a few likely values that fits the schema's length and pattern."""
    low, high = schema.get("minLength", 0), schema.get("maxLength", 10_000)
    fits = [
        value
        for value in _candidates(schema, name)
        if low <= len(value) <= high and _matches(schema.get("pattern"), value)
    ]
    return fits[0] if fits else (name or "text").ljust(low, "x")[:high]


def _candidates(schema: JSON, name: str) -> list[str]:
    found = [str(_NAMED[name])] if isinstance(_NAMED.get(name), str) else []
    if schema.get("format") in _FORMATS:
        found.append(_FORMATS[schema["format"]])
    if name == "external_id":
        found.append("13800138000")
    if name.endswith("_id") or name == "id":
        found.append(_FORMATS["uuid"])
    return [*found, name, name.upper(), "PLUS", "text", "4000 1234 5678 9010", "1234567890"]


def _matches(pattern: str | None, value: str) -> bool:
    if pattern is None:
        return True
    try:
        return re.search(pattern, value) is not None
    except re.error:
        return True  # a pattern Python cannot read: the contract test checks the example


def _integer(schema: JSON, name: str) -> int:
    low = schema.get("minimum", schema.get("exclusiveMinimum", -1) + 1)
    high = schema.get("maximum", schema.get("exclusiveMaximum", 2**62 + 1) - 1)
    wanted = _NAMED_INTS.get(name, 1001 if name.endswith("id") else max(low, 1))
    return int(min(max(wanted, low), high))


def resolve(schema: JSON, spec: JSON) -> JSON:
    """``schema`` with its references followed."""
    seen = 0
    while "$ref" in schema and seen < 20:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec.get("components", {}).get("schemas", {}).get(name, {})
        seen += 1
    return schema
