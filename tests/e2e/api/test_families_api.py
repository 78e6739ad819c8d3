"""Family accounts over the partner API, on SQLite and PostgreSQL: the invitation lifecycle,
pool and share spending, monthly limits (and their month boundaries in Asia/Shanghai),
reversals back to the wallets drawn on, leaving, dissolving, merges; every refusal with its
code and nothing written; the ledger verifies throughout."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from apikit import assert_problem, db_state, merge, tolerant_client
from sqlalchemy import func, select

from conftest import Api, PartnerKey
from tally.config import Settings
from tally.db.session import Database
from tally.errors import FamilyLimitExceeded
from tally.families import service as families
from tally.families.models import FamilySpend
from tally.flows import family_spend
from tally.ledger import reversals
from tally.ledger import service as ledger
from tally.ledger.domain import Origin
from tally.ledger.models import JournalEntry
from tally.ledger.posting import policy_for
from tally.ledger.verify import verify
from tally.programme.runtime import default_programme


@pytest.fixture
def api(app: Any, partner: PartnerKey) -> Iterator[Api]:
    with tolerant_client(app) as client:
        yield Api(client, partner)


def ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json()  # type: ignore[no-any-return]


def sound(database: Database) -> None:
    with database.read() as session:
        report = verify(session)
    assert report.ok, report.problems


def people(api: Api, count: int, points: int = 0) -> list[int]:
    ids = []
    for _ in range(count):
        member = api.enrol(f"fam-{os.urandom(6).hex()}", namespace="app")
        if points:
            ok(api.earn(member, points), 201)
        ids.append(member)
    return ids


def family_with(api: Api, owner: int, joined: list[int], mode: str = "share") -> int:
    family = ok(api.post("/v1/families", {"acting_member_id": owner, "mode": mode}), 201)["id"]
    for member in joined:
        ok(
            api.post(
                f"/v1/families/{family}/invitations",
                {"acting_member_id": owner, "member_id": member},
            ),
            201,
        )
        ok(
            api.post(
                f"/v1/families/{family}/invitations/{member}/accept",
                {"acting_member_id": member},
            )
        )
    return int(family)


def spend(api: Api, family: int, member: int, points: int, reference: str | None = None) -> Any:
    return api.post(
        f"/v1/families/{family}/redemptions",
        {
            "member_id": member,
            "points": points,
            "reference": reference or f"fam-{os.urandom(5).hex()}",
        },
    )


# --- The invitation lifecycle ------------------------------------------------------------------


def test_invitations_are_accepted_declined_withdrawn_and_shown(api: Api) -> None:
    owner, ann, bob, cat = people(api, 4)
    created = ok(api.post("/v1/families", {"acting_member_id": owner, "mode": "pool"}), 201)
    family = created["id"]
    assert created["owner_id"] == owner
    assert created["mode"] == "pool"
    assert created["status"] == "active"
    assert [(m["member_id"], m["role"]) for m in created["members"]] == [(owner, "owner")]
    assert created["seats_taken"] == 1

    for member in (ann, bob, cat):
        body = ok(
            api.post(
                f"/v1/families/{family}/invitations",
                {"acting_member_id": owner, "member_id": member},
            ),
            201,
        )
    assert [item["member_id"] for item in body["invitations"]] == [ann, bob, cat]
    assert body["seats_taken"] == 4

    joined = ok(
        api.post(f"/v1/families/{family}/invitations/{ann}/accept", {"acting_member_id": ann})
    )
    assert [(m["member_id"], m["role"]) for m in joined["members"]] == [
        (owner, "owner"),
        (ann, "member"),
    ]
    declined = ok(
        api.post(f"/v1/families/{family}/invitations/{bob}/decline", {"acting_member_id": bob})
    )
    assert declined["seats_taken"] == 3
    withdrawn = ok(
        api.post(f"/v1/families/{family}/invitations/{cat}/withdraw", {"acting_member_id": owner})
    )
    assert withdrawn["invitations"] == []
    assert withdrawn["seats_taken"] == 2

    shown = ok(api.get(f"/v1/families/{family}"))
    assert shown == ok(api.get(f"/v1/members/{ann}/family"))
    assert shown["members"][1]["monthly_limit"] == 5000
    assert shown["members"][1]["limit_is_default"] is True
    assert shown["members"][0]["monthly_limit"] is None
    assert_problem(api.get(f"/v1/members/{bob}/family"), 404, "not_found")


def test_a_family_never_exceeds_max_members_counting_invitations(api: Api) -> None:
    owner, *others = people(api, 7)
    family = family_with(api, owner, others[:3])
    for member in others[3:5]:
        ok(
            api.post(
                f"/v1/families/{family}/invitations",
                {"acting_member_id": owner, "member_id": member},
            ),
            201,
        )
    # 1 owner + 3 members + 2 pending invitations = 6 = max_members.
    assert_problem(
        api.post(
            f"/v1/families/{family}/invitations",
            {"acting_member_id": owner, "member_id": others[5]},
        ),
        409,
        "family_full",
    )
    ok(
        api.post(
            f"/v1/families/{family}/invitations/{others[3]}/decline",
            {"acting_member_id": others[3]},
        )
    )
    ok(
        api.post(
            f"/v1/families/{family}/invitations",
            {"acting_member_id": owner, "member_id": others[5]},
        ),
        201,
    )


def test_joining_one_family_cancels_other_invitations(api: Api) -> None:
    first_owner, second_owner, member = people(api, 3)
    first = family_with(api, first_owner, [])
    second = family_with(api, second_owner, [])
    for family, owner in ((first, first_owner), (second, second_owner)):
        ok(
            api.post(
                f"/v1/families/{family}/invitations",
                {"acting_member_id": owner, "member_id": member},
            ),
            201,
        )
    ok(api.post(f"/v1/families/{first}/invitations/{member}/accept", {"acting_member_id": member}))
    other = ok(api.get(f"/v1/families/{second}"))
    assert other["invitations"] == []
    assert other["seats_taken"] == 1
    assert_problem(
        api.post(
            f"/v1/families/{second}/invitations/{member}/accept", {"acting_member_id": member}
        ),
        409,
        "invitation_not_pending",
    )
    assert_problem(
        api.post(
            f"/v1/families/{second}/invitations",
            {"acting_member_id": second_owner, "member_id": member},
        ),
        409,
        "already_in_family",
    )


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("not_owner_invites", 403, "not_family_owner"),
        ("stranger_accepts", 403, "not_invitee"),
        ("owner_creates_again", 409, "already_in_family"),
        ("invite_unknown_member", 404, "not_found"),
        ("invite_self", 422, "validation_error"),
        ("invite_twice", 409, "conflict"),
        ("accept_without_invitation", 409, "invitation_not_pending"),
        ("owner_leaves", 409, "conflict"),
        ("member_removes_owner", 403, "not_family_owner"),
        ("unknown_family", 404, "not_found"),
        ("bad_mode", 422, "validation_error"),
        ("negative_limit", 422, "validation_error"),
        ("limit_for_stranger", 404, "not_found"),
        ("member_changes_settings", 403, "not_family_owner"),
        ("string_member_id", 422, "validation_error"),
        ("unknown_field", 422, "validation_error"),
    ],
)
def test_bad_family_requests_are_refused_and_write_nothing(
    api: Api, database: Database, case: str, status: int, code: str
) -> None:
    owner, member, stranger, invitee = people(api, 4)
    family = family_with(api, owner, [member])
    ok(
        api.post(
            f"/v1/families/{family}/invitations",
            {"acting_member_id": owner, "member_id": invitee},
        ),
        201,
    )
    requests: dict[str, tuple[str, dict[str, Any]]] = {
        "not_owner_invites": (
            f"/v1/families/{family}/invitations",
            {"acting_member_id": member, "member_id": stranger},
        ),
        "stranger_accepts": (
            f"/v1/families/{family}/invitations/{invitee}/accept",
            {"acting_member_id": stranger},
        ),
        "owner_creates_again": ("/v1/families", {"acting_member_id": owner}),
        "invite_unknown_member": (
            f"/v1/families/{family}/invitations",
            {"acting_member_id": owner, "member_id": 999_999},
        ),
        "invite_self": (
            f"/v1/families/{family}/invitations",
            {"acting_member_id": owner, "member_id": owner},
        ),
        "invite_twice": (
            f"/v1/families/{family}/invitations",
            {"acting_member_id": owner, "member_id": invitee},
        ),
        "accept_without_invitation": (
            f"/v1/families/{family}/invitations/{stranger}/accept",
            {"acting_member_id": stranger},
        ),
        "owner_leaves": (
            f"/v1/families/{family}/members/{owner}/leave",
            {"acting_member_id": owner},
        ),
        "member_removes_owner": (
            f"/v1/families/{family}/members/{owner}/remove",
            {"acting_member_id": member},
        ),
        "unknown_family": ("/v1/families/987654/dissolve", {"acting_member_id": owner}),
        "bad_mode": (f"/v1/families/{family}/settings", {"acting_member_id": owner, "mode": "x"}),
        "negative_limit": (
            f"/v1/families/{family}/settings",
            {"acting_member_id": owner, "limits": [{"member_id": member, "monthly_limit": -1}]},
        ),
        "limit_for_stranger": (
            f"/v1/families/{family}/settings",
            {"acting_member_id": owner, "limits": [{"member_id": stranger, "monthly_limit": 5}]},
        ),
        "member_changes_settings": (
            f"/v1/families/{family}/settings",
            {"acting_member_id": member, "mode": "pool"},
        ),
        "string_member_id": ("/v1/families", {"acting_member_id": str(stranger)}),
        "unknown_field": ("/v1/families", {"acting_member_id": stranger, "colour": "red"}),
    }
    path, body = requests[case]
    before = db_state(database)
    assert_problem(api.post(path, body), status, code)
    assert db_state(database) == before


# --- Spending --------------------------------------------------------------------------------


def test_pool_owner_spends_own_points_first_then_members_in_join_order(
    api: Api, database: Database
) -> None:
    owner, first, second = people(api, 3, 100)
    family = family_with(api, owner, [first, second], mode="pool")
    spent = ok(spend(api, family, owner, 250), 201)
    assert spent["drawn"] == [
        {"member_id": owner, "points": 100},
        {"member_id": first, "points": 100},
        {"member_id": second, "points": 50},
    ]
    assert spent["spent_by"] == owner
    assert spent["remaining_this_month"] is None
    assert [api.balance(m)["available"] for m in (owner, first, second)] == [0, 0, 50]
    shown = ok(api.get(f"/v1/families/{family}"))
    assert shown["pooled_available"] == 50

    with database.read() as session:
        entry = session.get(JournalEntry, uuid.UUID(spent["id"]))
        assert entry is not None
        assert entry.kind.value == "redeem"
        assert entry.partner_id == api.key.partner_id
        assert entry.details is not None
        assert entry.details["spent_by"] == owner
        assert entry.details["family_id"] == family
    sound(database)

    # A member cannot spend pooled points; the family cannot be overdrawn.
    before = db_state(database)
    assert_problem(spend(api, family, first, 10), 403, "not_family_owner")
    assert_problem(spend(api, family, owner, 51), 409, "insufficient_points")
    assert db_state(database) == before

    # The reversal gives each wallet back what was drawn from it.
    reversed_ = ok(api.post(f"/v1/transactions/{spent['id']}/reverse"), 201)
    assert reversed_["details"]["returned"] == 250
    assert [api.balance(m)["available"] for m in (owner, first, second)] == [100, 100, 100]
    sound(database)


def test_share_members_spend_the_owners_points_within_their_limit(
    api: Api, database: Database
) -> None:
    (owner,) = people(api, 1, 1000)
    first, second = people(api, 2, 7)
    family = family_with(api, owner, [first, second], mode="share")
    patched = api.client.patch(
        f"/v1/families/{family}",
        json={"acting_member_id": owner, "limits": [{"member_id": first, "monthly_limit": 300}]},
        headers=api.key.headers("patch-limits-1"),
    )
    assert ok(patched)["members"][1]["monthly_limit"] == 300
    spent = ok(spend(api, family, first, 200), 201)
    assert spent["drawn"] == [{"member_id": owner, "points": 200}]
    assert spent["remaining_this_month"] == 100
    assert api.balance(first)["available"] == 7
    assert api.balance(owner)["available"] == 800

    before = db_state(database)
    refused = assert_problem(spend(api, family, first, 101), 422, "family_limit_exceeded")
    assert refused["remaining"] == 100
    assert db_state(database) == before

    ok(spend(api, family, second, 600), 201)  # the default limit is 5000
    assert_problem(spend(api, family, second, 300), 409, "insufficient_points")
    shown = ok(api.get(f"/v1/families/{family}"))
    lines = {line["member_id"]: line for line in shown["members"]}
    assert (lines[first]["spent_this_month"], lines[first]["remaining_this_month"]) == (200, 100)
    assert (lines[second]["spent_this_month"], lines[second]["remaining_this_month"]) == (
        600,
        4400,
    )

    # Reversing gives the owner the points and the member its allowance back.
    ok(api.post(f"/v1/transactions/{spent['id']}/reverse"), 201)
    assert api.balance(owner)["available"] == 400
    shown = ok(api.get(f"/v1/families/{family}"))
    lines = {line["member_id"]: line for line in shown["members"]}
    assert lines[first]["remaining_this_month"] == 300
    again = ok(spend(api, family, first, 300), 201)
    assert again["remaining_this_month"] == 0
    sound(database)

    # Outsiders cannot spend; switching to pool stops members spending.
    (outsider,) = people(api, 1)
    assert_problem(spend(api, family, outsider, 1), 403, "not_family_member")
    ok(api.post(f"/v1/families/{family}/settings", {"acting_member_id": owner, "mode": "pool"}))
    assert_problem(spend(api, family, second, 1), 403, "not_family_owner")


def test_spend_requests_are_validated(api: Api, database: Database) -> None:
    (owner,) = people(api, 1, 10)
    family = family_with(api, owner, [])
    before = db_state(database)
    for body in (
        {"member_id": owner, "points": 0, "reference": "x"},
        {"member_id": owner, "points": 1.5, "reference": "x"},
        {"member_id": owner, "points": "3", "reference": "x"},
        {"member_id": owner, "points": 3},
        {"member_id": owner, "points": 3, "reference": ""},
    ):
        assert_problem(
            api.post(f"/v1/families/{family}/redemptions", body), 422, "validation_error"
        )
    assert_problem(spend(api, 987654, owner, 1), 404, "not_found")
    assert db_state(database) == before
    ok(spend(api, family, owner, 4, "same-ref"), 201)
    assert_problem(spend(api, family, owner, 4, "same-ref"), 409, "duplicate_reference")


def test_leaving_removal_and_dissolution_keep_everyones_points(
    api: Api, database: Database
) -> None:
    owner, ann, bob = people(api, 3, 50)
    family = family_with(api, owner, [ann, bob], mode="pool")
    left = ok(api.post(f"/v1/families/{family}/members/{ann}/leave", {"acting_member_id": ann}))
    assert [m["member_id"] for m in left["members"]] == [owner, bob]
    removed = ok(
        api.post(f"/v1/families/{family}/members/{bob}/remove", {"acting_member_id": owner})
    )
    assert [m["member_id"] for m in removed["members"]] == [owner]
    assert [api.balance(m)["available"] for m in (owner, ann, bob)] == [50, 50, 50]
    # Ann may found her own family now.
    ok(api.post("/v1/families", {"acting_member_id": ann}), 201)

    dissolved = ok(api.post(f"/v1/families/{family}/dissolve", {"acting_member_id": owner}))
    assert dissolved["status"] == "dissolved"
    assert dissolved["members"] == []
    assert_problem(api.get(f"/v1/members/{owner}/family"), 404, "not_found")
    assert_problem(spend(api, family, owner, 1), 409, "family_dissolved")
    assert api.balance(owner)["available"] == 50
    sound(database)


def test_a_member_in_a_family_is_not_merged(api: Api, database: Database) -> None:
    from tally.errors import AlreadyInFamily

    owner, member, other = people(api, 3)
    family = family_with(api, owner, [member])
    with pytest.raises(AlreadyInFamily):
        merge(database, other, member)
    ok(api.post(f"/v1/families/{family}/members/{member}/leave", {"acting_member_id": member}))
    merge(database, other, member)


def test_writes_are_idempotent(api: Api) -> None:
    (owner,) = people(api, 1, 10)
    first = api.post("/v1/families", {"acting_member_id": owner}, idempotency_key="fam-create-1")
    again = api.post("/v1/families", {"acting_member_id": owner}, idempotency_key="fam-create-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"


# --- Months in the programme's zone ----------------------------------------------------------


def test_limits_follow_calendar_months_in_asia_shanghai(
    database: Database, settings: Settings, partner: PartnerKey
) -> None:
    from tally.flows import enrolment
    from tally.members.service import Identity

    programme = default_programme(settings)
    assert programme.currency.timezone == "Asia/Shanghai"
    policy = policy_for(programme, settings)
    origin = Origin(partner_id=partner.partner_id)
    start = datetime(2026, 11, 2, tzinfo=UTC)
    with database.write() as session:
        owner, _ = enrolment.enrol(session, Identity("phone", "m-owner"), {}, start)
        member, _ = enrolment.enrol(session, Identity("phone", "m-member"), {}, start)
        ledger.earn(session, origin, owner, 20_000, "seed", start, policy)
        family = families.create(session, owner, families.FamilyMode.SHARE, start)
        families.invite(session, family, owner, member, start, programme.family)
        families.accept(session, family, member, member, start)

    def spend_at(at: datetime, points: int, reference: str) -> family_spend.Spent:
        with database.write() as session:
            return family_spend.spend(
                session, origin, family, member, points, reference, at, policy, programme
            )

    # 23:30 on 30 November in Shanghai is 15:30 UTC: it counts for November.
    late_november = spend_at(datetime(2026, 11, 30, 15, 30, tzinfo=UTC), 4000, "nov")
    assert (late_november.month, late_november.remaining_this_month) == ("2026-11", 1000)
    with pytest.raises(FamilyLimitExceeded):
        spend_at(datetime(2026, 11, 30, 15, 59, tzinfo=UTC), 1001, "nov-2")
    # 00:30 on 1 December in Shanghai is still 30 November in UTC: a new month, a new limit.
    early_december = spend_at(datetime(2026, 11, 30, 16, 30, tzinfo=UTC), 5000, "dec")
    assert (early_december.month, early_december.remaining_this_month) == ("2026-12", 0)

    # Reversing November's spend in December gives November's allowance back, not December's.
    with database.write() as session:
        reversals.reverse(
            session, origin, late_november.entry_id, datetime(2026, 12, 2, tzinfo=UTC), policy
        )
    with database.read() as session:
        view = families.view(session, family, datetime(2026, 11, 30, 15, 0, tzinfo=UTC), programme)
        assert view.month == "2026-11"
        assert view.members[1].spent_this_month == 0
        view = families.view(session, family, datetime(2026, 12, 5, tzinfo=UTC), programme)
        assert view.members[1].remaining_this_month == 0
    with pytest.raises(FamilyLimitExceeded):
        spend_at(datetime(2026, 12, 3, tzinfo=UTC), 1, "dec-2")
    spend_at(datetime(2026, 11, 30, 15, 45, tzinfo=UTC), 5000, "nov-3")
    with database.read() as session:
        returned = session.scalar(
            select(func.count()).select_from(FamilySpend).where(FamilySpend.returned_at.isnot(None))
        )
        assert returned == 1
        report = verify(session)
    assert report.ok, report.problems


def test_a_pool_spend_reversed_after_a_member_left_and_merged_returns_to_the_survivor(
    api: Api, database: Database
) -> None:
    owner, member, survivor = people(api, 3, 40)
    family = family_with(api, owner, [member], mode="pool")
    spent = ok(spend(api, family, owner, 70), 201)
    assert spent["drawn"] == [
        {"member_id": owner, "points": 40},
        {"member_id": member, "points": 30},
    ]
    ok(api.post(f"/v1/families/{family}/members/{member}/leave", {"acting_member_id": member}))
    merge(database, survivor, member)
    reversed_ = ok(api.post(f"/v1/transactions/{spent['id']}/reverse"), 201)
    assert reversed_["details"]["returned_to"] == [
        {"member_id": owner, "points": 40},
        {"member_id": survivor, "points": 30},
    ]
    assert api.balance(owner)["available"] == 40
    assert api.balance(survivor)["available"] == 40 + 10 + 30
    sound(database)


def test_frozen_members_are_skipped_when_drawing_on_a_pool(api: Api, database: Database) -> None:
    owner, frozen, other = people(api, 3, 20)
    family = family_with(api, owner, [frozen, other], mode="pool")
    ok(api.post(f"/v1/members/{frozen}/freeze", {"reason": "dispute"}))
    spent = ok(spend(api, family, owner, 30), 201)
    assert spent["drawn"] == [
        {"member_id": owner, "points": 20},
        {"member_id": other, "points": 10},
    ]
    assert api.balance(frozen)["available"] == 20
    assert_problem(spend(api, family, owner, 11), 409, "insufficient_points")


def test_settings_change_mode_and_reset_limits(api: Api) -> None:
    owner, member = people(api, 2)
    family = family_with(api, owner, [member])
    path = f"/v1/families/{family}/settings"
    limited = ok(
        api.post(
            path,
            {
                "acting_member_id": owner,
                "mode": "pool",
                "limits": [{"member_id": member, "monthly_limit": 0}],
            },
        )
    )
    assert limited["mode"] == "pool"
    assert (limited["members"][1]["monthly_limit"], limited["members"][1]["limit_is_default"]) == (
        0,
        False,
    )
    reset = ok(
        api.post(
            path,
            {
                "acting_member_id": owner,
                "mode": "share",
                "limits": [{"member_id": member, "monthly_limit": None}],
            },
        )
    )
    assert reset["mode"] == "share"
    assert reset["members"][1]["monthly_limit"] == 5000
    assert reset["members"][1]["limit_is_default"] is True


def test_a_family_spend_is_replayed_for_the_same_idempotency_key(
    api: Api, database: Database
) -> None:
    (owner,) = people(api, 1, 10)
    family = family_with(api, owner, [])
    body = {"member_id": owner, "points": 3, "reference": "replayed"}
    first = api.post(f"/v1/families/{family}/redemptions", body, idempotency_key="fam-spend-1")
    again = api.post(f"/v1/families/{family}/redemptions", body, idempotency_key="fam-spend-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert api.balance(owner)["available"] == 7
