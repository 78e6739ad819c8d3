"""The member's privacy page in headless Chromium: grant and withdraw a partner's view of the
profile, seen through that partner's API key; the console's consents, read only for an auditor,
and a consent support records and withdraws there for a member at the desk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import web_fixtures
from playwright.sync_api import Page, expect
from web_fixtures import DemoSite, sign_in

from tally.api.member_links import mint_token
from tally.members import service as members
from tally.privacy import service as privacy

# The fixtures, by name (see web_fixtures for why they do not live in a conftest.py).
artifacts = web_fixtures.artifacts
browser = web_fixtures.browser
demo_data = web_fixtures.demo_data
demo_site = web_fixtures.demo_site
page = web_fixtures.page
phone = web_fixtures.phone

pytestmark = pytest.mark.browser

#: A demo member no other browser test changes: enrolled by MOBILE, linked by SHOP.
MEMBER = 17
#: Another, whose consents support records in the console.
DESK_MEMBER = 19


def phone_of(site: DemoSite) -> str:
    """The member's phone number, as the demo gave it."""
    with site.db.read() as session:
        return str(members.view(session, MEMBER).profile["phone"])


def hotel_view(page: Page, site: DemoSite, member: int = MEMBER) -> dict[str, Any]:
    """The member resource as HOTEL's API key gets it."""
    response = page.request.get(
        site.url(f"/v1/members/{member}"),
        headers={"Authorization": f"Bearer {site.api_keys['HOTEL']}"},
    )
    assert response.status == 200, response.text()
    body: dict[str, Any] = response.json()
    return body


def acts(site: DemoSite) -> int:
    with site.db.read() as session:
        return len(privacy.consents(session, MEMBER).history)


def test_a_member_allows_and_withdraws_a_partners_view_of_the_profile(
    phone: Page, demo_site: DemoSite, artifacts: Path
) -> None:
    assert hotel_view(phone, demo_site)["profile"] is None
    token = mint_token(demo_site.settings.secret_key, MEMBER)
    phone.goto(demo_site.url(f"/m/sign-in?token={token}"))
    expect(phone).to_have_url(demo_site.url("/m"))

    phone.get_by_role("link", name="隐私").click()
    expect(phone).to_have_url(demo_site.url("/m/privacy"))
    expect(phone.locator("h1")).to_have_text("谁能看到你的资料")
    mobile = phone.locator("[data-partner=MOBILE]")
    shop = phone.locator("[data-partner=SHOP]")
    hotel = phone.locator("[data-partner=HOTEL]")
    expect(mobile).to_contain_text("会员计划的运营方")
    expect(mobile.locator("form")).to_have_count(0)
    expect(shop).to_contain_text("只知道你在它那里的账号")
    expect(hotel).to_have_attribute("data-sees", "no")
    expect(phone.locator("#consent-history")).to_contain_text("你还没有授权或撤回过。")

    hotel.get_by_role("button", name="允许").click()
    expect(phone.locator(".flash-success")).to_have_text(
        "栖云酒店 Cloudrest Hotels 现在可以看到你的资料。"
    )
    expect(hotel).to_have_attribute("data-sees", "yes")
    expect(hotel).to_contain_text("你已允许它查看你的资料。")
    expect(phone.locator("#consent-history li")).to_have_count(1)
    expect(phone.locator("#consent-history li").first).to_contain_text("在本页面")
    seen = hotel_view(phone, demo_site)
    assert seen["profile"]["phone"] == phone_of(demo_site)
    phone.screenshot(path=str(artifacts / "member-privacy-phone.png"), full_page=True)

    phone.reload()  # the flash was shown once
    expect(phone.locator(".flash")).to_have_count(0)
    hotel.get_by_role("button", name="撤回").click()
    expect(phone.locator(".flash-success")).to_have_text(
        "栖云酒店 Cloudrest Hotels 不再能看到你的资料。"
    )
    expect(hotel).to_have_attribute("data-sees", "no")
    expect(phone.locator("#consent-history li")).to_have_count(2)
    expect(phone.locator("#consent-history li").first).to_contain_text("已撤回")
    assert hotel_view(phone, demo_site)["profile"] is None
    assert phone_of(demo_site) not in str(hotel_view(phone, demo_site))

    phone.get_by_role("link", name="English").click()
    expect(phone.locator("h1")).to_have_text("Who sees your profile")
    expect(hotel.get_by_role("button", name="Allow")).to_be_visible()
    overflow = phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    phone.screenshot(path=str(artifacts / "member-privacy-phone-en.png"), full_page=True)


