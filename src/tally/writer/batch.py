"""One batch of writes in one transaction: each authenticated, its Idempotency-Key looked up with
the others' in one statement, the writes of each kind posted set-based, the answers remembered in
one statement. What the batch cannot answer is left to be done alone."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

import orjson
from sqlalchemy.orm import Session

from tally.access.domain import Caller, require_scope
from tally.errors import IdempotencyConflict, TallyError, problem_body
from tally.idempotency import service as idempotency
from tally.kit import text
from tally.ledger.domain import Policy
from tally.ledger.orders import Busy
from tally.programme.domain import Programme
from tally.writer.kinds import Alone, Context, Kind
from tally.writer.submission import Submission, is_final_answer, principal_of

# A write's answer: its submission, answered, or the refusal to raise.
Answer = Submission | BaseException
# The adapter's authentication: the caller behind a token, in the write's session.
Authenticate = Callable[[Session, str], Caller]


def prepare(session: Session, submission: Submission, authenticate: Authenticate | None) -> None:
    """Authenticate ``submission`` (when it carries a token) and check its key's form."""
    if submission.token is not None:
        if authenticate is None:
            raise TypeError("This writer authenticates no tokens.")
        admit(submission, authenticate(session, submission.token))
    else:
        check_key(submission)


def admit(submission: Submission, caller: Caller) -> None:
    """``submission`` made by ``caller``, if it holds the scope the write needs."""
    submission.caller = caller
    submission.principal = principal_of(caller)
    if submission.scope is not None:
        require_scope(caller, submission.scope)
    check_key(submission)


def check_key(submission: Submission) -> None:
    """Refuse a key that is not usable."""
    if submission.key is None:
        return
    idempotency.check_key(text.header_text(submission.key))
    if submission.principal is None:
        raise TypeError("A write with an Idempotency-Key needs a principal.")


def refusal_body(error: TallyError) -> str:
    """What a key stores for a refusal: its problem document."""
    return orjson.dumps(problem_body(error)).decode()


def replayed(submission: Submission, stored: idempotency.Stored) -> None:
    submission.status, submission.body = stored.status_code, stored.body
    submission.replayed = True


class Batch:
    """The answers one transaction gives a batch, by position (see the module's docstring);
    ``busy`` holds the positions passed over because a row they need is held elsewhere."""

    def __init__(
        self,
        session: Session,
        batch: Sequence[Submission],
        *,
        now: datetime,
        policy: Policy,
        programme: Programme,
        wait: bool,
        authenticate: Authenticate | None = None,
    ) -> None:
        self.session = session
        self.batch = batch
        self.now = now
        self.policy = policy
        self.programme = programme
        self.wait = wait
        self.authenticate = authenticate
        self.busy: set[int] = set()
        self.done: dict[int, Answer] = {}
        self.remembered: list[idempotency.Answer] = []

    def answers(self) -> dict[int, Answer]:
        groups: dict[str, list[int]] = {}  # by kind, in the order of each kind's first write
        for index in self._accepted():
            groups.setdefault(self.batch[index].kind.name, []).append(index)
        for positions in groups.values():
            self._post(self.batch[positions[0]].kind, positions)
        if self.remembered:
            idempotency.remember_all(self.session, self.remembered)
        return self.done

    def _accepted(self) -> list[int]:
        """The positions of the new writes; replays and key conflicts answered."""
        callers: dict[str, Caller] = {}  # authenticated once per token
        candidates: list[int] = []
        for index, submission in enumerate(self.batch):
            try:
                token = submission.token
                if token is None:
                    check_key(submission)
                else:
                    caller = callers.get(token)
                    if caller is None:
                        if self.authenticate is None:
                            raise TypeError("This writer authenticates no tokens.")
                        caller = callers[token] = self.authenticate(self.session, token)
                    admit(submission, caller)
                candidates.append(index)
            except TallyError:
                continue  # answered alone
        keys: dict[str, list[str]] = {}
        for index in candidates:
            submission = self.batch[index]
            if submission.key is not None:
                assert submission.principal is not None
                keys.setdefault(submission.principal, []).append(submission.key)
        stored = {
            (principal, key): record
            for principal, names in keys.items()
            for key, record in idempotency.records(self.session, principal, names).items()
        }
        seen: set[tuple[str, str]] = set()
        accepted: list[int] = []
        for index in candidates:
            submission = self.batch[index]
            if submission.key is None:
                accepted.append(index)
                continue
            assert submission.principal is not None
            name = (submission.principal, submission.key)
            if name in seen:
                continue  # the same key twice in one batch: the later one replays alone
            seen.add(name)
            record = stored.get(name)
            if record is None:
                accepted.append(index)
                continue
            try:
                replayed(submission, idempotency.check(record, submission.fingerprint))
                self.done[index] = submission
            except IdempotencyConflict as error:
                self.done[index] = error
        return accepted

    def _post(self, kind: Kind, positions: list[int]) -> None:
        submissions = [self.batch[index] for index in positions]
        context = Context(
            self.now,
            self.policy,
            self.programme,
            [submission.caller for submission in submissions],
            wait=self.wait,
        )
        outcomes = kind.post_many(self.session, [s.write for s in submissions], context)
        for index, submission, outcome in zip(positions, submissions, outcomes, strict=True):
            if isinstance(outcome, Busy):
                self.busy.add(index)
            elif isinstance(outcome, Alone):
                continue
            elif isinstance(outcome, TallyError):
                if submission.key is not None and is_final_answer(outcome):
                    self._remember(submission, outcome.status, refusal_body(outcome))
                self.done[index] = outcome  # else the key stays unused: a retry may succeed
            else:
                submission.outcome = outcome
                if submission.key is not None:
                    status, body = kind.answer(self.session, submission.write, outcome, context)
                    submission.status, submission.body = status, body
                    self._remember(submission, status, body)
                self.done[index] = submission

    def _remember(self, submission: Submission, status: int, body: str) -> None:
        assert submission.principal is not None
        assert submission.key is not None
        self.remembered.append(
            idempotency.Answer(
                submission.principal, submission.key, submission.fingerprint, status, body
            )
        )
