"""Guardrails on staff adjustments, as pure rules: what a role may post alone, what becomes a
request for a second staff member's approval, what is refused outright, and who may decide."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from tally.errors import AdjustmentTooLarge, NotAnApprover, OwnRequest, ValidationFailed
from tally.programme.domain import Money, PointRate, StaffRules

#: Amounts above this many points (either sign) are posted only after the operator confirms them.
CONFIRM_ABOVE = 10_000


class RequestStatus(enum.StrEnum):
    """Where an adjustment request stands; only ``pending`` ones can be decided."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


class Route(enum.StrEnum):
    """What an adjustment of a given size becomes."""

    POST = "post"  # within the role's limit: posted at once
    REQUEST = "request"  # above it: a request awaiting approval


@dataclass(frozen=True, slots=True)
class Guardrails:
    """The limits that apply to one staff role under the programme in force."""

    role_limit: int
    ceiling: int
    approver_roles: tuple[str, ...]
    confirm_above: int = CONFIRM_ABOVE

    @classmethod
    def of(cls, rules: StaffRules, role: str, max_points: int) -> Guardrails:
        """The guardrails of ``role``: its limit under ``rules``, and a ceiling that is the lower
        of the programme's largest adjustment and the server's largest amount per operation."""
        return cls(
            role_limit=rules.limit_of(role),
            ceiling=min(rules.max_adjustment, max_points),
            approver_roles=tuple(rules.approver_roles),
        )

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

    def check_decider(self, *, role: str, staff_id: int, requester_id: int) -> None:
        """Only another staff member, in an approving role, approves or rejects a request."""
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
