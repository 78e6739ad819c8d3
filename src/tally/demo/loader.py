"""The demo ecosystem: a carrier, three partner brands, staff, members with up to 18 months of
history (replayed by :mod:`tally.demo.history`)."""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tally.config import Settings
from tally.db.raw import savepoint
from tally.demo import auctions as demo_auctions
from tally.demo import engagement as demo_engagement
from tally.demo import events as demo_events
from tally.demo import families as demo_families
from tally.demo import history as demo_history
from tally.demo import mall as demo_mall
from tally.demo import memberships as demo_memberships
from tally.demo import tiers as demo_tiers
from tally.errors import TallyError
from tally.flows import enrolment
from tally.kit.clock import utcnow
from tally.ledger import jobs
from tally.ledger import posting as ledger_posting
from tally.ledger import service as ledger
from tally.ledger.domain import Origin, Policy
from tally.members import service as members
from tally.members.models import Member
from tally.partners import service as partners
from tally.partners.models import Partner
from tally.programme import service as programme
from tally.staff import service as staff
from tally.staff.models import StaffRole

SEED = 20261126
MEMBER_COUNT = 300
# Members joined over 14 months, the first of them 18 months ago: long enough for the points of
# those who stopped coming to have expired (they last a year).
HISTORY_DAYS = 540
JOINING_DAYS = 420
DEMO_PROGRAMME = Path(__file__).with_name("programme.yaml")
# The partners come from the programme file; each gets one API key with these scopes.
PARTNER_SCOPES = (
    ("MOBILE", "members,earn,redeem,transfer,read,admin,catalog,mall"),
    ("SHOP", "members,earn,redeem,read,events"),
    ("FOOD", "members,earn,redeem,read"),
    ("HOTEL", "members,earn,redeem,read"),
)
STAFF = (
    ("admin", "Ada Admin", StaffRole.ADMIN),
    ("support", "Sam Support", StaffRole.SUPPORT),
    ("auditor", "Avery Auditor", StaffRole.AUDITOR),
)
DEMO_PASSWORD = "tally-demo-2026"  # noqa: S105 - printed for newcomers; demo only
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = (
    "伟",
    "芳",
    "娜",
    "敏",
    "静",
    "磊",
    "洋",
    "艳",
    "勇",
    "军",
    "杰",
    "娟",
    "涛",
    "明",
    "超",
    "霞",
)
CITIES = ("北京", "上海", "广州", "深圳", "杭州", "成都", "武汉", "西安", "南京", "重庆")


@dataclass
class Summary:
    loaded: bool
    members: int = 0
    entries: int = 0
    events: int = 0
    items: int = 0
    api_keys: dict[str, str] = field(default_factory=dict)
    staff: list[str] = field(default_factory=list)
    sample_member_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_if_empty(session: Session, settings: Settings) -> Summary:
    """Load the demo unless the database already has partners."""
    if session.scalar(select(func.count()).select_from(Partner)):
        return Summary(loaded=False)
    return load(session, settings)


