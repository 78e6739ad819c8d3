"""Every template compiles and every page renders, in both languages, with sample data."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from campaign_samples import campaign_samples
from coupon_samples import coupon_samples
from mall_samples import mall_samples

from tally.adjustments.domain import Guardrails
from tally.demo.loader import DEMO_PROGRAMME
from tally.families.domain import FamilyMode, FamilyRole, FamilyStatus
from tally.families.service import FamilyView, InvitationLine, MemberLine
from tally.flows.simulation import Period, Simulation
from tally.flows.status import PlanStatus
from tally.partners.models import Partner
from tally.privacy import service as privacy
from tally.privacy.domain import Collection, CollectionMethod, ConsentAct, Purpose
from tally.programme import loader
from tally.programme.changes import changes
from tally.programme.domain import Money, Programme
from tally.rules.simulation import Budget, Figures, Line, Report, TierDifference
from tally.staff.models import StaffRole, StaffUser
from tally.web import i18n, labels, tier_views
from tally.web.console import partners_page
from tally.web.console.adjustment_views import Confirmation, RequestRow
from tally.web.console.auth import Staff
from tally.web.console.consent_views import ConsentCard, PartnerChoice
from tally.web.console.programme_page import PlanResult, VersionDetail, VersionRow
from tally.web.console.simulate_page import Outcome
from tally.web.console.views import (
    ExpiringRow,
    HistoryPage,
    HistoryRow,
    HoldRow,
    IdentityRow,
    LotRow,
    MemberDetail,
    MemberSummary,
    MergeRow,
)
from tally.web.http import LanguageLink
from tally.web.member import views as member_views
from tally.web.member.privacy import ActRow, PartnerRow, PrivacyPage
from tally.web.sessions import Flash
from tally.web.templating import Renderer

NOW = datetime(2026, 11, 26, 4, 30, tzinfo=UTC)
ZONE = ZoneInfo("Asia/Shanghai")
PARTIALS = (
    "shared/",
    "member/_",
    "console/mall/_",
    "console/layout.html",
    "member/layout.html",
    "base.html",
)
DEMO_TEXT = DEMO_PROGRAMME.read_text(encoding="utf-8")
DEMO = loader.load(DEMO_TEXT)


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(i18n.load_translations(), lambda: ZONE, extra_globals={"labels": labels.ALL})


def chrome(locale: str, page_url: str = "/") -> dict[str, Any]:
    return {
        "request": None,
        "html_lang": locale,
        "currency": "AI豆",
        "languages": [LanguageLink("en", "English", "?lang=en", locale == "en")],
        "page_url": page_url,
        "csrf": "token",
        "flashes": [Flash("success", "ok"), Flash("error", "no")],
    }


def detail(status: str = "active") -> MemberDetail:
    later = NOW + timedelta(days=300)
    return MemberDetail(
        id=7,
        status=status,
        merged_into_id=9 if status == "merged" else None,
        frozen_reason="fraud <check>" if status == "frozen" else None,
        created_at=NOW,
        identities=[IdentityRow("phone", "138****0000"), IdentityRow("shop", "s-1")],
        profile={"name": "王芳", "phone": "138****0000", "birthday": None, "city": "上海"},
        available=1234,
        held=10,
        expiring=[ExpiringRow(date(2027, 1, 1), 1234)],
        lots=[
            LotRow(1, 100, 50, later, NOW, "live"),
            LotRow(2, 80, 0, NOW, NOW, "spent"),
            LotRow(3, 60, 0, NOW, NOW, "expired"),
        ],
        holds=[HoldRow("h", 10, 0, "active", "order-1", "Shop", later, NOW)],
        history=HistoryPage(
            rows=[
                HistoryRow(kind, 5 - index, 0, "Shop", None, "ref", None, NOW)
                for index, kind in enumerate(labels.CONSOLE_KINDS)
            ]
            + [HistoryRow("adjust", -5, 0, None, "Sam", None, "goodwill", NOW)]
            + [HistoryRow("hold", -10, 10, "Shop", None, "h-1", None, NOW)],
            next_cursor="cursor",
            is_first=False,
        ),
        merges=[
            MergeRow(1, 7, 8, "same person", "Sam", NOW, None),
            MergeRow(2, 7, 6, "again", None, NOW, NOW),
        ],
    )


def member_points(soon: bool) -> member_views.MyPoints:
    rows = [member_views.ExpiringRow(date(2026, 12, 1), 120, 5)] if soon else []
    rows += [member_views.ExpiringRow(date(2027, 6, 1), 900, 187)]
    return member_views.MyPoints(
        member_id=7,
        is_frozen=soon,
        available=1020,
        held=30,
        schedule=rows,
        expiring_soon=rows[:1] if soon else [],
        recent=[
            member_views.ActivityRow(kind, 3 - index % 5, 0, "Shop" if index % 2 else None, NOW)
            for index, kind in enumerate(labels.MEMBER_KINDS)
        ]
        + [member_views.ActivityRow("capture", 0, -10, "Shop", NOW)],
    )


def family(mode: FamilyMode) -> FamilyView:
    owner = MemberLine(7, FamilyRole.OWNER, NOW, 900, None, False, 0, None)
    kid = MemberLine(8, FamilyRole.MEMBER, NOW, 10, 3000, True, 200, 2800)
    return FamilyView(
        id=3,
        owner_id=7,
        mode=mode,
        status=FamilyStatus.ACTIVE,
        created_at=NOW,
        dissolved_at=None,
        max_members=4,
        seats_taken=3,
        month="2026-11",
        members=[owner, kid],
        invitations=[InvitationLine(9, 7, NOW)],
        pooled_available=910,
    )


def status(
    tier_index: int, *, plan: bool, downgrade: bool, mode: FamilyMode | None = None, me: int = 7
) -> tier_views.StatusView:
    """A member at ``tier_index`` of the demo ladder (the last tier has no next one)."""
    tier = DEMO.tiers[tier_index]
    following = DEMO.tiers[tier_index + 1] if tier_index + 1 < len(DEMO.tiers) else None
    vip = DEMO.plans[0]
    plans = [PlanStatus(uuid.uuid4(), vip.code, vip, NOW, tier_index % 2 == 0)] if plan else []
    plans += [PlanStatus(uuid.uuid4(), "GONE", None, NOW, False)] if plan else []
    return tier_views.StatusView(
        member_id=me,
        tier=tier,
        tier_index=tier_index,
        tier_count=len(DEMO.tiers),
        since=NOW if tier_index else None,
        growth=tier.threshold + 10,
        lifetime_growth=tier.threshold + 500,
        next_tier=following,
        to_next=following.threshold - tier.threshold - 10 if following else None,
        to_keep=100 if downgrade else 0,
        downgrade_at=NOW if downgrade else None,
        window_start=NOW,
        benefits=list(tier.benefits) + (list(vip.benefits) if plan else []),
        memberships=plans,
        theme=tier.flags.theme,
        family=family(mode) if mode else None,
        family_names={7: "王芳 <b>"},
    )


def tier_detail(tier_index: int) -> tier_views.TierDetail:
    return tier_views.TierDetail(
        status=status(tier_index, plan=True, downgrade=True, mode=FamilyMode.SHARE),
        tier_history=[
            tier_views.TierChangeRow(NOW, DEMO.tiers[0].names, "GONE", reason, 10, NOW)
            for reason in labels.TIER_REASONS
        ]
        + [tier_views.TierChangeRow(NOW, None, DEMO.tiers[0].names, "upgrade", 0, None)],
        growth_history=[
            tier_views.GrowthRow(NOW, NOW - timedelta(days=2), kind, 5, "Shop", None, None)
            for kind in labels.GROWTH_KINDS
        ]
        + [tier_views.GrowthRow(NOW, NOW, "adjust", -5, None, "Sam", "goodwill")],
    )


def version(number: int, programme: Programme, before: Programme | None) -> VersionDetail:
    return VersionDetail(
        version=number,
        applied_by="ops <script>",
        applied_at=NOW,
        content_hash="ab" * 32,
        source_text=DEMO_TEXT,
        programme=programme,
        changes=changes(before, programme),
        previous=number - 1 if before else None,
        next=None if before else number + 1,
    )


LIMITS = Guardrails(role_limit=5_000, ceiling=10_000_000, approver_roles=("admin", "finance"))


def request_row(
    status: str, *, own: bool = False, can_decide: bool = False, api: bool = False
) -> RequestRow:
    """A request as the console lists it: a support agent's, or (``api``) a partner key's."""
    decided = status != "pending"
    return RequestRow(
        id=12,
        member_id=7,
        points=-50_000,
        value=Money(-50_000, "CNY"),
        reason="goodwill <b>",
        expires_at=NOW if status == "pending" else None,
        status=status,
        requested_by="MOBILE" if api else "Sam",
        requester_role=None if api else "support",
        requester_key="tly_0123456789ab" if api else None,
        role_limit=5_000,
        requested_at=NOW,
        deadline=NOW,
        decided_by="Ada" if decided and status != "expired" else None,
        decided_at=NOW if decided else None,
        note="no receipt" if status == "rejected" else None,
        is_own=own,
        can_decide=can_decide,
    )


def privacy_samples() -> list[PrivacyPage]:
    """The member's privacy page: every reason a partner does or does not see the profile."""
    rows = [
        PartnerRow("MOBILE", "Cloudway <b>", True, False, False, False),
        PartnerRow("SHOP", "Select Mall", False, True, True, False),
        PartnerRow("FOOD", "Full Food", False, False, False, True),
        PartnerRow("HOTEL", "Cloudrest", False, False, True, False),
        PartnerRow("X", "Other", False, False, False, False),
    ]
    acts = [
        ActRow("Full Food", True, "member_pages", NOW),
        ActRow("Full Food", False, "api", NOW),
        ActRow("Full <b>", True, "console", NOW),
        ActRow("Full Food", True, "merge", NOW),
    ]
    return [PrivacyPage(rows, acts), PrivacyPage([], [])]


