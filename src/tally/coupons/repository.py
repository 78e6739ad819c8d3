"""SQL of coupons: templates, set-based issuance, and the conditional updates that make a use
count once (a code used once, a template's total and a member's limit never exceeded)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from types import ModuleType
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from tally.coupons.domain import CouponStatus, RedemptionStatus
from tally.coupons.models import Coupon, CouponMemberUse, CouponRedemption, CouponTemplate
from tally.members.models import Member, MemberStatus


def _dialect(session: Session) -> ModuleType:
    return postgresql if session.get_bind().dialect.name == "postgresql" else sqlite


def _changed(result: Any) -> bool:
    return bool(result.rowcount == 1)


# --- Templates ----------------------------------------------------------------------------------


def insert_template(session: Session, values: dict[str, Any]) -> CouponTemplate | None:
    """Insert a template; ``None`` when its code is taken (nothing written)."""
    found = session.execute(
        _dialect(session)
        .insert(CouponTemplate)
        .values(issued=0, redeemed=0, rolled_back=0, **values)
        .on_conflict_do_nothing(index_elements=["code"])
        .returning(CouponTemplate.id)
    ).scalar()
    return None if found is None else template(session, int(found))


def template(session: Session, template_id: int) -> CouponTemplate | None:
    """A template, read afresh."""
    return session.scalar(
        select(CouponTemplate)
        .where(CouponTemplate.id == template_id)
        .execution_options(populate_existing=True)
    )


def template_by_code(session: Session, code: str) -> CouponTemplate | None:
    """The template of ``code`` (codes are stored upper-case), read afresh."""
    return session.scalar(
        select(CouponTemplate)
        .where(CouponTemplate.code == code)
        .execution_options(populate_existing=True)
    )


def templates_by_code(session: Session, codes: Sequence[str]) -> dict[str, CouponTemplate]:
    if not codes:
        return {}
    rows = session.scalars(select(CouponTemplate).where(CouponTemplate.code.in_(list(codes))))
    return {row.code: row for row in rows}


def templates(session: Session, limit: int = 500) -> list[CouponTemplate]:
    """Templates, newest first."""
    return list(
        session.scalars(select(CouponTemplate).order_by(CouponTemplate.id.desc()).limit(limit))
    )


def take_issue(session: Session, template_id: int, count: int) -> bool:
    """Count ``count`` more codes issued, unless that passes the template's total limit."""
    result = session.execute(
        update(CouponTemplate)
        .where(
            CouponTemplate.id == template_id,
            or_(
                CouponTemplate.total_limit.is_(None),
                CouponTemplate.issued + count <= CouponTemplate.total_limit,
            ),
        )
        .values(issued=CouponTemplate.issued + count)
        .execution_options(synchronize_session=False)
    )
    return _changed(result)


def take_use(session: Session, template_id: int) -> bool:
    """Count one use of a template, unless its total limit is used up."""
    result = session.execute(
        update(CouponTemplate)
        .where(
            CouponTemplate.id == template_id,
            or_(
                CouponTemplate.total_limit.is_(None),
                CouponTemplate.redeemed < CouponTemplate.total_limit,
            ),
        )
        .values(redeemed=CouponTemplate.redeemed + 1)
        .execution_options(synchronize_session=False)
    )
    return _changed(result)


def give_use_back(session: Session, template_id: int) -> None:
    """A rolled-back use: one use fewer in force, one more rolled back."""
    session.execute(
        update(CouponTemplate)
        .where(CouponTemplate.id == template_id, CouponTemplate.redeemed > 0)
        .values(redeemed=CouponTemplate.redeemed - 1, rolled_back=CouponTemplate.rolled_back + 1)
        .execution_options(synchronize_session=False)
    )


def take_member_use(session: Session, template_id: int, member_id: int, limit: int) -> bool:
    """Count one use of a template by a member, unless the member has ``limit`` already: one
    upsert whose update is conditional (``used < limit``), so racing uses cannot pass it."""
    statement = (
        _dialect(session)
        .insert(CouponMemberUse)
        .values(template_id=template_id, member_id=member_id, used=1)
    )
    statement = statement.on_conflict_do_update(
        index_elements=["template_id", "member_id"],
        set_={"used": CouponMemberUse.used + 1},
        where=CouponMemberUse.used < limit,
    ).returning(CouponMemberUse.used)
    return session.execute(statement).scalar() is not None


def give_member_use_back(session: Session, template_id: int, member_id: int) -> None:
    session.execute(
        update(CouponMemberUse)
        .where(
            CouponMemberUse.template_id == template_id,
            CouponMemberUse.member_id == member_id,
            CouponMemberUse.used > 0,
        )
        .values(used=CouponMemberUse.used - 1)
        .execution_options(synchronize_session=False)
    )


def member_uses(session: Session, template_id: int, member_id: int) -> int:
    found = session.scalar(
        select(CouponMemberUse.used).where(
            CouponMemberUse.template_id == template_id, CouponMemberUse.member_id == member_id
        )
    )
    return int(found or 0)


# --- Codes --------------------------------------------------------------------------------------


