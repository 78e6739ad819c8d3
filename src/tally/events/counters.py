"""The counters of caps and budgets: what each has used, locked for the batch that consumes it.

A counter's key names what it counts, as the rule engine names it
(:func:`tally.rules.engine.counter_limits`): a campaign's budget, or one member's use of one cap
in one period; its second part is the campaign. A batch locks every counter it may consume in
key order, in one statement (two batches never deadlock), reads what each has used, evaluates
its events against that, then adds what it consumed in one statement: a budget is never
exceeded however many writers race, and a hot budget costs one row update per batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from sqlalchemy.orm import Session

from tally.db.raw import Bulk, Raw

_OPEN = Bulk.insert(
    "rule_counters",
    {"key": "text", "campaign": "text", "used": "bigint", "updated_at": "timestamptz"},
    "ON CONFLICT (key) DO NOTHING",
)
_LOCK = Raw("SELECT key, used FROM rule_counters WHERE key = ANY(:keys) ORDER BY key", lock=True)
_ADD = Bulk(
    "UPDATE rule_counters SET used = used + :delta, updated_at = :now WHERE key = :key",
    "UPDATE rule_counters c SET used = c.used + v.delta, updated_at = v.now"
    " FROM unnest(:key::text[], :delta::bigint[], :now::timestamptz[]) AS v(key, delta, now)"
    " WHERE c.key = v.key",
)
_READ = Raw("SELECT key, used FROM rule_counters WHERE key = ANY(:keys)")


def campaign_of(key: str) -> str:
    """The campaign a counter key belongs to."""
    return key.split(":", 2)[1]


def lock(session: Session, keys: Iterable[str], now: datetime) -> dict[str, int]:
    """Lock the counters ``keys`` until commit (created at zero when new), in key order and in
    one statement, and return what each has used."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    _OPEN.execute(
        session,
        [
            {"key": key, "campaign": campaign_of(key), "used": 0, "updated_at": now}
            for key in wanted
        ],
    )
    return {str(key): int(used) for key, used in _LOCK.all(session, {"keys": wanted})}


def add(session: Session, consumed: Mapping[str, int], now: datetime) -> None:
    """Add what a batch consumed (negative: gave back) to counters it locked, in one statement."""
    rows = [
        {"key": key, "delta": delta, "now": now} for key, delta in sorted(consumed.items()) if delta
    ]
    if rows and _ADD.execute(session, rows) != len(rows):
        raise LookupError("a counter consumed was not locked first")


def used(session: Session, keys: Iterable[str]) -> dict[str, int]:
    """What the counters ``keys`` have used, read without a lock (a dry run, a report)."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    found = {str(key): int(value) for key, value in _READ.all(session, {"keys": wanted})}
    return {key: found.get(key, 0) for key in wanted}
