"""A write handed to the writer, with who asks and its Idempotency-Key, and once done its answer;
and which refusals answer a key for good."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from tally.access.domain import Caller
from tally.errors import Forbidden, IdempotencyConflict, TallyError, Unauthorized, ValidationFailed
from tally.partners.domain import Scope
from tally.writer.kinds import Kind


@dataclass(slots=True, eq=False)
class Submission:
    """One write (an object of a registered kind, or a unit of work) and its answer.

    A caller with a ``token`` is authenticated in the transaction that does the write (the
    writer's authentication hook: ``caller`` is then set); a trusted caller (CLI, job) gives
    ``caller`` or none. A write with a ``key`` is done once per ``(principal, key)``: the
    principal is the authenticated partner's, or the one given.
    """

    write: Any
    kind: Kind
    key: str | None = None
    fingerprint: str = ""  # of the request: a key answers only the request it was first used for
    token: str | None = None
    scope: Scope | None = None  # what the caller's key must allow
    caller: Caller | None = None
    principal: str | None = None
    passes: int = 0  # batches that passed over it (a row it needs held elsewhere)
    future: asyncio.Future[Submission] | None = None
    # The answer: what the kind posted (none for a replay), and its status and JSON body (for a
    # write with a key; a replay's are the stored ones).
    outcome: Any = None
    status: int = 0
    body: str = ""
    replayed: bool = False


def principal_of(caller: Caller) -> str:
    """Whose Idempotency-Keys an authenticated caller's are: its partner's."""
    return f"partner:{caller.partner_id}"


# Refusals that do not answer the request itself (who asks, the key, the request's form):
# they are not remembered, so the key stays usable; nor are those that say "retry"
# (``TallyError.retryable``).
UNSTORED_ERRORS = (IdempotencyConflict, Unauthorized, Forbidden, ValidationFailed)


def is_final_answer(error: TallyError) -> bool:
    """Whether refusing with ``error`` answers the request for good (stored for its key): not a
    refusal of who asks or of the request's form, nor one that says "retry"."""
    return not isinstance(error, UNSTORED_ERRORS) and not error.retryable
