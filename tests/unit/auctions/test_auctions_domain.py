"""Proxy bidding, the soft close and the reserve, against a brute-force model: every bidder's
maximum kept, the price found by trying every price from the start up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tally.auctions.domain import (
    Bid,
    Increment,
    Refusal,
    Rules,
    UnsoldReason,
    check_increments,
    extended_end,
    increment_at,
    mask,
    minimum_bid,
    outcome,
    place,
    standing,
)

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
END = NOW + timedelta(minutes=10)
LADDER = (Increment(0, 10), Increment(1000, 50))


def rules(start: int = 100, reserve: int | None = None, soft: int = 60) -> Rules:
    return Rules(start, LADDER, reserve, soft, END + timedelta(minutes=30))


# --- The brute-force model --------------------------------------------------------------------


def model_step(ladder: tuple[Increment, ...], price: int) -> int:
    """The step at ``price``, by walking the ladder from the top."""
    for item in sorted(ladder, key=lambda item: -item.start):
        if item.start <= price:
            return item.step
    raise AssertionError("the ladder starts at 0")


def model_standing(bids: list[Bid], rule: Rules) -> tuple[int | None, int]:
    """``(leader, price)``: every member's maximum; the leader has the highest, the earliest
    bid among equals; the price is the first from the start that beats the runner-up by one
    increment, else the leader's maximum; the reserve once the leader's maximum reaches it."""
    maxima: dict[int, tuple[int, int]] = {}
    for bid in bids:
        if bid.member_id not in maxima or bid.max_points > maxima[bid.member_id][0]:
            maxima[bid.member_id] = (bid.max_points, bid.seq)
    if not maxima:
        return None, rule.start_points
    order = sorted(maxima.items(), key=lambda item: (-item[1][0], item[1][1]))
    leader, (top, _seq) = order[0]
    price = rule.start_points
    if len(order) > 1:
        runner = order[1][1][0]
        needed = runner + model_step(rule.increments, runner)
        price = next((p for p in range(rule.start_points, top + 1) if p >= needed), top)
    if rule.reserve is not None and top >= rule.reserve:
        price = max(price, rule.reserve)
    return leader, price


bid_lists = st.lists(st.tuples(st.integers(1, 6), st.integers(1, 2500)), min_size=0, max_size=25)


@settings(max_examples=300, deadline=None)
@given(bid_lists, st.integers(1, 300), st.one_of(st.none(), st.integers(1, 3000)))
def test_bids_replayed_match_the_model(
    asked: list[tuple[int, int]], start: int, reserve: int | None
) -> None:
    """Each bid is accepted exactly when the model says it may be; after each, the leader and
    the price are the model's, the price never exceeds the leader's maximum, never falls, and
    an outbid leader is named."""
    rule = Rules(start, LADDER, reserve if reserve is None or reserve >= start else None, 0, END)
    accepted: list[Bid] = []
    price_before = rule.start_points
    for member, points in asked:
        leader, price = model_standing(accepted, rule)
        leader_max = max((b.max_points for b in accepted if b.member_id == leader), default=0)
        least = rule.start_points if leader is None else price + model_step(LADDER, price)
        allowed = points >= least and not (member == leader and points <= leader_max)
        decision = place(accepted, member, points, NOW, END, rule)
        assert (decision.bid is not None) is allowed
        if decision.bid is None:
            assert decision.refusal is not None
            assert decision.minimum >= least
            continue
        accepted.append(decision.bid)
        new_leader, new_price = model_standing(accepted, rule)
        assert decision.after.leader is not None
        assert (decision.after.leader.member_id, decision.after.price) == (new_leader, new_price)
        assert decision.after.price <= decision.after.leader.max_points
        assert decision.after.price >= price_before
        assert decision.outbid == (leader if leader not in (None, new_leader) else None)
        assert decision.bidder_leads is (new_leader == member)
        price_before = decision.after.price


@settings(max_examples=200, deadline=None)
@given(bid_lists)
def test_only_the_two_best_decide(asked: list[tuple[int, int]]) -> None:
    """Deciding from the two best of the members' best bids is deciding from all of them."""
    rule = rules(start=1)
    accepted: list[Bid] = []
    for member, points in asked:
        full = place(accepted, member, points, NOW, END, rule)
        best: dict[int, Bid] = {}
        for item in accepted:
            if item.member_id not in best or item.max_points > best[item.member_id].max_points:
                best[item.member_id] = item
        top = sorted(best.values(), key=lambda b: (-b.max_points, b.seq))[:2]
        short = place(top, member, points, NOW, END, rule, seq=len(accepted) + 1)
        assert (short.refusal, short.after, short.outbid) == (full.refusal, full.after, full.outbid)
        if full.bid is not None:
            accepted.append(full.bid)


# --- Examples ---------------------------------------------------------------------------------


