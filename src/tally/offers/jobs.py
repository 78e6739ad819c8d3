"""``tally jobs offers``: compute what all members' redemptions say (item similarities,
popularity overall and per tier) and keep it for the offers (ADR 30). Idempotent.

The members' redeemed items up to ``as_of`` are read set-based (one window query) in a read
transaction and polars computes the signals; then one short write transaction claims the
refresh row (a second run waits for the first there) and replaces the kept tables, so writers
are held only while the rows are written (SQLite has one writer at a time). Two runs as of the
same moment compute the same signals; the later one's stand. :func:`preview` computes the same
and writes nothing (``--dry-run``).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl
from sqlalchemy.orm import Session

from tally.offers import repository, similarity
from tally.programme.domain import Programme

UnitOfWork = Callable[[], AbstractContextManager[Session]]

#: How far back redemptions count for the signals.
LOOKBACK_DAYS = 365


@dataclass(frozen=True, slots=True)
class OffersReport:
    """What one computation found: member-item pairs read, item pairs kept, popularity rows."""

    pairs: int
    similarities: int
    popularity: int


def compute(
    session: Session, programme: Programme, as_of: datetime
) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """``(similarities, popularity, pairs read)`` from the redemptions of the
    :data:`LOOKBACK_DAYS` up to ``as_of``."""
    pairs = repository.redeemed_pairs(
        session, as_of - timedelta(days=LOOKBACK_DAYS), as_of, similarity.ITEMS_PER_MEMBER
    )
    similar = similarity.similarities(pairs)
    popular = similarity.popularity(pairs, programme.tiers[0].code)
    return similar, popular, pairs.height


def refresh(
    read: UnitOfWork, write: UnitOfWork, programme: Programme, as_of: datetime
) -> OffersReport:
    """Compute the signals as of ``as_of`` (in a ``read`` transaction) and keep them (in one
    ``write`` transaction)."""
    with read() as session:
        similar, popular, pairs = compute(session, programme, as_of)
    with write() as session:
        repository.claim_refresh(session, as_of, pairs)
        repository.replace_signals(session, similar, popular)
    return OffersReport(pairs, similar.height, popular.height)


def preview(session: Session, programme: Programme, as_of: datetime) -> OffersReport:
    """What :func:`refresh` would keep, writing nothing."""
    similar, popular, pairs = compute(session, programme, as_of)
    return OffersReport(pairs, similar.height, popular.height)
