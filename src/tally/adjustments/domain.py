"""Guardrails on adjustments, as pure rules: what a staff role (or the partner API) may post
alone, what becomes a request for a staff approver's decision, what is refused outright, who may
decide, and until when a request may be decided."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from tally.errors import AdjustmentTooLarge, NotAnApprover, OwnRequest, ValidationFailed
from tally.kit.clock import as_utc
from tally.programme.domain import Money, PointRate, StaffRules

#: Amounts above this many points (either sign) are posted only after the operator confirms them.
CONFIRM_ABOVE = 10_000


class RequestStatus(enum.StrEnum):
    """Where an adjustment request stands; only ``pending`` ones can be decided.

    A pending request past its deadline *is* expired for every reader (:func:`status_at`):
    nothing needs to store ``expired`` for it to be so."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"


def status_at(stored: RequestStatus, deadline: datetime, now: datetime) -> RequestStatus:
    """The status a request has at ``now``: a pending one is expired from its deadline on."""
    if stored is RequestStatus.PENDING and as_utc(now) >= as_utc(deadline):
        return RequestStatus.EXPIRED
    return stored


class Route(enum.StrEnum):
    """What an adjustment of a given size becomes."""

    POST = "post"  # within the role's limit: posted at once
    REQUEST = "request"  # above it: a request awaiting approval


@dataclass(frozen=True, slots=True)
class Guardrails:
    """The limits that apply to one requester (a staff role, or the partner API) under the
    programme in force."""

    role_limit: int
    ceiling: int
    approver_roles: tuple[str, ...]
    request_ttl: timedelta = timedelta(hours=72)
    confirm_above: int = CONFIRM_ABOVE

    @classmethod
    def of(cls, rules: StaffRules, role: str, max_points: int) -> Guardrails:
        """The guardrails of ``role``: its limit under ``rules``, and a ceiling that is the lower
        of the programme's largest adjustment and the server's largest amount per operation."""
        return cls._with_limit(rules, rules.limit_of(role), max_points)

    @classmethod
    def of_api(cls, rules: StaffRules, max_points: int) -> Guardrails:
        """The guardrails of an adjustment through the partner API: ``api_adjustment_limit``
        alone, then a request, under the same ceiling, approvers and deadline as staff's."""
        return cls._with_limit(rules, rules.api_adjustment_limit, max_points)

    @classmethod
    def _with_limit(cls, rules: StaffRules, limit: int, max_points: int) -> Guardrails:
        return cls(
            role_limit=limit,
            ceiling=min(rules.max_adjustment, max_points),
            approver_roles=tuple(rules.approver_roles),
            request_ttl=timedelta(hours=rules.request_ttl_hours),
        )

    @property
    def ttl_hours(self) -> int:
        """Whole hours a request waits for a decision."""
        return int(self.request_ttl.total_seconds()) // 3600

    def deadline(self, filed_at: datetime) -> datetime:
        """When a request filed at ``filed_at`` expires if nobody decided on it."""
        return filed_at + self.request_ttl

    def route(self, points: int) -> Route:
        """Post within the role's limit, request above it; zero and the impossible refused."""
        if points == 0:
            raise ValidationFailed("An adjustment cannot be zero.", field="points")
        self.check_ceiling(points)
        return Route.POST if abs(points) <= self.role_limit else Route.REQUEST

    def check_ceiling(self, points: int) -> None:
        """Refuse an adjustment larger than may ever be made, stating the real limit."""
        if abs(points) > self.ceiling:
            raise AdjustmentTooLarge(
                f"An adjustment moves at most {self.ceiling:,} points; {abs(points):,} asked.",
                limit=self.ceiling,
            )

    def needs_confirmation(self, points: int) -> bool:
        """Whether the operator must confirm this amount before it is posted or requested."""
        return abs(points) > self.confirm_above

    def check_decider(self, *, role: str, staff_id: int, requester_id: int | None) -> None:
        """Only another staff member, in an approving role, approves or rejects a request
        (``requester_id`` is ``None`` for a request filed through the partner API)."""
        if staff_id == requester_id:
            raise OwnRequest("A staff member cannot decide on their own adjustment request.")
        if role not in self.approver_roles:
            raise NotAnApprover(
                f"The {role} role does not approve adjustment requests; "
                f"approving roles: {', '.join(self.approver_roles)}.",
                approver_roles=list(self.approver_roles),
            )


def worth(points: int, rate: PointRate) -> Money:
    """The money value of ``points`` at the programme's rate, rounded half away from zero to
    the minor unit (the sign kept)."""
    numerator = abs(points) * rate.minor_units
    minor = (2 * numerator + rate.points) // (2 * rate.points)
    return Money(minor if points >= 0 else -minor, rate.currency)
