"""A member's engagement for the operator's app: the sign-in streak, the tasks with their
progress this period, the referral code with its share link, and signing in for today.

These are the member's own acts and cross every partner's events, so only the operator's own
channels may call them (the member's pages do the same through the same flow)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session
from starlette.responses import Response

from tally.access import domain as access
from tally.access.domain import Caller
from tally.api.deps import (
    Mutation,
    Reader,
    clock_now,
    database,
    in_executor,
    mutation,
    policy,
    programme,
    reader,
)
from tally.api.event_schemas import EventOutcome
from tally.api.events import outcome_of
from tally.api.paths import MemberId
from tally.flows import member_engagement
from tally.members import service as members
from tally.partners.service import Scope

router = APIRouter(tags=["engagement"])
ACT = "read or act on a member's engagement (the member's own pages and app)"


class Task(BaseModel):
    campaign: str = Field(description="The campaign whose times cap counts the task.")
    names: dict[str, str] = Field(description="The task's names by locale.")
    on: list[str] = Field(description="The event types that count.")
    goal: int = Field(description="Events to complete the task in its period.")
    period: str = Field(description="day, week, month or year (the programme's zone).")
    done: int = Field(description="Events counted this period, at most the goal.")
    complete: bool


class Engagement(BaseModel):
    member_id: int
    streak: int = Field(description="Consecutive days signed in, still alive (today or yesterday).")
    signed_in_today: bool
    tasks: list[Task] = Field(description="The tasks in force today, in the programme's order.")
    referral_code: str = Field(
        description="The member's referral code as shown (`ABCDE-FGHJK`), made when first asked "
        "for; a new member enrolled with it is linked to this member."
    )
    share_url: str | None = Field(
        description="The programme's `referral.share_url` with the code, if it declares one."
    )


def _engagement(found: member_engagement.Engagement, member_id: int) -> Engagement:
    return Engagement(
        member_id=member_id,
        streak=found.streak,
        signed_in_today=found.signed_in_today,
        tasks=[
            Task(
                campaign=task.campaign,
                names=task.names.model_dump(by_alias=True),
                on=list(task.on),
                goal=task.goal,
                period=task.period,
                done=task.done,
                complete=task.complete,
            )
            for task in found.tasks
        ],
        referral_code=found.referral_code,
        share_url=found.share_url,
    )


@router.get("/v1/members/{member_id}/engagement", response_model=Engagement)
async def get_engagement(
    member_id: MemberId, read: Annotated[Reader, Depends(reader(Scope.READ))]
) -> Engagement:
    """The member's streak, tasks with progress and referral code (the operator's channels).
    The code is made the first time it is asked for, in a transaction of its own; every later
    answer gives the same code."""

    def check(session: Session, caller: Caller) -> None:
        access.require_operator_channel(caller, ACT)
        members.get(session, member_id)

    await read.run(check)

    def work() -> Engagement:
        now = clock_now(read.request)
        with database(read.request).write() as session:
            found = programme(read.request, session)
            page = member_engagement.engagement(session, member_id, now, found)
        return _engagement(page, member_id)

    return await in_executor(read.request, work)


@router.post(
    "/v1/members/{member_id}/sign-ins",
    response_model=EventOutcome,
    status_code=201,
    responses={200: {"description": "The member had already signed in today: the first outcome."}},
)
async def sign_in_today(
    member_id: MemberId, write: Annotated[Mutation, Depends(mutation(Scope.EVENTS))]
) -> Response:
    """Sign the member in for today on their behalf (the operator's channels): a `sign_in`
    event Tally raises itself, once per day of the programme's zone, priced by the campaigns
    on `sign_in` (streaks included). A second sign-in the same day answers the first outcome
    with `200` and writes nothing; a frozen or merged member is refused."""

    def work(session: Session) -> tuple[int, BaseModel]:
        access.require_operator_channel(write.holder, ACT)
        members.get(session, member_id)
        done = member_engagement.sign_in_today(
            session,
            member_id,
            clock_now(write.request),
            policy(write.request),
            programme(write.request, session),
        )
        return (200 if done.repeat else 201), outcome_of(done)

    return await write.run(work)
