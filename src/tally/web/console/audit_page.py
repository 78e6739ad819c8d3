"""The console's audit log: every staff action and look at personal data, filtered, newest first.

Open to the roles with the ``audit`` permission (auditors and administrators).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query
from starlette.requests import Request
from starlette.responses import Response

from tally.api.deps import database
from tally.audit import service as audit
from tally.audit.domain import KNOWN_ACTIONS, Action, AuditFilter, check_action, parse_actor
from tally.audit.models import AuditEntry
from tally.kit.clock import end_of_day
from tally.staff import service as staff_service
from tally.staff.service import Permission
from tally.web.console.auth import Staff, require
from tally.web.console.pages import page
from tally.web.http import gettext, programme_in_force
from tally.web.i18n import N_
from tally.web.sessions import Flash

router = APIRouter()
PAGE_URL = "/console/audit"
Auditor = Annotated[Staff, Depends(require(Permission.AUDIT))]
Field = Annotated[str, Query(max_length=80)]
MAX_CURSOR = 2**62
_ONE_DAY = timedelta(days=1)
#: What each recorded action means, as the page shows it.
ACTION_LABELS: dict[str, str] = {
    Action.SIGN_IN: N_("Signed in to the console"),
    Action.SIGN_IN_FAILED: N_("Failed sign-in"),
    Action.SIGN_IN_THROTTLED: N_("Sign-in refused (too many failures)"),
    Action.SIGN_OUT: N_("Signed out"),
    Action.SESSION_END: N_("Ended a session"),
    Action.MEMBER_VIEW: N_("Viewed a member"),
    Action.MEMBER_SEARCH: N_("Searched members"),
    Action.OPEN_AS_MEMBER: N_("Opened the member pages as the member"),
    Action.ADJUST: N_("Adjusted points"),
    Action.FREEZE: N_("Froze a member"),
    Action.UNFREEZE: N_("Unfroze a member"),
    Action.MERGE: N_("Merged members"),
    Action.UNMERGE: N_("Reversed a merge"),
    "adjustment.request": N_("Requested an adjustment"),
    "adjustment.approve": N_("Approved an adjustment"),
    "adjustment.reject": N_("Rejected an adjustment"),
    "adjustment.withdraw": N_("Withdrew an adjustment request"),
    "partner.register": N_("Registered a partner"),
    "partner.deactivate": N_("Deactivated a partner"),
    "partner.activate": N_("Reactivated a partner"),
    "api_key.create": N_("Created an API key"),
    "api_key.revoke": N_("Revoked an API key"),
    "staff.create": N_("Added a staff account"),
    "staff.role_change": N_("Changed a staff member's role"),
    "staff.deactivate": N_("Deactivated a staff account"),
    "staff.activate": N_("Reactivated a staff account"),
    "consent.grant": N_("Recorded a consent"),
    "consent.withdraw": N_("Recorded a consent withdrawal"),
}
BAD_FILTER = N_("Check the filter: a member is a Tally id, dates look like 2026-12-01.")


@dataclass(frozen=True, slots=True)
class Choice:
    """One option of a filter's list."""

    value: str
    label: str


@dataclass(frozen=True, slots=True)
class EntryRow:
    """One entry as the page shows it."""

    id: int
    at: datetime
    actor: str
    actor_label: str
    action: str
    action_label: str
    member_id: int | None
    address: str
    details: list[tuple[str, str]]


class BadFilter(ValueError):
    """A filter value that cannot be used."""


def _member(text: str) -> int | None:
    cleaned = text.strip().lstrip("#")
    if not cleaned:
        return None
    if not cleaned.isdigit() or not 0 < int(cleaned) <= MAX_CURSOR:
        raise BadFilter(text)
    return int(cleaned)


def _day(text: str) -> date | None:
    if not text.strip():
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError as exc:
        raise BadFilter(text) from exc


