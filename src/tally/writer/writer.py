"""The writer every write goes through: the API's (grouped on the event loop by
:class:`tally.writer.group_commit.GroupCommit`), the CLI's, the jobs' and the importers'.

Not tied to HTTP: the adapter supplies how a token is authenticated (inside the write's
transaction) and which programme prices a write; a write is answered on its own, whether its
batch posted it set-based with the others or it was done alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from tally.db.raw import INTEGRITY_ERRORS, error_text, is_transient
from tally.db.session import Database
from tally.errors import AlreadyReversed, ConcurrentChange, DuplicateReference, TallyError
from tally.idempotency import service as idempotency
from tally.kit.clock import Clock, utcnow
from tally.ledger.domain import Policy
from tally.ledger.orders import Busy
from tally.programme.domain import Programme
from tally.writer.batch import Answer, Authenticate, Batch, prepare, refusal_body, replayed
from tally.writer.kinds import Context, Kinds
from tally.writer.submission import Submission, is_final_answer

# The programme in force and its ledger policy, as a write's transaction sees them.
Pricing = Callable[[Session], tuple[Programme, Policy]]


class Writer:
    """Posts submissions in batches of one transaction, or alone (see the module's docstring)."""

    def __init__(
        self,
        db: Database,
        kinds: Kinds,
        pricing: Pricing,
        *,
        authenticate: Authenticate | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.db = db
        self.kinds = kinds
        self.pricing = pricing
        self.authenticate = authenticate
        self.clock = clock  # none: utcnow, looked up when used (tests move it)

    def now(self) -> datetime:
        return self.clock() if self.clock is not None else utcnow()

    def submission(self, write: object, **fields: object) -> Submission:
        """``write`` as a submission of its registered kind."""
        return Submission(write, self.kinds.of(write), **fields)  # type: ignore[arg-type]

    def write_now(
        self, submissions: Sequence[Submission], *, now: datetime | None = None
    ) -> list[Answer]:
        """Post ``submissions`` in one transaction, set-based, as of ``now`` (default: the
        clock); what the batch does not answer is done alone. Each write's answer, in order."""
        done, _busy = self.batch(submissions, wait=True, now=now)
        return [
            done[index] if index in done else self.answer_alone(submission, now)
            for index, submission in enumerate(submissions)
        ]

    def batch(
        self, submissions: Sequence[Submission], *, wait: bool, now: datetime | None = None
    ) -> tuple[dict[int, Answer], set[int]]:
        """The answers one transaction gives ``submissions`` (none if it failed), and the
        positions passed over because a row they need was held elsewhere (without ``wait``)."""
        try:
            with self.db.write() as session:
                programme, policy = self.pricing(session)
                work = Batch(
                    session,
                    submissions,
                    now=now or self.now(),
                    policy=policy,
                    programme=programme,
                    wait=wait,
                    authenticate=self.authenticate,
                )
                return work.answers(), work.busy
        except Exception:
            return {}, set()

    def answer_alone(self, submission: Submission, now: datetime | None = None) -> Answer:
        try:
            self.alone(submission, now)
        except Exception as error:
            return error
        return submission

    def alone(self, submission: Submission, now: datetime | None = None) -> None:
        """Do the write in a transaction of its own, retrying once after losing a race."""
        for attempt in range(2):
            try:
                self._attempt(submission, now)
                return
            except INTEGRITY_ERRORS as exc:
                if attempt == 0:
                    # Lost a race: a concurrent request with the same key (replayed now), the
                    # same identity (found now) or the same reference (refused now).
                    continue
                raise _integrity_error(exc) from exc

    def _attempt(self, submission: Submission, now: datetime | None) -> None:
        principal: str | None = None
        key = submission.key
        try:
            with self.db.write() as session:
                # Authenticating inside the write transaction saves a connection and a BEGIN.
                prepare(session, submission, self.authenticate)
                if key is not None:
                    principal = submission.principal
                    assert principal is not None
                    stored = idempotency.replay(session, principal, key, submission.fingerprint)
                    if stored is not None:
                        replayed(submission, stored)
                        return
                programme, policy = self.pricing(session)
                context = Context(
                    now or self.now(),
                    policy,
                    programme,
                    [submission.caller],
                    wait=True,
                    alone=True,
                )
                kind = submission.kind
                outcome = kind.post_many(session, [submission.write], context)[0]
                if isinstance(outcome, TallyError):
                    raise outcome
                assert not isinstance(outcome, Busy), "a write waited for is never busy"
                submission.outcome = outcome
                if principal is not None and key is not None:
                    status, body = kind.answer(session, submission.write, outcome, context)
                    submission.status, submission.body = status, body
                    idempotency.remember(
                        session, principal, key, submission.fingerprint, status, body
                    )
        except TallyError as error:
            # Authenticated, with a usable key, and a refusal of the request itself: final.
            if principal is not None and is_final_answer(error):
                self._remember_refusal(submission, principal, error)
            raise
        except Exception as error:
            if is_transient(error):  # busy, lock timeout, deadlock, serialization failure
                raise ConcurrentChange(
                    "A concurrent request held or changed the same data; retry."
                ) from error
            raise

    def _remember_refusal(self, submission: Submission, principal: str, error: TallyError) -> None:
        """A refused request is answered the same way on retry (it wrote nothing else)."""
        assert submission.key is not None
        try:
            with self.db.write() as session:
                idempotency.remember(
                    session,
                    principal,
                    submission.key,
                    submission.fingerprint,
                    error.status,
                    refusal_body(error),
                )
        except INTEGRITY_ERRORS:
            pass  # a concurrent retry stored its own answer first


def write_in(
    session: Session,
    submissions: Sequence[Submission],
    *,
    now: datetime,
    policy: Policy,
    programme: Programme,
) -> list[Answer]:
    """Post a trusted caller's ``submissions`` (no token, no key) set-based in the caller's own
    transaction ``session``, as of ``now``; a write its batch leaves is done on its own there.
    Each write's answer, in order."""
    if any(submission.token or submission.key for submission in submissions):
        raise TypeError("Writes with a token or a key are done by Writer.write_now.")
    done = Batch(
        session, submissions, now=now, policy=policy, programme=programme, wait=True
    ).answers()
    answers: list[Answer] = []
    for index, submission in enumerate(submissions):
        answer = done.get(index)
        if answer is None:
            context = Context(now, policy, programme, [submission.caller], wait=True, alone=True)
            try:
                outcome = submission.kind.post_many(session, [submission.write], context)[0]
            except TallyError as error:
                outcome = error
            if isinstance(outcome, TallyError):
                answer = outcome
            else:
                submission.outcome, answer = outcome, submission
        answers.append(answer)
    return answers


def _integrity_error(exc: Exception) -> TallyError:
    text = error_text(exc)
    if "source_key" in text:
        return DuplicateReference("This reference was already used for this operation.")
    if "reverses_id" in text:
        return AlreadyReversed("The transaction was already reversed.")
    return ConcurrentChange("A concurrent request changed the same data; retry.")