def insert_codes(
    session: Session, rows: Sequence[dict[str, Any]]
) -> list[tuple[int, str, int | None, str | None]]:
    """Insert codes in one statement (``executemany`` with RETURNING); a row whose code or
    grant key exists already is not inserted. Returns ``(id, code, member_id, grant_key)`` of
    those inserted."""
    if not rows:
        return []
    statement = (
        _dialect(session)
        .insert(Coupon)
        .on_conflict_do_nothing()
        .returning(Coupon.id, Coupon.code, Coupon.member_id, Coupon.grant_key)
    )
    return [
        (int(found), str(code), member_id, grant_key)
        for found, code, member_id, grant_key in session.execute(statement, list(rows)).all()
    ]


def existing_grants(session: Session, keys: Sequence[str]) -> set[str]:
    """Which of the grant keys were issued already."""
    if not keys:
        return set()
    found = session.scalars(select(Coupon.grant_key).where(Coupon.grant_key.in_(list(keys))))
    return {key for key in found if key is not None}


def coupon_by_code(session: Session, code: str) -> Coupon | None:
    return session.scalar(
        select(Coupon).where(Coupon.code == code).execution_options(populate_existing=True)
    )


def use_code(session: Session, coupon_id: int, now: datetime) -> bool:
    """Mark a code used, unless it is used already."""
    result = session.execute(
        update(Coupon)
        .where(Coupon.id == coupon_id, Coupon.status == CouponStatus.ISSUED)
        .values(status=CouponStatus.REDEEMED, redeemed_at=now)
        .execution_options(synchronize_session=False)
    )
    return _changed(result)


def give_code_back(session: Session, coupon_id: int) -> None:
    session.execute(
        update(Coupon)
        .where(Coupon.id == coupon_id, Coupon.status == CouponStatus.REDEEMED)
        .values(status=CouponStatus.ISSUED, redeemed_at=None)
        .execution_options(synchronize_session=False)
    )


def wallet(
    session: Session, member_id: int, limit: int = 500
) -> list[tuple[Coupon, CouponTemplate]]:
    """A member's codes with their templates, newest first."""
    rows = session.execute(
        select(Coupon, CouponTemplate)
        .join(CouponTemplate, CouponTemplate.id == Coupon.template_id)
        .where(Coupon.member_id == member_id)
        .order_by(Coupon.id.desc())
        .limit(limit)
    ).all()
    return [(coupon, template) for coupon, template in rows]


def codes_of(session: Session, template_id: int, limit: int = 50) -> list[Coupon]:
    """A template's latest codes."""
    return list(
        session.scalars(
            select(Coupon)
            .where(Coupon.template_id == template_id)
            .order_by(Coupon.id.desc())
            .limit(limit)
        )
    )


# --- Redemptions --------------------------------------------------------------------------------


def insert_redemption(session: Session, values: dict[str, Any]) -> CouponRedemption:
    row = CouponRedemption(**values)
    session.add(row)
    session.flush()
    return row


def redemption(session: Session, redemption_id: uuid.UUID) -> CouponRedemption | None:
    return session.scalar(
        select(CouponRedemption)
        .where(CouponRedemption.id == redemption_id)
        .execution_options(populate_existing=True)
    )


def roll_back(session: Session, redemption_id: uuid.UUID, now: datetime) -> bool:
    """Mark a redemption rolled back, unless it is already."""
    result = session.execute(
        update(CouponRedemption)
        .where(
            CouponRedemption.id == redemption_id,
            CouponRedemption.status == RedemptionStatus.REDEEMED,
        )
        .values(status=RedemptionStatus.ROLLED_BACK, rolled_back_at=now)
        .execution_options(synchronize_session=False)
    )
    return _changed(result)


def redemptions_of(session: Session, template_id: int, limit: int = 50) -> list[CouponRedemption]:
    return list(
        session.scalars(
            select(CouponRedemption)
            .where(CouponRedemption.template_id == template_id)
            .order_by(CouponRedemption.redeemed_at.desc())
            .limit(limit)
        )
    )


def code_counts(session: Session, template_id: int) -> tuple[int, int, int]:
    """``(issued, in wallets, used)`` codes of a template."""
    issued, assigned, used = session.execute(
        select(
            func.count(),
            func.count(Coupon.member_id),
            func.count().filter(Coupon.status == CouponStatus.REDEEMED),
        ).where(Coupon.template_id == template_id)
    ).one()
    return int(issued), int(assigned), int(used)


# --- Members ------------------------------------------------------------------------------------


def member_statuses(session: Session, member_ids: Sequence[int]) -> dict[int, MemberStatus]:
    """The statuses of those of ``member_ids`` that exist."""
    if not member_ids:
        return {}
    rows = session.execute(
        select(Member.id, Member.status).where(Member.id.in_(list(member_ids)))
    ).all()
    return {int(member_id): MemberStatus(status) for member_id, status in rows}


def active_members(session: Session, after: int, limit: int) -> list[int]:
    """Active members' ids above ``after``, in order (a batch of the monthly job)."""
    return list(
        session.scalars(
            select(Member.id)
            .where(and_(Member.id > after, Member.status == MemberStatus.ACTIVE))
            .order_by(Member.id)
            .limit(limit)
        )
    )
