"""``tally member tier|growth|growth-adjust``: growth value and tiers (``tally jobs tiers``
is in :mod:`tally.cli.jobs`)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from tally.cli.common import emit, fail, open_database
from tally.cli.members import StaffOption, _staff_id
from tally.config import get_settings
from tally.errors import TallyError
from tally.kit.clock import utcnow
from tally.programme import runtime
from tally.tiers import service as tiers

MemberArgument = Annotated[int, typer.Argument(help="Tally member id.")]


def _standing(found: tiers.Standing) -> dict[str, Any]:
    return {
        "tier": found.tier.code,
        "tier_index": found.tier_index,
        "growth": found.growth,
        "lifetime_growth": found.lifetime_growth,
        "since": found.since,
        "next_tier": found.next_tier.code if found.next_tier is not None else None,
        "to_next": found.to_next,
        "to_keep": found.to_keep,
        "downgrade_at": found.downgrade_at,
        "window_start": found.window_start,
        "earn_multiplier_bp": found.tier.earn_multiplier_bp,
    }


def tier(member_id: MemberArgument) -> None:
    """Print a member's tier, qualifying growth and progress to the next tier."""
    settings = get_settings()
    try:
        with open_database(settings) as db, db.read() as session:
            programme = runtime.effective(session, settings)
            found = tiers.standing(session, member_id, utcnow(), programme)
            changes, _more = tiers.tier_history(session, member_id, None, 20)
            emit(
                {
                    "member_id": member_id,
                    **_standing(found),
                    "history": [
                        {
                            "changed_at": row.changed_at,
                            "from": row.from_code,
                            "to": row.to_code,
                            "reason": row.reason.value,
                            "growth": row.growth,
                        }
                        for row in changes
                    ],
                }
            )
    except TallyError as error:
        fail(error)


def growth(
    member_id: MemberArgument,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="Entries shown.")] = 50,
) -> None:
    """Print a member's growth value entries, newest first."""
    try:
        with open_database() as db, db.read() as session:
            rows, _more = tiers.growth_history(session, member_id, None, limit)
            emit(
                [
                    {
                        "id": row.id,
                        "kind": row.kind.value,
                        "points": row.points,
                        "counted_at": row.counted_at,
                        "transaction_id": str(row.journal_entry_id)
                        if row.journal_entry_id
                        else None,
                        "reason": row.reason,
                    }
                    for row in rows
                ]
            )
    except TallyError as error:
        fail(error)


def growth_adjust(
    member_id: MemberArgument,
    points: Annotated[
        int, typer.Argument(help="Signed growth value (write a negative one after --).")
    ],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept with the entry).")],
    staff: StaffOption,
) -> None:
    """Correct a member's growth value (lifetime growth may not go below zero); may upgrade."""
    settings = get_settings()
    try:
        with open_database(settings) as db, db.write() as session:
            programme = runtime.effective(session, settings)
            now = utcnow()
            result = tiers.adjust(
                session,
                member_id,
                points,
                reason,
                now,
                programme,
                staff_id=_staff_id(session, staff),
            )
            found = tiers.standing(session, member_id, now, programme)
        emit(
            {
                "member_id": member_id,
                "growth_entry_id": result.growth_entry_id,
                "points": result.points,
                "upgraded_from": result.upgraded_from,
                **_standing(found),
            }
        )
    except TallyError as error:
        fail(error)


def register(member_app: typer.Typer) -> None:
    """Add the tier commands to ``tally member``."""
    member_app.command("tier")(tier)
    member_app.command("growth")(growth)
    member_app.command("growth-adjust")(growth_adjust)