def console_consents(*, can_record: bool = True) -> ConsentCard:
    """A member's consents and collections as the console shows them: acts of every channel,
    one recorded in the console by a staff member, one carried by a merge; the record form."""
    granted = ConsentAct(3, Purpose.PROFILE, 3, True, "console", NOW, recorded_by=1)
    withdrawn = ConsentAct(3, Purpose.PROFILE, 2, False, "api:MOBILE", NOW)
    first = ConsentAct(3, Purpose.PROFILE, 1, True, "member_pages", NOW)
    carried = ConsentAct(2, Purpose.MARKETING, 1, True, "merge", NOW, recorded_by=9)
    found = privacy.Consents(
        member_id=7,
        standing=[carried, granted],
        history=[first, withdrawn, granted, carried],
        collections=[Collection(2, CollectionMethod.ENROL, "shop", NOW)],
        partners={
            2: privacy.PartnerRef(2, "SHOP", "Select <b>"),
            3: privacy.PartnerRef(3, "FOOD", "Full Food"),
        },
    )
    choices = [PartnerChoice("SHOP", "Select <i>"), PartnerChoice("FOOD", "Full Food")]
    return ConsentCard(found, {1: "Sam <u>"}, choices, can_record, "nonce-0123456789abcdef")


def pages(locale: str) -> list[tuple[str, dict[str, Any], str | None]]:
    """(template, context, block) for every page, with the variations that change its shape."""
    support = Staff(1, "support", "Sam", StaffRole.SUPPORT)
    auditor = Staff(2, "auditor", "Avery", StaffRole.AUDITOR)
    admin = Staff(1, "admin", "Ada", StaffRole.ADMIN)
    base = chrome(locale)
    console_member = {
        "tiers": None,
        "nonce": "n",
        "form": {
            "points": "",
            "reason": "",
            "freeze_reason": "",
            "merge_member": "",
            "merge_reason": "",
            "expires": "",
        },
        "limits": LIMITS,
        "pending_requests": [],
        "confirm": None,
        "consents": None,
    }
    permissions = {"can_adjust": True, "can_freeze": True, "can_merge": True, "can_unmerge": True}
    read_only = dict.fromkeys(permissions, False)
    result = MemberSummary(7, "frozen", None, "138****0000", ["shop:s-1"], 5)
    activity = member_views.ActivityPage(member_points(True).recent, "cursor")
    bare = DEMO.model_copy(update={"plans": [], "partners": []})
    scheduled_rows = [
        VersionRow(
            number, "ops <b>", NOW, "ab" * 32, "AIB", ["BRONZE"], [], status == "in_force",
            effective_from=NOW + timedelta(days=number), status=status,
            cancelled_by="bob" if status == "cancelled" else None,
            cancelled_at=NOW if status == "cancelled" else None,
        )
        for number, status in ((4, "scheduled"), (3, "cancelled"), (2, "in_force"))
    ]  # fmt: skip
    rows = [
        VersionRow(2, "ops", NOW, "ab" * 32, "AIB", ["BRONZE", "GOLD"], [], True),
        VersionRow(1, "demo", NOW, "cd" * 32, "AIB", ["BRONZE"], ["VIP88"], False),
    ]
    return [
        (
            "console/sign_in.html",
            {**base, "staff": None, "next_url": "/console", "username": ""},
            None,
        ),
        ("console/home.html", {**base, "staff": support, "q": "", "results": []}, None),
        ("console/home.html", {**base, "staff": support, "q": "x", "results": []}, "results"),
        ("console/home.html", {**base, "staff": auditor, "q": "13", "results": [result]}, None),
        *[
            (
                "console/member.html",
                {**base, "staff": who, "member": detail(status), **console_member, **rights},
                block,
            )
            for who, rights in ((support, permissions), (auditor, read_only))
            for status in ("active", "frozen", "merged")
            for block in (None, "history")
        ],
        *[
            (
                "console/member.html",
                {**base, "staff": support, "member": detail(), **console_member, **permissions}
                | {"tiers": tiers},
                None,
            )
            for tiers in (tier_detail(2), tier_detail(5))
        ],
        *[
            (
                "console/member.html",
                {**base, "staff": support, "member": detail(), **console_member, **permissions}
                | {"pending_requests": [request_row("pending")], "confirm": step},
                None,
            )
            for step in (
                Confirmation(50_000, Money(50_000, "CNY"), True, 5_000),
                Confirmation(-20_000, Money(-20_000, "CNY"), False, 100_000),
            )
        ],
        (
            "console/adjustments.html",
            {
                **base,
                "staff": support,
                "limits": LIMITS,
                "pending": [
                    request_row("pending", can_decide=True),
                    request_row("pending", own=True),
                    request_row("pending"),
                    request_row("pending", can_decide=True, api=True),
                ],
                "decided": [
                    *(
                        request_row(status)
                        for status in ("approved", "rejected", "withdrawn", "expired")
                    ),
                    request_row("expired", api=True),
                ],
                "pending_adjustments": 3,
            },
            None,
        ),
        (
            "console/adjustments.html",
            {**base, "staff": auditor, "limits": LIMITS, "pending": [], "decided": []},
            None,
        ),
        *[
            (
                "console/partners.html",
                {
                    **base,
                    "staff": admin,
                    "partners": rows,
                    "form": {"code": "", "name": ""},
                    "nonce": "n",  # the one-time form token
                },
                None,
            )
            for rows in (
                [
                    partners_page.PartnerRow("MOBILE", "Cloudway <Mobile>", True, True, 2, NOW),
                    partners_page.PartnerRow("SHOP", "Shop", False, False, 0, NOW),
                ],
                [],
            )
        ],
        *[
            (
                "console/partner.html",
                {
                    **base,
                    "staff": admin,
                    "nonce": "n",  # the one-time form token
                    "partner": Partner(code=code, name="Shop", is_active=active, created_at=NOW),
                    "is_operator_channel": operator,
                    "keys": keys,
                    "scopes": ("members", "earn", "redeem", "transfer", "read", "admin"),
                    "operator_scopes": ["transfer"],
                    "chosen": ("members", "read"),
                    "new_key": new_key,
                },
                None,
            )
            for code, active, operator, keys, new_key in (
                ("SHOP", True, False, [], None),
                (
                    "MOBILE",
                    False,
                    True,
                    [
                        partners_page.KeyRow("tly_0123456789ab", "tills", ["earn"], NOW, None),
                        partners_page.KeyRow("tly_ba9876543210", None, ["admin"], NOW, NOW),
                    ],
                    "tly_0123456789ab.secret",
                ),
            )
        ],
        (
            "console/staff.html",
            {
                **base,
                "staff": admin,
                "nonce": "n",  # the one-time form token
                "accounts": [
                    StaffUser(
                        id=number,
                        username=name,
                        display_name=f"<{name}>",
                        role=role,
                        is_active=number != 3,
                        created_at=NOW,
                    )
                    for number, name, role in (
                        (1, "admin", StaffRole.ADMIN),
                        (2, "support", StaffRole.SUPPORT),
                        (3, "gone", StaffRole.AUDITOR),
                    )
                ],
                "roles": tuple(role.value for role in StaffRole),
                "form": {"username": "", "display_name": "", "role": "support"},
            },
            None,
        ),
        ("console/programme.html", {**base, "staff": auditor, "versions": rows}, None),
        ("console/programme.html", {**base, "staff": auditor, "versions": []}, None),
        (
            "console/programme.html",
            {
                **base,
                "staff": admin,
                "versions": scheduled_rows,
                "in_force": scheduled_rows[2],
                "scheduled": scheduled_rows[:1],
                "can_plan": True,
                "plan": PlanResult(
                    DEMO_TEXT,
                    [],
                    ["no changes"],
                    "2027-01-01T00:00",
                    at=NOW,
                    basis=3,
                    refusal="Version 3 is scheduled <b>",
                ),
            },
            None,
        ),
        (
            "console/programme_version.html",
            {**base, "staff": auditor, "detail": version(2, DEMO, bare)},
            None,
        ),
        (
            "console/programme_version.html",
            {**base, "staff": auditor, "detail": version(1, bare, None)},
            None,
        ),
        *[
            ("console/simulate.html", {**base, "staff": admin, "outcome": sample, "shown": 1}, None)
            for sample in simulate_samples()
        ],
        *[
            (
                "member/status.html",
                {**base, "status": sample, "theme": sample.theme},
                None,
            )
            for sample in (
                status(0, plan=False, downgrade=False),
                status(2, plan=True, downgrade=True, mode=FamilyMode.SHARE, me=8),
                status(4, plan=False, downgrade=True, mode=FamilyMode.POOL),
                status(5, plan=True, downgrade=False, mode=FamilyMode.SHARE),
            )
        ],
        *[
            ("member/privacy.html", {**base, "privacy": sample, "theme": "default"}, None)
            for sample in privacy_samples()
        ],
        (
            "console/member.html",
            {**base, "staff": support, "member": detail(), **console_member, **permissions}
            | {"consents": console_consents()},
            None,
        ),
        (
            "console/member.html",
            {**base, "staff": support, "member": detail(), **console_member, **permissions}
            | {"consents": console_consents(can_record=False)},
            None,
        ),
        (
            "errors/error.html",
            {
                **base,
                "status": 404,
                "title": "t",
                "message": "m",
                "detail": "d",
                "area": "console",
                "home_url": "/console",
            },
            None,
        ),
        (
            "errors/error.html",
            {
                **base,
                "status": 500,
                "title": "t",
                "message": "m",
                "detail": None,
                "area": "member",
                "home_url": "/m",
            },
            "content",
        ),
        (
            "member/points.html",
            {
                **base,
                "points": member_points(True),
                "status": status(1, plan=False, downgrade=False),
            },
            None,
        ),
        (
            "member/points.html",
            {
                **base,
                "csrf": "",
                "points": member_points(False),
                "status": status(5, plan=True, downgrade=False),
                "theme": "black-gold",
            },
            None,
        ),
        ("member/history.html", {**base, "page": activity}, None),
        ("member/history.html", {**base, "page": activity}, "items"),
        ("member/history.html", {**base, "page": member_views.ActivityPage([], None)}, None),
        *[
            ("member/welcome.html", {**base, "csrf": "", "reason": reason}, None)
            for reason in ("signed_out", "link_invalid", "unavailable", "link_used")
        ],
        *sessions_and_audit_samples(base, support, auditor),
        *webhook_samples(base, admin),
        *account_samples(base, auditor),
        *campaign_samples(base, admin, auditor),
        *coupon_samples(base, admin, auditor),
        *mall_samples(base, admin, auditor),
        *[
            (
                "member/code.html",
                {**base, "code": code, "refusal": refusal, "fresh_url": "/m/code/fresh"},
                block,
            )
            for code, refusal, block in member_code_samples()
        ],
        *[
            ("member/tasks.html", {**base, "engagement": sample, "theme": "default"}, None)
            for sample in tasks_samples()
        ],
        *auction_samples(base, admin, auditor),
    ]


