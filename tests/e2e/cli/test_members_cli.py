"""``tally member enrol|link``: the operator uses every namespace the programme declares, and
no other (a typo never creates a duplicate member)."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import create_engine, text

from e2e.cli.clikit import run
from support.access import with_namespaces, with_partner
from tally.config import Settings
from tally.programme import loader
from tally.programme.runtime import default_programme


def members(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(text("SELECT count(*) FROM members")).scalar_one())
    finally:
        engine.dispose()


def test_enrol_and_link_in_declared_namespaces(database_url: str) -> None:
    enrolled = json.loads(run("member", "enrol", "phone", "13800000001").stdout)
    assert enrolled == {"member_id": 1, "created": True}
    again = json.loads(run("member", "enrol", "Phone", "138 0000 0001").stdout)
    assert again == {"member_id": 1, "created": False}

    linked = json.loads(run("member", "link", "1", "email", "li@example.cn").stdout)

    assert linked == {"id": 1, "identities": ["phone:13800000001", "email:li@example.cn"]}


def test_an_undeclared_namespace_is_refused_and_writes_nothing(database_url: str) -> None:
    run("member", "enrol", "phone", "13800000001")

    typo = run("member", "enrol", "phnoe", "13800000001", code=2)
    link = run("member", "link", "1", "wechat", "wx-li", code=2)

    assert typo.stderr == (
        "error [unknown_namespace]: Namespace 'phnoe' is not declared in the programme; "
        "declared: phone, email.\n"
    )
    assert "error [unknown_namespace]: Namespace 'wechat'" in link.stderr
    assert members(database_url) == 1
    shown = json.loads(run("member", "show", "1").stdout)
    assert shown["identities"] == ["phone:13800000001"]


def test_the_operator_uses_a_namespace_a_partner_owns(database_url: str) -> None:
    owned = with_namespaces(
        with_partner(default_programme(Settings()), "SHOP", operator_channel=False),
        {"code": "shop", "owner": "SHOP"},
    )
    Path("programme.yaml").write_text(loader.dump(owned))
    run("programme", "apply", "programme.yaml")

    enrolled = json.loads(run("member", "enrol", "shop", "u-1").stdout)

    assert enrolled == {"member_id": 1, "created": True}


def test_enrol_with_a_referral_code_links_the_referrer_and_refuses_abuse(
    database_url: str,
) -> None:
    run("member", "enrol", "phone", "13800000001")
    engine = create_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO referral_codes (member_id, code, created_at)"
                    " VALUES (1, 'ABCDE23456', '2026-12-04 00:00:00')"
                )
            )
    finally:
        engine.dispose()

    referred = json.loads(
        run("member", "enrol", "phone", "13800000002", "--referral-code", "abcde-23456").stdout
    )
    own = run("member", "enrol", "phone", "13800000001", "--referral-code", "ABCDE23456", code=2)
    unknown = run("member", "enrol", "phone", "13800000003", "--referral-code", "X", code=2)

    assert referred == {"member_id": 2, "created": True}
    assert own.stderr == "error [referral_refused]: A member cannot refer themselves.\n"
    assert "error [validation_error]: No member has the referral code 'X'." in unknown.stderr
    assert members(database_url) == 2