def test_a_second_bidder_pays_one_increment_above_the_runner_up() -> None:
    rule = rules()
    first = place([], 1, 500, NOW, END, rule)
    assert first.bid is not None
    assert first.after.price == 100
    second = place([first.bid], 2, 300, NOW, END, rule)
    assert second.bid is not None
    assert not second.bidder_leads
    assert (second.after.leader, second.after.price) == (first.bid, 310)
    third = place([first.bid, second.bid], 3, 1200, NOW, END, rule)
    assert third.outbid == 1
    assert third.after.price == 510  # 500 + 10: the step below 1,000


def test_the_step_changes_with_the_runner_up() -> None:
    rule = rules()
    bids = [Bid(1, 1000, 1), Bid(2, 5000, 2)]
    assert standing(bids, rule).price == 1050
    assert increment_at(LADDER, 999) == 10
    assert increment_at(LADDER, 1000) == 50


def test_equal_maxima_go_to_the_earlier_bid_at_that_maximum() -> None:
    rule = rules()
    first = place([], 1, 400, NOW, END, rule)
    assert first.bid is not None
    tie = place([first.bid], 2, 400, NOW, END, rule)
    assert tie.bid is not None
    assert not tie.bidder_leads
    assert (tie.after.leader, tie.after.price) == (first.bid, 400)


def test_a_bid_below_the_price_plus_one_increment_is_too_low() -> None:
    rule = rules()
    bids = [Bid(1, 500, 1), Bid(2, 300, 2)]  # price 310
    refused = place(bids, 3, 319, NOW, END, rule)
    assert (refused.refusal, refused.minimum, refused.bid) == (Refusal.TOO_LOW, 320, None)
    assert place(bids, 3, 320, NOW, END, rule).bid is not None
    assert place([], 1, 99, NOW, END, rule).refusal is Refusal.TOO_LOW  # below the start


def test_the_leader_raises_its_own_maximum_without_moving_the_price() -> None:
    rule = rules()
    bids = [Bid(1, 500, 1), Bid(2, 300, 2)]
    raised = place(bids, 1, 900, END - timedelta(seconds=5), END, rule)
    assert raised.bid is not None
    assert raised.bidder_leads
    assert raised.outbid is None
    assert raised.after.price == 310
    assert raised.ends_at == END  # nothing watchers see moved: no extension
    same = place(bids, 1, 500, NOW, END, rule)
    assert (same.refusal, same.minimum) == (Refusal.NOT_ABOVE_OWN, 501)


def test_a_late_bid_extends_the_end_up_to_the_cap() -> None:
    rule = rules(soft=60)
    late = place([Bid(1, 500, 1)], 2, 800, END - timedelta(seconds=20), END, rule)
    assert late.ends_at == END + timedelta(seconds=40)
    early = place([Bid(1, 500, 1)], 2, 800, END - timedelta(seconds=61), END, rule)
    assert early.ends_at == END
    capped = rule.latest_end
    assert extended_end(capped - timedelta(seconds=1), capped - timedelta(seconds=2), rule) == (
        capped
    )


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 3600), st.integers(0, 7200), st.integers(0, 600))
def test_the_end_never_moves_back_nor_past_the_cap(left: int, cap: int, soft: int) -> None:
    ends = NOW + timedelta(seconds=left)
    rule = Rules(1, LADDER, None, soft, ends + timedelta(seconds=cap))
    after = extended_end(ends, NOW, rule)
    assert ends <= after <= rule.latest_end


def test_a_reserve_lifts_the_price_once_met_and_decides_the_close() -> None:
    rule = rules(reserve=800)
    alone = standing([Bid(1, 500, 1)], rule)
    assert (alone.price, alone.reserve_met(800)) == (100, False)
    assert outcome(alone, 800).reason is UnsoldReason.RESERVE_NOT_MET
    met = standing([Bid(1, 900, 1)], rule)
    assert (met.price, met.reserve_met(800)) == (800, True)
    assert (outcome(met, 800).winner, outcome(met, 800).price) == (1, 800)
    assert outcome(standing([], rule), 800).reason is UnsoldReason.NO_BIDS


def test_the_minimum_of_an_auction_without_bids_is_its_start() -> None:
    assert minimum_bid(standing([], rules(start=250)), rules(start=250)) == 250


@pytest.mark.parametrize(
    ("ladder", "wrong"),
    [
        ((), "at least one increment is needed"),
        ((Increment(5, 10),), "the first increment starts from 0"),
        ((Increment(0, 10), Increment(0, 20)), "each increment starts above the one before"),
        ((Increment(0, 0),), "every step is positive"),
        (LADDER, None),
    ],
)
def test_increment_ladders_are_checked(ladder: tuple[Increment, ...], wrong: str | None) -> None:
    assert check_increments(ladder) == wrong


def test_a_masked_leader_shows_two_digits() -> None:
    assert (mask(12345), mask(7)) == ("•••45", "•••7")
