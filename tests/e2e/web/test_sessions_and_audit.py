"""Server-side sessions, member links used once and the audit log, over HTTP on both databases.

Each test gets an empty database (SQLite, then PostgreSQL), three staff members and a member;
the clock the web layer reads is injected (``app.state.clock``), so nothing sleeps.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from conftest import SECRET
from tally.api.member_links import link_for
from tally.audit import service as audit
from tally.audit.domain import AuditFilter
from tally.audit.models import AuditEntry
from tally.config import Settings
from tally.db.session import Database
from tally.flows import enrolment
from tally.ledger.models import JournalEntry
from tally.members import service as members
from tally.members.models import MemberStatus
from tally.sessions import service as web_sessions
from tally.sessions.domain import TOKEN_PATTERN, token_hash
from tally.sessions.models import EndReason, WebSession
from tally.staff import service as staff_service
from tally.staff.models import StaffRole

PASSWORD = "correct horse battery"
T0 = datetime(2026, 12, 3, 1, 0, tzinfo=UTC)
HTML = "text/html; charset=utf-8"


@dataclass
class Clock:
    """The time the app sees; tests move it."""

    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Site:
    app: FastAPI
    db: Database
    clock: Clock
    staff: dict[str, int]
    member: int
    clients: list[TestClient] = field(default_factory=list)

    def browser(self, address: str = "198.51.100.7", **options: object) -> TestClient:
        client = TestClient(
            self.app,
            follow_redirects=False,
            client=(address, 50000),
            headers={"User-Agent": "Mozilla/5.0 (Macintosh; Mac OS X 14) Chrome/131.0"},
            **options,  # type: ignore[arg-type]
        )
        client.__enter__()
        self.clients.append(client)
        return client


@pytest.fixture
def site(settings: Settings, database: Database) -> Iterator[Site]:
    from tally.app import create_app

    with database.write() as session:
        staff = {
            role.value: staff_service.create(
                session, role.value, PASSWORD, role, role.title(), T0 - timedelta(days=1)
            ).id
            for role in (StaffRole.SUPPORT, StaffRole.AUDITOR, StaffRole.ADMIN)
        }
        member, _created = enrolment.enrol(
            session, members.Identity("phone", "13800000001"), {"name": "Li Lei"}, T0
        )
        other, _created = enrolment.enrol(
            session, members.Identity("phone", "13800000002"), {"name": "Han Meimei"}, T0
        )
    app = create_app(settings, database)
    clock = Clock()
    app.state.clock = clock
    built = Site(app, database, clock, staff, member)
    built.staff["other_member"] = other
    yield built
    for client in built.clients:
        client.__exit__(None, None, None)


def hidden(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no hidden field {name}"
    return found.group(1)


def adjust_nonce(html: str) -> str:
    """The one-time token of the member page's adjustment form (other forms have their own)."""
    found = re.search(r'action="/console/members/\d+/adjust"', html)
    assert found, "no adjustment form"
    return hidden(html[found.start() :], "nonce")


def flashes(html: str) -> list[str]:
    return re.findall(r'class="flash flash-\w+"[^>]*>([^<]*)<', html)


def form(client: TestClient, username: str, password: str = PASSWORD) -> dict[str, str]:
    """The sign-in form, filled in."""
    page = client.get("/console/sign-in")
    return {"username": username, "password": password, "csrf": hidden(page.text, "csrf")}


def sign_in(client: TestClient, username: str, password: str = PASSWORD) -> int:
    """Sign in through the form; the status of the answer."""
    return client.post("/console/sign-in", data=form(client, username, password)).status_code


def csrf_of(client: TestClient) -> str:
    page = client.get("/console")
    assert page.status_code == 200, page.headers.get("location")
    return hidden(page.text, "csrf")


def entries(db: Database, **where: object) -> list[AuditEntry]:
    with db.read() as session:
        return list(audit.browse(session, AuditFilter(**where), limit=500).entries)  # type: ignore[arg-type]


def journal_count(db: Database) -> int:
    with db.read() as session:
        return int(session.scalar(select(func.count()).select_from(JournalEntry)) or 0)


def adjust(client: TestClient, member: int, csrf: str) -> int:
    page = client.get(f"/console/members/{member}")
    nonce = adjust_nonce(page.text) if page.status_code == 200 else "n" * 24
    response = client.post(
        f"/console/members/{member}/adjust",
        data={"csrf": csrf, "nonce": nonce, "points": "5", "reason": "goodwill"},
    )
    return response.status_code


