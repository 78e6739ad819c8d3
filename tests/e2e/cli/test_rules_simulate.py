"""``tally rules simulate`` on a fresh SQLite file: the stored events of a period, or a file's,
through a draft programme beside what the running programme awarded; nothing written."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml
from sqlalchemy import MetaData, select

from e2e.cli.clikit import run
from support.event_programme import CAMPAIGNS, apply_campaigns
from tally.campaigns import repository as campaign_ops
from tally.cli import rules as rules_cli
from tally.config import get_settings
from tally.db.engine import build_engine
from tally.db.session import Database
from tally.flows import event_intake
from tally.flows.enrolment import enrol
from tally.flows.event_intake import Reported
from tally.kit.clock import utcnow
from tally.ledger.domain import Origin
from tally.ledger.posting import policy_for
from tally.members.service import Identity
from tally.partners import service as partners
from tally.programme import loader
from tally.programme.domain import Programme
from tally.rules import engine
from tally.schema import migrate


@dataclass
class World:
    database: Database
    programme: Programme
    members: list[int]
    at: datetime  # when the events happened and were taken in


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    """The events programme applied, three members, and their events processed online: member
    0 buys 600.00 (drinks 50.00 of it), member 1 buys 80.00 of drinks, member 2 signs in."""
    database = Database(build_engine(database_url))
    migrate(database.engine)
    programme = apply_campaigns(database, CAMPAIGNS)
    at = utcnow().replace(microsecond=0) - timedelta(hours=2)
    with database.write() as session:
        members = [
            enrol(session, Identity("phone", f"1380000{n:04d}"), {}, at)[0] for n in range(3)
        ]
        shop = partners.partner_by_code(session, "MOBILE")
        assert shop is not None
        sent = [
            _purchase("e-1", members[0], "600.00", "50.00", at),
            _purchase("e-2", members[1], "80.00", "80.00", at + timedelta(minutes=1)),
            Reported("sign_in", "e-3", members[2], at + timedelta(minutes=2)),
        ]
        for event in sent:  # one batch each, as three requests
            event_intake.process(
                session,
                Origin(partner_id=shop.id),
                [event],
                event.occurred_at,
                policy_for(programme, get_settings()),
                programme,
                event_intake.book_for(programme),
            )
    yield World(database, programme, members, at)
    database.dispose()


def _purchase(event_id: str, member: int, amount: str, drinks: str, at: datetime) -> Reported:
    items = (engine.Item(sku="tea", amount=Decimal(drinks), category="drinks"),)
    return Reported(
        "purchase",
        event_id,
        member,
        at,
        Decimal(amount),
        "CNY",
        items,
        payload={"items": [{"sku": "tea", "amount": drinks, "category": "drinks"}]},
    )


def _content(world: World) -> dict[str, Any]:
    return yaml.safe_load(loader.dump(world.programme))


def _draft(tmp_path: Path, content: dict[str, Any], name: str = "draft.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(content, allow_unicode=True, sort_keys=False), "utf-8")
    return path


def _campaign(content: dict[str, Any], code: str) -> dict[str, Any]:
    return next(c for c in content["campaigns"] if c["code"] == code)


def _simulate(*args: str, code: int = 0) -> dict[str, Any]:
    return json.loads(run("rules", "simulate", *args, "--json", code=code).stdout)


def _line(report: dict[str, Any], campaign: str, rule: str | None = None) -> dict[str, Any]:
    lines = report["campaigns"] if rule is None else report["rules"]
    return next(line for line in lines if line["campaign"] == campaign and line.get("rule") == rule)


def _rows(database: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table."""
    tables = MetaData()
    tables.reflect(database.engine)
    with database.engine.connect() as connection:
        return {
            name: sorted(map(tuple, connection.execute(select(table))), key=repr)
            for name, table in tables.tables.items()
        }


def test_the_running_programme_reproduces_what_was_awarded(world: World, tmp_path: Path) -> None:
    same = _draft(tmp_path, _content(world))

    report = _simulate(str(same))

    assert report["source"] == "stored"
    assert report["events"] == 3
    assert report["events_differing"] == 0
    # 600 + 100 (drinks 50.00 x 2); 80 + the 100 left of BONUS's budget of 200; a sign-in's 5.
    assert report["running"]["points"] == report["draft"]["points"] == 600 + 100 + 80 + 100 + 5
    assert report["running"]["growth"] == report["draft"]["growth"] == 680
    assert _line(report, "BONUS")["draft"] == {
        "points": 200,
        "growth": 0,
        "events": 2,
        "members": 2,
    }
    assert report["budgets"] == [
        {
            "campaign": "BONUS",
            "running_limit": 200,
            "running_used": 200,
            "draft_limit": 200,
            "draft_used": 200,
        }
    ]
    assert report["tiers"] == []