def _choice(text: str, check: Any) -> str | None:
    if not text:
        return None
    try:
        check(text)
    except ValueError as exc:
        raise BadFilter(text) from exc
    return text


def _actor_labels(request: Request, actors: set[str], names: dict[int, str]) -> dict[str, str]:
    labels = {}
    for actor in actors:
        kind, number = parse_actor(actor)
        if kind == "staff" and number is not None:
            labels[actor] = f"{names.get(number, actor)} (#{number})"
        elif kind == "system":
            labels[actor] = gettext(request, N_("System"))
        else:
            labels[actor] = actor
    return labels


def _detail_pairs(entry: AuditEntry) -> list[tuple[str, str]]:
    return [(key, str(value)) for key, value in (entry.details or {}).items()]


def _staff_ids(actors: set[str]) -> set[int]:
    ids = set()
    for actor in actors:
        kind, number = parse_actor(actor)
        if kind == "staff" and number is not None:
            ids.add(number)
    return ids


def _query(values: dict[str, str], before: int | None) -> str:
    kept = {key: value for key, value in values.items() if value}
    if before is not None:
        kept["before"] = str(before)
    return f"{PAGE_URL}?{urlencode(kept)}" if kept else PAGE_URL


@router.get("/audit")
def audit_log(
    request: Request,
    staff: Auditor,
    actor: Field = "",
    action: Field = "",
    member: Field = "",
    since: Annotated[str, Query(alias="from", max_length=10)] = "",
    until: Annotated[str, Query(alias="to", max_length=10)] = "",
    before: Annotated[int | None, Query(gt=0, le=MAX_CURSOR)] = None,
) -> Response:
    """The log, newest first, by staff member, action, member and date range (the programme's
    days, both ends included), a page at a time."""
    values = {"actor": actor, "action": action, "member": member, "from": since, "to": until}
    flashes: list[Flash] = []
    with database(request).read() as session:
        zone = programme_in_force(request, session).zone
        try:
            first, last = _day(since), _day(until)
            where = AuditFilter(
                actor=_choice(actor, parse_actor),
                action=_choice(action, check_action),
                member_id=_member(member),
                since=None if first is None else end_of_day(first - _ONE_DAY, zone),
                until=None if last is None else end_of_day(last, zone),
            )
        except BadFilter:
            where = None
            flashes.append(Flash("error", gettext(request, BAD_FILTER)))
        found = None if where is None else audit.browse(session, where, before_id=before)
        entries = [] if found is None else list(found.entries)
        actors = set(audit.actors_in_use(session)) | {entry.actor for entry in entries}
        names = staff_service.display_names(session, _staff_ids(actors))
        in_use = audit.actions_in_use(session)
    actor_labels = _actor_labels(request, actors, names)
    rows = [
        EntryRow(
            id=entry.id,
            at=entry.at,
            actor=entry.actor,
            actor_label=actor_labels.get(entry.actor, entry.actor),
            action=entry.action,
            action_label=gettext(request, ACTION_LABELS[entry.action])
            if entry.action in ACTION_LABELS
            else entry.action,
            member_id=entry.member_id,
            address=entry.address or "—",
            details=_detail_pairs(entry),
        )
        for entry in entries
    ]
    actions = list(dict.fromkeys([*KNOWN_ACTIONS, *ACTION_LABELS, *in_use]))
    context = {
        "rows": rows,
        "filters": values,
        "actors": sorted(
            (Choice(value, label) for value, label in actor_labels.items()),
            key=lambda choice: choice.label,
        ),
        "actions": [
            Choice(name, gettext(request, ACTION_LABELS[name]) if name in ACTION_LABELS else name)
            for name in actions
        ],
        "next_url": None
        if found is None or found.next_before is None
        else _query(values, found.next_before),
        "first_url": _query(values, None) if before is not None else None,
        "page_url": _query(values, before),
        "section": "audit",
    }
    status = 400 if where is None else 200
    return page(request, "console/audit.html", staff, context, status=status, flashes=flashes)
