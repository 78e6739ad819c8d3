"""Adjustment requests: adjustments above the requester's limit, awaiting a decision."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from tally.adjustments.domain import RequestStatus
from tally.db.base import Base, BigId, UTCDateTime, partial_index, str_enum


class AdjustmentRequest(Base):
    """An adjustment a staff member or a partner's API key asked for, and a staff approver
    decides on.

    Exactly one of ``requested_by`` (a staff member, with ``requester_role``) and
    ``requested_by_key_id`` (an operator channel's API key) names who asked. The status leaves
    ``pending`` only by a conditional update that also requires the ``deadline`` to lie ahead,
    so a request is approved (and its adjustment posted) at most once however many approvals
    race, and never once expired; ``entry_id`` is the posted journal entry. ``role_limit`` and
    ``programme_version`` record the limit that sent it here.
    """

    __tablename__ = "adjustment_requests"
    __table_args__ = (
        CheckConstraint("points <> 0", name="points_not_zero"),
        CheckConstraint(
            "(requested_by IS NULL) <> (requested_by_key_id IS NULL)", name="one_requester"
        ),
        partial_index("ix_adjustment_requests_pending", "requested_at", where="status = 'pending'"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    member_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("members.id"), index=True)
    points: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(500))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[RequestStatus] = mapped_column(str_enum(RequestStatus))
    requested_by: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("staff_users.id"))
    requested_by_key_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("api_keys.id"), index=True
    )
    requester_role: Mapped[str | None] = mapped_column(String(16))
    role_limit: Mapped[int] = mapped_column(BigInteger)
    programme_version: Mapped[int | None] = mapped_column(BigInteger)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deadline: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_by: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("staff_users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decision_note: Mapped[str | None] = mapped_column(String(500))
    entry_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("journal_entries.id"))