def test_a_doubled_rule_shows_double_points_its_cost_and_the_tier_it_reaches(
    world: World, tmp_path: Path
) -> None:
    content = _content(world)
    rules = _campaign(content, "BASE")["rules"]
    rules[0]["award"]["points_per"]["points"] = 2
    rules[1]["award"]["growth_per"]["growth"] = 2
    before = _rows(world.database)

    report = _simulate(str(_draft(tmp_path, content)))

    per_yuan = _line(report, "BASE", "per-yuan")
    assert per_yuan["running"] == {"points": 680, "growth": 0, "events": 2, "members": 2}
    assert per_yuan["draft"] == {"points": 1360, "growth": 0, "events": 2, "members": 2}
    assert _line(report, "BASE", "growth")["draft"]["growth"] == 1360
    assert report["running"]["cost"] == {"minor_units": 885, "currency": "CNY", "text": "8.85 CNY"}
    assert report["draft"]["cost"] == {
        "minor_units": 1565,
        "currency": "CNY",
        "text": "15.65 CNY",
    }
    # 600 growth kept member 0 BRONZE; 1,200 reaches SILVER (1,000).
    assert report["tiers"] == [
        {
            "member_id": str(world.members[0]),
            "running_growth": 600,
            "draft_growth": 1200,
            "running_qualifying": 600,
            "draft_qualifying": 1200,
            "running_tier": "BRONZE",
            "draft_tier": "SILVER",
        }
    ]
    assert report["events_differing"] == 2
    assert _rows(world.database) == before  # nothing written

    human = run("rules", "simulate", str(_draft(tmp_path, content))).stdout
    assert "3 stored events" in human
    assert "Nothing was written." in human
    assert "8.85 CNY" in human
    assert "15.65 CNY" in human
    assert "1 member(s) would be in another tier." in human


def test_a_new_capped_and_budgeted_campaign_keeps_to_its_cap_and_budget(
    world: World, tmp_path: Path
) -> None:
    content = _content(world)
    content["campaigns"].append(
        {
            "code": "LAUNCH",
            "names": {"zh-CN": "上新", "en": "Launch"},
            "on": ["purchase", "sign_in"],
            "caps": [{"per": "member", "period": "day", "points": 30}],
            "budget": {"points": 50},
            "rules": [{"code": "flat", "award": {"points": 40}}],
        }
    )

    report = _simulate(str(_draft(tmp_path, content)))

    # 40 asked each: member 0 cut to 30 by the cap, member 1 to the 20 the budget has left,
    # member 2's sign-in gets nothing (the budget is spent).
    assert _line(report, "LAUNCH", "flat")["draft"] == {
        "points": 50,
        "growth": 0,
        "events": 2,
        "members": 2,
    }
    assert _line(report, "LAUNCH")["running"] == {
        "points": 0,
        "growth": 0,
        "events": 0,
        "members": 0,
    }
    assert {"campaign": "LAUNCH", "running_limit": None, "running_used": 0, "draft_limit": 50,
            "draft_used": 50} in report["budgets"]  # fmt: skip
    assert report["draft"]["points"] == report["running"]["points"] + 50


def test_since_and_until_choose_the_events_replayed(world: World, tmp_path: Path) -> None:
    same = str(_draft(tmp_path, _content(world)))
    day = world.at.astimezone(world.programme.zone).date()

    assert _simulate(same, "--since", day.isoformat(), "--until", day.isoformat())["events"] == 3
    later = (day + timedelta(days=1)).isoformat()
    assert _simulate(same, "--since", later)["events"] == 0
    assert _simulate(same, "--until", (day - timedelta(days=1)).isoformat())["events"] == 0


