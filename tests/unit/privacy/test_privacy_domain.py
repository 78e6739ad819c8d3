"""Who sees what of a member, and what an act of consent changes (pure rules)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from tally.config import Settings
from tally.privacy.domain import (
    EVERYTHING,
    Collection,
    CollectionMethod,
    ConsentAct,
    Purpose,
    api_channel,
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
    for good in ("member_pages", "api:MOBILE", "api:food-1", "console:7"):
        assert is_channel(good), good
    for bad in ("", "api:", "console:x", "member pages", "api:MOBILE\n", "sms"):
        assert not is_channel(bad), bad