def test_the_cookie_holds_only_a_random_token_and_the_row_its_hash(site: Site) -> None:
    client = site.browser()
    assert sign_in(client, "support") == 303
    token = client.cookies["tally_console"]
    assert TOKEN_PATTERN.match(token)
    with site.db.read() as session:
        (row,) = session.scalars(select(WebSession)).all()
    assert row.token_hash == token_hash(token) != token
    assert (row.staff_id, row.address) == (site.staff["support"], "198.51.100.7")
    assert row.created_at == T0
    assert row.user_agent is not None
    assert "Chrome" in row.user_agent
    assert row.expires_at == T0 + timedelta(hours=12)
    assert row.ended_at is None


def test_signing_out_stops_every_copy_of_the_cookie(site: Site) -> None:
    mine = site.browser()
    assert sign_in(mine, "support") == 303
    csrf = csrf_of(mine)
    copy = site.browser("203.0.113.66", cookies={"tally_console": mine.cookies["tally_console"]})
    assert copy.get("/console").status_code == 200  # the copy works while the session lives
    assert adjust(copy, site.member, csrf) == 303
    posted = journal_count(site.db)

    signed_out = mine.post("/console/sign-out", data={"csrf": csrf})
    assert signed_out.status_code == 303
    assert signed_out.headers["location"] == "/console/sign-in"
    assert "您已退出登录。" in flashes(mine.get("/console/sign-in").text)

    refused = copy.get("/console")
    assert refused.status_code == 303
    assert refused.headers["location"].startswith("/console/sign-in")
    assert adjust(copy, site.member, csrf) == 303  # off to the sign-in form, nothing posted
    assert journal_count(site.db) == posted
    with site.db.read() as session:
        (row,) = session.scalars(select(WebSession)).all()
    assert (row.ended_at, row.end_reason) == (T0, EndReason.SIGNED_OUT)
    assert [entry.action for entry in entries(site.db, actor=f"staff:{site.staff['support']}")][
        :2
    ] == ["staff.sign_out", "member.adjust"]


def test_staff_see_their_sessions_and_end_the_others(site: Site) -> None:
    laptop, phone = site.browser("198.51.100.7"), site.browser("203.0.113.5")
    assert sign_in(laptop, "support") == 303
    site.clock.advance(minutes=5)
    assert sign_in(phone, "support") == 303
    auditor = site.browser("192.0.2.1")
    assert sign_in(auditor, "auditor") == 303

    page = laptop.get("/console/sessions")
    assert page.status_code == 200
    listed = re.findall(r'data-session="(\d+)"( data-current="true")?', page.text)
    assert len(listed) == 2
    assert listed[0][1]
    assert "198.51.100.7" in page.text
    assert "203.0.113.5" in page.text
    assert "192.0.2.1" not in page.text  # only one's own
    other = int(listed[1][0])
    csrf = hidden(page.text, "csrf")

    with site.db.read() as session:
        auditors = session.scalars(
            select(WebSession.id).where(WebSession.staff_id == site.staff["auditor"])
        ).all()
    refused = laptop.post(f"/console/sessions/{auditors[0]}/end", data={"csrf": csrf})
    assert refused.status_code == 303
    assert auditor.get("/console").status_code == 200  # someone else's session is not mine

    ended = laptop.post(f"/console/sessions/{other}/end", data={"csrf": csrf})
    assert ended.status_code == 303
    assert "该会话已结束。" in flashes(laptop.get("/console/sessions").text)
    assert phone.get("/console").headers["location"].startswith("/console/sign-in")
    assert laptop.get("/console").status_code == 200
    (entry,) = entries(site.db, action="staff.session_end")
    assert (entry.actor, entry.details, entry.address) == (
        f"staff:{site.staff['support']}",
        {"session": other},
        "198.51.100.7",
    )


def test_ending_every_other_session_keeps_the_one_in_use(site: Site) -> None:
    browsers = [site.browser(f"203.0.113.{number}") for number in range(1, 4)]
    for browser in browsers:
        assert sign_in(browser, "admin") == 303
    keep = browsers[0]
    response = keep.post("/console/sessions/end-others", data={"csrf": csrf_of(keep)})
    assert response.status_code == 303
    assert "已结束其他会话：2 个。" in flashes(keep.get("/console").text)
    assert [browser.get("/console").status_code for browser in browsers] == [200, 303, 303]


