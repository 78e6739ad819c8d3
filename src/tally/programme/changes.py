"""What applying a programme over another changes, one human-readable line each."""

from __future__ import annotations

from typing import Any

from tally.programme.domain import Programme

_REMOVED_NOTE = {"partner": " from the programme (it stays registered)"}
SECTIONS = (
    ("tiers", "tier"),
    ("plans", "plan"),
    ("partners", "partner"),
    ("namespaces", "namespace"),
    ("event_types", "event type"),
    ("aggregates", "aggregate"),
    ("badges", "badge"),
)


def changes(old: Programme | None, new: Programme) -> list[str]:
    """What applying ``new`` over ``old`` changes, one human-readable line each."""
    before = old.dump() if old is not None else None
    after = new.dump()
    lines: list[str] = []
    if before is None:
        value = new.currency.point_value
        lines.append(f"currency {new.currency.code} set: 1 point = {value.amount} {value.currency}")
        lines.append(f"tier_model set: {new.tier_model.kind}")
        before = {}
    else:
        lines += _field_changes("currency", before["currency"], after["currency"])
        lines += _field_changes("tier_model", before["tier_model"], after["tier_model"])
        lines += _field_changes("family", before["family"], after["family"])
        lines += _field_changes("staff", before.get("staff", {}), after["staff"])
    for section, noun in SECTIONS:
        lines += _item_changes(noun, before.get(section, []), after[section])
    lines += _campaign_changes(before.get("campaigns", []), after["campaigns"])
    if old is not None:
        old_order = [tier.code for tier in old.tiers if new.tier(tier.code)]
        new_order = [tier.code for tier in new.tiers if old.tier(tier.code)]
        if old_order != new_order:
            lines.append(f"tier order: {' < '.join(old_order)} → {' < '.join(new_order)}")
    return lines or ["no changes"]


def _campaign_changes(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> list[str]:
    """Campaigns added and removed, their changed fields, and their rules added, removed and
    changed (a rule's priority among them)."""
    old = {campaign["code"]: campaign for campaign in before}
    lines = []
    for campaign in after:
        code = campaign["code"]
        rules = campaign["rules"]
        if code not in old:
            lines.append(
                f"campaign {code} added ({campaign['names']['en']}): on "
                f"{', '.join(campaign['on'])}; rules {', '.join(r['code'] for r in rules)}"
            )
            continue
        lines += _field_changes(
            f"campaign {code}",
            {k: v for k, v in old[code].items() if k != "rules"},
            {k: v for k, v in campaign.items() if k != "rules"},
            " ",
        )
        lines += _item_changes(f"campaign {code} rule", old[code]["rules"], rules)
    new = {campaign["code"] for campaign in after}
    lines += [f"campaign {code} removed" for code in old if code not in new]
    return lines


def _flatten(value: Any, prefix: str) -> dict[str, Any]:
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: value}


def _show(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_show(item) for item in value) + "]"
    if isinstance(value, dict):
        if set(value) == {"kind"}:
            return str(value["kind"])
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in value.items()) + "}"
    if value is None:
        return "none"
    return str(value)


def _field_changes(
    label: str, before: dict[str, Any], after: dict[str, Any], sep: str = "."
) -> list[str]:
    old, new = _flatten(before, ""), _flatten(after, "")
    lines = []
    for key in [*old, *(key for key in new if key not in old)]:
        if old.get(key) != new.get(key):
            lines.append(f"{label}{sep}{key}: {_show(old.get(key))} → {_show(new.get(key))}")
    return lines


def _item_changes(
    noun: str, before: list[dict[str, Any]], after: list[dict[str, Any]]
) -> list[str]:
    old = {item["code"]: item for item in before}
    new = {item["code"]: item for item in after}
    lines = []
    for code, item in new.items():
        if code not in old:
            name = item.get("names", {}).get("en") or item.get("name") or code
            lines.append(f"{noun} {code} added ({name})")
        else:
            lines += _field_changes(f"{noun} {code}", old[code], item, " ")
    lines += [
        f"{noun} {code} removed{_REMOVED_NOTE.get(noun, '')}" for code in old if code not in new
    ]
    return lines
