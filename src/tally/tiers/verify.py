"""The tiers' part of ``tally ledger verify``: history that names no member.

``tier_changes`` has no foreign key (ADR 21): the tier job writes its history set-based, and a
trigger per row was most of its time. This check stands in for it, one grouped query that
returns only what is wrong.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tally.ledger.verify import Report
from tally.members.models import Member
from tally.tiers.models import TierChange

LIMIT = 50


def check_history(session: Session, report: Report) -> None:
    """Tier changes of members that do not exist."""
    for member_id, count in session.execute(
        select(TierChange.member_id, func.count())
        .outerjoin(Member, Member.id == TierChange.member_id)
        .where(Member.id.is_(None))
        .group_by(TierChange.member_id)
        .order_by(TierChange.member_id)
        .limit(LIMIT)
    ):
        report.add(f"{count} tier changes name member {member_id}, which does not exist")