def test_a_session_ends_when_idle_too_long_and_at_its_lifetime(site: Site) -> None:
    idle, busy = site.browser(), site.browser("203.0.113.9")
    assert sign_in(idle, "support") == 303
    assert sign_in(busy, "auditor") == 303
    for _half_hour in range(23):  # busy: a page every 30 minutes for 11.5 hours
        site.clock.advance(minutes=30)
        assert busy.get("/console").status_code == 200
    assert idle.get("/console").status_code == 303  # idle for more than an hour
    site.clock.advance(minutes=30)
    assert busy.get("/console").status_code == 303  # 12 hours after signing in, however busy

    with site.db.write() as session:
        assert web_sessions.sweep(session, site.clock.now) == 2
        assert session.scalars(select(WebSession)).all() == []


def test_a_member_link_signs_in_once(site: Site) -> None:
    link = link_for(SECRET, site.member, T0).url
    phone = site.browser()
    first = phone.get(link)
    assert (first.status_code, first.headers["location"]) == (303, "/m")
    assert phone.get("/m").status_code == 200
    again = phone.get(link)  # the same browser reopening it: still signed in
    assert (again.status_code, again.headers["location"]) == (303, "/m")

    thief = site.browser("203.0.113.99")
    refused = thief.get(link)
    assert refused.status_code == 409
    assert refused.headers["content-type"] == HTML
    assert "此链接已被使用" in refused.text
    assert "tally_member" not in thief.cookies
    assert 'data-reason="signed_out"' in thief.get("/m").text

    csrf = hidden(phone.get("/m").text, "csrf")
    assert phone.post("/m/sign-out", data={"csrf": csrf}).status_code == 303
    assert phone.get(link).status_code == 409  # signed out: the link does not sign in again
    with site.db.read() as session:
        assert session.scalar(select(func.count()).select_from(WebSession)) == 1


def test_two_links_minted_in_the_same_second_are_two_links(site: Site) -> None:
    first, second = link_for(SECRET, site.member, T0).url, link_for(SECRET, site.member, T0).url
    assert first != second
    assert site.browser().get(first).status_code == 303
    assert site.browser("203.0.113.8").get(second).status_code == 303  # not "already used"


def test_a_copied_member_cookie_stops_at_sign_out(site: Site) -> None:
    phone = site.browser()
    assert phone.get(link_for(SECRET, site.member, T0).url).status_code == 303
    copy = site.browser("203.0.113.7", cookies={"tally_member": phone.cookies["tally_member"]})
    assert 'data-testid="available"' in copy.get("/m").text
    csrf = hidden(phone.get("/m").text, "csrf")
    assert phone.post("/m/sign-out", data={"csrf": csrf}).status_code == 303
    assert 'data-reason="signed_out"' in copy.get("/m").text


def test_an_auditor_cannot_open_the_member_pages_as_a_member(site: Site) -> None:
    auditor = site.browser()
    assert sign_in(auditor, "auditor") == 303
    page = auditor.get(f"/console/members/{site.member}")
    assert "open-as-member" not in page.text
    refused = auditor.get(f"/console/members/{site.member}/open-as-member")
    assert refused.status_code == 403
    assert "您没有执行此操作的权限。" in refused.text
    assert entries(site.db, action="member.open_as_member") == []

    support = site.browser("203.0.113.20")
    assert sign_in(support, "support") == 303
    opened = support.get(f"/console/members/{site.member}/open-as-member")
    assert opened.status_code == 303
    assert opened.headers["location"].startswith("/m/sign-in?token=")
    (entry,) = entries(site.db, action="member.open_as_member")
    assert (entry.actor, entry.member_id, entry.address) == (
        f"staff:{site.staff['support']}",
        site.member,
        "203.0.113.20",
    )


