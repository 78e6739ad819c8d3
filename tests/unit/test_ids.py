"""Time-ordered ids: ids made in one process sort in the order they were made."""

from __future__ import annotations

import uuid

import pytest

from tally.kit import ids


def test_ids_made_in_one_millisecond_sort_in_the_order_they_were_made() -> None:
    made = [ids.uuid7() for _ in range(5_000)]  # many to a millisecond

    assert made == sorted(made)
    assert len(set(made)) == len(made)
    assert {found.version for found in made} == {7}
    assert {found.variant for found in made} == {uuid.RFC_4122}


def test_a_clock_that_steps_back_or_a_full_counter_keeps_the_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ids, "_last", (2_000_000_000_000, 0xFFE))
    monkeypatch.setattr(ids.time, "time_ns", lambda: 1_000_000_000_000 * 1_000_000)

    made = [ids.uuid7() for _ in range(3)]

    assert made == sorted(made)
    assert [found.int >> 80 for found in made] == [2_000_000_000_000] + [2_000_000_000_001] * 2
    assert [(found.int >> 64) & 0xFFF for found in made] == [0xFFF, 0, 1]
