"""Member links: signed, short-lived tokens naming one member."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tally.api.member_links import LINK_LIFETIME, link_for, mint_token, read_token
from tally.web.console.views import lot_state

SECRET = "s" * 40


def test_a_token_names_its_member() -> None:
    assert read_token(SECRET, mint_token(SECRET, 42)) == 42


def test_forged_tampered_and_expired_tokens_name_nobody() -> None:
    token = mint_token(SECRET, 42)
    assert read_token("another" * 6, token) is None
    assert read_token(SECRET, token[:-2] + "xx") is None
    assert read_token(SECRET, "garbage") is None
    assert read_token(SECRET, token, lifetime=timedelta(seconds=-1)) is None


def test_a_console_session_cookie_is_not_a_member_token() -> None:
    from itsdangerous import URLSafeTimedSerializer

    cookie = URLSafeTimedSerializer(SECRET, salt="tally.member.session").dumps({"m": 42})
    assert read_token(SECRET, cookie) is None


def test_a_link_is_relative_and_says_when_it_expires() -> None:
    now = datetime(2026, 11, 26, tzinfo=UTC)
    link = link_for(SECRET, 42, now)
    assert link.url.startswith("/m/sign-in?token=")
    assert link.expires_at == now + LINK_LIFETIME == now + timedelta(minutes=10)


class _Lot:
    def __init__(self, remaining: int, expires_at: datetime) -> None:
        self.remaining = remaining
        self.expires_at = expires_at


def test_lot_states() -> None:
    now = datetime(2026, 11, 26, tzinfo=UTC)
    later, earlier = now + timedelta(days=1), now - timedelta(days=1)
    assert lot_state(_Lot(5, later), 0, now) == "live"  # type: ignore[arg-type]
    assert lot_state(_Lot(0, later), 0, now) == "spent"  # type: ignore[arg-type]
    assert lot_state(_Lot(0, earlier), 0, now) == "spent"  # type: ignore[arg-type]
    assert lot_state(_Lot(0, earlier), 3, now) == "expired"  # type: ignore[arg-type]
    assert lot_state(_Lot(4, earlier), 0, now) == "expired"  # type: ignore[arg-type]
