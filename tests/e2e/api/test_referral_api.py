"""``POST /v1/members`` with a ``referral_code``: the new member linked to its referrer, and
each refusal a problem document with its stable code that writes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from apikit import assert_problem, db_state

from conftest import Api, PartnerKey
from support.event_programme import CAMPAIGNS, apply_campaigns
from tally.db.session import Database
from tally.engagement.models import Referral
from tally.flows import referrals
from tally.kit.clock import utcnow
from tally.member_codes.domain import MISSES_PER_WINDOW


@pytest.fixture
def code(database: Database, api: Api) -> tuple[int, str]:
    apply_campaigns(database, CAMPAIGNS)
    ann = api.enrol("13700000001")
    with database.write() as session:
        return ann, referrals.code_of(session, ann, utcnow())


def _enrol(api: Api, phone: str, code: str) -> Any:
    return api.post(
        "/v1/members",
        {"external_id": {"namespace": "phone", "id": phone}, "referral_code": code},
    )


def test_a_member_enrolled_with_a_code_is_linked_to_its_referrer(
    api: Api, database: Database, code: tuple[int, str]
) -> None:
    ann, text = code
    answer = _enrol(api, "13700000002", text.lower())
    assert answer.status_code == 201, answer.text
    with database.read() as session:
        referral = session.get(Referral, answer.json()["id"])
        assert referral is not None
        assert (referral.referrer_id, referral.code, referral.completed_at) == (ann, text, None)


@pytest.mark.parametrize(
    ("phone", "sent", "status", "problem"),
    [
        ("13700000001", None, 409, "referral_refused"),  # Ann's own identity
        ("13700000003", "ZZZZZ-ZZZZZ", 422, "validation_error"),  # nobody's code
        ("13700000003", "<script>", 422, "validation_error"),  # not a code's shape
        ("13700000003", "A" * 21, 422, "validation_error"),
    ],
    ids=["self", "unknown", "shape", "too-long"],
)
def test_a_refused_referral_writes_nothing(
    api: Api,
    database: Database,
    code: tuple[int, str],
    phone: str,
    sent: str | None,
    status: int,
    problem: str,
) -> None:
    before = db_state(database)
    body = assert_problem(_enrol(api, phone, sent or code[1]), status, problem)
    after = db_state(database)
    counted = after.pop("member_code_misses")
    if problem == "validation_error" and sent == "ZZZZZ-ZZZZZ":
        assert "No member has the referral code" in body["detail"]
        assert len(counted) == 1  # an unknown code counts against probing, nothing else
    else:
        assert counted == before["member_code_misses"]
    before.pop("member_code_misses")
    assert after == before


def test_an_identity_with_a_member_is_not_referred(
    api: Api, database: Database, code: tuple[int, str], partner: PartnerKey
) -> None:
    api.enrol("13700000004")
    before = db_state(database)
    body = assert_problem(_enrol(api, "13700000004", code[1]), 409, "referral_refused")
    assert "Only a new member" in body["detail"]
    assert db_state(database) == before


def test_unknown_codes_are_rate_limited_against_probing(
    api: Api, database: Database, code: tuple[int, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    at = datetime(2026, 12, 4, 9, 0, 5, tzinfo=UTC)
    monkeypatch.setattr("tally.api.members.utcnow", lambda: at)
    for serial in range(MISSES_PER_WINDOW):
        probe = _enrol(api, f"1370001{serial:04d}", f"ZZZZZ-ZZ{serial:03d}")
        assert_problem(probe, 422, "validation_error")

    before = db_state(database)
    refused = _enrol(api, "13700020000", code[1])  # even a real code, until the minute is over
    assert_problem(refused, 429, "rate_limited")
    assert refused.headers["retry-after"] == "55"
    assert db_state(database) == before

    monkeypatch.setattr("tally.api.members.utcnow", lambda: at + timedelta(minutes=1))
    assert _enrol(api, "13700020000", code[1]).status_code == 201