def test_staff_actions_and_looks_at_personal_data_are_audited_with_the_address(
    site: Site,
) -> None:
    support = site.browser("198.51.100.23")
    assert sign_in(support, "support", "wrong password") == 401
    assert sign_in(support, "nobody", "wrong password") == 401
    assert sign_in(support, "support") == 303
    csrf = csrf_of(support)
    assert support.get("/console", params={"q": "13800000001"}).status_code == 200
    assert support.get(f"/console/members/{site.member}").status_code == 200
    frozen = support.post(
        f"/console/members/{site.member}/freeze", data={"csrf": csrf, "reason": "fraud check"}
    )
    assert frozen.status_code == 303
    unfrozen = support.post(f"/console/members/{site.member}/unfreeze", data={"csrf": csrf})
    assert unfrozen.status_code == 303
    other = site.staff["other_member"]
    merged = support.post(
        f"/console/members/{site.member}/merge",
        data={"csrf": csrf, "other": str(other), "reason": "same person"},
    )
    assert merged.status_code == 303

    found = entries(site.db)
    support_actor = f"staff:{site.staff['support']}"
    assert [(entry.action, entry.actor, entry.member_id) for entry in reversed(found)] == [
        ("staff.sign_in_failed", support_actor, None),
        ("staff.sign_in_failed", "system", None),
        ("staff.sign_in", support_actor, None),
        ("member.search", support_actor, None),
        ("member.view", support_actor, site.member),
        ("member.freeze", support_actor, site.member),
        ("member.unfreeze", support_actor, site.member),
        ("member.merge", support_actor, site.member),
    ]
    assert {entry.address for entry in found} == {"198.51.100.23"}
    assert {entry.at for entry in found} == {T0}
    by_action = {entry.action: entry for entry in found}
    assert by_action["member.search"].details == {"query": "13800000001", "members": [site.member]}
    assert by_action["member.freeze"].details == {"reason": "fraud check"}
    assert by_action["member.merge"].details == {"merged": other, "reason": "same person"}
    assert found[-2].details == {"username": "nobody"}


def test_a_refused_action_writes_no_audit_entry(site: Site) -> None:
    support = site.browser()
    assert sign_in(support, "support") == 303
    csrf = csrf_of(support)
    response = support.post("/console/members/999999/freeze", data={"csrf": csrf, "reason": "x"})
    assert response.status_code == 404
    assert entries(site.db, action="member.freeze") == []
    with site.db.read() as session:
        assert members.get(session, site.member).status is MemberStatus.ACTIVE


def _seed(db: Database, count: int, start: datetime) -> None:
    with db.write() as session:
        for number in range(count):
            audit.record(
                session,
                actor=f"staff:{1 + number % 2}",
                action="member.view" if number % 2 else "member.freeze",
                member_id=100 + number % 3,
                address="192.0.2.10",
                now=start + timedelta(hours=number),
            )


def test_auditors_browse_and_filter_the_log_newest_first(site: Site) -> None:
    _seed(site.db, 60, datetime(2026, 11, 1, 0, 0, tzinfo=UTC))
    auditor = site.browser()
    assert sign_in(auditor, "auditor") == 303

    first = auditor.get("/console/audit")
    assert first.status_code == 200
    ids = [int(number) for number in re.findall(r'data-entry="(\d+)"', first.text)]
    assert len(ids) == 50
    assert ids == sorted(ids, reverse=True)
    older = re.search(r'href="([^"]+)" rel="next"', first.text)
    assert older
    second = auditor.get(older.group(1).replace("&amp;", "&"))
    rest = [int(number) for number in re.findall(r'data-entry="(\d+)"', second.text)]
    assert len(rest) == 11
    assert max(rest) < min(ids)
    assert 'rel="next"' not in second.text

    by_staff = auditor.get("/console/audit", params={"actor": "staff:1"})
    assert len(re.findall(r'data-entry="', by_staff.text)) == 30
    freezes = auditor.get("/console/audit", params={"action": "member.freeze", "member": "100"})
    assert set(re.findall(r'data-action="([^"]+)"', freezes.text)) == {"member.freeze"}
    assert len(re.findall(r'data-entry="', freezes.text)) == 10
    # 2026-11-02 in Shanghai is 2026-11-01 16:00 to 2026-11-02 16:00 UTC: hours 16 to 39.
    day = auditor.get("/console/audit", params={"from": "2026-11-02", "to": "2026-11-02"})
    assert len(re.findall(r'data-entry="', day.text)) == 24
    assert "192.0.2.10" in day.text

    english = auditor.get("/console/audit", params={"lang": "en", "action": "member.freeze"})
    assert "Froze a member" in english.text
    assert "Audit log" in english.text
    bad = auditor.get("/console/audit", params={"member": "abc", "lang": "zh-CN"})
    assert bad.status_code == 400
    assert "请检查筛选条件" in flashes(bad.text)[0]
    assert 'data-entry="' not in bad.text


