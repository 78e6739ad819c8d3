"""Fixtures for the web pages: a demo database on SQLite, a real uvicorn server, Chromium.

The server and the browser are started once per session; each test gets a fresh browser
context (no cookies) and works on its own demo member, so tests do not depend on each other.
Test modules import these fixtures by name: a second ``conftest.py`` would shadow the root one
for the modules that ``from conftest import ...``.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import uvicorn
from fastapi.testclient import TestClient

from conftest import SECRET, require_or_skip
from support.browser import chromium_path, shared_chromium
from support.policy import policy_of
from tally.config import Settings
from tally.db.engine import build_engine
from tally.db.session import Database
from tally.demo import loader
from tally.families import service as families
from tally.families.domain import FamilyMode
from tally.flows import enrolment
from tally.kit.clock import utcnow
from tally.ledger import holds as ledger_holds
from tally.ledger import service as ledger
from tally.ledger.domain import Origin
from tally.members import service as members
from tally.memberships import service as memberships
from tally.partners import service as partners
from tally.programme import service as programmes
from tally.programme.domain import Programme
from tally.tiers import jobs as tier_jobs
from tally.tiers import service as tiers
from tally.tiers.models import GrowthKind

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
PASSWORD = loader.DEMO_PASSWORD
PHONE_VIEWPORT = {"width": 390, "height": 844}
#: Member 1 gets a long history, a hold and points that expire ten days from now.
RICH_MEMBER = 1
SOON_POINTS = 120
EXTRA_EARNS = 24
#: Members the fixture enrols for the tier pages (the demo's own members carry random growth):
#: a diamond (the black-gold look, 45,000 growth); gold reached last year with only 1,200 growth
#: this year (a downgrade pending; VIP88 cancelled at period end); silver (1,500 growth, VIP88,
#: owner of a family sharing its points); the family's other member; one without any growth.
DIAMOND_GROWTH = 45_000
GRACE_GROWTH = 1_200
SILVER_GROWTH = 1_500
TIER_MEMBERS = ("diamond", "grace", "silver", "kid", "bronze")
#: Version 2 of the demo programme: family rules changed, applied by "ops" yesterday.
PROGRAMME_V2_FAMILY = "family: {max_members: 4, default_monthly_limit: 3000}\n"


@dataclass
class DemoSite:
    """A running Tally with the demo ecosystem."""

    base_url: str
    db: Database
    settings: Settings
    api_keys: dict[str, str]
    members: dict[str, int]

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _load_demo(db: Database, settings: Settings) -> dict[str, str]:
    with db.write() as session:
        summary = loader.load(session, settings, member_count=20)
        policy = policy_of(settings)
        food = Origin(partner_id=partners.partner_by_code(session, "FOOD").id)
        hotel = Origin(partner_id=partners.partner_by_code(session, "HOTEL").id)
        now = utcnow()
        for number in range(EXTRA_EARNS):
            moment = now - timedelta(hours=EXTRA_EARNS + 2 - number)
            ledger.earn(
                session, food, RICH_MEMBER, 5 + number, f"e2e-meal-{number}", moment, policy
            )
        ledger_holds.create_hold(
            session,
            hotel,
            RICH_MEMBER,
            30,
            "e2e-booking",
            24 * 3600,
            now - timedelta(minutes=90),
            policy,
        )
        ledger.earn(
            session,
            food,
            RICH_MEMBER,
            SOON_POINTS,
            "e2e-expiring-soon",
            now - timedelta(minutes=60),
            policy,
            expires_at=now + timedelta(days=10),
        )
    return summary.api_keys


def _apply_second_version(db: Database) -> Programme:
    """Apply the demo programme again with other family rules (version 2)."""
    text = loader.DEMO_PROGRAMME.read_text(encoding="utf-8") + PROGRAMME_V2_FAMILY
    with db.write() as session:
        programme = programmes.validate(text)
        programmes.apply(session, programme, text, "ops", utcnow() - timedelta(days=1))
    return programme


def _give_tiers(db: Database, programme: Programme) -> dict[str, int]:
    """Enrol :data:`TIER_MEMBERS`, give them growth, VIP88 and a family; ``{name: id}``."""
    now = utcnow()
    earn = GrowthKind.EARN
    with db.write() as session:
        ids = {
            name: enrolment.enrol(
                session,
                members.Identity("shop", f"e2e-{name}"),
                {"name": f"E2E {name.title()}"},
                now - timedelta(days=400),
            )[0]
            for name in TIER_MEMBERS
        }
        credit = partial(tiers.credit, session, kind=earn, programme=programme)
        credit(ids["diamond"], DIAMOND_GROWTH, now=now - timedelta(days=20))
        credit(ids["grace"], 6_000, now=now - timedelta(days=380))
        credit(ids["grace"], GRACE_GROWTH, now=now - timedelta(days=10))
        credit(ids["silver"], SILVER_GROWTH, now=now - timedelta(days=5))
    tier_jobs.evaluate(db.write, now, programme)  # gold without the growth to keep it: grace
    with db.write() as session:
        mobile = memberships.Actor(partner_id=partners.partner_by_code(session, "MOBILE").id)
        vip = programme.plans[0]
        for name in ("grace", "silver"):
            bought = now - timedelta(days=3)
            row, _created = memberships.subscribe(
                session, mobile, ids[name], vip.code, programme, bought
            )
            memberships.pay(
                session, mobile, row.id, f"e2e-vip-{name}", vip.price.money, None, programme, bought
            )
            if name == "grace":
                memberships.cancel(session, mobile, row.id, now)
        family = families.create(session, ids["silver"], FamilyMode.SHARE, now)
        families.invite(session, family, ids["silver"], ids["kid"], now, programme.family)
        families.accept(session, family, ids["kid"], ids["kid"], now)
    return ids


@dataclass
class DemoData:
    """A SQLite database loaded with the demo ecosystem."""

    db: Database
    settings: Settings
    api_keys: dict[str, str]
    members: dict[str, int]


@pytest.fixture(scope="session")
def demo_data(
    sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DemoData]:
    """A copy of the migrated SQLite template with 20 demo members (and member 1 enriched)."""
    path = tmp_path_factory.mktemp("web") / "tally.db"
    shutil.copy(sqlite_template, path)
    url = f"sqlite:///{path}"
    settings = Settings(database_url=url, secret_key=SECRET, job_interval_seconds=0)
    db = Database(build_engine(url))
    api_keys = _load_demo(db, settings)
    programme = _apply_second_version(db)
    yield DemoData(db, settings, api_keys, _give_tiers(db, programme))
    db.dispose()


@pytest.fixture(scope="session")
def demo_site(demo_data: DemoData) -> Iterator[DemoSite]:
    """Tally served by uvicorn on 127.0.0.1 over the demo database."""
    from tally.app import create_app

    port = _free_port()
    config = uvicorn.Config(
        create_app(demo_data.settings, demo_data.db),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("uvicorn did not start")
        time.sleep(0.02)
    yield DemoSite(
        f"http://127.0.0.1:{port}",
        demo_data.db,
        demo_data.settings,
        demo_data.api_keys,
        demo_data.members,
    )
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def client(demo_data: DemoData) -> Iterator[TestClient]:
    """An HTTP client (no cookies yet, redirects not followed) on a fresh app over the demo."""
    from tally.app import create_app

    app = create_app(demo_data.settings, demo_data.db)
    with TestClient(app, follow_redirects=False) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Headless system Chromium (skipped when missing, except in CI).

    Every module that imports this fixture gets its own session-scoped copy of it; they all
    hold the process's one Playwright and Chromium (``support.browser.shared_chromium``).
    """
    require_or_skip(chromium_path() is not None, "Chromium")
    with shared_chromium() as chromium:
        yield chromium


def _context(browser: Browser, **options: Any) -> BrowserContext:
    context = browser.new_context(locale="zh-CN", **options)
    context.set_default_timeout(10_000)
    return context


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A desktop-sized page in a fresh context (Chinese browser)."""
    context = _context(browser, viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    """A 390×844 phone page in a fresh context (Chinese browser)."""
    context = _context(
        browser, viewport=PHONE_VIEWPORT, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    yield context.new_page()
    context.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots go (git-ignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def sign_in(page: Page, site: DemoSite, username: str, password: str = PASSWORD) -> None:
    """Sign in to the console through the form."""
    page.goto(site.url("/console/sign-in"))
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("#sign-in button[type=submit]")
