"""Adjustments within guardrails, on SQLite and PostgreSQL: within the requester's limit (a staff
role's, or the API's for an operator channel's key) they post, above it they wait for a staff
member in an approving role, who posts them exactly once (however many approvals race) or
rejects them before the request's deadline; from the deadline on a request is expired for every
reader, and no decision lands on it, even racing; the impossible is refused; every step is in the
audit log; refusals write nothing."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from support.race import race
from tally.adjustments import repository
from tally.adjustments import service as requests
from tally.adjustments.domain import RequestStatus
from tally.adjustments.models import AdjustmentRequest
from tally.audit.models import AuditEntry
from tally.config import Settings
from tally.db.session import Database
from tally.errors import (
    AdjustmentTooLarge,
    Forbidden,
    InsufficientPoints,
    NotAnApprover,
    OwnRequest,
    RequestExpired,
    RequestNotPending,
    TallyError,
)
from tally.flows import enrolment
from tally.flows import staff_adjustments as flow
from tally.kit.clock import utcnow
from tally.ledger import service as ledger
from tally.ledger.domain import Origin
from tally.ledger.models import EntryKind, JournalEntry
from tally.ledger.posting import policy_for
from tally.members.service import Identity
from tally.partners import service as partners
from tally.programme.domain import Programme, StaffRules
from tally.programme.runtime import default_programme
from tally.staff import service as staff
from tally.staff.models import StaffRole

RULES = StaffRules(
    adjustment_limits={"admin": 100_000, "support": 5_000, "finance": 20_000},
    approver_roles=["admin", "finance"],
    max_adjustment=10_000_000,
)
PROGRAMME = default_programme(Settings()).model_copy(update={"staff": RULES})
POLICY = policy_for(PROGRAMME, Settings())
_serial = itertools.count()


def _staff(db: Database, role: StaffRole) -> flow.Actor:
    with db.write() as session:
        user = staff.create(session, f"s{next(_serial)}", "a-long-password", role, "", utcnow())
        return flow.Actor(user.id, role.value, "203.0.113.7")


def _member(db: Database, points: int = 0) -> int:
    with db.write() as session:
        member_id, _ = enrolment.enrol(
            session, Identity("phone", f"1390{next(_serial):07}"), {}, utcnow()
        )
        if points:
            ledger.adjust(session, Origin(), member_id, points, "opening", utcnow(), POLICY)
    return member_id


def _adjust(db: Database, actor: flow.Actor, member_id: int, points: int) -> flow.Adjusted:
    with db.write() as session:
        return flow.adjust(
            session,
            actor,
            member_id,
            points,
            "goodwill",
            programme=PROGRAMME,
            version=3,
            policy=POLICY,
            now=utcnow(),
        )


def _approve(db: Database, actor: flow.Actor, request_id: int) -> AdjustmentRequest:
    with db.write() as session:
        return flow.approve(
            session, actor, request_id, programme=PROGRAMME, policy=POLICY, now=utcnow()
        )


def _available(db: Database, member_id: int) -> int:
    with db.read() as session:
        return ledger.balance(session, member_id, utcnow(), PROGRAMME.zone).available


def _adjustments(db: Database, member_id: int) -> int:
    with db.read() as session:
        query = select(func.count()).where(
            JournalEntry.member_id == member_id, JournalEntry.kind == EntryKind.ADJUST
        )
        return int(session.scalar(query) or 0)


def _request(db: Database, request_id: int) -> AdjustmentRequest:
    with db.read() as session:
        return requests.get(session, request_id)


def _audit(
    db: Database, member_id: int
) -> list[tuple[str, str, dict[str, object] | None, str | None]]:
    with db.read() as session:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.member_id == member_id).order_by(AuditEntry.id)
        )
        return [(row.actor, row.action, row.details, row.address) for row in rows]


def _counts(db: Database) -> tuple[int, int, int]:
    with db.read() as session:
        return (
            int(session.scalar(select(func.count()).select_from(JournalEntry)) or 0),
            int(session.scalar(select(func.count()).select_from(AdjustmentRequest)) or 0),
            int(session.scalar(select(func.count()).select_from(AuditEntry)) or 0),
        )


@pytest.mark.parametrize(
    ("role", "limit"), [(StaffRole.SUPPORT, 5_000), (StaffRole.ADMIN, 100_000)]
)
def test_within_the_role_limit_an_adjustment_posts_at_once(
    database: Database, role: StaffRole, limit: int
) -> None:
    actor = _staff(database, role)
    member = _member(database, points=limit)

    credited = _adjust(database, actor, member, limit)
    debited = _adjust(database, actor, member, -limit)

    assert credited.entry_id is not None
    assert credited.request is None
    assert debited.entry_id is not None
    assert debited.request is None
    assert _available(database, member) == limit
    assert [action for _actor, action, _details, _address in _audit(database, member)] == [
        "member.adjust",
        "member.adjust",
    ]
    assert _audit(database, member)[0][0] == f"staff:{actor.staff_id}"
    assert _audit(database, member)[0][3] == "203.0.113.7"


@pytest.mark.parametrize(
    ("role", "points"),
    [
        (StaffRole.SUPPORT, 5_001),
        (StaffRole.SUPPORT, -5_001),
        (StaffRole.ADMIN, 100_001),
        (StaffRole.OPS, 1),
    ],  # ops is not listed: every adjustment needs approval
)
def test_above_the_role_limit_an_adjustment_becomes_a_pending_request(
    database: Database, role: StaffRole, points: int
) -> None:
    actor = _staff(database, role)
    member = _member(database, points=10_000)
    entries = _counts(database)[0]

    filed = _adjust(database, actor, member, points).request

    assert filed is not None
    stored = _request(database, filed.id)
    assert (stored.member_id, stored.points, stored.reason, stored.status) == (
        member,
        points,
        "goodwill",
        RequestStatus.PENDING,
    )
    assert (stored.requested_by, stored.requester_role) == (actor.staff_id, role.value)
    assert (stored.role_limit, stored.programme_version) == (RULES.limit_of(role.value), 3)
    assert _counts(database)[0] == entries  # nothing posted
    assert _available(database, member) == 10_000
    assert _audit(database, member)[-1][1] == "adjustment.request"


def test_another_approver_posts_the_request_once(database: Database) -> None:
    requester = _staff(database, StaffRole.SUPPORT)
    approver = _staff(database, StaffRole.FINANCE)
    member = _member(database)
    filed = _adjust(database, requester, member, 50_000).request
    assert filed is not None

    approved = _approve(database, approver, filed.id)
    with pytest.raises(RequestNotPending, match="already approved"):
        _approve(database, approver, filed.id)

    assert _available(database, member) == 50_000
    assert _adjustments(database, member) == 1
    stored = _request(database, filed.id)
    assert stored.status is RequestStatus.APPROVED
    assert (stored.decided_by, stored.entry_id is not None) == (approver.staff_id, True)
    assert approved.id == filed.id
    log = _audit(database, member)
    assert [entry[1] for entry in log] == ["adjustment.request", "adjustment.approve"]
    assert log[-1][0] == f"staff:{approver.staff_id}"
    assert log[-1][2] is not None
    assert log[-1][2]["points"] == 50_000


def test_concurrent_approvals_post_one_adjustment(database: Database) -> None:
    requester = _staff(database, StaffRole.SUPPORT)
    approvers = [_staff(database, StaffRole.ADMIN) for _ in range(4)]
    member = _member(database)
    filed = _adjust(database, requester, member, 8_000).request
    assert filed is not None

    outcomes = race(4, lambda index: _approve(database, approvers[index], filed.id))

    assert sum(isinstance(outcome, AdjustmentRequest) for outcome in outcomes) == 1
    assert all(
        isinstance(outcome, AdjustmentRequest | RequestNotPending) for outcome in outcomes
    ), outcomes
    assert _available(database, member) == 8_000
    assert _adjustments(database, member) == 1
    assert [entry[1] for entry in _audit(database, member)].count("adjustment.approve") == 1


@pytest.mark.parametrize(
    ("decider_role", "same_person", "error"),
    [
        (StaffRole.ADMIN, True, OwnRequest),  # an approver cannot approve their own request
        (StaffRole.SUPPORT, False, NotAnApprover),
        (StaffRole.OPS, False, NotAnApprover),
    ],
)
def test_the_requester_and_non_approvers_cannot_decide(
    database: Database, decider_role: StaffRole, same_person: bool, error: type[TallyError]
) -> None:
    requester = _staff(database, StaffRole.ADMIN)
    decider = requester if same_person else _staff(database, decider_role)
    member = _member(database)
    filed = _adjust(database, requester, member, 200_000).request
    assert filed is not None
    before = _counts(database)

    with pytest.raises(error) as approving:
        _approve(database, decider, filed.id)
    with pytest.raises(error), database.write() as session:
        flow.reject(
            session, decider, filed.id, "no", programme=PROGRAMME, policy=POLICY, now=utcnow()
        )

    assert _counts(database) == before
    assert _request(database, filed.id).status is RequestStatus.PENDING
    if error is OwnRequest:
        assert "own" in str(approving.value)
    else:
        assert "admin, finance" in str(approving.value)  # says who may


def test_a_rejected_request_posts_nothing_and_cannot_be_approved(database: Database) -> None:
    requester = _staff(database, StaffRole.SUPPORT)
    approver = _staff(database, StaffRole.ADMIN)
    member = _member(database)
    filed = _adjust(database, requester, member, 9_000).request
    assert filed is not None

    with database.write() as session:
        flow.reject(
            session,
            approver,
            filed.id,
            "no receipt",
            programme=PROGRAMME,
            policy=POLICY,
            now=utcnow(),
        )
    with pytest.raises(RequestNotPending, match="already rejected"):
        _approve(database, approver, filed.id)

    stored = _request(database, filed.id)
    assert (stored.status, stored.decision_note, stored.entry_id) == (
        RequestStatus.REJECTED,
        "no receipt",
        None,
    )
    assert _adjustments(database, member) == 0
    assert _available(database, member) == 0
    assert _audit(database, member)[-1][1:3] == (
        "adjustment.reject",
        {
            "request": filed.id,
            "points": 9_000,
            "requested_by": requester.staff_id,
            "note": "no receipt",
        },
    )


def test_only_the_requester_withdraws_a_request(database: Database) -> None:
    requester = _staff(database, StaffRole.SUPPORT)
    other = _staff(database, StaffRole.ADMIN)
    member = _member(database)
    filed = _adjust(database, requester, member, 6_000).request
    assert filed is not None

    with pytest.raises(Forbidden), database.write() as session:
        flow.withdraw(session, other, filed.id, utcnow())
    with database.write() as session:
        flow.withdraw(session, requester, filed.id, utcnow())
    with pytest.raises(RequestNotPending):
        _approve(database, other, filed.id)
    assert _request(database, filed.id).status is RequestStatus.WITHDRAWN
    assert _adjustments(database, member) == 0


@pytest.mark.parametrize(
    ("max_points", "ceiling"), [(1_000_000_000, 10_000_000), (2_000_000, 2_000_000)]
)
def test_an_impossible_amount_is_refused_with_the_real_limit(
    database: Database, max_points: int, ceiling: int
) -> None:
    actor = _staff(database, StaffRole.ADMIN)
    member = _member(database)
    policy = policy_for(PROGRAMME, Settings(max_points_per_operation=max_points))
    before = _counts(database)

    with pytest.raises(AdjustmentTooLarge) as refused, database.write() as session:
        flow.adjust(
            session,
            actor,
            member,
            1_000_000_000,
            "fat finger",
            programme=PROGRAMME,
            version=None,
            policy=policy,
            now=utcnow(),
        )

    assert f"at most {ceiling:,} points" in str(refused.value)
    assert refused.value.extra == {"limit": ceiling}
    assert _counts(database) == before


def test_a_debit_the_member_cannot_cover_is_not_even_requested(database: Database) -> None:
    actor = _staff(database, StaffRole.SUPPORT)
    member = _member(database, points=100)
    before = _counts(database)

    with pytest.raises(InsufficientPoints):
        _adjust(database, actor, member, -6_000)

    assert _counts(database) == before


def test_an_approval_the_balance_no_longer_covers_leaves_the_request_pending(
    database: Database,
) -> None:
    requester = _staff(database, StaffRole.SUPPORT)
    approver = _staff(database, StaffRole.ADMIN)
    member = _member(database, points=7_000)
    filed = _adjust(database, requester, member, -7_000).request
    assert filed is not None
    _adjust(database, requester, member, -5_000)  # spent meanwhile, within the limit
    before = _counts(database)

    with pytest.raises(InsufficientPoints):
        _approve(database, approver, filed.id)

    assert _counts(database) == before
    assert _request(database, filed.id).status is RequestStatus.PENDING


def test_pending_lists_and_counts(database: Database) -> None:
    requester = _staff(database, StaffRole.SUPPORT)
    approver = _staff(database, StaffRole.ADMIN)
    first, second = _member(database), _member(database)
    filed = [
        _adjust(database, requester, member, 6_000).request for member in (first, second, first)
    ]
    ids = [request.id for request in filed if request is not None]
    _approve(database, approver, ids[1])

    with database.read() as session:
        assert requests.pending_count(session, utcnow()) == 2
        assert [row.id for row in requests.pending(session, utcnow())] == [ids[0], ids[2]]
        assert [row.id for row in requests.pending(session, utcnow(), first)] == [ids[0], ids[2]]
        assert requests.pending(session, utcnow(), second) == []
        assert [row.id for row in requests.recently_decided(session, utcnow())] == [ids[1]]


# --- Requests expire at their deadline ---------------------------------------------------------

T0 = datetime(2026, 12, 3, 1, 0, tzinfo=UTC)
TTL = timedelta(hours=RULES.request_ttl_hours)
TICK = timedelta(microseconds=1)


def _file(
    db: Database,
    actor: flow.Requester,
    member_id: int,
    points: int,
    now: datetime = T0,
    programme: Programme = PROGRAMME,
) -> AdjustmentRequest:
    """File a request at ``now`` (``points`` above the actor's limit)."""
    with db.write() as session:
        filed = flow.adjust(
            session,
            actor,
            member_id,
            points,
            "goodwill",
            programme=programme,
            version=3,
            policy=POLICY,
            now=now,
        ).request
    assert filed is not None
    return filed


def _decide_at(
    db: Database, actor: flow.Actor, request_id: int, now: datetime, how: str
) -> AdjustmentRequest:
    with db.write() as session:
        if how == "approve":
            return flow.approve(
                session, actor, request_id, programme=PROGRAMME, policy=POLICY, now=now
            )
        if how == "reject":
            return flow.reject(
                session, actor, request_id, "late", programme=PROGRAMME, policy=POLICY, now=now
            )
        return flow.withdraw(session, actor, request_id, now)


def test_a_request_stores_its_deadline_from_the_programme_when_filed(database: Database) -> None:
    requester = _staff(database, StaffRole.SUPPORT)
    member = _member(database)
    short = PROGRAMME.model_copy(
        update={"staff": RULES.model_copy(update={"request_ttl_hours": 5})}
    )

    filed = _file(database, requester, member, 6_000, programme=short)
    later = _file(database, requester, member, 6_000)  # the programme changed since

    assert _request(database, filed.id).deadline == T0 + timedelta(hours=5)
    assert _request(database, later.id).deadline == T0 + timedelta(hours=72)
    details = _audit(database, member)[0][2]
    assert details is not None
    assert details["deadline"] == (T0 + timedelta(hours=5)).isoformat()


def test_at_its_deadline_a_request_is_expired_for_every_reader(database: Database) -> None:
    requester = _staff(database, StaffRole.SUPPORT)
    approver = _staff(database, StaffRole.ADMIN)
    member = _member(database)
    filed = _file(database, requester, member, 6_000)
    deadline = T0 + TTL

    with database.read() as session:
        stored = requests.get(session, filed.id)
        assert requests.status_of(stored, deadline - TICK) is RequestStatus.PENDING
        assert [row.id for row in requests.pending(session, deadline - TICK)] == [filed.id]
        assert requests.pending_count(session, deadline - TICK) == 1
        assert requests.recently_decided(session, deadline - TICK) == []
        # From the deadline on, with no job having run: expired, listed as closed.
        assert requests.status_of(stored, deadline) is RequestStatus.EXPIRED
        assert requests.pending(session, deadline) == []
        assert requests.pending(session, deadline, member) == []
        assert requests.pending_count(session, deadline) == 0
        assert [row.id for row in requests.recently_decided(session, deadline)] == [filed.id]
    before = _counts(database)

    for how, actor in (("approve", approver), ("reject", approver), ("withdraw", requester)):
        with pytest.raises(RequestExpired) as refused:
            _decide_at(database, actor, filed.id, deadline, how)
        assert refused.value.extra == {"deadline": deadline.isoformat()}, how

    assert _counts(database) == before  # nothing posted, decided or audited
    assert _request(database, filed.id).status is RequestStatus.PENDING  # stored as filed
    assert _available(database, member) == 0


def test_a_request_is_approved_until_the_instant_before_its_deadline(database: Database) -> None:
    requester = _staff(database, StaffRole.SUPPORT)
    approver = _staff(database, StaffRole.ADMIN)
    member = _member(database)
    filed = _file(database, requester, member, 6_000)

    approved = _decide_at(database, approver, filed.id, T0 + TTL - TICK, "approve")

    assert approved.id == filed.id
    assert _request(database, filed.id).status is RequestStatus.APPROVED
    assert _adjustments(database, member) == 1


def test_the_conditional_update_itself_refuses_an_expired_request(database: Database) -> None:
    """Race-safe without the flow's checks: the statement that decides also names the deadline."""
    requester = _staff(database, StaffRole.SUPPORT)
    approver = _staff(database, StaffRole.ADMIN)
    filed = _file(database, requester, _member(database), 6_000)
    deadline = T0 + TTL

    with database.write() as session:
        late = repository.decide(
            session,
            filed.id,
            RequestStatus.APPROVED,
            staff_id=approver.staff_id,
            note=None,
            now=deadline,
        )
    assert late is False
    assert _request(database, filed.id).status is RequestStatus.PENDING
    with database.write() as session:
        on_time = repository.decide(
            session,
            filed.id,
            RequestStatus.APPROVED,
            staff_id=approver.staff_id,
            note=None,
            now=deadline - TICK,
        )
    assert on_time is True


@pytest.mark.parametrize("early", [0, 1])
def test_approvals_racing_the_deadline_post_at_most_once(database: Database, early: int) -> None:
    """Four approvers at once: ``early`` of them a second before the deadline, the others at
    it. At most the early one posts; the late ones are refused as expired (or, after the early
    one won, as no longer pending)."""
    requester = _staff(database, StaffRole.SUPPORT)
    approvers = [_staff(database, StaffRole.ADMIN) for _ in range(4)]
    member = _member(database)
    filed = _file(database, requester, member, 8_000)
    deadline = T0 + TTL

    def approve(index: int) -> object:
        moment = deadline - timedelta(seconds=1) if index < early else deadline
        return _decide_at(database, approvers[index], filed.id, moment, "approve")

    outcomes = race(4, approve)

    assert sum(isinstance(outcome, AdjustmentRequest) for outcome in outcomes) == early
    late = outcomes[early:]
    assert all(isinstance(outcome, RequestExpired | RequestNotPending) for outcome in late), late
    assert _adjustments(database, member) == early
    assert _available(database, member) == 8_000 * early
    stored = _request(database, filed.id).status
    assert stored is (RequestStatus.APPROVED if early else RequestStatus.PENDING)


# --- Requests filed by an operator channel's API key -----------------------------------------

API_RULES = RULES.model_copy(update={"api_adjustment_limit": 1_000})
API_PROGRAMME = PROGRAMME.model_copy(update={"staff": API_RULES})


def _key(db: Database, code: str = "MOBILE") -> flow.KeyActor:
    with db.write() as session:
        partner = partners.create_partner(session, code, code, utcnow())
        key, _plain = partners.issue_key(
            session,
            partner,
            partners.parse_scopes("admin,read"),
            "s" * 32,
            utcnow(),
            operator_channel=True,
        )
        return flow.KeyActor(partner.id, key.id, key.prefix, "198.51.100.9")


def test_an_api_key_adjusts_within_the_api_limit_at_once(database: Database) -> None:
    key = _key(database)
    member = _member(database)

    with database.write() as session:
        posted = flow.adjust(
            session,
            key,
            member,
            1_000,
            "goodwill",
            programme=API_PROGRAMME,
            version=3,
            policy=POLICY,
            now=utcnow(),
        )

    assert posted.request is None
    assert posted.posted is not None
    with database.read() as session:
        entry = session.get(JournalEntry, posted.entry_id)
        assert entry is not None
        assert (entry.partner_id, entry.staff_id) == (key.partner_id, None)
    assert _audit(database, member) == [
        (
            f"partner:{key.partner_id}",
            "member.adjust",
            {
                "points": 1_000,
                "reason": "goodwill",
                "entry": str(posted.entry_id),
                "key": key.key_prefix,
            },
            "198.51.100.9",
        )
    ]


def test_above_the_api_limit_a_key_files_a_request_a_staff_approver_posts(
    database: Database,
) -> None:
    key = _key(database)
    approver = _staff(database, StaffRole.FINANCE)
    member = _member(database)
    entries = _counts(database)[0]

    filed = _file(database, key, member, 1_001, programme=API_PROGRAMME)

    stored = _request(database, filed.id)
    assert (stored.requested_by, stored.requested_by_key_id, stored.requester_role) == (
        None,
        key.key_id,
        None,
    )
    assert (stored.points, stored.role_limit, stored.deadline) == (1_001, 1_000, T0 + TTL)
    assert _counts(database)[0] == entries  # nothing posted
    assert _audit(database, member)[-1][:2] == (f"partner:{key.partner_id}", "adjustment.request")

    _decide_at(database, approver, filed.id, T0 + timedelta(hours=1), "approve")

    stored = _request(database, filed.id)
    assert stored.status is RequestStatus.APPROVED
    with database.read() as session:
        entry = session.get(JournalEntry, stored.entry_id)
        assert entry is not None
        assert (entry.partner_id, entry.staff_id) == (key.partner_id, None)  # the requester's
    assert _available(database, member) == 1_001
    approval = _audit(database, member)[-1]
    assert (approval[0], approval[1]) == (f"staff:{approver.staff_id}", "adjustment.approve")
    assert approval[2] is not None
    assert approval[2]["requested_by"] == f"partner:{key.partner_id}"


def test_the_api_limit_defaults_to_zero_and_the_ceiling_applies(database: Database) -> None:
    key = _key(database)
    member = _member(database)

    filed = _file(database, key, member, 1)  # PROGRAMME declares no API limit
    with pytest.raises(AdjustmentTooLarge, match="at most 10,000,000 points"):
        _file(database, key, member, 10_000_001, programme=API_PROGRAMME)

    assert (filed.points, filed.role_limit) == (1, 0)
    assert _counts(database)[1] == 1


@pytest.mark.parametrize("requesters", [(True, True), (False, False)])
def test_a_request_names_exactly_one_requester(
    database: Database, requesters: tuple[bool, bool]
) -> None:
    staff_member = _staff(database, StaffRole.SUPPORT)
    key = _key(database)
    member = _member(database)
    by_staff, by_key = requesters

    row = AdjustmentRequest(
        member_id=member,
        points=5,
        reason="x",
        status=RequestStatus.PENDING,
        requested_by=staff_member.staff_id if by_staff else None,
        requested_by_key_id=key.key_id if by_key else None,
        role_limit=0,
        requested_at=T0,
        deadline=T0 + TTL,
    )

    with pytest.raises(IntegrityError), database.write() as session:
        repository.insert(session, row)
