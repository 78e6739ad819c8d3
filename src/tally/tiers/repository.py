"""Every query of growth value and tiers. Tier state changes only by conditional updates."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

import polars as pl
from sqlalchemy import Update, and_, bindparam, case, func, select, update
from sqlalchemy.orm import Session

from tally.db.base import table_of
from tally.db.frames import read_frame, write_frame
from tally.db.raw import Bulk, Raw, as_datetime
from tally.outbox import repository as outbox
from tally.outbox.domain import Event, EventType
from tally.programme import runtime
from tally.tiers.decisions import STATE_SCHEMA
from tally.tiers.domain import Window, Windows
from tally.tiers.models import GrowthEntry, GrowthKind, MemberTier, TierChange

# Growth credits run on every earn: their statements are hand-written SQL (see tally.db.raw).
_ENSURE_STATE = Raw(
    "INSERT INTO member_tiers (member_id, tier_code, lifetime_growth, version)"
    " VALUES (:m, :code, 0, 0) ON CONFLICT (member_id) DO NOTHING"
)
_ADD_LIFETIME = Raw(
    "UPDATE member_tiers SET lifetime_growth = lifetime_growth + :p WHERE member_id = :m"
    " RETURNING member_id, tier_code, downgrade_at, evaluated_at, lifetime_growth, version"
)
_CREDIT_LIFETIMES = Bulk(
    "INSERT INTO member_tiers (member_id, tier_code, lifetime_growth, version)"
    " VALUES (:m, :code, :p, 0) ON CONFLICT (member_id) DO UPDATE"
    " SET lifetime_growth = member_tiers.lifetime_growth + excluded.lifetime_growth"
    " RETURNING member_id, tier_code, downgrade_at, evaluated_at, lifetime_growth, version",
    "INSERT INTO member_tiers (member_id, tier_code, lifetime_growth, version)"
    " SELECT v.m, v.code, v.p, 0 FROM unnest(:m::bigint[], :code::text[], :p::bigint[])"
    " AS v(m, code, p) ON CONFLICT (member_id) DO UPDATE"
    " SET lifetime_growth = member_tiers.lifetime_growth + excluded.lifetime_growth"
    " RETURNING member_id, tier_code, downgrade_at, evaluated_at, lifetime_growth, version",
)
_ADD_LIFETIME_FLOORED = Raw(
    "UPDATE member_tiers SET lifetime_growth = lifetime_growth + :p"
    " WHERE member_id = :m AND lifetime_growth + :p >= 0"
    " RETURNING member_id, tier_code, downgrade_at, evaluated_at, lifetime_growth, version"
)
_STATES = Raw(
    "SELECT member_id, tier_code, downgrade_at, evaluated_at, lifetime_growth, version"
    " FROM member_tiers WHERE member_id = ANY(:ms)"
)
_GROWTH_COLUMNS = {
    "member_id": "bigint",
    "origin_member_id": "bigint",
    "points": "bigint",
    "kind": "text",
    "counted_at": "timestamptz",
    "journal_entry_id": "uuid",
    "reverses_id": "bigint",
    "partner_id": "bigint",
    "staff_id": "bigint",
    "reason": "text",
    "created_at": "timestamptz",
}
_INSERT_GROWTH = Bulk.insert("growth_entries", _GROWTH_COLUMNS, "RETURNING id")
_INSERT_GROWTHS = Bulk.insert("growth_entries", _GROWTH_COLUMNS)
_SUM_FROM = (
    "SELECT member_id, COALESCE(SUM(points), 0) FROM growth_entries WHERE member_id = ANY(:ms)"
)
_SUMS = {
    (False, False): Raw(_SUM_FROM + " GROUP BY member_id"),
    (True, False): Raw(_SUM_FROM + " AND counted_at >= :start GROUP BY member_id"),
    (False, True): Raw(_SUM_FROM + " AND counted_at < :end GROUP BY member_id"),
    (True, True): Raw(
        _SUM_FROM + " AND counted_at >= :start AND counted_at < :end GROUP BY member_id"
    ),
}
_TWO_SUMS = Raw(
    "SELECT member_id, COALESCE(SUM(CASE WHEN counted_at >= :split THEN points ELSE 0 END), 0),"
    " COALESCE(SUM(CASE WHEN counted_at < :split THEN points ELSE 0 END), 0)"
    " FROM growth_entries WHERE member_id = ANY(:ms) AND counted_at >= :start"
    " AND counted_at < :end GROUP BY member_id"
)


@dataclass(frozen=True, slots=True)
class StateRow:
    member_id: int
    tier_code: str
    downgrade_at: datetime | None
    evaluated_at: datetime | None
    lifetime_growth: int
    version: int


def _state_row(row: tuple[Any, ...] | None) -> StateRow | None:
    if row is None:
        return None
    member_id, code, downgrade_at, evaluated_at, lifetime, version = row
    return StateRow(
        int(member_id),
        str(code),
        as_datetime(downgrade_at) if downgrade_at is not None else None,
        as_datetime(evaluated_at) if evaluated_at is not None else None,
        int(lifetime),
        int(version),
    )


def ensure_state(session: Session, member_id: int, first_code: str) -> None:
    """Create the member's tier row at the first tier unless it exists (race-free)."""
    _ENSURE_STATE.execute(session, {"m": member_id, "code": first_code})


