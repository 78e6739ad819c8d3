"""Who sees what of a member, and what an act of consent changes (pure rules)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from tally.config import Settings
from tally.privacy.domain import (
    EVERYTHING,
    MERGE,
    Collection,
    CollectionMethod,
    ConsentAct,
    Purpose,
    api_channel,
    carried_acts,
    carried_windows,
    changes,
    disclosure,
    is_channel,
    next_version,
    standing,
)
from tally.programme.domain import NamespaceSpec, Programme
from tally.programme.runtime import default_programme

T0 = datetime(2026, 12, 1, tzinfo=UTC)
SHOP, FOOD, MOBILE = 2, 3, 1


@dataclass(frozen=True)
class Partner:
    partner_id: int
    partner_code: str
    is_operator_channel: bool = False


def programme() -> Programme:
    """One tier, and the demo's namespaces: phone shared by all, email by SHOP, own ids."""
    base = default_programme(Settings(secret_key="x" * 32))
    return base.model_copy(
        update={
            "namespaces": [
                NamespaceSpec(code="phone", shared_with="all"),
                NamespaceSpec(code="email", shared_with=["SHOP"]),
                NamespaceSpec(code="shop", owner="SHOP"),
                NamespaceSpec(code="food", owner="FOOD"),
            ]
        }
    )


def act(
    partner: int, version: int, granted: bool, purpose: Purpose = Purpose.PROFILE
) -> ConsentAct:
    return ConsentAct(partner, purpose, version, granted, "member_pages", T0 + timedelta(version))


def test_the_operator_channel_sees_everything() -> None:
    seen = disclosure(Partner(MOBILE, "MOBILE", is_operator_channel=True), programme(), [], False)
    assert seen == EVERYTHING
    assert seen.shows("anything")


def test_a_partner_without_collection_or_consent_sees_only_its_own_namespaces() -> None:
    seen = disclosure(Partner(FOOD, "FOOD"), programme(), [], consented=False)
    assert seen.profile is False
    assert seen.namespaces == frozenset({"food"})
    assert not seen.shows("phone")


def test_enrolling_discloses_the_profile_and_the_shared_namespaces_it_may_use() -> None:
    enrolled = [Collection(SHOP, CollectionMethod.ENROL, "shop", T0)]
    seen = disclosure(Partner(SHOP, "SHOP"), programme(), enrolled, consented=False)
    assert seen.profile is True
    assert seen.namespaces == frozenset({"shop", "phone", "email"})


def test_a_link_discloses_its_namespace_but_not_the_profile() -> None:
    linked = [Collection(FOOD, CollectionMethod.LINK, "phone", T0)]
    seen = disclosure(Partner(FOOD, "FOOD"), programme(), linked, consented=False)
    assert seen.profile is False
    assert seen.namespaces == frozenset({"food", "phone"})


def test_another_partners_collection_discloses_nothing() -> None:
    enrolled = [Collection(SHOP, CollectionMethod.ENROL, "shop", T0)]
    seen = disclosure(Partner(FOOD, "FOOD"), programme(), enrolled, consented=False)
    assert seen.profile is False
    assert seen.namespaces == frozenset({"food"})


def test_a_consent_discloses_the_profile_and_the_shared_namespaces_it_may_use() -> None:
    seen = disclosure(Partner(FOOD, "FOOD"), programme(), [], consented=True)
    assert seen.profile is True
    assert seen.namespaces == frozenset({"food", "phone"})  # email is not shared with FOOD


def test_repeating_an_act_changes_nothing() -> None:
    assert changes(None, grant=True)
    assert not changes(None, grant=False)  # never granted: already withdrawn
    assert not changes(act(FOOD, 1, True), grant=True)
    assert changes(act(FOOD, 1, True), grant=False)
    assert changes(act(FOOD, 2, False), grant=True)
    assert next_version(None) == 1
    assert next_version(act(FOOD, 4, False)) == 5


@given(
    st.lists(
        st.tuples(st.sampled_from([SHOP, FOOD]), st.sampled_from(list(Purpose)), st.booleans()),
        max_size=30,
    ),
    st.randoms(),
)
def test_the_standing_state_is_the_latest_act_whatever_the_order_read(
    acts: list[tuple[int, Purpose, bool]], shuffler: object
) -> None:
    versions: dict[tuple[int, Purpose], int] = {}
    recorded = []
    for partner, purpose, granted in acts:
        versions[(partner, purpose)] = versions.get((partner, purpose), 0) + 1
        recorded.append(act(partner, versions[(partner, purpose)], granted, purpose))
    expected = {}
    for item in recorded:
        expected[(item.partner_id, item.purpose)] = item
    shuffled = list(recorded)
    shuffler.shuffle(shuffled)  # type: ignore[attr-defined]
    assert standing(shuffled) == expected


