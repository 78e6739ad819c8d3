"""The ledger policy of the default programme (no programme file applied) for ``settings``."""

from __future__ import annotations

from tally.config import Settings
from tally.ledger.domain import Policy
from tally.ledger.posting import policy_for
from tally.programme.runtime import default_programme


def policy_of(settings: Settings) -> Policy:
    """What a server with ``settings`` and no applied programme uses."""
    return policy_for(default_programme(settings), settings)