def credit_lifetime(session: Session, member_id: int, points: int, first_code: str) -> StateRow:
    """Add ``points`` to the member's lifetime growth, creating its row at the first tier if
    need be, in one statement that locks the row until commit; the row as it is now."""
    return credit_lifetimes(session, {member_id: points}, first_code)[member_id]


def credit_lifetimes(
    session: Session, points: dict[int, int], first_code: str
) -> dict[int, StateRow]:
    """:func:`credit_lifetime` for many members (``member_id`` → points) in one statement,
    locking their rows in member order."""
    rows = [
        {"m": member_id, "code": first_code, "p": value}
        for member_id, value in sorted(points.items())
    ]
    found = [_state_row(row) for row in _CREDIT_LIFETIMES.returning(session, rows)]
    return {row.member_id: row for row in found if row is not None}


def add_lifetime(session: Session, member_id: int, points: int, *, floor: bool) -> StateRow | None:
    """Add ``points`` to the member's lifetime growth, locking its row until commit (so credits
    to one member take turns); with ``floor`` only if the result stays at or above zero.
    Returns the row as it is now, or ``None`` when nothing changed."""
    statement = _ADD_LIFETIME_FLOORED if floor else _ADD_LIFETIME
    return _state_row(statement.one(session, {"m": member_id, "p": points}))


def state_row(session: Session, member_id: int) -> StateRow | None:
    """The member's tier row as plain values."""
    return state_rows(session, [member_id]).get(member_id)


def state_rows(session: Session, member_ids: Sequence[int]) -> dict[int, StateRow]:
    """The members' tier rows as plain values; members without one are missing."""
    found = [_state_row(row) for row in _STATES.all(session, {"ms": sorted(set(member_ids))})]
    return {row.member_id: row for row in found if row is not None}


def sums(session: Session, member_id: int, windows: Windows) -> tuple[int, int | None]:
    """The member's growth in the current window and, if there is one, the previous window."""
    return sums_of(session, [member_id], windows)[member_id]


def sums_of(
    session: Session, member_ids: Sequence[int], windows: Windows
) -> dict[int, tuple[int, int | None]]:
    """:func:`sums` for many members in one query."""
    current, previous = windows.current, windows.previous
    members = sorted(set(member_ids))
    if previous is not None and previous.start is not None and current.end is not None:
        two: dict[int, tuple[int, int | None]] = dict.fromkeys(members, (0, 0))
        params = {
            "ms": members,
            "split": current.start,
            "start": previous.start,
            "end": current.end,
        }
        for member_id, now, before in _TWO_SUMS.all(session, params):
            two[int(member_id)] = (int(now), int(before))
        return two
    one: dict[int, tuple[int, int | None]] = dict.fromkeys(members, (0, None))
    query: dict[str, Any] = {"ms": members}
    if current.start is not None:
        query["start"] = current.start
    if current.end is not None:
        query["end"] = current.end
    for member_id, total in _SUMS[(current.start is not None, current.end is not None)].all(
        session, query
    ):
        one[int(member_id)] = (int(total), None)
    return one


def state(session: Session, member_id: int) -> MemberTier | None:
    """The member's tier row, read afresh."""
    return session.scalar(
        select(MemberTier)
        .where(MemberTier.member_id == member_id)
        .execution_options(populate_existing=True)
    )


