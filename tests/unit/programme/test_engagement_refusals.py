"""The programme file's referral block and tasks: each mistake refused with its line and a
clear message; a valid block is read as written."""

from __future__ import annotations

import pytest

from tally.programme import loader
from unit.programme.test_campaign_refusals import SAMPLE, line_of

REFERRAL = """\
referral:
  qualifying: [purchase, survey_answered]
  share_url: "https://app.example.com/join?ref={code}"
"""
TEXT = SAMPLE + REFERRAL

REFUSED = [
    ("an unknown type", "[purchase, survey_answered]", "[purchase, purchse]", "qualifying:",
     "referral.qualifying[1]", "no event type purchse"),
    ("a type Tally raises", "[purchase, survey_answered]", "[referral_completed]",
     "qualifying:", "referral.qualifying[0]", "referral_completed is raised by Tally"),
    ("no qualifying type", "[purchase, survey_answered]", "[]", "qualifying:",
     "referral.qualifying", "at least 1 item"),
    ("a link without the code", "join?ref={code}", "join", "share_url:", "referral.share_url",
     "should match pattern"),
    ("a link over plain http", "https://app", "http://app", "share_url:", "referral.share_url",
     "should match pattern"),
    ("an unknown key", "  share_url:", "  share_link:", "share_link:", "referral.share_link",
     "unknown field"),
]  # fmt: skip


def test_a_valid_referral_block_is_read() -> None:
    assert loader.errors_of(TEXT) == []
    programme = loader.load(TEXT, "p.yaml")
    assert programme.referral is not None
    assert programme.referral.qualifying == ["purchase", "survey_answered"]


@pytest.mark.parametrize(
    ("old", "new", "at", "path", "message"),
    [case[1:] for case in REFUSED],
    ids=[case[0] for case in REFUSED],
)
def test_a_mistake_in_the_referral_block_is_refused_with_its_line(
    old: str, new: str, at: str, path: str, message: str
) -> None:
    assert old in REFERRAL
    text = SAMPLE + REFERRAL.replace(old, new, 1)
    errors = loader.errors_of(text)
    assert [(error.path, error.line) for error in errors] == [(path, line_of(text, at))]
    assert message in errors[0].message
