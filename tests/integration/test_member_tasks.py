"""Tasks with progress: read from the times caps' counters for many members in one statement,
in the period of the programme's zone; a one-time task done stays done."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from support.event_programme import CAMPAIGNS, apply_campaigns
from tally.config import Settings
from tally.db.session import Database
from tally.flows import event_intake, member_tasks
from tally.flows.enrolment import enrol
from tally.flows.event_intake import Reported
from tally.ledger.domain import Origin
from tally.ledger.posting import policy_for
from tally.members.service import Identity
from tally.partners import service as partners

FRIDAY = datetime(2026, 12, 4, 4, 0, tzinfo=UTC)
SUNDAY_NIGHT = datetime(2026, 12, 6, 15, 30, tzinfo=UTC)  # 23:30 Sunday in Shanghai
MONDAY = datetime(2026, 12, 6, 16, 30, tzinfo=UTC)  # 00:30 Monday in Shanghai: a new week
TASKS = [
    {
        "code": "SHARE",
        "names": {"zh-CN": "分享", "en": "Share"},
        "on": ["share"],
        "task": {"goal": 3, "period": "week"},
        "caps": [{"per": "member", "period": "week", "times": 3}],
        "rules": [{"code": "shared", "award": {"points": 10}}],
    },
    {
        "code": "PROFILE",
        "names": {"zh-CN": "完善资料", "en": "Profile"},
        "on": ["profile_completed"],
        "task": {"names": {"zh-CN": "填写资料", "en": "Fill in your profile"}, "goal": 1,
                 "period": "campaign"},
        "caps": [{"per": "member", "period": "campaign", "times": 1}],
        "rules": [{"code": "done", "award": {"points": 100}}],
    },
]  # fmt: skip


def test_progress_counts_this_periods_events_for_each_member(
    database: Database, settings: Settings
) -> None:
    programme = apply_campaigns(database, [*CAMPAIGNS, *TASKS])
    policy = policy_for(programme, settings)
    with database.write() as session:
        partner_id = partners.create_partner(session, "APP", "App", FRIDAY).id
        ann, bob = (
            enrol(session, Identity("phone", phone), {}, FRIDAY)[0]
            for phone in ("13900000001", "13900000002")
        )
    sent = [
        Reported("share", "s1", ann, FRIDAY),
        Reported("share", "s2", ann, SUNDAY_NIGHT),
        Reported("profile_completed", "p1", ann, FRIDAY),
        Reported("profile_completed", "p2", ann, FRIDAY + timedelta(hours=1)),
        Reported("share", "s3", bob, MONDAY),
    ]
    with database.write() as session:
        results = event_intake.process(
            session,
            Origin(partner_id=partner_id),
            sent,
            MONDAY,
            policy,
            programme,
            event_intake.book_for(programme),
        )
    assert [getattr(result, "points", None) for result in results] == [10, 10, 100, 0, 10]

    with database.read() as session:
        sunday = member_tasks.progress(session, programme, [ann, bob], SUNDAY_NIGHT)
        monday = member_tasks.progress(session, programme, [ann, bob], MONDAY)

    assert [(t.campaign, t.done, t.goal, t.complete) for t in sunday[ann]] == [
        ("SHARE", 2, 3, False),
        ("PROFILE", 1, 1, True),
    ]
    assert sunday[ann][1].names.en == "Fill in your profile"
    assert [(t.campaign, t.done) for t in sunday[bob]] == [("SHARE", 0), ("PROFILE", 0)]
    assert [(t.campaign, t.done) for t in monday[ann]] == [("SHARE", 0), ("PROFILE", 1)]
    assert [(t.campaign, t.done) for t in monday[bob]] == [("SHARE", 1), ("PROFILE", 0)]