def tasks_samples() -> list[Any]:
    """The tasks page: signed in today with a streak and tasks of every period; a first visit
    with no streak, no tasks and no share link."""
    from tally.flows.member_engagement import Engagement
    from tally.flows.member_tasks import TaskProgress
    from tally.programme.shapes import Names

    names = Names.model_validate({"zh-CN": "分享<b>", "en": "Share <b>"})
    tasks = [
        TaskProgress("SIGN_IN", names, ("sign_in",), 1, "day", 1),
        TaskProgress("SHARE", names, ("share",), 3, "week", 2),
        TaskProgress("READ", names, ("content_read",), 5, "month", 0),
        TaskProgress("PROFILE", names, ("profile_completed",), 1, "campaign", 0),
        TaskProgress("REVIEWS", names, ("review",), 2, "campaign", 1),
    ]
    return [
        Engagement(7, True, tasks, "ABCDE-FGHJK", "https://app.example/join?ref=ABCDEFGHJK"),
        Engagement(0, False, [], "ABCDE-FGHJK", None),
    ]


def simulate_samples() -> list[Outcome | None]:
    """The form alone, a draft's errors, and a report with budgets, tiers and refusals."""
    one = Figures(points=120, growth=120, events=1, members=1)
    two = Figures(points=240, growth=1200, events=1, members=1)
    report = Report(
        events=3,
        running=one,
        draft=two,
        running_cost=120,
        draft_cost=240,
        running_currency="CNY",
        draft_currency="CNY",
        running_refused={},
        draft_refused={"validation_error": 2},
        campaigns=(Line("BASE", None, one, two),),
        rules=(Line("BASE", "per-yuan", one, two),),
        budgets=(Budget("BASE", None, 0, 500, 240),),
        tiers=(
            TierDifference("7", 120, 1200, 120, 1200, "BRONZE", "SILVER"),
            TierDifference("8", 0, 1000, 0, 1000, "BRONZE", "SILVER"),
        ),
        differences=(),
    )
    result = Simulation(report, "stored", Period(NOW, None), 2, NOW)
    return [
        None,
        Outcome("", "", "draft.yaml", ("draft.yaml:3: currency: <b>bad</b>",)),
        Outcome("2026-06-01", "", "draft <i>.yaml", result=result),
        Outcome("", "", "draft.yaml", result=replace(result, running_version=None)),
    ]


