"""What the pages show of a member's standing: tier, progress, benefits, paid plans, history.

Read from :func:`tally.flows.status.member_status` (one aggregate for the API, the console and
the member pages) and, for the console, the tier and growth histories of the tiers service.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from tally.families.service import FamilyView, MemberLine
from tally.flows.status import MemberStatus, PlanStatus, member_status
from tally.programme.domain import AnyBenefit, Programme, Tier
from tally.programme.shapes import Names
from tally.tiers import service as tiers
from tally.web import queries

#: Rows of tier and growth history on the console's member page.
HISTORY_ROWS = 20


@dataclass(frozen=True, slots=True)
class StatusView:
    """A member's tier, its progress and everything that stacks on it."""

    member_id: int
    tier: Tier
    tier_index: int
    tier_count: int
    since: datetime | None
    growth: int
    lifetime_growth: int
    next_tier: Tier | None
    to_next: int | None
    to_keep: int
    downgrade_at: datetime | None
    window_start: datetime | None
    benefits: list[AnyBenefit]
    memberships: list[PlanStatus]
    theme: str
    family: FamilyView | None = None
    #: Names of the family's members (and invitees) by member id.
    family_names: dict[int, str] = field(default_factory=dict)

    @property
    def me_in_family(self) -> MemberLine | None:
        """This member's line in its family, if any."""
        if self.family is None:
            return None
        return next((m for m in self.family.members if m.member_id == self.member_id), None)

    @property
    def percent(self) -> int:
        """How far the member is from this tier's threshold to the next one (0–100)."""
        if self.next_tier is None:
            return 100
        low, high = self.tier.threshold, self.next_tier.threshold
        done = min(max(self.growth - low, 0), high - low)
        return done * 100 // (high - low)

    @property
    def is_top(self) -> bool:
        return self.next_tier is None

    @property
    def multiplier(self) -> str:
        """The tier's earn multiplier as written in the programme ("1.4")."""
        return self.tier.earn_multiplier


@dataclass(frozen=True, slots=True)
class TierChangeRow:
    changed_at: datetime
    from_name: Names | str | None
    to_name: Names | str
    reason: str
    growth: int
    downgrade_at: datetime | None


@dataclass(frozen=True, slots=True)
class GrowthRow:
    created_at: datetime
    counted_at: datetime
    kind: str
    points: int
    partner: str | None
    staff: str | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class TierDetail:
    """The console's view: the status and the latest tier and growth history."""

    status: StatusView
    tier_history: list[TierChangeRow]
    growth_history: list[GrowthRow]


def view_of(
    status: MemberStatus, programme: Programme, names: dict[int, str] | None = None
) -> StatusView:
    """The page's view of a member status (``names``: of the family's members)."""
    standing = status.standing
    return StatusView(
        member_id=status.member_id,
        tier=standing.tier,
        tier_index=standing.tier_index,
        tier_count=len(programme.tiers),
        since=standing.since,
        growth=standing.growth,
        lifetime_growth=standing.lifetime_growth,
        next_tier=standing.next_tier,
        to_next=standing.to_next,
        to_keep=standing.to_keep,
        downgrade_at=standing.downgrade_at,
        window_start=standing.window_start,
        benefits=list(status.benefits),
        memberships=list(status.memberships),
        theme=status.theme,
        family=status.family,
        family_names=names or {},
    )


def status_of(session: Session, member_id: int, now: datetime, programme: Programme) -> StatusView:
    """A member's status as the pages show it."""
    status = member_status(session, member_id, now, programme)
    names: dict[int, str] = {}
    if status.family is not None:
        wanted = [line.member_id for line in status.family.members]
        wanted += [line.member_id for line in status.family.invitations]
        names = queries.member_names(session, wanted)
    return view_of(status, programme, names)


def theme_of(session: Session, member_id: int, programme: Programme) -> str:
    """The look of the member's pages: its tier's ``flags.theme``."""
    return tiers.current_tier(session, member_id, programme).flags.theme


def tier_name(programme: Programme, code: str) -> Names | str:
    """A tier's names, or its bare code when the programme no longer has it."""
    tier = programme.tier(code)
    return tier.names if tier is not None else code


def tier_detail(
    session: Session, member_id: int, now: datetime, programme: Programme
) -> TierDetail:
    """The console's tier section: status plus the latest tier changes and growth entries."""
    status = status_of(session, member_id, now, programme)
    changes, _more = tiers.tier_history(session, member_id, None, HISTORY_ROWS)
    entries, _more = tiers.growth_history(session, member_id, None, HISTORY_ROWS)
    partners = queries.partner_names(session, (entry.partner_id for entry in entries))
    staff = queries.staff_names(session, (entry.staff_id for entry in entries))
    return TierDetail(
        status=status,
        tier_history=[
            TierChangeRow(
                changed_at=change.changed_at,
                from_name=(
                    tier_name(programme, change.from_code)
                    if change.from_code and change.from_code != change.to_code
                    else None
                ),
                to_name=tier_name(programme, change.to_code),
                reason=change.reason.value,
                growth=change.growth,
                downgrade_at=change.downgrade_at,
            )
            for change in changes
        ],
        growth_history=[
            GrowthRow(
                created_at=entry.created_at,
                counted_at=entry.counted_at,
                kind=entry.kind.value,
                points=entry.points,
                partner=partners.get(entry.partner_id) if entry.partner_id else None,
                staff=staff.get(entry.staff_id) if entry.staff_id else None,
                reason=entry.reason,
            )
            for entry in entries
        ],
    )
