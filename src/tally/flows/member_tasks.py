"""The tasks members see, with their progress in the current period ("shared 2 of 3 this
week"): each task's campaign counts it in a times cap, so progress is what those counters have
used, read for many members and tasks in one statement."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from tally.events import counters
from tally.programme.campaigns import task_cap
from tally.programme.domain import Programme
from tally.programme.shapes import Names
from tally.rules.engine import cap_key
from tally.rules.rule_book import Period


@dataclass(frozen=True, slots=True)
class TaskProgress:
    """A task of the programme and a member's progress in it this period."""

    campaign: str
    names: Names
    on: tuple[str, ...]
    goal: int
    period: str
    done: int  # events counted this period, at most the goal

    @property
    def complete(self) -> bool:
        return self.done >= self.goal


def progress(
    session: Session, programme: Programme, member_ids: Sequence[int], now: datetime
) -> dict[int, list[TaskProgress]]:
    """Each member's tasks in force today (the programme's zone), in the file's order."""
    today = now.astimezone(programme.zone).date()
    tasks = []
    for campaign in programme.campaigns:
        index, schedule = task_cap(campaign), campaign.schedule
        if index is None or campaign.task is None:
            continue
        if schedule and (
            (schedule.from_ and today < schedule.from_)
            or (schedule.until and today > schedule.until)
        ):
            continue
        tasks.append((campaign, index, campaign.task))
    keys = {
        (member_id, campaign.code): cap_key(
            campaign.code, index, Period(task.period), str(member_id), today
        )
        for member_id in member_ids
        for campaign, index, task in tasks
    }
    used = counters.used(session, keys.values())
    return {
        member_id: [
            TaskProgress(
                campaign.code,
                task.names or campaign.names,
                tuple(campaign.on),
                task.goal,
                task.period,
                min(task.goal, used[keys[member_id, campaign.code]]),
            )
            for campaign, _, task in tasks
        ]
        for member_id in member_ids
    }
