"""Names of kinds, states and roles as the pages show them (translated in the templates)."""

from __future__ import annotations

from typing import Any

from tally.ledger.domain import HoldStatus
from tally.ledger.models import EntryKind
from tally.members.models import MemberStatus
from tally.staff.models import StaffRole
from tally.tiers.models import GrowthKind, TierChangeReason
from tally.web import mall_labels
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
    EntryKind.CLAWBACK: N_("Refund take-back"),
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
    EntryKind.CLAWBACK: N_("Taken back for a refund"),
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

#: Why a member's tier (or its grace period) changed.
TIER_REASONS: dict[str, str] = {
    TierChangeReason.UPGRADE: N_("Upgrade"),
    TierChangeReason.DOWNGRADE: N_("Downgrade"),
    TierChangeReason.GRACE_STARTED: N_("Grace period started"),
    TierChangeReason.GRACE_CLEARED: N_("Grace period cleared"),
    TierChangeReason.PROGRAMME_CHANGE: N_("Programme change"),
    TierChangeReason.ADJUSTMENT: N_("Growth adjustment"),
    TierChangeReason.MERGE: N_("Merge"),
}

GROWTH_KINDS: dict[str, str] = {
    GrowthKind.EARN: N_("Earned"),
    GrowthKind.ADJUST: N_("Adjustment"),
    GrowthKind.REVERSAL: N_("Reversal"),
}

#: Named benefits of tiers and paid plans (monthly coupons are worded with their count).
BENEFITS: dict[str, str] = {
    "free_returns": N_("Free returns"),
    "priority_service": N_("Priority service"),
    "birthday_gift": N_("Birthday gift"),
    "monthly_coupons": N_("Monthly coupons"),
}

#: A plan's term (``P3M``): the unit's words for one and for more.
TERM_ONE: dict[str, str] = {"D": N_("1 day"), "M": N_("1 month"), "Y": N_("1 year")}
TERMS: dict[str, str] = {
    "D": N_("%(count)s days"),
    "M": N_("%(count)s months"),
    "Y": N_("%(count)s years"),
}

TIER_MODELS: dict[str, str] = {
    "rolling_window": N_("Rolling window"),
    "calendar_year": N_("Calendar year"),
    "lifetime": N_("Lifetime"),
}

FAMILY_MODES: dict[str, str] = {
    "pool": N_("Pooled points"),
    "share": N_("Shared points"),
}

#: What each family mode means, for the member.
FAMILY_MODE_HINTS: dict[str, str] = {
    "pool": N_("The owner may spend the points of everyone in the family."),
    "share": N_("Everyone may spend the owner's points, up to a monthly limit."),
}

FAMILY_ROLES: dict[str, str] = {"owner": N_("Owner"), "member": N_("Member")}

#: Where an adjustment request stands.
REQUEST_STATUSES: dict[str, str] = {
    "pending": N_("Awaiting a decision"),
    "approved": N_("Approved and posted"),
    "rejected": N_("Rejected"),
    "withdrawn": N_("Withdrawn"),
    "expired": N_("Expired: nobody decided in time"),
}

#: Where a consent was granted or withdrawn (the channel's kind, before any ``:``).
CONSENT_CHANNELS: dict[str, str] = {
    "member_pages": N_("On these pages"),
    "api": N_("In the app, on your behalf"),
    "console": N_("By customer service"),
    "merge": N_("When your accounts were combined"),
}

#: How a partner collected a member's data.
COLLECTION_METHODS: dict[str, str] = {"enrol": N_("Enrolled"), "link": N_("Linked an id")}

#: Jinja globals: ``{{ _(labels.member_kinds[item.kind]) }}``.
ALL: dict[str, Any] = {
    "console_kinds": CONSOLE_KINDS,
    "member_kinds": MEMBER_KINDS,
    "member_statuses": MEMBER_STATUSES,
    "hold_statuses": HOLD_STATUSES,
    "lot_states": LOT_STATES,
    "roles": ROLES,
    "profile_fields": PROFILE_FIELDS,
    "tier_reasons": TIER_REASONS,
    "growth_kinds": GROWTH_KINDS,
    "benefits": BENEFITS,
    "term_one": TERM_ONE,
    "terms": TERMS,
    "tier_models": TIER_MODELS,
    "family_modes": FAMILY_MODES,
    "family_mode_hints": FAMILY_MODE_HINTS,
    "family_roles": FAMILY_ROLES,
    "request_statuses": REQUEST_STATUSES,
    "consent_channels": CONSENT_CHANNELS,
    "collection_methods": COLLECTION_METHODS,
    "mall": mall_labels.ALL,
}
