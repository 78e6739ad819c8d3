"""The console's simulation in headless Chromium: an administrator follows the link from the
programme page, uploads a draft, chooses a period and reads the report, on a phone and a desk."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import web_fixtures
import yaml
from playwright.sync_api import Page, expect
from web_fixtures import DemoData, DemoSite, sign_in

from tally.flows import event_intake
from tally.flows.enrolment import enrol
from tally.flows.event_intake import Reported
from tally.kit.clock import utcnow
from tally.ledger.domain import Origin
from tally.ledger.posting import policy_for
from tally.members.service import Identity
from tally.partners import service as partners
from tally.programme import runtime
from tally.programme import service as programmes
from tally.programme.loader import dump

artifacts = web_fixtures.artifacts
browser = web_fixtures.browser
demo_data = web_fixtures.demo_data
demo_site = web_fixtures.demo_site
page = web_fixtures.page
phone = web_fixtures.phone

pytestmark = pytest.mark.browser
DAY = "2026-06-10"  # a Wednesday of its own (test_web_simulate.py replays 2026-06-03)


@pytest.fixture(scope="module")
def draft(demo_data: DemoData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two purchases on :data:`DAY` processed online, and a draft that doubles the base rate
    and adds a budgeted welcome bonus."""
    with demo_data.db.write() as session:
        programme = runtime.effective(session, demo_data.settings)
        shop = partners.partner_by_code(session, "SHOP")
        assert shop is not None
        sent = []
        for number, amount in enumerate(("880.00", "64.50")):
            member = enrol(session, Identity("phone", f"1371234100{number}"), {}, utcnow())[0]
            at = datetime(2026, 6, 10, 4 + number, 0, tzinfo=UTC)
            sent.append(Reported("purchase", f"sim-b{number}", member, at, Decimal(amount), "CNY"))
        event_intake.process(
            session,
            Origin(partner_id=shop.id),
            sent,
            utcnow(),
            policy_for(programme, demo_data.settings),
            programme,
            event_intake.book_for(programme),
        )
        running = programmes.running(session)
    assert running is not None
    content = yaml.safe_load(dump(running))
    base = next(c for c in content["campaigns"] if c["code"] == "BASE")
    base["rules"][0]["award"]["points_per"]["points"] = 2
    base["rules"][1]["award"]["growth_per"]["growth"] = 2
    content["campaigns"].append(
        {
            "code": "WELCOME_BACK",
            "names": {"zh-CN": "回归礼", "en": "Welcome back"},
            "on": ["purchase"],
            "budget": {"points": 300},
            "rules": [{"code": "gift", "award": {"points": 200}}],
        }
    )
    path = tmp_path_factory.mktemp("simulate") / "draft-summer.yaml"
    path.write_text(yaml.safe_dump(content, allow_unicode=True, sort_keys=False), "utf-8")
    return path


def _simulate(page: Page, site: DemoSite, draft: Path, lang: str) -> None:
    sign_in(page, site, "admin")
    page.goto(site.url(f"/console/programme?lang={lang}"))
    page.locator(".simulate-link a").click()
    page.set_input_files("input[name=draft]", str(draft))
    page.fill("input[name=since]", DAY)
    page.fill("input[name=until]", DAY)
    page.locator("#simulate button[type=submit]").click()


def test_an_administrator_simulates_a_draft_in_the_console(
    page: Page, demo_site: DemoSite, draft: Path, artifacts: Path
) -> None:
    _simulate(page, demo_site, draft, "en")

    expect(page.locator(".simulate-basis")).to_contain_text("2 stored events replayed")
    points = page.locator('tr[data-total="points"] td')
    # 880 + 64 running; 1,760 + 129 + 300 of the welcome-back budget (200, then 100 left).
    expect(points.nth(0)).to_have_text("944")
    expect(points.nth(1)).to_have_text("2,189")
    expect(page.locator('tr[data-budget="WELCOME_BACK"] td').nth(2)).to_have_text("300 / 300")
    expect(page.locator("table.simulate-tiers tr[data-member]")).to_have_count(1)  # SILVER
    page.screenshot(path=str(artifacts / "console-simulate-en.png"), full_page=True)


def test_the_report_reads_on_a_phone_in_chinese(
    phone: Page, demo_site: DemoSite, draft: Path, artifacts: Path
) -> None:
    _simulate(phone, demo_site, draft, "zh-CN")

    expect(phone.locator("#report h2")).to_have_text("报告")
    expect(phone.locator('tr[data-total="cost"] td').nth(1)).to_have_text("¥21.89")
    phone.screenshot(path=str(artifacts / "console-simulate-zh-phone.png"), full_page=True)
