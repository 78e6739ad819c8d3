"""What an API key carries: its scopes and the partner holding it (pure)."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Scope(enum.StrEnum):
    """What kind of call an API key may make (relationships say on whom: ``tally.access``)."""

    MEMBERS = "members"
    EARN = "earn"
    REDEEM = "redeem"
    TRANSFER = "transfer"
    READ = "read"
    ADMIN = "admin"
    WEBHOOKS = "webhooks"
    EVENTS = "events"
    CATALOG = "catalog"
    MALL = "mall"
    COUPONS = "coupons"


#: Scopes only the operator's own channels may hold (see ``tally.access``).
OPERATOR_SCOPES = frozenset({Scope.TRANSFER})


@dataclass(frozen=True, slots=True)
class KeyHolder:
    """The partner behind an authenticated API key."""

    partner_id: int
    partner_code: str
    key_id: int
    scopes: frozenset[Scope]