def test_a_forged_consent_form_is_refused_and_records_nothing(
    phone: Page, demo_site: DemoSite
) -> None:
    before = acts(demo_site)
    phone.goto(demo_site.url("/m/privacy"))  # signed out: the welcome page says where to go
    expect(phone).to_have_url(demo_site.url("/m"))
    expect(phone.locator("h1")).to_have_text("请从 App 打开此页面")
    token = mint_token(demo_site.settings.secret_key, MEMBER)
    phone.goto(demo_site.url(f"/m/sign-in?token={token}"))
    for form in (
        {"partner": "FOOD", "grant": "1"},
        {"csrf": "forged", "partner": "FOOD", "grant": "1"},
    ):
        response = phone.request.post(demo_site.url("/m/privacy"), form=form, max_redirects=0)
        assert response.status == 403
    csrf = phone.locator("form[action='/m/sign-out'] input[name=csrf]").get_attribute("value")
    unknown = phone.request.post(
        demo_site.url("/m/privacy"), form={"csrf": csrf or "", "partner": "NOPE", "grant": "1"}
    )
    assert "没有这个合作伙伴。" in unknown.text()  # the page it leads back to says why
    malformed = phone.request.post(
        demo_site.url("/m/privacy"), form={"csrf": csrf or "", "partner": "FOOD", "grant": "2"}
    )
    assert malformed.status == 400
    assert acts(demo_site) == before


def test_the_console_shows_consents_and_collections_read_only(
    page: Page, demo_site: DemoSite, artifacts: Path
) -> None:
    with demo_site.db.write() as session:
        for grant in (True, False):
            privacy.record(
                session,
                MEMBER - 1,
                "FOOD",
                "profile",
                grant=grant,
                channel="api:MOBILE",
                actor="system",
                now=web_fixtures.utcnow(),
            )
    sign_in(page, demo_site, "auditor")
    page.goto(demo_site.url(f"/console/members/{MEMBER - 1}"))
    consents = page.locator("#consents")
    expect(consents.locator("[data-partner=FOOD]")).to_contain_text("撤回")
    expect(consents.locator("[data-partner=FOOD]")).to_contain_text("api:MOBILE")
    expect(consents.locator("summary")).to_contain_text("2")
    expect(page.locator("#collections li").first).to_contain_text("注册")
    expect(page.locator("#collections")).to_contain_text("绑定账号")
    expect(consents.locator("form")).to_have_count(0)
    consents.screenshot(path=str(artifacts / "console-member-consents.png"))


def test_support_records_and_withdraws_a_consent_at_the_desk(
    page: Page, phone: Page, demo_site: DemoSite, artifacts: Path
) -> None:
    assert hotel_view(page, demo_site, DESK_MEMBER)["profile"] is None
    sign_in(page, demo_site, "support")
    page.goto(demo_site.url(f"/console/members/{DESK_MEMBER}"))
    card = page.locator("#consents")
    form = card.locator("#record-consent")
    expect(form.locator("select[name=partner] option[value=MOBILE]")).to_have_count(0)

    form.locator("select[name=partner]").select_option("HOTEL")
    form.locator("select[name=purpose]").select_option("profile")
    form.get_by_role("button", name="记录授权").click()

    expect(page.locator(".flash-success")).to_contain_text("已记录会员的授权：")
    expect(page.locator(".flash-success")).to_contain_text("查看会员资料")
    hotel = card.locator("[data-partner=HOTEL][data-purpose=profile]")
    expect(hotel).to_contain_text("已授权")
    expect(hotel).to_contain_text("console")
    expect(hotel.locator(".recorded-by")).to_have_text("Sam Support")
    assert hotel_view(page, demo_site, DESK_MEMBER)["profile"] is not None

    form.locator("select[name=partner]").select_option("HOTEL")
    form.locator("select[name=purpose]").select_option("profile")
    form.get_by_role("button", name="记录撤回").click()

    expect(page.locator(".flash-success")).to_contain_text("已记录会员的撤回：")
    expect(hotel).to_contain_text("已撤回")
    card.locator("#consent-history summary").click()
    expect(card.locator("#consent-history li")).to_have_count(2)
    expect(card.locator("#consent-history li").first).to_contain_text("Sam Support")
    assert hotel_view(page, demo_site, DESK_MEMBER)["profile"] is None
    card.screenshot(path=str(artifacts / "console-member-consent-recorded.png"))

    # The member sees both acts on its own page, as done by customer service.
    token = mint_token(demo_site.settings.secret_key, DESK_MEMBER)
    phone.goto(demo_site.url(f"/m/sign-in?token={token}"))
    phone.goto(demo_site.url("/m/privacy"))
    history = phone.locator("#consent-history li")
    expect(history).to_have_count(2)
    expect(history.first).to_contain_text("由客服操作")
    expect(history.nth(1)).to_contain_text("由客服操作")
