"""The console's programme plan in headless Chromium: an administrator pastes a file, plans it
and reads its impact; a broken file shows its errors and keeps the text."""

from __future__ import annotations

from pathlib import Path

import pytest
import web_fixtures
import yaml
from playwright.sync_api import Page, expect
from web_fixtures import DemoSite, sign_in

artifacts = web_fixtures.artifacts
browser = web_fixtures.browser
demo_data = web_fixtures.demo_data
demo_site = web_fixtures.demo_site
page = web_fixtures.page

pytestmark = pytest.mark.browser
DEMO = Path(__file__).resolve().parents[3] / "src" / "tally" / "demo" / "programme.yaml"


def test_an_administrator_plans_a_file_in_the_console(
    page: Page, demo_site: DemoSite, artifacts: Path
) -> None:
    content = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    content["tiers"] = [tier for tier in content["tiers"] if tier["code"] != "DIAMOND"]
    sign_in(page, demo_site, "admin")
    page.goto(demo_site.url("/console/programme?lang=en"))

    page.fill("#plan textarea[name=source]", yaml.safe_dump(content, allow_unicode=True))
    page.get_by_role("button", name="Plan this file").click()

    expect(page.locator("#plan h3")).to_have_text("What applying it would change")
    removed = page.locator(".plan-lines li", has_text="tier DIAMOND removed: ")
    expect(removed).to_contain_text("hold")  # the site's diamond member at least
    expect(removed).to_contain_text("to PLATINUM")
    expect(page.locator("tr[data-version]")).to_have_count(2)  # nothing applied
    page.locator("#plan").screenshot(path=str(artifacts / "console-programme-plan-en.png"))

    page.fill("#plan textarea[name=source]", "currency: {code: AIB}\n")
    page.get_by_role("button", name="Plan this file").click()

    expect(page.locator("#plan h3")).to_have_text("The file does not validate")
    expect(page.locator(".plan-errors li").first).to_contain_text("programme.yaml:1: ")
    expect(page.locator("#plan textarea[name=source]")).to_have_value("currency: {code: AIB}\n")
