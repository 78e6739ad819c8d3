"""The member's auction pages: the auctions taking bids (``/m/auctions``) and an auction room
(``/m/auctions/{id}``) with the price, the leader (masked), a countdown, the member's own
maximum and a bid form, kept current by server-sent events (``/m/auctions/{id}/events``)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Form, Path
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from tally.api.deps import database, policy
from tally.api.paths import UUID_PATTERN
from tally.auctions import domain
from tally.auctions import service as auctions
from tally.errors import BidTooLow, NotFound, TallyError
from tally.kit.clock import utcnow
from tally.web import sessions, tier_views
from tally.web.errors import csrf_rejected, message_for
from tally.web.http import gettext, programme_in_force, redirect, render
from tally.web.i18n import N_
from tally.web.member import auth
from tally.web.member.auction_watch import AuctionWatch

router = APIRouter(prefix="/m", include_in_schema=False)
PAGE_URL = "/m/auctions"
AuctionPath = Annotated[str, Path(pattern=UUID_PATTERN)]
HEARTBEAT_SECONDS = 15.0
T = TypeVar("T")

BID_LEADS = N_("Your bid of up to %(points)s points leads at %(price)s points.")
BID_OUTBID = N_("Another member's maximum is higher: the price is now %(price)s points.")
BID_TOO_LOW = N_("Bid at least %(points)s points.")
#: How each phase reads on the pages.
PHASES = {
    "scheduled": N_("Starts soon"),
    "open": N_("Bidding"),
    "ended": N_("Ended"),
    "sold": N_("Sold"),
    "unsold": N_("Not sold"),
}


def watch_of(request: Request) -> AuctionWatch:
    """The process's auction watchers (made with the first watcher)."""
    app = request.app
    found: AuctionWatch | None = getattr(app.state, "auction_watch", None)
    if found is None:
        found = AuctionWatch(
            database(request), lambda work: _off_loop(app, work), lambda: _app_now(app)
        )
        app.state.auction_watch = found
    return found


def _app_now(app: Any) -> Any:
    clock = getattr(app.state, "clock", None)
    return clock() if clock is not None else utcnow()


async def _off_loop(app: Any, work: Callable[[], T]) -> T:
    executor = app.state.executor
    if executor is None:
        return work()
    return await asyncio.get_running_loop().run_in_executor(executor, work)


def _id(value: str) -> uuid.UUID:
    return uuid.UUID(value)


def state_of(found: auctions.AuctionView, member_id: int) -> dict[str, Any]:
    """What the room shows of the auction (the same for every watcher but ``you_lead``):
    never the reserve, nor the leader's id or maximum."""
    leader = found.leader_member_id
    return {
        "status": found.phase.value,
        "price": found.price,
        "minimum_bid": found.minimum_bid,
        "leader": domain.mask(leader) if leader is not None else None,
        "you_lead": leader == member_id,
        "you_won": found.winner_member_id == member_id,
        "bids": found.bids,
        "reserve_met": found.reserve_met,
        "has_reserve": found.has_reserve,
        "ends_at": found.ends_at.isoformat(),
        "version": found.version,
    }


@router.get("/auctions")
def list_auctions(request: Request) -> Response:
    """The auctions taking (or about to take) bids."""
    member_id = auth.signed_in_member(request)
    if member_id is None:
        return redirect(request, "/m")
    now = sessions.now(request)
    with database(request).read() as session:
        found = auctions.open_auctions(session, now)
        theme = tier_views.theme_of(session, member_id, programme_in_force(request, session))
    context = {
        "auctions": found,
        "phases": PHASES,
        "theme": theme,
        "page_url": PAGE_URL,
        "csrf": auth.member_session(request).csrf_token(),
    }
    return render(request, "member/auctions.html", context)


@router.get("/auctions/{auction_id}")
def auction_room(request: Request, auction_id: AuctionPath) -> Response:
    """The auction room: price, leader (masked), countdown, my maximum and the bid form."""
    member_id = auth.signed_in_member(request)
    if member_id is None:
        return redirect(request, "/m")
    now = sessions.now(request)
    target = _id(auction_id)
    with database(request).read() as session:
        try:
            found = auctions.view(session, target, now)
        except NotFound:
            return redirect(request, PAGE_URL)
        mine = auctions.my_maximum(session, target, member_id)
        theme = tier_views.theme_of(session, member_id, programme_in_force(request, session))
    browser = auth.member_session(request)
    context = {
        "auction": found,
        "state": state_of(found, member_id),
        "state_json": json.dumps(state_of(found, member_id)),
        "mine": mine,
        "phases": PHASES,
        "theme": theme,
        "page_url": PAGE_URL,
        "csrf": browser.csrf_token(),
        "flashes": browser.pop_flashes(),
    }
    response = render(request, "member/auction.html", context)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/auctions/{auction_id}/bids")
def place_bid(
    request: Request,
    auction_id: AuctionPath,
    max_points: Annotated[int, Form(gt=0, le=10**12)],
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Bid up to ``max_points`` as the signed-in member; the room says how it went."""
    browser = auth.member_session(request)
    if not browser.csrf_matches(csrf):
        raise csrf_rejected()
    member_id = auth.signed_in_member(request)
    if member_id is None:
        return redirect(request, "/m")
    room = f"{PAGE_URL}/{auction_id}"
    try:
        with database(request).write() as session:
            done = auctions.bid(
                session,
                _id(auction_id),
                member_id,
                max_points,
                sessions.now(request),
                policy(request),
            )
    except BidTooLow as error:
        browser.flash("error", gettext(request, BID_TOO_LOW, points=error.extra["minimum"]))
    except TallyError as error:
        browser.flash("error", message_for(request, error))
    else:
        price = done.auction.price
        if done.leading:
            browser.flash("success", gettext(request, BID_LEADS, points=max_points, price=price))
        else:
            browser.flash("error", gettext(request, BID_OUTBID, price=price))
    return redirect(request, room)


@router.get("/auctions/{auction_id}/events")
async def auction_events(request: Request, auction_id: AuctionPath) -> Response:
    """``text/event-stream``: the room's state now and whenever it changes, until the auction
    closes; a comment every few seconds keeps the connection open."""
    member_id = auth.signed_in_member(request)
    if member_id is None:
        return Response(status_code=401)
    watch = watch_of(request)
    target = _id(auction_id)
    try:
        queue = await watch.subscribe(target)
    except NotFound:
        return Response(status_code=404)

    async def stream() -> AsyncIterator[str]:
        try:
            yield "retry: 3000\n\n"
            while True:
                try:
                    found = await asyncio.wait_for(queue.get(), HEARTBEAT_SECONDS)
                except TimeoutError:
                    if await request.is_disconnected():
                        return
                    yield ": keep-alive\n\n"
                    continue
                if found is None:
                    yield "event: closed\ndata: {}\n\n"
                    return
                payload = json.dumps(state_of(found, member_id))
                yield f"id: {found.version}\ndata: {payload}\n\n"
        finally:
            watch.unsubscribe(target, queue)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