def auction_samples(
    base: dict[str, Any], admin: Staff, auditor: Staff
) -> list[tuple[str, dict[str, Any], str | None]]:
    """The auction pages: open with a leader and a reserve, and sold; none at all; the
    console's list with the create form (a manager) and without it (an auditor)."""
    import json
    import uuid

    from tally.auctions import service as auctions
    from tally.auctions.domain import Increment, Phase
    from tally.web.console.auctions_page import AuctionRow
    from tally.web.member.auctions_page import PHASES, state_of

    ladder = (Increment(0, 10), Increment(1000, 50))
    bidding = auctions.AuctionView(
        uuid.uuid4(), 1, "LUNCH-1", {"zh-CN": "午餐<b>", "en": "Lunch <b>"}, Phase.OPEN, NOW,
        NOW + timedelta(hours=1), NOW + timedelta(hours=2), 100, 310, 320, 7, 2, False, True,
        ladder, 60, 3, None, None, None, None,
    )  # fmt: skip
    sold = replace(
        bidding, phase=Phase.SOLD, minimum_bid=None, winner_member_id=7, final_price=310,
        closed_at=NOW,
    )  # fmt: skip
    member = {**base, "phases": PHASES, "theme": "default"}
    rooms = [
        (
            "member/auction.html",
            {
                **member,
                "auction": found,
                "state": state_of(found, who),
                "state_json": json.dumps(state_of(found, who)),
                "mine": mine,
            },
            None,
        )
        for found, who, mine in ((bidding, 7, 500), (bidding, 8, None), (sold, 7, 500))
    ]
    bids = [auctions.BidView(1, 7, 500, 100, NOW), auctions.BidView(2, 8, 300, 310, NOW)]
    owned = auctions.OwnerView(bidding, 800, None, bids)
    closed = auctions.OwnerView(sold, None, uuid.uuid4(), [])
    form = {"owner": "MOBILE", "item": "", "increments": "0:10", "soft_close_seconds": "60"}
    blank = {key: form.get(key, "") for key in ("owner", "item", "name_zh", "name_en",
             "starts_at", "ends_at", "start_points", "reserve", "increments",
             "soft_close_seconds", "max_extension_seconds")}  # fmt: skip
    console = {**base, "phases": PHASES, "section": "auctions"}
    return [
        ("member/auctions.html", {**member, "auctions": [bidding, sold]}, None),
        ("member/auctions.html", {**member, "auctions": []}, None),
        *rooms,
        (
            "console/auctions.html",
            {
                **console,
                "staff": admin,
                "rows": [AuctionRow(bidding, "SHOP")],
                "owners": ["MOBILE", "SHOP"],
                "form": blank,
                "nonce": "n",
            },
            None,
        ),
        (
            "console/auctions.html",
            {**console, "staff": auditor, "rows": [], "owners": [], "form": blank, "nonce": ""},
            None,
        ),
        (
            "console/auction.html",
            {**console, "staff": admin, "found": owned, "owner": "SHOP", "problems": []},
            None,
        ),
        (
            "console/auction.html",
            {**console, "staff": admin, "found": closed, "owner": "SHOP", "problems": ["x"]},
            None,
        ),
    ]