def _file_events(world: World) -> pl.DataFrame:
    at = world.at.astimezone(UTC).isoformat()
    one, two, three = (str(member) for member in world.members)
    return pl.DataFrame(
        {
            "type": ["purchase", "survey_done", "survey_done", "purchase", "survey_done"],
            "event_id": ["f-1", "f-2", "f-3", "f-4", "f-2"],
            "member_id": [one, two, "999999", three, two],
            "occurred_at": [at] * 5,
            "amount": ["152.50", None, None, "10.00", None],
            "currency": ["CNY", None, None, "CNY", None],
            "channel": ["app", None, None, None, None],
            "attr.score": [None, "9", "9", None, "9"],
            "attr.spent": [None, "9.50", "9.50", None, "9.50"],
        }
    )


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_a_file_of_events_is_priced_by_both_programmes(
    world: World, tmp_path: Path, kind: str
) -> None:
    frame = _file_events(world)
    path = tmp_path / f"events.{kind}"
    frame.write_csv(path) if kind == "csv" else frame.write_parquet(path)
    content = _content(world)
    _campaign(content, "SURVEY")["rules"][0]["award"]["points"] = 30
    before = _rows(world.database)

    report = _simulate(str(_draft(tmp_path, content)), "--events", str(path))

    assert report["source"] == "file"
    assert report["events"] == 5
    # 152 and 10 (BASE) on the purchases; the survey 20 → 30; member 999999 does not exist;
    # f-2 sent again is a repeat (online: the first outcome, nothing more).
    survey = _line(report, "SURVEY", "happy")
    assert survey["running"]["points"] == 20
    assert survey["draft"]["points"] == 30
    assert report["running"]["refused"] == {"not_found": 1, "duplicate_in_file": 1}
    assert report["draft"]["refused"] == {"not_found": 1, "duplicate_in_file": 1}
    assert _line(report, "BASE", "per-yuan")["draft"]["points"] == 162
    assert report["draft"]["points"] - report["running"]["points"] == 10
    assert _rows(world.database) == before


def test_bad_inputs_are_refused_with_clear_errors(world: World, tmp_path: Path) -> None:
    good = str(_draft(tmp_path, _content(world)))
    missing = run("rules", "simulate", str(tmp_path / "nope.yaml"), code=2)
    assert "does not exist" in missing.output

    broken = tmp_path / "broken.yaml"
    broken.write_text(Path(good).read_text().replace("Asia/Shanghai", "Asia/Nowhere"))
    invalid = run("rules", "simulate", str(broken), code=1)
    assert invalid.stderr.startswith(f"{broken}:")
    assert "currency.timezone: 'Asia/Nowhere' is not an IANA time zone" in invalid.stderr

    bad_date = run("rules", "simulate", good, "--since", "2026-13-01", code=2)
    assert bad_date.stderr == (
        "error [validation_error]: --since '2026-13-01' is not an ISO-8601 date (2026-05-01).\n"
    )
    backwards = run(
        "rules", "simulate", good, "--since", "2026-05-02", "--until", "2026-05-01", code=2
    )
    assert backwards.stderr == (
        "error [validation_error]: --since 2026-05-02 is after --until 2026-05-01.\n"
    )

    # An events file is read as `tally events import` reads it: its columns checked first.
    columns = tmp_path / "columns.csv"
    columns.write_text("type,event_id,member,occurred_at\npurchase,x,1,2026-05-01Z\n")
    refused = run("rules", "simulate", good, "--events", str(columns), code=2)
    assert refused.stderr == "error [validation_error]: Missing column(s): member_id.\n"
    columns.write_text("type,event_id,member_id,occurred_at,points\npurchase,x,1,2026-05-01Z,3\n")
    refused = run("rules", "simulate", good, "--events", str(columns), code=2)
    assert refused.stderr.startswith("error [validation_error]: Unknown column(s): points; ")
    floats = tmp_path / "floats.parquet"
    _file_events(world).with_columns(pl.col("amount").cast(pl.Float64)).write_parquet(floats)
    assert (
        "Column amount holds binary floats"
        in run("rules", "simulate", good, "--events", str(floats), code=2).stderr
    )
    other = tmp_path / "events.json"
    other.write_text("[]")
    assert (
        "the file must be .csv or .parquet"
        in run("rules", "simulate", good, "--events", str(other), code=2).stderr
    )
    # Then each row on its own: a row the importer would refuse is refused, with its code.
    rows = tmp_path / "rows.csv"
    rows.write_text(
        "type,event_id,member_id,occurred_at,amount,currency\n"
        f"purchase,x,{world.members[0]},2026-05-01T10:00:00+08:00,12.5,CNY\n"
        f"purchase,y,{world.members[0]},2026-05-01T10:00:00,12.50,CNY\n"
        f"purchase,z,{world.members[0]},2026-05-01T10:00:00Z,1.001,CNY\n"
    )
    report = _simulate(good, "--events", str(rows))
    assert report["events"] == 3
    assert report["running"]["refused"] == report["draft"]["refused"] == {"validation_error": 2}
    assert report["running"]["points"] == 12


