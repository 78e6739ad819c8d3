"""``tally family show`` and ``tally family of`` against a fresh SQLite file."""

from __future__ import annotations

import json

from e2e.cli.clikit import run
from tally.cli.common import open_database
from tally.config import get_settings
from tally.families import service as families
from tally.families.domain import FamilyMode
from tally.flows import enrolment
from tally.kit.clock import utcnow
from tally.members.service import Identity
from tally.programme.runtime import default_programme


def test_family_show_and_of_print_json(database_url: str) -> None:
    now = utcnow()
    rules = default_programme(get_settings()).family
    with open_database() as db, db.write() as session:
        owner, _ = enrolment.enrol(session, Identity("phone", "13900000001"), {}, now)
        member, _ = enrolment.enrol(session, Identity("phone", "13900000002"), {}, now)
        loner, _ = enrolment.enrol(session, Identity("phone", "13900000003"), {}, now)
        family = families.create(session, owner, FamilyMode.POOL, now)
        families.invite(session, family, owner, member, now, rules)
        families.accept(session, family, member, member, now)

    shown = json.loads(run("family", "show", str(family)).stdout)
    assert shown["id"] == family
    assert shown["mode"] == "pool"
    assert [(m["member_id"], m["role"]) for m in shown["members"]] == [
        (owner, "owner"),
        (member, "member"),
    ]
    assert json.loads(run("family", "of", str(member)).stdout) == shown

    missing = run("family", "of", str(loner), code=2)
    assert "not_found" in missing.output
    assert "not_found" in run("family", "show", "999", code=2).output