def webhook_samples(
    base: dict[str, Any], admin: Staff
) -> list[tuple[str, dict[str, Any], str | None]]:
    """The webhooks page: none yet; subscriptions (one disabled) with a chosen one's deliveries."""
    from tally.web.console.webhooks_page import STATUSES, DeliveryRow, SubscriptionRow

    active = SubscriptionRow(
        1, "SHOP", "https://shop.example/h", ["entry.posted"], "active", 0, None, NOW
    )
    disabled = SubscriptionRow(
        2, "FOOD", "https://food.example/h", ["hold.lapsed"], "disabled", 100, "100 failures", NOW
    )
    sent = DeliveryRow(5, "entry.posted", "e-1", "delivered", 1, 204, None, NOW, 12, None)
    waiting = DeliveryRow(
        6, "entry.posted", "e-2", "pending", 2, 500, "answered HTTP 500", NOW, 30, NOW
    )
    page = {**base, "staff": admin, "statuses": STATUSES, "section": "webhooks"}
    return [
        ("console/webhooks.html", {**page, "rows": [], "chosen": None, "deliveries": []}, None),
        (
            "console/webhooks.html",
            {**page, "rows": [disabled, active], "chosen": active, "deliveries": [waiting, sent]},
            None,
        ),
        (
            "console/webhooks.html",
            {**page, "rows": [active], "chosen": active, "deliveries": []},
            None,
        ),
    ]