def test_a_campaign_the_draft_drops_gives_nothing(world: World, tmp_path: Path) -> None:
    content = copy.deepcopy(_content(world))
    content["campaigns"] = [c for c in content["campaigns"] if c["code"] != "WELCOME"]

    report = _simulate(str(_draft(tmp_path, content)))

    assert _line(report, "WELCOME")["running"]["points"] == 5
    assert _line(report, "WELCOME")["draft"]["points"] == 0
    assert report["draft"]["points"] == report["running"]["points"] - 5


def test_a_long_simulation_shows_a_progress_bar_and_the_same_report(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    same = str(_draft(tmp_path, _content(world)))
    quiet = _simulate(same)
    started: list[int] = []
    original = rules_cli._Bar.start

    def start(bar: rules_cli._Bar, total: int) -> None:
        started.append(total)
        original(bar, total)

    monkeypatch.setattr("tally.cli.rules.PROGRESS_FROM", 1)
    monkeypatch.setattr(rules_cli._Bar, "start", start)

    shown = _simulate(same)

    assert started == [3]
    assert {**shown, "as_of": None} == {**quiet, "as_of": None}


def _refund(world: World, event_id: str, refers_to: str, member: int, amount: str) -> None:
    """A refund reported online after the fixture's events."""
    with world.database.write() as session:
        shop = partners.partner_by_code(session, "MOBILE")
        assert shop is not None
        at = world.at + timedelta(minutes=10)
        [done] = event_intake.process(
            session,
            Origin(partner_id=shop.id),
            [Reported("refund", event_id, member, at, Decimal(amount), "CNY", refers_to=refers_to)],
            at,
            policy_for(world.programme, get_settings()),
            world.programme,
            event_intake.book_for(world.programme),
        )
    assert isinstance(done, event_intake.Processed), done


def test_a_refund_takes_back_in_proportion_what_each_side_gave(
    world: World, tmp_path: Path
) -> None:
    _refund(world, "r-1", "e-1", world.members[0], "300.00")  # half of 600.00
    same = _simulate(str(_draft(tmp_path, _content(world))))
    content = _content(world)
    _campaign(content, "BASE")["rules"][0]["award"]["points_per"]["points"] = 2

    doubled = _simulate(str(_draft(tmp_path, content)))

    assert same["events"] == 4
    assert same["events_differing"] == 0
    # The refund takes back half: 300 of BASE's 600 and 50 of BONUS's 100 (running), 600 of
    # 1,200 and 50 (draft); BONUS's budget gets its 50 back on both sides.
    assert same["running"]["points"] == 885 - 350
    assert doubled["draft"]["points"] == 1565 - 650
    assert _line(doubled, "BASE", "per-yuan")["draft"]["points"] == 1360 - 600
    assert [b["draft_used"] for b in doubled["budgets"]] == [150]
    assert doubled["running"]["events"] == 3  # a refund rewards nothing
    [refund] = [d for d in doubled["differences"] if d["running_points"] < 0]
    assert (refund["running_points"], refund["draft_points"]) == (-350, -650)


def test_money_in_another_currency_is_converted_by_each_side_s_rates(
    world: World, tmp_path: Path
) -> None:
    events = tmp_path / "hkd.csv"
    events.write_text(
        "type,event_id,member_id,occurred_at,amount,currency\n"
        f"purchase,h-1,{world.members[0]},{world.at.isoformat()},100.00,HKD\n"
    )
    content = _content(world)
    content["currency"]["exchange_rates"] = {"HKD": "0.9000"}

    report = _simulate(str(_draft(tmp_path, content)), "--events", str(events))

    assert report["running"]["refused"] == {"validation_error": 1}  # no HKD rate running
    assert report["draft"]["points"] == 90  # 100.00 HKD → 90.00 CNY → 90 points


def test_a_campaign_paused_when_an_event_came_in_stays_paused_for_it(
    world: World, tmp_path: Path
) -> None:
    at = world.at + timedelta(minutes=20)
    with world.database.write() as session:
        campaign_ops.set_paused(session, "WELCOME", paused=True, by="staff:1", now=at)
        shop = partners.partner_by_code(session, "MOBILE")
        assert shop is not None
        [done] = event_intake.process(
            session,
            Origin(partner_id=shop.id),
            [Reported("sign_in", "e-4", world.members[2], at)],
            at,
            policy_for(world.programme, get_settings()),
            world.programme,
            event_intake.book_for(world.programme),
        )
        campaign_ops.set_paused(session, "WELCOME", paused=False, by="staff:1", now=at)
    assert isinstance(done, event_intake.Processed)
    assert done.points == 0

    report = _simulate(str(_draft(tmp_path, _content(world))))

    assert report["events"] == 4
    assert report["events_differing"] == 0
    assert _line(report, "WELCOME", "daily")["draft"]["points"] == 5  # e-3 only