def test_only_auditors_and_admins_see_the_log(site: Site) -> None:
    support, admin = site.browser(), site.browser("203.0.113.2")
    assert sign_in(support, "support") == 303
    assert sign_in(admin, "admin") == 303
    assert support.get("/console/audit").status_code == 403
    assert 'id="nav-audit"' not in support.get("/console").text
    assert admin.get("/console/audit").status_code == 200
    assert 'id="nav-audit"' in admin.get("/console").text


def throttle_count(db: Database, key: str) -> int:
    from tally.throttling.models import SignInThrottle

    with db.read() as session:
        found = session.scalar(select(SignInThrottle.failures).where(SignInThrottle.key == key))
    return int(found or 0)


def test_sign_in_slows_down_then_locks_with_429_and_retry_after(site: Site) -> None:
    client = site.browser("203.0.113.77")
    assert [sign_in(client, "support", "wrong") for _ in range(3)] == [401, 401, 401]
    slowed = client.post("/console/sign-in", data=form(client, "support"))
    assert slowed.status_code == 429  # even the right password waits its turn
    assert slowed.headers["Retry-After"] == "1"
    assert "登录失败次数过多，请等待 1 秒后再试。" in flashes(slowed.text)
    assert throttle_count(site.db, "account:support") == 3  # the refused attempt counted nothing

    for wait in (1, 2, 4, 8, 16, 32, 64):  # failures 4 to 10, each once its wait is over
        assert sign_in(client, "support", "wrong") == 429
        site.clock.advance(seconds=wait)
        assert sign_in(client, "support", "wrong") == 401
    assert throttle_count(site.db, "account:support") == 10

    locked = client.post("/console/sign-in", data=form(client, "support"))
    assert locked.status_code == 429
    assert locked.headers["Retry-After"] == "900"
    until = site.clock.now + timedelta(minutes=15)
    local = until.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M")
    assert f"登录失败次数过多，已锁定至 {local}，请届时再试。" in flashes(locked.text)
    site.clock.advance(minutes=14, seconds=59)
    assert sign_in(client, "support") == 429
    site.clock.advance(seconds=1)
    assert sign_in(client, "support") == 303  # the lock ran out: the right password signs in
    assert throttle_count(site.db, "account:support") == 0  # and the account starts afresh
    actions = [entry.action for entry in entries(site.db, actor=f"staff:{site.staff['support']}")]
    assert actions.count("staff.sign_in_failed") == 10
    assert actions.count("staff.sign_in_throttled") == 10
    assert actions[0] == "staff.sign_in"


def test_one_address_trying_many_accounts_is_throttled(site: Site) -> None:
    sprayer = site.browser("203.0.113.200")
    results = [sign_in(sprayer, f"guess{number}", "wrong") for number in range(11)]
    assert results == [401] * 10 + [429]
    elsewhere = site.browser("198.51.100.200")
    assert sign_in(elsewhere, "support") == 303  # other addresses and accounts are not slowed
    (throttled,) = entries(site.db, action="staff.sign_in_throttled")
    assert (throttled.actor, throttled.address) == ("system", "203.0.113.200")
    assert throttled.details == {"username": "guess10", "retry_after": 1, "locked": False}


def test_signing_in_again_ends_the_browsers_previous_session(site: Site) -> None:
    client = site.browser()
    assert sign_in(client, "support") == 303
    first = client.cookies["tally_console"]
    again = {"username": "admin", "password": PASSWORD, "csrf": csrf_of(client)}
    assert client.post("/console/sign-in", data=again).status_code == 303
    assert client.cookies["tally_console"] != first
    copy = site.browser("203.0.113.8", cookies={"tally_console": first})
    assert copy.get("/console").status_code == 303
    with site.db.read() as session:
        rows = session.scalars(select(WebSession).order_by(WebSession.id)).all()
    assert [(row.staff_id, row.end_reason) for row in rows] == [
        (site.staff["support"], EndReason.SIGNED_OUT),
        (site.staff["admin"], None),
    ]
