"""The discount a coupon gives, why it does not apply, and its codes (pure, with Hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from tally.coupons import domain
from tally.coupons.domain import Cart, Kind, Line, Quote, Reason, Scope, Terms

NOW = datetime(2026, 12, 4, 12, tzinfo=UTC)


def terms(**fields: object) -> Terms:
    values: dict[str, object] = {"kind": Kind.AMOUNT, "value": 1500, "currency": "CNY"}
    values.update(fields)
    return Terms(**values)  # type: ignore[arg-type]


def test_an_amount_off_is_at_most_the_eligible_subtotal() -> None:
    assert domain.discount(terms(value=1500), 10_000) == 1500
    assert domain.discount(terms(value=1500), 900) == 900
    assert domain.discount(terms(value=1500), 0) == 0


def test_a_percent_rounds_down_to_the_minor_unit_and_stops_at_its_cap() -> None:
    ten = terms(kind=Kind.PERCENT, value=1000)
    assert domain.discount(ten, 999) == 99  # 99.9 fen rounds down
    assert domain.discount(terms(kind=Kind.PERCENT, value=1250, cap=500), 10_000) == 500
    assert domain.discount(terms(kind=Kind.PERCENT, value=10_000), 777) == 777


def test_the_scope_picks_the_eligible_lines() -> None:
    scoped = terms(scope=Scope(categories=("food",), skus=("GIFT",)))
    cart = Cart(10_000, (Line("A", 3000, "food"), Line("GIFT", 2000), Line("B", 5000, "toys")))
    assert domain.eligible_subtotal(scoped, cart) == 5000
    assert domain.eligible_subtotal(terms(), cart) == 10_000  # no scope: the whole cart


def test_reasons_in_their_order() -> None:
    cart = Cart(5000, (Line("A", 5000, "food"),))
    assert domain.quote(terms(valid_from=NOW + timedelta(seconds=1)), cart, "S", NOW) is (
        Reason.NOT_YET_VALID
    )
    assert domain.quote(terms(valid_until=NOW), cart, "S", NOW) is Reason.EXPIRED
    assert domain.quote(terms(scope=Scope(partners=("F",))), cart, "S", NOW) is (
        Reason.NOT_ACCEPTED_HERE
    )
    assert domain.quote(terms(), Cart(5000, currency="USD"), "S", NOW) is Reason.CURRENCY_MISMATCH
    assert domain.quote(terms(scope=Scope(skus=("X",))), cart, "S", NOW) is Reason.NOT_APPLICABLE
    assert domain.quote(terms(min_spend=5001), cart, "S", NOW) is Reason.MIN_SPEND_NOT_MET
    assert domain.quote(terms(min_spend=5000, valid_until=NOW + timedelta(1)), cart, "S", NOW) == (
        Quote(eligible=5000, discount=1500, currency="CNY")
    )


def test_codes_are_readable_and_typed_back_in_any_form() -> None:
    codes = domain.new_codes(2000)
    assert len(set(codes)) == 2000
    for code in codes[:50]:
        assert len(code) == domain.CODE_LENGTH
        assert set(code) <= set(domain.ALPHABET)
        shown = domain.formatted(code)
        assert shown.count("-") == 2
        assert domain.normalise(f" {shown.lower()} ") == code
        assert domain.normalise(shown.replace("-", " ")) == code
    assert not set("01OIL") & set(domain.ALPHABET)
    assert domain.formatted("SPRING20") == "SPRING20"


def test_the_wallet_states() -> None:
    window = terms(valid_from=NOW, valid_until=NOW + timedelta(days=1))
    assert domain.wallet_state(domain.CouponStatus.ISSUED, window, NOW) == "valid"
    assert domain.wallet_state(domain.CouponStatus.REDEEMED, window, NOW) == "used"
    assert domain.wallet_state(domain.CouponStatus.ISSUED, window, NOW - timedelta(1)) == "upcoming"
    assert domain.wallet_state(domain.CouponStatus.ISSUED, window, NOW + timedelta(1)) == "expired"


amounts = st.integers(min_value=0, max_value=10**13)
any_terms = st.builds(
    Terms,
    kind=st.sampled_from(Kind),
    value=st.integers(min_value=1, max_value=10_000),
    currency=st.just("CNY"),
    cap=st.none() | st.integers(min_value=1, max_value=10**9),
    min_spend=st.none() | st.integers(min_value=1, max_value=10**9),
    scope=st.builds(
        Scope,
        categories=st.lists(st.sampled_from(["food", "toys"]), max_size=2).map(tuple),
        skus=st.lists(st.sampled_from(["A", "B", "C"]), max_size=2).map(tuple),
    ),
)
lines = st.lists(
    st.builds(
        Line,
        sku=st.sampled_from(["A", "B", "C", "D"]),
        amount=st.integers(min_value=0, max_value=10**9),
        category=st.none() | st.sampled_from(["food", "toys", "books"]),
    ),
    max_size=8,
)


@given(any_terms, amounts)
def test_a_discount_never_exceeds_the_subtotal_nor_the_cap(rules: Terms, subtotal: int) -> None:
    off = domain.discount(rules, subtotal)
    assert 0 <= off <= subtotal
    if rules.kind is Kind.PERCENT:
        assert off == min(subtotal * rules.value // 10_000, rules.cap or off)
        if rules.cap is not None:
            assert off <= rules.cap
    else:
        assert off <= rules.value


@given(any_terms, lines, st.integers(min_value=0, max_value=10**9))
def test_a_quote_is_exact_and_within_the_cart(rules: Terms, items: list[Line], extra: int) -> None:
    cart = Cart(sum(line.amount for line in items) + extra, tuple(items))
    found = domain.quote(rules, cart, "SHOP", NOW)
    if isinstance(found, Reason):
        assert found in {Reason.NOT_APPLICABLE, Reason.MIN_SPEND_NOT_MET}
        return
    assert found.eligible == domain.eligible_subtotal(rules, cart) <= cart.amount
    assert 0 <= found.discount <= found.eligible
    assert rules.min_spend is None or found.eligible >= rules.min_spend
