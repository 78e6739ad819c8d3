"""Referral: each member's code, a new member enrolled with one linked to its referrer, and the
referral completed — ``referral_completed`` raised for both members in the same transaction —
by the referred member's first event of a type the programme's ``referral.qualifying`` names.

Refused at enrolment (``referral_refused``): a member referring themselves, an identity that
has a member already, a code of a frozen or merged member. A referral whose members were ever
merged together, or whose referrer is no longer active when it completes, is completed with
the reason (``refused``) and rewards no one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session

from tally.audit import service as audit
from tally.engagement import repository
from tally.engagement.domain import clean_referral_code, new_referral_code
from tally.errors import (
    ConcurrentChange,
    Conflict,
    ReferralRefused,
    TallyError,
    UnknownReferralCode,
)
from tally.flows import enrolment
from tally.ledger import repository as ledger_repository
from tally.ledger.domain import Origin, Policy
from tally.ledger.orders import Busy
from tally.member_codes import service as member_codes
from tally.members import service as members
from tally.members.models import MemberStatus
from tally.partners import service as partners
from tally.programme.domain import Programme
from tally.rules.rule_book import RuleBook

REFERRAL_COMPLETED = "referral_completed"
TALLY = "tally"  # the source of the events Tally raises itself
ROLES = ("referrer", "referred")


def code_of(session: Session, member_id: int, now: datetime) -> str:
    """The member's referral code, made the first time it is asked for."""
    for _ in range(5):
        code = repository.referral_code(session, member_id)
        if code is not None:
            return code
        repository.insert_referral_code(session, member_id, new_referral_code(), now)
    raise ConcurrentChange("No free referral code was drawn; retry.")


def enrol_referred(
    session: Session,
    identity: members.Identity,
    profile: dict[str, Any],
    code: str,
    now: datetime,
    *,
    actor: str,
    partner_id: int | None = None,
) -> tuple[int, bool]:
    """Enrol a new member referred by the owner of ``code`` (see the module's docstring):
    ``(member id, created)``, as :func:`tally.flows.enrolment.enrol`."""
    if partner_id is not None:
        member_codes.require_lookups_left(session, partner_id, now)
    cleaned = clean_referral_code(code)
    referrer = None if cleaned is None else repository.owner_of(session, cleaned)
    if cleaned is None or referrer is None:
        raise UnknownReferralCode(
            f"No member has the referral code {code!r}.", field="referral_code"
        )
    status = ledger_repository.wallet_states(session, [referrer])[1].get(referrer)
    if status is MemberStatus.MERGED:
        raise ReferralRefused("The referral code's member was merged into another member.")
    if status is not MemberStatus.ACTIVE:
        raise ReferralRefused("The referral code's member is frozen.")
    member_id, created = enrolment.enrol(session, identity, profile, now, partner_id=partner_id)
    if member_id == referrer:
        raise ReferralRefused("A member cannot refer themselves.")
    if not created:
        raise ReferralRefused("Only a new member can be referred: this identity has a member.")
    repository.insert_referral(session, member_id, referrer, cleaned, now)
    audit.record(
        session,
        actor=actor,
        action="member.referred",
        member_id=member_id,
        details={"referrer": referrer, "code": cleaned},
        now=now,
    )
    return member_id, created


def tally_origin(session: Session, programme: Programme) -> Origin:
    """The origin of the points Tally's own events earn: the operator's first channel, which
    funds them."""
    channel = next((spec for spec in programme.partners if spec.operator_channel), None)
    if channel is None:
        raise Conflict("The programme has no operator channel to fund Tally's own events.")
    return Origin(partner_id=partners.partner_by_code(session, channel.code).id)


class Intake(Protocol):
    """:func:`tally.flows.event_intake.process`, which calls :func:`complete` and is passed in
    (it imports this module)."""

    def __call__(
        self,
        session: Session,
        origin: Origin,
        reported: Sequence[Any],
        now: datetime,
        policy: Policy,
        programme: Programme,
        book: RuleBook,
        *,
        wait: bool = ...,
        source: str | None = ...,
    ) -> Sequence[object]: ...


def complete(
    session: Session,
    programme: Programme,
    book: RuleBook,
    processed: Iterable[Any],
    now: datetime,
    policy: Policy,
    intake: Intake,
    *,
    wait: bool,
) -> None:
    """Complete the pending referrals of the members whose first qualifying event is among the
    events just stored (``Processed`` of the intake), and raise ``referral_completed`` for both
    members of each through ``intake``, in the same transaction."""
    spec = programme.referral
    if spec is None:
        return
    firsts: dict[int, Any] = {}
    for done in processed:
        if not done.repeat and done.event.type in spec.qualifying:
            firsts.setdefault(done.member_id, done.event)
    referrers = repository.pending(session, list(firsts))
    if not referrers:
        return
    refused = _refusals(session, referrers)
    marked = repository.complete(
        session,
        {referred: (firsts[referred].event_id, refused.get(referred)) for referred in referrers},
        now,
    )
    for referred in sorted(marked):
        audit.record(
            session,
            actor="system",
            action="member.referral_completed",
            member_id=referred,
            details={
                "referrer": referrers[referred],
                "event_id": firsts[referred].event_id,
                "refused": refused.get(referred),
            },
            now=now,
        )
    raised = [
        replace(
            firsts[referred],
            type=REFERRAL_COMPLETED,
            event_id=f"tally:referral:{referred}:{role}",
            member_id=member,
            amount=None,
            currency=None,
            items=(),
            channel=None,
            attributes={"role": role},
            refers_to=None,
            payload={"attributes": {"role": role}, "referred": referred},
        )
        for referred in sorted(marked)
        if referred not in refused
        for role, member in zip(ROLES, (referrers[referred], referred), strict=True)
    ]
    if not raised:
        return
    origin = tally_origin(session, programme)
    results = intake(session, origin, raised, now, policy, programme, book, wait=wait, source=TALLY)
    for result in results:
        if isinstance(result, TallyError):
            raise result
        if isinstance(result, Busy):
            raise ConcurrentChange("A member of a referral is busy; retry.")


def _refusals(session: Session, referrers: dict[int, int]) -> dict[int, str]:
    """Why each referral rewards no one, when it does not: its members were merged together
    (even if unmerged since), or the referrer is frozen or merged."""
    ids = sorted({*referrers, *referrers.values()})
    pairs = repository.merged_pairs(session, ids)
    statuses = ledger_repository.wallet_states(session, ids)[1]
    refused = {}
    for referred, referrer in referrers.items():
        if frozenset((referred, referrer)) in pairs:
            refused[referred] = "merged_together"
        elif statuses.get(referrer) is MemberStatus.MERGED:
            refused[referred] = "referrer_merged"
        elif statuses.get(referrer) is not MemberStatus.ACTIVE:
            refused[referred] = "referrer_frozen"
    return refused