def account_samples(
    base: dict[str, Any], auditor: Staff
) -> list[tuple[str, dict[str, Any], str | None]]:
    """The accounts page: no partner and nothing outstanding; partners, several currencies and
    points without a value."""
    from tally.ledger.liability import Liability, Outstanding
    from tally.web.console.accounts_page import SYSTEM_KINDS, PartnerLine, SystemLine

    system = [
        SystemLine("system:expired", "expired", 40),
        SystemLine("system:adjustments", "adjustments", -15),
        SystemLine("system:breakage", "breakage", 0),
    ]
    shop = PartnerLine(
        "SHOP", "Select Mall", True, "partner:2:issued", "partner:2:redeemed", 1500, 300, 1200
    )
    food = PartnerLine(
        "FOOD", "<b>Food</b>", False, "partner:3:issued", "partner:3:redeemed", 0, 80, -80
    )
    page = {**base, "staff": auditor, "system": system, "as_of": NOW, "section": "accounts"}
    page["system_kinds"] = SYSTEM_KINDS
    nothing = Liability([], 0, 0)
    owed = Liability(
        [Outstanding(1200, Money(1150, "CNY")), Outstanding(10, Money(7, "USD"))], 10, 5
    )
    return [
        ("console/accounts.html", {**page, "partners": [], "liability": nothing}, None),
        ("console/accounts.html", {**page, "partners": [shop, food], "liability": owed}, None),
    ]