def test_channels() -> None:
    assert api_channel("MOBILE") == "api:MOBILE"
    for good in ("member_pages", "api:MOBILE", "api:food-1", "console", "merge"):
        assert is_channel(good), good
    for bad in ("", "api:", "console:7", "console:x", "member pages", "api:MOBILE\n", "sms"):
        assert not is_channel(bad), bad


# --- What a merge carries to the survivor ------------------------------------------------------

MERGED_AT = T0 + timedelta(days=30)
STAFF = 7


def stood(*acts: ConsentAct) -> dict[tuple[int, Purpose], ConsentAct]:
    return standing(acts)


def carried(
    survivor: dict[tuple[int, Purpose], ConsentAct], merged: dict[tuple[int, Purpose], ConsentAct]
) -> list[tuple[int, Purpose, int, bool]]:
    found = carried_acts(survivor, merged, now=MERGED_AT, staff_id=STAFF)
    for item in found:
        assert (item.channel, item.created_at, item.recorded_by) == (MERGE, MERGED_AT, STAFF)
    return [(item.partner_id, item.purpose, item.version, item.is_granted) for item in found]


def test_where_the_survivor_has_no_record_the_merged_members_latest_act_carries_over() -> None:
    merged = stood(act(FOOD, 1, True), act(SHOP, 1, True), act(SHOP, 2, False))
    assert carried({}, merged) == [
        (SHOP, Purpose.PROFILE, 1, False),
        (FOOD, Purpose.PROFILE, 1, True),
    ]


def test_a_purpose_the_survivor_withdrew_stays_withdrawn() -> None:
    survivor = stood(act(FOOD, 1, True), act(FOOD, 2, False))
    for merged in (stood(act(FOOD, 1, True)), stood(act(FOOD, 3, False), act(FOOD, 4, True))):
        assert carried(survivor, merged) == []


def test_a_withdrawal_after_the_survivors_grant_carries_one_before_it_does_not() -> None:
    survivor = stood(act(FOOD, 2, True))  # granted at T0 + 2 days
    assert carried(survivor, stood(act(FOOD, 3, False))) == [(FOOD, Purpose.PROFILE, 3, False)]
    assert carried(survivor, stood(act(FOOD, 1, False))) == []
    assert carried(survivor, stood(act(FOOD, 5, True))) == []  # granted on both: nothing to add


def test_purposes_are_carried_on_their_own() -> None:
    survivor = stood(act(FOOD, 1, False))
    merged = stood(act(FOOD, 1, True), act(FOOD, 1, True, Purpose.MARKETING))
    assert carried(survivor, merged) == [(FOOD, Purpose.MARKETING, 1, True)]


@given(
    st.lists(st.tuples(st.sampled_from([SHOP, FOOD]), st.booleans()), max_size=8),
    st.lists(st.tuples(st.sampled_from([SHOP, FOOD]), st.booleans()), max_size=8),
    st.booleans(),
)
def test_a_merge_never_grants_what_the_survivor_did_not(
    ours: list[tuple[int, bool]], theirs: list[tuple[int, bool]], survivor_first: bool
) -> None:
    def history(items: list[tuple[int, bool]], offset: int) -> list[ConsentAct]:
        count: dict[int, int] = {}
        recorded = []
        for number, (partner, granted) in enumerate(items):
            count[partner] = count.get(partner, 0) + 1
            when = T0 + timedelta(hours=2 * number + offset)
            recorded.append(
                ConsentAct(partner, Purpose.PROFILE, count[partner], granted, "member_pages", when)
            )
        return recorded

    survivor = standing(history(ours, 0 if survivor_first else 1))
    merged = standing(history(theirs, 1 if survivor_first else 0))
    after = dict(survivor)
    for item in carried_acts(survivor, merged, now=MERGED_AT, staff_id=None):
        key = (item.partner_id, item.purpose)
        assert item.version == next_version(survivor.get(key))
        after[key] = item
    for key, state in after.items():
        if key in survivor:
            assert state.is_granted <= survivor[key].is_granted  # never broader
        else:
            assert state.is_granted == merged[key].is_granted
    assert set(after) == set(survivor) | set(merged)


def test_open_checkout_windows_carry_over_when_they_end_later() -> None:
    now = T0 + timedelta(minutes=10)

    def window(start: int, end: int) -> tuple[datetime, datetime]:
        return T0 + timedelta(minutes=start), T0 + timedelta(minutes=end)

    merged = {SHOP: window(0, 30), FOOD: window(5, 35), MOBILE: window(-40, 10)}
    assert carried_windows({}, merged, now=now) == {SHOP: window(0, 30), FOOD: window(5, 35)}
    survivor = {SHOP: window(2, 32), FOOD: window(1, 31)}
    assert carried_windows(survivor, merged, now=now) == {FOOD: window(5, 35)}
    assert carried_windows(merged, {}, now=now) == {}