def load(session: Session, settings: Settings, member_count: int = MEMBER_COUNT) -> Summary:
    """Create the demo partners, staff and members, replaying their activity."""
    rng = random.Random(SEED)
    now = utcnow()
    summary = Summary(loaded=True)
    text = DEMO_PROGRAMME.read_text(encoding="utf-8")
    demo_programme = programme.validate(text, DEMO_PROGRAMME.name)
    programme.apply(session, demo_programme, text, "demo", now - timedelta(days=400))
    policy = ledger_posting.policy_for(demo_programme, settings)
    partner_ids: dict[str, int] = {}
    for code, scopes in PARTNER_SCOPES:
        partner = partners.partner_by_code(session, code)
        partner_ids[code] = partner.id
        _key, plain = partners.issue_key(
            session,
            partner,
            partners.parse_scopes(scopes),
            settings.resolved_secret(),
            now,
            operator_channel=demo_programme.is_operator_channel(code),
        )
        summary.api_keys[code] = plain
    staff_ids: dict[str, int] = {}
    for username, display, role in STAFF:
        user = staff.create(
            session, username, DEMO_PASSWORD, role, display, now - timedelta(days=400)
        )
        staff_ids[username] = user.id
        summary.staff.append(username)
    start = now - timedelta(days=HISTORY_DAYS)
    member_ids = []
    first = int(session.scalar(select(func.max(Member.id))) or 0) + 1
    for index in range(member_count):
        joined = start + timedelta(days=rng.randint(0, JOINING_DAYS), minutes=rng.randint(0, 1440))
        # Member #17's phone is 13800000017, its shop id shop-00017 (the ids a new database
        # hands out: the demo loads into an empty one).
        number = first + index
        phone = f"138{number:08d}"
        profile = {
            "name": rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(("", *GIVEN)),
            "phone": phone,
            "city": rng.choice(CITIES),
        }
        member_id, _created = enrolment.enrol(
            session,
            members.Identity("phone", phone),
            profile,
            joined,
            partner_id=partner_ids["MOBILE"],
        )
        shop_id = members.Identity("shop", f"shop-{member_id:05d}")
        enrolment.link(session, member_id, shop_id, partner_ids["SHOP"], joined)
        if rng.random() < 0.5:
            food_id = members.Identity("food", f"f{member_id:06d}")
            enrolment.link(session, member_id, food_id, partner_ids["FOOD"], joined)
        member_ids.append(member_id)
        summary.entries += demo_history.replay(
            session, rng, member_id, joined, now, partner_ids, policy, demo_programme
        )
    _gifts(session, rng, member_ids, now, partner_ids, policy)
    demo_tiers.seed(session, demo_programme, member_ids, now)
    demo_memberships.seed(session, demo_programme, member_ids, partner_ids["SHOP"], now)
    demo_families.seed(session, demo_programme, member_ids, partner_ids["FOOD"], now, policy)
    summary.items = demo_mall.seed(
        session, demo_programme, member_ids, partner_ids["MOBILE"], staff_ids["admin"], now, policy
    )
    summary.events = demo_events.report(
        session, rng, member_ids, partner_ids["SHOP"], now, policy, demo_programme
    )
    summary.events += demo_engagement.report(
        session, rng, member_ids, partner_ids["MOBILE"], now, policy, demo_programme
    )
    demo_auctions.seed(session, partner_ids["MOBILE"], now, policy)
    session.flush()
    report = jobs.expire(_same_session(session), now)
    summary.entries += report.members
    summary.members = member_count
    summary.sample_member_id = member_ids[0] if member_ids else None
    return summary


def _same_session(session: Session) -> Any:
    from contextlib import contextmanager

    @contextmanager
    def unit() -> Any:
        yield session

    return unit


def _gifts(
    session: Session,
    rng: random.Random,
    member_ids: list[int],
    now: datetime,
    partner_ids: dict[str, int],
    policy: Policy,
) -> None:
    origin = Origin(partner_id=partner_ids["MOBILE"])
    for number in range(len(member_ids) // 10):
        giver, receiver = rng.sample(member_ids, 2)
        try:
            with savepoint(session):  # a refusal may come after the wallets moved
                ledger.transfer(
                    session,
                    origin,
                    giver,
                    receiver,
                    rng.randint(5, 50),
                    f"gift-{number}",
                    now - timedelta(hours=rng.randint(1, 72)),
                    policy,
                )
        except TallyError:
            continue


def welcome(summary: Summary, host: str, port: int) -> str:
    """What a newcomer needs: where things are and how to sign in."""
    base = f"http://{host}:{port}"
    lines = [
        "",
        "Tally is starting" + (" with the demo ecosystem loaded." if summary.loaded else "."),
        f"  API docs         {base}/docs   (OpenAPI: {base}/openapi.json)",
        f"  Operator console {base}/console   sign in as admin / support / auditor, "
        f"password {DEMO_PASSWORD!r}",
        f"  Member pages     {base}/m   (the console's member page has 'open as member')",
    ]
    if summary.api_keys:
        lines.append("  Partner API keys (shown once):")
        lines.extend(f"    {code:<7} {key}" for code, key in summary.api_keys.items())
    elif not summary.loaded:
        lines.append("  (demo data was already loaded earlier; keys are shown only once)")
    lines.append("")
    return "\n".join(lines)
