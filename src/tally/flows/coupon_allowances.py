"""The monthly coupon allowances of the tiers and paid plans (``tally jobs coupons``).

Each active member gets, once per calendar month (in the programme's zone), ``count`` codes of
every template its tier's and its paid plans' ``monthly_coupons`` benefits name. Every coupon
of an allowance has a grant key (``monthly:<month>:<template>:<member>:<n>``) that is unique
in the database, so a second run, or two workers at once, issue nothing twice. Members go in
batches in id order, one transaction each, with one read of their tiers, one of their plans,
and one insert per template.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from tally.coupons import service as coupons
from tally.coupons.domain import Source, allowance_keys, month_of
from tally.memberships import repository as memberships
from tally.programme.domain import Programme, coupon_allowances
from tally.tiers import service as tiers

UnitOfWork = Callable[[], AbstractContextManager[Session]]


@dataclass(slots=True)
class AllowanceReport:
    """What a run did: the month, members looked at, codes issued, grants issued before
    (a re-run), and grants refused by reason (``unknown_template``, ``expired`` …)."""

    month: str
    members: int = 0
    issued: int = 0
    repeats: int = 0
    refused: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "month": self.month,
            "members": self.members,
            "issued": self.issued,
            "repeats": self.repeats,
            "refused": dict(sorted(self.refused.items())),
        }


def _names_templates(programme: Programme) -> bool:
    sources = [tier.benefits for tier in programme.tiers] + [
        plan.benefits for plan in programme.plans
    ]
    return bool(coupon_allowances(*sources))


def grants_for(
    session: Session, member_ids: list[int], programme: Programme, as_of: datetime, month: str
) -> list[coupons.Grant]:
    """The grants of the month for ``member_ids``: their tiers' and plans' allowances."""
    tier_of = tiers.current_tiers(session, member_ids, programme)
    plans_of = memberships.active_plans(session, member_ids, as_of)
    found: list[coupons.Grant] = []
    for member_id in member_ids:
        plans = [programme.plan(code) for code in plans_of.get(member_id, [])]
        allowance = coupon_allowances(
            tier_of[member_id].benefits, *(plan.benefits for plan in plans if plan is not None)
        )
        for template, count in sorted(allowance.items()):
            found += [
                coupons.Grant(member_id, template, key)
                for key in allowance_keys(member_id, template, month, count)
            ]
    return found


def issue_allowances(
    unit_of_work: UnitOfWork, as_of: datetime, programme: Programme, batch: int = 1000
) -> AllowanceReport:
    """Issue the month's allowances (the month ``as_of`` falls in, programme time) to every
    active member that has not had them; idempotent and safe to run concurrently."""
    report = AllowanceReport(month_of(as_of.astimezone(programme.zone)))
    if not _names_templates(programme):
        return report
    after = 0
    while True:
        with unit_of_work() as session:
            member_ids = coupons.active_member_ids(session, after, batch)
            if not member_ids:
                break
            after = member_ids[-1]
            report.members += len(member_ids)
            asked = grants_for(session, member_ids, programme, as_of, report.month)
            for result in coupons.grant(session, asked, Source.BENEFIT, as_of):
                if result.refused is not None:
                    report.refused[result.refused] = report.refused.get(result.refused, 0) + 1
                elif result.repeat:
                    report.repeats += 1
                else:
                    report.issued += 1
    return report


def preview(session: Session, as_of: datetime, programme: Programme) -> AllowanceReport:
    """What :func:`issue_allowances` would issue by ``as_of`` (every grant not yet issued is
    counted as issued; unknown templates are not told apart); writes nothing."""
    report = AllowanceReport(month_of(as_of.astimezone(programme.zone)))
    if not _names_templates(programme):
        return report
    after = 0
    while True:
        member_ids = coupons.active_member_ids(session, after, 1000)
        if not member_ids:
            return report
        after = member_ids[-1]
        report.members += len(member_ids)
        asked = grants_for(session, member_ids, programme, as_of, report.month)
        done = coupons.issued_grants(session, [item.key for item in asked])
        report.repeats += len(done)
        report.issued += len(asked) - len(done)
