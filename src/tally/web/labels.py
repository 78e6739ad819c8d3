"""Names of kinds, states and roles as the pages show them (translated in the templates)."""

from __future__ import annotations

from tally.ledger.models import EntryKind, HoldStatus
from tally.members.models import MemberStatus
from tally.staff.models import StaffRole
from tally.web.i18n import N_

#: Entry kinds in the operator's vocabulary.
CONSOLE_KINDS: dict[str, str] = {
    EntryKind.EARN: N_("Earn"),
    EntryKind.REDEEM: N_("Redeem"),
    EntryKind.HOLD: N_("Hold"),
    EntryKind.CAPTURE: N_("Capture"),
    EntryKind.VOID: N_("Void"),
    EntryKind.LAPSE: N_("Lapse"),
    EntryKind.TRANSFER: N_("Transfer"),
    EntryKind.ADJUST: N_("Adjustment"),
    EntryKind.EXPIRE: N_("Expiry"),
    EntryKind.REVERSAL: N_("Reversal"),
    EntryKind.MERGE: N_("Merge"),
    EntryKind.UNMERGE: N_("Unmerge"),
}

#: Entry kinds in words a member understands.
MEMBER_KINDS: dict[str, str] = {
    EntryKind.EARN: N_("Earned"),
    EntryKind.REDEEM: N_("Spent"),
    EntryKind.HOLD: N_("Reserved for an order"),
    EntryKind.CAPTURE: N_("Paid"),
    EntryKind.VOID: N_("Reservation released"),
    EntryKind.LAPSE: N_("Reservation timed out"),
    EntryKind.TRANSFER: N_("Gift"),
    EntryKind.ADJUST: N_("Adjusted by customer service"),
    EntryKind.EXPIRE: N_("Expired"),
    EntryKind.REVERSAL: N_("Cancelled"),
    EntryKind.MERGE: N_("Accounts combined"),
    EntryKind.UNMERGE: N_("Accounts separated"),
}

MEMBER_STATUSES: dict[str, str] = {
    MemberStatus.ACTIVE: N_("Active"),
    MemberStatus.FROZEN: N_("Frozen"),
    MemberStatus.MERGED: N_("Merged"),
}

HOLD_STATUSES: dict[str, str] = {
    HoldStatus.ACTIVE: N_("Open"),
    HoldStatus.CAPTURED: N_("Captured"),
    HoldStatus.VOIDED: N_("Voided"),
    HoldStatus.LAPSED: N_("Lapsed"),
}

LOT_STATES: dict[str, str] = {
    "live": N_("Live"),
    "spent": N_("Used up"),
    "expired": N_("Expired"),
}

ROLES: dict[str, str] = {
    StaffRole.ADMIN: N_("Administrator"),
    StaffRole.OPS: N_("Marketing ops"),
    StaffRole.FINANCE: N_("Finance"),
    StaffRole.SUPPORT: N_("Support"),
    StaffRole.AUDITOR: N_("Auditor"),
}

PROFILE_FIELDS: dict[str, str] = {
    "name": N_("Name"),
    "phone": N_("Phone"),
    "birthday": N_("Birthday"),
    "city": N_("City"),
}

#: Jinja globals: ``{{ _(labels.member_kinds[item.kind]) }}``.
ALL = {
    "console_kinds": CONSOLE_KINDS,
    "member_kinds": MEMBER_KINDS,
    "member_statuses": MEMBER_STATUSES,
    "hold_statuses": HOLD_STATUSES,
    "lot_states": LOT_STATES,
    "roles": ROLES,
    "profile_fields": PROFILE_FIELDS,
}
