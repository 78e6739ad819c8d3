"""The member's privacy page (``/m/privacy``): which partners see the profile, and why; the
member grants and withdraws its consent, and sees every act."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Form
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from tally.api.deps import database
from tally.db.raw import INTEGRITY_ERRORS
from tally.errors import Conflict, TallyError
from tally.privacy import service as privacy
from tally.privacy.domain import MEMBER_PAGES, CollectionMethod, Purpose
from tally.programme.domain import Programme
from tally.web import sessions, tier_views
from tally.web.errors import csrf_rejected, message_for
from tally.web.http import gettext, programme_in_force, redirect, render
from tally.web.i18n import N_
from tally.web.member import auth

router = APIRouter(prefix="/m", include_in_schema=False)
PAGE_URL = "/m/privacy"
GRANTED = N_("%(partner)s can now see your profile.")
WITHDRAWN = N_("%(partner)s no longer sees your profile.")


@dataclass(frozen=True, slots=True)
class PartnerRow:
    """One partner of the programme, as the member's privacy page shows it."""

    code: str
    name: str
    is_operator: bool
    enrolled: bool  # the member joined through it: it collected the profile
    linked: bool  # it linked one of its ids to the member (no profile with it)
    consented: bool

    @property
    def sees_profile(self) -> bool:
        return self.is_operator or self.enrolled or self.consented

    @property
    def can_grant(self) -> bool:
        return not self.sees_profile

    @property
    def can_withdraw(self) -> bool:
        return self.consented and not self.is_operator


@dataclass(frozen=True, slots=True)
class ActRow:
    partner: str
    is_granted: bool
    channel: str  # member_pages, api or console
    created_at: datetime


@dataclass(frozen=True, slots=True)
class PrivacyPage:
    partners: list[PartnerRow]
    history: list[ActRow]


def privacy_page(session: Session, member_id: int, programme: Programme) -> PrivacyPage:
    """The programme's partners with whether each sees the profile, and the history, newest
    first (the profile purpose; the member's own view: every partner's)."""
    found = privacy.consents(session, member_id)
    known = {ref.code: ref for ref in privacy.partner_refs(session).values()}
    consented = {
        act.partner_id
        for act in found.standing
        if act.purpose is Purpose.PROFILE and act.is_granted
    }
    methods: dict[int, set[CollectionMethod]] = {}
    for item in found.collections:
        methods.setdefault(item.partner_id, set()).add(item.method)
    rows = []
    for spec in programme.partners:
        ref = known.get(spec.code)
        if ref is None:
            continue
        rows.append(
            PartnerRow(
                code=ref.code,
                name=display_name(programme, ref),
                is_operator=spec.operator_channel,
                enrolled=CollectionMethod.ENROL in methods.get(ref.id, set()),
                linked=CollectionMethod.LINK in methods.get(ref.id, set()),
                consented=ref.id in consented,
            )
        )
    history = [
        ActRow(
            partner=display_name(programme, found.partners[act.partner_id]),
            is_granted=act.is_granted,
            channel=act.channel.partition(":")[0],
            created_at=act.created_at,
        )
        for act in reversed(found.history)
        if act.purpose is Purpose.PROFILE
    ]
    return PrivacyPage(rows, history)


def display_name(programme: Programme, ref: privacy.PartnerRef) -> str:
    """A partner's name as the programme in force gives it."""
    spec = programme.partner(ref.code)
    return spec.name if spec is not None else ref.name


@router.get("/privacy")
def show_privacy(request: Request) -> Response:
    """Who sees the member's profile and why; grant and withdraw; every act so far."""
    member_id = auth.signed_in_member(request)
    if member_id is None:
        return redirect(request, "/m")
    with database(request).read() as session:
        programme = programme_in_force(request, session)
        page = privacy_page(session, member_id, programme)
        theme = tier_views.theme_of(session, member_id, programme)
    browser = auth.member_session(request)
    context = {
        "privacy": page,
        "theme": theme,
        "page_url": PAGE_URL,
        "csrf": browser.csrf_token(),
        "flashes": browser.pop_flashes(),
    }
    return render(request, "member/privacy.html", context)


@router.post("/privacy")
def change_privacy(
    request: Request,
    csrf: Annotated[str, Form(max_length=200)] = "",
    partner: Annotated[str, Form(max_length=64)] = "",
    grant: Annotated[str, Form(max_length=1, pattern="^[01]$")] = "",
) -> Response:
    """Grant (``grant=1``) or withdraw (``grant=0``) the profile consent for ``partner``."""
    browser = auth.member_session(request)
    if not browser.csrf_matches(csrf):
        raise csrf_rejected()
    member_id = auth.signed_in_member(request)
    if member_id is None:
        return redirect(request, "/m")
    try:
        with database(request).write() as session:
            name = display_name(
                programme_in_force(request, session), privacy.partner_named(session, partner)
            )
            changed = privacy.record(
                session,
                member_id,
                partner,
                Purpose.PROFILE.value,
                grant=grant == "1",
                channel=MEMBER_PAGES,
                actor=f"member:{member_id}",
                now=sessions.now(request),
                address=request.client.host if request.client else None,
            )
    except INTEGRITY_ERRORS:
        browser.flash("error", message_for(request, Conflict("changed meanwhile")))
    except TallyError as error:
        browser.flash("error", message_for(request, error))
    else:
        if changed:
            text = GRANTED if grant == "1" else WITHDRAWN
            browser.flash("success", gettext(request, text, partner=name))
    return redirect(request, PAGE_URL)
