"""Member links: a partner app asks for a short-lived, signed URL that opens the member pages."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from itsdangerous import BadSignature, URLSafeTimedSerializer
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session
from starlette.responses import Response

from tally.access import domain as access
from tally.api.deps import Mutation, mutation
from tally.api.paths import MemberId
from tally.kit.clock import utcnow
from tally.members import service as members
from tally.partners.service import Scope

router = APIRouter(tags=["members"])

LINK_SALT = "tally.member-link"
LINK_LIFETIME = timedelta(minutes=10)
SIGN_IN_PATH = "/m/sign-in"


class MemberLink(BaseModel):
    """A one-click sign-in URL for the member pages."""

    url: str = Field(description="Relative URL; open it in the app's webview within 10 minutes.")
    expires_at: datetime


def _serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=LINK_SALT)


def mint_token(secret: str, member_id: int) -> str:
    """A signed token naming ``member_id``; valid for :data:`LINK_LIFETIME`. Each is unique (a
    random nonce), so two links minted in the same second are two links, each signing in once."""
    return _serializer(secret).dumps({"m": member_id, "n": secrets.token_urlsafe(9)})


def read_token(secret: str, token: str, lifetime: timedelta = LINK_LIFETIME) -> int | None:
    """The member a token names, or ``None`` when it is forged, malformed or expired."""
    try:
        payload: Any = _serializer(secret).loads(token, max_age=int(lifetime.total_seconds()))
    except BadSignature:
        return None
    member_id = payload.get("m") if isinstance(payload, dict) else None
    return member_id if isinstance(member_id, int) and member_id > 0 else None


def link_for(secret: str, member_id: int, now: datetime) -> MemberLink:
    """A fresh sign-in link for ``member_id``."""
    return MemberLink(
        url=f"{SIGN_IN_PATH}?token={mint_token(secret, member_id)}",
        expires_at=now + LINK_LIFETIME,
    )


@router.post("/v1/members/{member_id}/links", response_model=MemberLink, status_code=201)
async def create_member_link(
    member_id: MemberId, write: Annotated[Mutation, Depends(mutation(Scope.MEMBERS))]
) -> Response:
    """A signed link that opens the member pages as this member (valid 10 minutes); only
    the operator's own channels mint them."""

    def work(session: Session) -> tuple[int, BaseModel]:
        access.require_operator_channel(write.holder, "open the member pages")
        members.require_usable(session, member_id, allow_frozen=True)
        return 201, link_for(write.request.app.state.secret, member_id, utcnow())

    return await write.run(work)