def sessions_and_audit_samples(
    base: dict[str, Any], support: Staff, auditor: Staff
) -> list[tuple[str, dict[str, Any], str | None]]:
    """The sessions page (one session, several) and the audit log (entries, none)."""
    from tally.web.console.audit_page import Choice, EntryRow
    from tally.web.console.sessions_page import SessionRow

    def session_row(number: int, current: bool) -> SessionRow:
        return SessionRow(number, NOW, NOW, NOW, "203.0.113.9", "Chrome · macOS", "UA", current)

    entry = EntryRow(
        9, NOW, "staff:1", "Sam (#1)", "member.freeze", "Froze", 14, "203.0.113.9", [("k", "v")]
    )
    system = EntryRow(8, NOW, "system", "System", "staff.sign_in_failed", "Failed", None, "—", [])
    filters = {"actor": "staff:1", "action": "", "member": "", "from": "2026-11-01", "to": ""}
    audit = {
        **base,
        "staff": auditor,
        "filters": filters,
        "actors": [Choice("staff:1", "Sam (#1)")],
        "actions": [Choice("member.freeze", "Froze")],
    }
    return [
        ("console/sessions.html", {**base, "staff": support, "rows": [session_row(1, True)]}, None),
        (
            "console/sessions.html",
            {**base, "staff": support, "rows": [session_row(1, True), session_row(2, False)]},
            None,
        ),
        (
            "console/audit.html",
            {**audit, "rows": [entry, system], "next_url": "/console/audit?before=8"}
            | {"first_url": "/console/audit"},
            None,
        ),
        ("console/audit.html", {**audit, "rows": [], "next_url": None, "first_url": None}, None),
    ]


