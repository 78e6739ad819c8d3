"""Operator staff who sign in to the console."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from tally.db.base import Base, BigId, UTCDateTime, str_enum


class StaffRole(enum.StrEnum):
    ADMIN = "admin"
    OPS = "ops"
    FINANCE = "finance"
    SUPPORT = "support"
    AUDITOR = "auditor"


class StaffUser(Base):
    """A console user with an argon2 password hash and one role."""

    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[StaffRole] = mapped_column(str_enum(StaffRole))
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
