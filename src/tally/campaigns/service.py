"""Campaign operations: pause and resume (audited, no new programme version), the campaigns
as they stand at a moment, and the A/B results per arm. Never commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.orm import Session

from tally.audit import service as audit
from tally.campaigns import repository
from tally.campaigns.domain import ArmResult, Status, arms_of, day_bounds, status_of
from tally.errors import NotFound
from tally.events import counters
from tally.programme.campaigns import Campaign
from tally.programme.domain import Programme
from tally.rules.engine import budget_key
from tally.rules.rule_book import CampaignSpec, RuleBook

PAUSE = "campaign.pause"
RESUME = "campaign.resume"


@dataclass(frozen=True, slots=True)
class CampaignView:
    """A campaign as it stands: the programme's definition, its status at the moment asked,
    its budget's use and the points it gave events of that day (the programme's zone)."""

    code: str
    names: dict[str, str]
    on: list[str]
    status: Status
    starts: date | None
    ends: date | None
    budget: int | None
    budget_used: int
    points_today: int
    variants: list[str]
    holdout: str | None
    changed_at: datetime | None  # the last pause or resume
    changed_by: str | None


def _spec(book: RuleBook, code: str) -> CampaignSpec:
    found = next((spec for spec in book.campaigns if spec.code == code), None)
    if found is None:
        raise NotFound(f"Campaign {code!r} does not exist in the programme in force.")
    return found


def _definition(programme: Programme, code: str) -> Campaign:
    return next(campaign for campaign in programme.campaigns if campaign.code == code)


def campaigns(
    session: Session, programme: Programme, book: RuleBook, now: datetime
) -> list[CampaignView]:
    """Every campaign of the programme in force, in file order, as it stands at ``now``."""
    states = repository.states(session)
    used = counters.used(session, [budget_key(spec.code) for spec in book.campaigns])
    today = now.astimezone(book.zone).date()
    points = repository.points_between(session, *day_bounds(now, book.zone))
    views = []
    for spec in book.campaigns:
        state = states.get(spec.code)
        definition = _definition(programme, spec.code)
        views.append(
            CampaignView(
                code=spec.code,
                names=definition.names.model_dump(by_alias=True),
                on=list(spec.on),
                status=status_of(spec, paused=bool(state and state.is_paused), today=today),
                starts=spec.starts,
                ends=spec.ends,
                budget=spec.budget,
                budget_used=used.get(budget_key(spec.code), 0),
                points_today=points.get(spec.code, 0),
                variants=[variant.code for variant in spec.variants],
                holdout=definition.holdout,
                changed_at=state.changed_at if state else None,
                changed_by=state.changed_by if state else None,
            )
        )
    return views


def campaign(
    session: Session, programme: Programme, book: RuleBook, code: str, now: datetime
) -> CampaignView:
    """One campaign as it stands at ``now``; ``not_found`` when the programme has none."""
    _spec(book, code)
    return next(view for view in campaigns(session, programme, book, now) if view.code == code)


def set_paused(
    session: Session,
    programme: Programme,
    book: RuleBook,
    code: str,
    *,
    paused: bool,
    actor: str,
    now: datetime,
    address: str | None = None,
    key: str | None = None,
) -> CampaignView:
    """Pause (or resume) a campaign of the programme in force: while paused its rules give
    nothing, explained as ``paused``. A change is written to the audit log (with the prefix of
    the API ``key`` that asked, if one did); asking for the state it is already in changes
    nothing and answers the state."""
    _spec(book, code)
    if repository.set_paused(session, code, paused=paused, by=actor, now=now):
        details: dict[str, object] = {"campaign": code}
        if key:
            details["key"] = key
        audit.record(
            session,
            actor=actor,
            action=PAUSE if paused else RESUME,
            details=details,
            address=address,
            now=now,
        )
    return campaign(session, programme, book, code, now)


def results(session: Session, book: RuleBook, code: str) -> list[ArmResult]:
    """The campaign's totals per arm (every arm it declares, those without events at zero),
    from the events stored so far."""
    spec = _spec(book, code)
    found = repository.results(session, code)
    declared = arms_of(spec)
    extra = sorted((arm for arm in found if arm not in declared), key=lambda arm: arm or "")
    return [found.get(arm, ArmResult(arm)) for arm in [*declared, *extra]]