def member_code_samples() -> list[tuple[Any, str | None, str | None]]:
    """The member code page: a code (whole page, and the block htmx renews), and a refusal."""
    from tally.web.member.code_page import ShownCode

    shown = ShownCode("1234 5678 9012 3456", "<svg></svg>", "<svg></svg>", "12:01:00", 45)
    return [(shown, None, None), (shown, None, "code"), (None, "This member is frozen.", None)]


@pytest.mark.parametrize("locale", i18n.SUPPORTED)
def test_every_template_compiles(renderer: Renderer, locale: str) -> None:
    names = renderer.template_names()
    assert len(names) >= 15
    for name in names:
        renderer.template(locale, name)


@pytest.mark.parametrize("locale", i18n.SUPPORTED)
def test_every_page_renders(renderer: Renderer, locale: str) -> None:
    for name, context, block in pages(locale):
        html = renderer.render(locale, name, context, block)
        assert html.strip(), name
        if block is None:
            assert html.lstrip().startswith("<!doctype html>"), name
            assert f'<html lang="{locale}">' in html, name


def test_the_samples_cover_every_page_template(renderer: Renderer) -> None:
    covered = {name for name, _context, _block in pages("en")}
    page_templates = {name for name in renderer.template_names() if not name.startswith(PARTIALS)}
    assert page_templates == covered


def test_text_is_escaped(renderer: Renderer) -> None:
    html = renderer.render(
        "en",
        "console/member.html",
        {
            **chrome("en"),
            **dict.fromkeys(("can_adjust", "can_freeze", "can_merge", "can_unmerge"), True),
            "staff": Staff(1, "s", "<b>Sam</b>", StaffRole.SUPPORT),
            "member": detail("frozen"),
            "tiers": tier_detail(1),
            "nonce": "n",
            "limits": LIMITS,
            "pending_requests": [request_row("pending")],
            "confirm": None,
            "consents": console_consents(),
            "form": {
                "points": '"><script>',
                "reason": "",
                "freeze_reason": "",
                "merge_member": "",
                "merge_reason": "",
                "expires": "",
            },
        },
    )
    assert "<script>" not in html
    assert "&lt;b&gt;Sam&lt;/b&gt;" in html
    assert "Select &lt;b&gt;" in html  # a partner's name in the consents
    assert "Select &lt;i&gt;" in html  # ... in the consent form
    assert "Sam &lt;u&gt;" in html  # the staff member who recorded an act
    assert "fraud &lt;check&gt;" in html
    assert "王芳 &lt;b&gt;" in html  # a family member's name
    assert "goodwill &lt;b&gt;" in html  # a pending request's reason


def test_formats_follow_the_locale_and_the_programme_zone(renderer: Renderer) -> None:
    chinese = renderer.environments["zh-CN"].filters
    english = renderer.environments["en"].filters
    assert chinese["points"](1234567) == "1,234,567"
    assert english["signed"](-5) == "\u22125"
    assert english["signed"](5) == "+5"
    assert english["signed"](0) == "0"
    assert english["datetime"](NOW) == "2026-11-26 12:30"  # UTC+8
    assert english["date"](datetime(2026, 11, 26, 17, 0, tzinfo=UTC)) == "2026-11-27"
    assert chinese["long_date"](date(2027, 3, 1)) == "2027年3月1日"
    assert english["long_date"](date(2027, 3, 1)) == "Mar 1, 2027"
    midnight = datetime(2027, 3, 1, 16, 0, tzinfo=UTC)  # 2027-03-02 00:00 in Shanghai
    assert english["last_day"](midnight) == date(2027, 3, 1)


def test_static_urls_carry_a_content_version(renderer: Renderer) -> None:
    url = renderer.static_url("css/tally.css")
    assert url.startswith("/static/css/tally.css?v=")
    assert renderer.static_url("missing.css") == "/static/missing.css"