def insert_growth(
    session: Session,
    *,
    member_id: int,
    origin_member_id: int,
    points: int,
    kind: GrowthKind,
    counted_at: datetime,
    created_at: datetime,
    journal_entry_id: uuid.UUID | None = None,
    reverses_id: int | None = None,
    partner_id: int | None = None,
    staff_id: int | None = None,
    reason: str | None = None,
) -> int:
    """Write one growth entry; returns its id."""
    rows = _INSERT_GROWTH.returning(
        session,
        [
            {
                "member_id": member_id,
                "origin_member_id": origin_member_id,
                "points": points,
                "kind": kind,
                "counted_at": counted_at,
                "journal_entry_id": journal_entry_id,
                "reverses_id": reverses_id,
                "partner_id": partner_id,
                "staff_id": staff_id,
                "reason": reason,
                "created_at": created_at,
            }
        ],
    )
    return int(rows[0][0])


def insert_growths(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Write growth entries (rows with every column of :func:`insert_growth`)."""
    _INSERT_GROWTHS.execute(session, rows)


def programme_version(session: Session, at: datetime) -> int | None:
    """The version of the programme file this transaction runs under: the one it read, else the
    one in force at ``at`` (``None``: the built-in default)."""
    return runtime.pricing(session, at).version


def growth_entry(session: Session, entry_id: int) -> GrowthEntry | None:
    return session.get(GrowthEntry, entry_id, populate_existing=True)


def growth_of_journal_entry(session: Session, entry_id: uuid.UUID) -> GrowthEntry | None:
    return session.scalar(select(GrowthEntry).where(GrowthEntry.journal_entry_id == entry_id))


def change_state(
    session: Session,
    member_id: int,
    version: int,
    *,
    tier_code: str,
    downgrade_at: datetime | None,
    since: datetime | None = None,
    evaluated_at: datetime | None = None,
) -> bool:
    """Move the member's row from ``version`` on; ``False`` when someone else moved it first."""
    values: dict[str, Any] = {"tier_code": tier_code, "downgrade_at": downgrade_at}
    if since is not None:
        values["since"] = since
    if evaluated_at is not None:
        values["evaluated_at"] = evaluated_at
    statement = _change_state_statement(since is not None, evaluated_at is not None)
    result = session.execute(statement, {"_member_id": member_id, "_version": version, **values})
    return bool(result.rowcount)  # type: ignore[attr-defined]


@cache
def _change_state_statement(since: bool, evaluated_at: bool) -> Update:
    """The conditional update of :func:`change_state`, built once per set of columns: the
    evaluation job runs it once per changed member, and building an ORM update each time cost
    several times more than running it."""
    table = table_of(MemberTier)
    columns = ["tier_code", "downgrade_at"]
    columns += ["since"] if since else []
    columns += ["evaluated_at"] if evaluated_at else []
    return (
        update(table)
        .where(
            table.c.member_id == bindparam("_member_id"),
            table.c.version == bindparam("_version"),
        )
        .values(
            version=table.c.version + 1,
            **{name: bindparam(name, type_=table.c[name].type) for name in columns},
        )
    )


_INSERT_CHANGES = Bulk.insert(
    "tier_changes",
    {
        "member_id": "bigint",
        "from_code": "text",
        "to_code": "text",
        "reason": "text",
        "growth": "bigint",
        "downgrade_at": "timestamptz",
        "programme_version": "integer",
        "changed_at": "timestamptz",
    },
)
_CHUNK_IDS = Raw(
    "SELECT member_id FROM member_tiers WHERE member_id > :after ORDER BY member_id LIMIT :limit"
)
# What the evaluation reads of a run of members, instants compared with the moment evaluated.
_STATES_FROM = (
    "SELECT t.member_id, t.version, t.tier_code,"
    " CASE WHEN t.downgrade_at IS NULL THEN 0 ELSE 1 END,"
    " CASE WHEN t.downgrade_at > :as_of THEN 1 ELSE 0 END,"
    " CASE WHEN t.evaluated_at >= :as_of THEN 1 ELSE 0 END, {up}, {keep} FROM member_tiers t {join}"
    " WHERE t.member_id BETWEEN :first AND :last ORDER BY t.member_id"
)
_WINDOW_SUMS = (
    "LEFT JOIN (SELECT member_id,"
    " SUM(CASE WHEN counted_at >= :split THEN points ELSE 0 END) AS now,"
    " SUM(CASE WHEN counted_at < :split THEN points ELSE 0 END) AS before"
    " FROM growth_entries WHERE member_id BETWEEN :first AND :last"
    " AND counted_at >= :start AND counted_at < :end GROUP BY member_id) s"
    " ON s.member_id = t.member_id"
)
_NOW, _BEFORE = "COALESCE(s.now, 0)", "COALESCE(s.before, 0)"
_STATE_FRAMES = {
    "lifetime": Raw(_STATES_FROM.format(up="t.lifetime_growth", keep="t.lifetime_growth", join="")),
    "rolling_window": Raw(_STATES_FROM.format(up=_NOW, keep=_NOW, join=_WINDOW_SUMS)),
    # Status earned in a year lasts through the next: the larger of this year's and last's.
    "calendar_year": Raw(
        _STATES_FROM.format(
            up=_NOW,
            keep=f"CASE WHEN {_BEFORE} > {_NOW} THEN {_BEFORE} ELSE {_NOW} END",
            join=_WINDOW_SUMS,
        )
    ),
}
# A chunk's decisions are staged in a temporary table, then applied by a few set-based
# statements: no statement per member. On PostgreSQL its rows go at commit (no statement clears
# them); SQLite has no such clause, and clears it first.
_DECISIONS_COLUMNS = (
    "(member_id BIGINT PRIMARY KEY, version INTEGER NOT NULL, from_code VARCHAR(64),"
    " to_code VARCHAR(64) NOT NULL, reason VARCHAR(16) NOT NULL, growth BIGINT NOT NULL,"
    " grace INTEGER NOT NULL, changed INTEGER NOT NULL, data TEXT NOT NULL)"
)
_DECISIONS_TABLE = {
    "sqlite": Raw(f"CREATE TEMPORARY TABLE IF NOT EXISTS tier_decisions {_DECISIONS_COLUMNS}"),
    "postgresql": Raw(
        f"CREATE TEMPORARY TABLE IF NOT EXISTS tier_decisions {_DECISIONS_COLUMNS}"
        " ON COMMIT DELETE ROWS"
    ),
}
_CLEAR_DECISIONS = Raw("DELETE FROM tier_decisions")
# The rows decided on, locked in member order (on PostgreSQL), with their version now. The
# range of members decided bounds every statement on member_tiers: the temporary table has no
# statistics, and a plan that scanned the whole table once per chunk would grow with it.
_LOCK_DECIDED = Raw(
    "SELECT member_id, version FROM member_tiers WHERE member_id BETWEEN :first AND :last"
    " AND member_id IN (SELECT member_id FROM tier_decisions) ORDER BY member_id",
    lock=True,
)
# A decision applies only to the row at the version read: another writer moved the others.
_DROP_STALE = Raw("DELETE FROM tier_decisions WHERE member_id = ANY(:stale)")
_MOVE_DECIDED = Raw(
    "UPDATE member_tiers SET tier_code = d.to_code,"
    " downgrade_at = CASE WHEN d.grace = 1 THEN :due END,"
    " since = CASE WHEN d.changed = 1 THEN :as_of ELSE member_tiers.since END,"
    " evaluated_at = :as_of, version = member_tiers.version + 1"
    " FROM tier_decisions AS d WHERE member_tiers.member_id = d.member_id"
    " AND member_tiers.member_id BETWEEN :first AND :last"
)
_HISTORY_OF_DECIDED = Raw(
    "INSERT INTO tier_changes (member_id, from_code, to_code, reason, growth, downgrade_at,"
    " programme_version, changed_at) SELECT member_id, from_code, to_code, reason, growth,"
    " CASE WHEN grace = 1 THEN :due END, CAST(:version AS INTEGER), :as_of"
    " FROM tier_decisions ORDER BY member_id"
)


def chunk_ids(session: Session, after: int, limit: int) -> list[int]:
    """The members of the next ``limit`` tier rows after member ``after`` (keyset pagination)."""
    return [int(row[0]) for row in _CHUNK_IDS.all(session, {"after": after, "limit": limit})]


def state_frame(
    session: Session, first: int, last: int, model: str, as_of: datetime, windows: Windows
) -> pl.DataFrame:
    """The tier rows of members ``first..last`` with their qualifying growth under tier
    model ``model`` (its ``windows`` at ``as_of``), in one statement, as a frame of
    :data:`tally.tiers.decisions.STATE_SCHEMA`."""
    params: dict[str, Any] = {"first": first, "last": last, "as_of": as_of}
    if model != "lifetime":
        earliest = windows.previous if windows.previous is not None else windows.current
        params |= {
            "start": earliest.start,
            "split": windows.current.start,
            "end": windows.current.end,
        }
    return read_frame(session, _STATE_FRAMES[model], params, STATE_SCHEMA)


def apply_decisions(
    session: Session,
    decided: pl.DataFrame,
    as_of: datetime,
    due: datetime,
    programme_version: int | None,
) -> tuple[dict[str, int], int]:
    """Write ``decided`` (:func:`tally.tiers.decisions.decide`) set-based: each member's tier
    row from the version decided on (``due``: when a grace period started now runs out), a
    history line and a ``tier.changed`` event for each. Returns the changes made by reason,
    and how many decisions were dropped because another writer moved the row first.

    On PostgreSQL the rows are locked in member order first, so that concurrent runs over the
    same members wait for each other instead of deadlocking."""
    if decided.is_empty():
        return {}, 0
    dialect = session.get_bind().dialect.name
    _DECISIONS_TABLE[dialect].execute(session, {})
    if dialect == "sqlite":
        _CLEAR_DECISIONS.execute(session, {})
    write_frame(session, "tier_decisions", decided.with_columns(data=_event_data(as_of, due)))
    members = decided["member_id"]
    bounds = {"first": members.min(), "last": members.max()}
    now = pl.DataFrame(
        _LOCK_DECIDED.all(session, bounds),
        schema={"member_id": pl.Int64, "now": pl.Int64},
        orient="row",
    )
    applied = decided.join(now, on="member_id", how="left")
    stale = applied.filter(pl.col("now").is_null() | (pl.col("now") != pl.col("version")))
    if not stale.is_empty():
        _DROP_STALE.execute(session, {"stale": stale["member_id"].to_list()})
        applied = applied.join(stale.select("member_id"), on="member_id", how="anti")
    _MOVE_DECIDED.execute(session, {**bounds, "due": due, "as_of": as_of})
    _HISTORY_OF_DECIDED.execute(session, {"due": due, "version": programme_version, "as_of": as_of})
    outbox.emit_staged(session, EventType.TIER_CHANGED, "tier_decisions", as_of)
    counts = applied.group_by("reason").len()
    by_reason = {str(reason): int(count) for reason, count in counts.iter_rows()}
    return by_reason, len(stale)


def _event_data(as_of: datetime, due: datetime) -> pl.Expr:
    """The ``tier.changed`` document of each decision, as JSON text."""
    return pl.struct(
        pl.col("member_id"),
        pl.col("from_code").alias("from"),
        pl.col("to_code").alias("to"),
        pl.col("reason"),
        pl.col("growth"),
        pl.when(pl.col("grace")).then(pl.lit(due.isoformat())).alias("downgrade_at"),
        pl.lit(as_of.isoformat()).alias("changed_at"),
    ).struct.json_encode()


def insert_changes(session: Session, rows: list[dict[str, Any]]) -> None:
    """Write tier changes, and a ``tier.changed`` event for each (one statement for all)."""
    if rows:
        _INSERT_CHANGES.execute(
            session,
            [
                {**row, "reason": str(row["reason"]), "from_code": row.get("from_code")}
                for row in rows
            ],
        )
        outbox.emit(
            session,
            [
                Event(
                    type=EventType.TIER_CHANGED,
                    data={
                        "member_id": row["member_id"],
                        "from": row.get("from_code"),
                        "to": row["to_code"],
                        "reason": str(row["reason"]),
                        "growth": row.get("growth"),
                        "downgrade_at": row["downgrade_at"].isoformat()
                        if row.get("downgrade_at")
                        else None,
                        "changed_at": row["changed_at"].isoformat(),
                    },
                    occurred_at=row["changed_at"],
                    member_id=row["member_id"],
                )
                for row in rows
            ],
        )


def growth_history(
    session: Session, member_id: int, before: int | None, limit: int
) -> Sequence[GrowthEntry]:
    statement = select(GrowthEntry).where(GrowthEntry.member_id == member_id)
    if before is not None:
        statement = statement.where(GrowthEntry.id < before)
    return session.scalars(statement.order_by(GrowthEntry.id.desc()).limit(limit)).all()


def tier_history(
    session: Session, member_id: int, before: int | None, limit: int
) -> Sequence[TierChange]:
    statement = select(TierChange).where(TierChange.member_id == member_id)
    if before is not None:
        statement = statement.where(TierChange.id < before)
    return session.scalars(statement.order_by(TierChange.id.desc()).limit(limit)).all()


# --- evaluation job: set-based, one chunk at a time -------------------------------------------


_STATE_CHUNK = Raw(
    "SELECT member_id, tier_code, downgrade_at, evaluated_at, lifetime_growth, version"
    " FROM member_tiers WHERE member_id > :after ORDER BY member_id LIMIT :limit"
)


def state_chunk(session: Session, after: int, limit: int) -> list[StateRow]:
    """The next ``limit`` tier rows after member ``after`` (keyset pagination), as plain rows."""
    return [
        StateRow(
            int(member_id),
            str(code),
            None if downgrade_at is None else as_datetime(downgrade_at),
            None if evaluated_at is None else as_datetime(evaluated_at),
            int(lifetime),
            int(version),
        )
        for member_id, code, downgrade_at, evaluated_at, lifetime, version in _STATE_CHUNK.all(
            session, {"after": after, "limit": limit}
        )
    ]


def chunk_sums(
    session: Session, first: int, last: int, current: Window, previous: Window | None
) -> dict[int, tuple[int, int]]:
    """``{member_id: (current window sum, previous window sum)}`` for members ``first..last``,
    in one GROUP BY."""

    def between(window: Window) -> Any:
        conditions = []
        if window.start is not None:
            conditions.append(GrowthEntry.counted_at >= window.start)
        if window.end is not None:
            conditions.append(GrowthEntry.counted_at < window.end)
        return and_(*conditions) if conditions else True

    columns = [
        GrowthEntry.member_id,
        func.sum(case((between(current), GrowthEntry.points), else_=0)),
        func.sum(case((between(previous), GrowthEntry.points), else_=0))
        if previous is not None
        else func.sum(0),
    ]
    statement = select(*columns).where(GrowthEntry.member_id.between(first, last))
    earliest = previous.start if previous is not None else current.start
    if earliest is not None:
        statement = statement.where(GrowthEntry.counted_at >= earliest)
    if current.end is not None:
        statement = statement.where(GrowthEntry.counted_at < current.end)
    rows = session.execute(statement.group_by(GrowthEntry.member_id)).all()
    return {int(member): (int(now or 0), int(before or 0)) for member, now, before in rows}


def move_growth(session: Session, from_member: int, to_member: int) -> int:
    """Give every growth entry ``from_member`` owns to ``to_member``; returns their sum."""
    total = session.scalar(
        select(func.coalesce(func.sum(GrowthEntry.points), 0)).where(
            GrowthEntry.member_id == from_member
        )
    )
    session.execute(
        update(GrowthEntry)
        .where(GrowthEntry.member_id == from_member)
        .values(member_id=to_member)
        .execution_options(synchronize_session=False)
    )
    return int(total or 0)


def move_growth_back(session: Session, holder: int, origin: int) -> int:
    """Give back to ``origin`` the entries credited to it that ``holder`` owns; their sum."""
    condition = and_(
        GrowthEntry.member_id == holder,
        GrowthEntry.origin_member_id == origin,
        GrowthEntry.origin_member_id != GrowthEntry.member_id,  # what ix_growth_entries_moved holds
    )
    total = session.scalar(select(func.coalesce(func.sum(GrowthEntry.points), 0)).where(condition))
    session.execute(
        update(GrowthEntry)
        .where(condition)
        .values(member_id=origin)
        .execution_options(synchronize_session=False)
    )
    return int(total or 0)


_CHANGES_OF = Raw(
    "SELECT member_id, from_code, to_code, changed_at FROM tier_changes"
    " WHERE member_id = ANY(:ms) ORDER BY member_id, id"
)


def changes_of(
    session: Session, member_ids: Sequence[int]
) -> list[tuple[int, str | None, str, datetime]]:
    """Every tier change of the members, in order: member, from, to, when; one statement."""
    if not member_ids:
        return []
    return [
        (int(member), None if before is None else str(before), str(after), as_datetime(at))
        for member, before, after, at in _CHANGES_OF.all(session, {"ms": sorted(set(member_ids))})
    ]
