"""The campaigns API: the programme's campaigns as they stand (status, budget use, the day's
points), pausing and resuming one without a new programme version, and its A/B results.

A partner's ``read`` key sees the campaigns' codes, names, event types, status and schedule
(what it may tell its customers); budgets, the day's points and results are the operator's
channels' to read, and only they pause and resume.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session
from starlette.responses import Response

from tally.access import domain as access
from tally.access.domain import Caller
from tally.api.deps import Mutation, Reader, clock_now, mutation, programme, reader
from tally.campaigns import service as campaigns
from tally.campaigns.domain import ArmResult, Status
from tally.campaigns.service import CampaignView
from tally.flows.event_intake import book_for
from tally.partners.domain import Scope
from tally.programme.domain import CURRENCY_EXPONENTS
from tally.programme.shapes import CODE_PATTERN

router = APIRouter(prefix="/v1/campaigns", tags=["campaigns"])
CampaignCode = Annotated[
    str, Path(pattern=CODE_PATTERN, max_length=64, description="The campaign's code.")
]


class Money(BaseModel):
    value: str = Field(description='An exact decimal string, e.g. "152.00".')
    currency: str = Field(description="ISO 4217: the programme's currency.")


class Campaign(BaseModel):
    """A campaign of the programme in force, at the moment asked (the programme's zone)."""

    code: str
    names: dict[str, str]
    on: list[str] = Field(description="The event types its rules run on.")
    status: Status = Field(
        description="`ended` after its last day; else `paused` while paused; else `scheduled` "
        "before its first day; else `running`."
    )
    starts: date | None = Field(description="First day of its schedule (none: always).")
    ends: date | None = Field(description="Last day of its schedule (none: open).")
    variants: list[str] = Field(description="The codes of its A/B variants.")
    holdout: str | None = Field(description='The share of members held out, e.g. "0.10".')
    budget: int | None = Field(
        default=None, description="Its budget in points (operator's channels only)."
    )
    budget_used: int | None = Field(
        default=None, description="Points its budget has given (operator's channels only)."
    )
    points_today: int | None = Field(
        default=None,
        description="Points it gave events of today (operator's channels only).",
    )
    changed_at: datetime | None = Field(
        default=None, description="When it was last paused or resumed (operator's channels)."
    )
    changed_by: str | None = Field(
        default=None, description="Who did: `staff:<id>` or `partner:<id>` (operator's channels)."
    )


class CampaignList(BaseModel):
    items: list[Campaign]


class ArmResults(BaseModel):
    arm: str | None = Field(
        description="A variant's code, `holdout`, or null: the campaign as written."
    )
    members: int = Field(description="Distinct members whose events reached the campaign.")
    events: int = Field(description="Events that reached it (applied or skipped by its rules).")
    points: int
    growth: int
    amount: Money = Field(description="The sum of those events' amounts.")


class CampaignResults(BaseModel):
    """Per arm, every event that reached the campaign's rules: the lift of a variant is read
    against the holdout (docs/rules.md)."""

    campaign: str
    arms: list[ArmResults]


def _campaign(view: CampaignView, caller: Caller) -> Campaign:
    shown = Campaign(
        code=view.code,
        names=view.names,
        on=view.on,
        status=view.status,
        starts=view.starts,
        ends=view.ends,
        variants=view.variants,
        holdout=view.holdout,
    )
    if not caller.is_operator_channel:
        return shown
    return shown.model_copy(
        update={
            "budget": view.budget,
            "budget_used": view.budget_used,
            "points_today": view.points_today,
            "changed_at": view.changed_at,
            "changed_by": view.changed_by,
        }
    )


def money(minor: int, currency: str) -> Money:
    """Minor units as an exact decimal string in ``currency``."""
    exponent = CURRENCY_EXPONENTS[currency]
    return Money(value=str(Decimal(minor).scaleb(-exponent)), currency=currency)


@router.get("", response_model=CampaignList)
async def list_campaigns(read: Annotated[Reader, Depends(reader(Scope.READ))]) -> CampaignList:
    """The campaigns of the programme in force, in file order, with their status now. A
    partner's key sees codes, names, event types, status and schedule; the operator's channels
    also budgets, budget used, points given today and the last pause or resume."""

    def work(session: Session, caller: Caller) -> CampaignList:
        found = programme(read.request, session)
        views = campaigns.campaigns(session, found, book_for(found), clock_now(read.request))
        return CampaignList(items=[_campaign(view, caller) for view in views])

    return await read.run(work)


@router.get("/{code}", response_model=Campaign)
async def get_campaign(
    code: CampaignCode, read: Annotated[Reader, Depends(reader(Scope.READ))]
) -> Campaign:
    """One campaign of the programme in force, as in the list; `404 not_found` for a code the
    programme does not have."""

    def work(session: Session, caller: Caller) -> Campaign:
        found = programme(read.request, session)
        now = clock_now(read.request)
        return _campaign(campaigns.campaign(session, found, book_for(found), code, now), caller)

    return await read.run(work)


@router.get("/{code}/results", response_model=CampaignResults)
async def campaign_results(
    code: CampaignCode, read: Annotated[Reader, Depends(reader(Scope.READ))]
) -> CampaignResults:
    """The campaign's A/B results per arm (the operator's channels): members, events, points,
    growth and the events' amounts, for every event that reached its rules — applied, or
    skipped for a false condition, a cap, a budget or the holdout."""

    def work(session: Session, caller: Caller) -> CampaignResults:
        access.require_operator_channel(caller, "read campaign results")
        found = programme(read.request, session)
        currency = found.currency.point_value.currency
        arms = campaigns.results(session, book_for(found), code)
        return CampaignResults(campaign=code, arms=[_arm(arm, currency) for arm in arms])

    return await read.run(work)


def _arm(result: ArmResult, currency: str) -> ArmResults:
    return ArmResults(
        arm=result.arm,
        members=result.members,
        events=result.events,
        points=result.points,
        growth=result.growth,
        amount=money(result.amount_minor, currency),
    )


async def _set_paused(write: Mutation, code: str, *, paused: bool) -> Response:
    def work(session: Session) -> tuple[int, BaseModel]:
        access.require_operator_channel(write.holder, "pause and resume campaigns")
        found = programme(write.request, session)
        client = write.request.client
        view = campaigns.set_paused(
            session,
            found,
            book_for(found),
            code,
            paused=paused,
            actor=f"partner:{write.holder.partner_id}",
            now=clock_now(write.request),
            address=client.host if client is not None else None,
            key=write.token.partition(".")[0],
        )
        return 200, _campaign(view, write.holder)

    return await write.run(work)


@router.post("/{code}/pause", response_model=Campaign)
async def pause_campaign(
    code: CampaignCode, write: Annotated[Mutation, Depends(mutation(Scope.ADMIN))]
) -> Response:
    """Pause a campaign (the operator's channels) without a new programme version: while
    paused its rules give nothing, and every outcome skips them as `paused`. Pausing a paused
    campaign changes nothing and answers its state; each change is in the audit log."""
    return await _set_paused(write, code, paused=True)


@router.post("/{code}/resume", response_model=Campaign)
async def resume_campaign(
    code: CampaignCode, write: Annotated[Mutation, Depends(mutation(Scope.ADMIN))]
) -> Response:
    """Resume a paused campaign (the operator's channels): its rules run again from the next
    event. Resuming a running campaign changes nothing and answers its state."""
    return await _set_paused(write, code, paused=False)
