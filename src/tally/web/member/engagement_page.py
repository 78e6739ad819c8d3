"""The member's tasks page (``/m/tasks``): sign in for today with the streak, the tasks with
their progress, and the referral code with its share link."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form
from starlette.requests import Request
from starlette.responses import Response

from tally.api.deps import database, policy
from tally.errors import TallyError
from tally.flows import member_engagement
from tally.web import sessions, tier_views
from tally.web.errors import csrf_rejected, message_for
from tally.web.http import gettext, programme_in_force, redirect, render
from tally.web.i18n import N_
from tally.web.member import auth

router = APIRouter(prefix="/m", include_in_schema=False)
PAGE_URL = "/m/tasks"
SIGNED_IN = N_("Signed in for today: +%(points)s points.")
SIGNED_IN_NOTHING = N_("Signed in for today.")
ALREADY = N_("You have already signed in today.")


@router.get("/tasks")
def show_tasks(request: Request) -> Response:
    """Today's sign-in and the streak, the tasks with progress, the referral code."""
    member_id = auth.signed_in_member(request)
    if member_id is None:
        return redirect(request, "/m")
    with database(request).write() as session:  # the referral code is made when first shown
        programme = programme_in_force(request, session)
        page = member_engagement.engagement(session, member_id, sessions.now(request), programme)
        theme = tier_views.theme_of(session, member_id, programme)
    browser = auth.member_session(request)
    context = {
        "engagement": page,
        "theme": theme,
        "page_url": PAGE_URL,
        "csrf": browser.csrf_token(),
        "flashes": browser.pop_flashes(),
    }
    return render(request, "member/tasks.html", context)


@router.post("/tasks/sign-in")
def sign_in_today(request: Request, csrf: Annotated[str, Form(max_length=200)] = "") -> Response:
    """Sign in for today (once a day: a second submit is told it was done)."""
    browser = auth.member_session(request)
    if not browser.csrf_matches(csrf):
        raise csrf_rejected()
    member_id = auth.signed_in_member(request)
    if member_id is None:
        return redirect(request, "/m")
    try:
        with database(request).write() as session:
            done = member_engagement.sign_in_today(
                session,
                member_id,
                sessions.now(request),
                policy(request),
                programme_in_force(request, session),
            )
    except TallyError as error:
        browser.flash("error", message_for(request, error))
    else:
        if done.repeat:
            browser.flash("success", gettext(request, ALREADY))
        elif done.points:
            browser.flash("success", gettext(request, SIGNED_IN, points=done.points))
        else:
            browser.flash("success", gettext(request, SIGNED_IN_NOTHING))
    return redirect(request, PAGE_URL)
