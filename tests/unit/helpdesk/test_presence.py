"""Agent presence: who counts as available (status available and a live session), the header
control that changes it, and that only the helpdesk's own pages may change it."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient

from helpdesk.auth import Agent
from helpdesk.db import AgentSession, create_engine_for, init_database, utcnow
from helpdesk.keys import STORE_KEY
from helpdesk.sessions import SESSION_IDLE_TIMEOUT, SessionStore
from helpdesk.store import TicketStore
from tests.helpdesk_support import ALAN, GRACE, SECRET, page, request_handoff, sign_in


def agent(login: str) -> Agent:
    return Agent(login=login, name=login.title(), password=f"{login}-password-123")


@pytest.fixture
def stores():
    engine = create_engine_for("sqlite://")
    factory = init_database(engine)
    yield TicketStore(factory), SessionStore(factory, SECRET)
    engine.dispose()


def store_of(client: TestClient) -> TicketStore:
    return client.server.app[STORE_KEY]


# --- counting -------------------------------------------------------------------------------------


def test_only_available_agents_with_a_live_session_count(stores):
    tickets, sessions = stores
    now = utcnow()
    # Available with a live session: counts.
    sessions.issue(GRACE, now=now)
    tickets.set_presence("grace", "available")
    # Away, or signed in without choosing anything: does not count.
    sessions.issue(ALAN, now=now)
    tickets.set_presence("alan", "away")
    sessions.issue(agent("ada"), now=now)
    # Available, but the session was revoked (signed out elsewhere).
    sessions.revoke(sessions.issue(agent("bob"), now=now), now=now)
    tickets.set_presence("bob", "available")
    # Available, but the session is past its maximum age (while recently used).
    short = SessionStore(sessions._sessions, SECRET, max_age=60)
    short.issue(agent("cy"), now=now - timedelta(seconds=120))
    with sessions._sessions() as session, session.begin():
        row = session.execute(sa.select(AgentSession).filter_by(login="cy")).scalar_one()
        row.last_seen_at = now - timedelta(seconds=10)
    tickets.set_presence("cy", "available")
    # Available, but the session was not used within the idle timeout.
    sessions.issue(agent("dee"), now=now - timedelta(seconds=SESSION_IDLE_TIMEOUT + 60))
    tickets.set_presence("dee", "available")
    # Available without any session.
    tickets.set_presence("eve", "available")
    # Available with one revoked and one live session: counts once.
    sessions.revoke(sessions.issue(agent("fay"), now=now), now=now)
    sessions.issue(agent("fay"), now=now)
    sessions.issue(agent("fay"), now=now)
    tickets.set_presence("fay", "available")

    assert tickets.available_logins(now=now) == ["fay", "grace"]
    assert tickets.count_available(now=now) == 2
    assert tickets.get_presence("ada") == "offline"  # never chose: offline
    assert tickets.get_presence("alan") == "away"
    assert tickets.get_presence("GRACE") == "available"  # logins are case-insensitive

    # Grace's session runs idle later on: she stops counting without changing her status.
    later = now + timedelta(seconds=SESSION_IDLE_TIMEOUT + 1)
    assert tickets.available_logins(now=later) == []
    assert tickets.get_presence("grace") == "available"


def test_the_idle_timeout_is_the_sessions_own(stores):
    tickets, sessions = stores
    now = utcnow()
    sessions.issue(GRACE, now=now - timedelta(seconds=600))
    tickets.set_presence("grace", "available")
    assert tickets.count_available(now=now) == 1
    strict = TicketStore(sessions._sessions, idle_timeout=300)
    assert strict.count_available(now=now) == 0


def test_presence_changes_are_recorded_and_unknown_ones_refused(stores):
    tickets, _sessions = stores
    moment = utcnow() - timedelta(minutes=5)
    tickets.set_presence("Grace", "away", now=moment)
    tickets.set_presence("grace", "available")
    tickets.set_presence("grace", "offline")
    assert tickets.get_presence("grace") == "offline"
    with pytest.raises(ValueError, match="unknown presence 'busy'"):
        tickets.set_presence("grace", "busy")
    assert tickets.get_presence("grace") == "offline"
    presence = tickets.presence("grace")
    assert (presence.status, presence.available, presence.available_count) == ("offline", (), 0)


# --- the header control ---------------------------------------------------------------------------


def header(html: str) -> str:
    return html.split('<header class="topbar">', 1)[1].split("</header>", 1)[0]


async def test_signed_in_is_not_available_until_the_agent_says_so(helpdesk):
    top = header(await page(helpdesk, "/"))
    assert 'data-presence="offline"' in top
    assert "choose &ldquo;Available&rdquo; to receive them" in top
    assert 'data-available="0"' in top and "0 available" in top
    assert '<form method="post" action="/presence"' in top
    assert 'name="status" value="available"' in top and 'name="status" value="away"' in top
    assert store_of(helpdesk).get_presence("grace") == "offline"

    response = await helpdesk.post(
        "/presence", data={"status": "available", "next": "/?x=1"}, allow_redirects=False
    )
    assert (response.status, response.headers["Location"]) == (303, "/?x=1")
    top = header(await page(helpdesk, "/"))
    assert 'data-presence="available"' in top
    assert "to receive them" not in top
    assert "1 available" in top and 'title="Available now: Grace"' in top
    assert 'name="status" value="available"' not in top  # already available
    assert store_of(helpdesk).count_available() == 1


async def test_colleagues_see_how_many_are_available(helpdesk, alan):
    assert "0 available" in header(await page(alan, "/"))
    await helpdesk.post("/presence", data={"status": "available"})
    await alan.post("/presence", data={"status": "available"})
    top = header(await page(alan, "/"))
    assert "2 available" in top and "Available now: Alan, Grace" in top
    inbox = await page(alan, "/")
    assert "<strong>2</strong> agents available" in inbox

    await alan.post("/presence", data={"status": "away"})
    top = header(await page(helpdesk, "/"))
    assert "1 available" in top and "Available now: Grace" in top
    assert 'data-presence="away"' in header(await page(alan, "/"))

    # The live fragments carry the control too.
    data = await (await helpdesk.get("/partials/inbox")).json()
    assert 'data-available="1"' in data["html"]["presence"]
    assert 'name="next" value="/"' in data["html"]["presence"]


async def test_the_ticket_page_sends_the_agent_back_to_it(helpdesk):
    _, answer = await request_handoff(helpdesk)
    ticket = f"/tickets/{answer['ticket_id']}"
    assert f'name="next" value="{ticket}"' in header(await page(helpdesk, ticket))
    fragment = (await (await helpdesk.get(f"/partials{ticket}")).json())["html"]["presence"]
    assert f'name="next" value="{ticket}"' in fragment
    response = await helpdesk.post(
        "/presence", data={"status": "away", "next": ticket}, allow_redirects=False
    )
    assert response.headers["Location"] == ticket


async def test_signing_out_sets_offline(helpdesk):
    await helpdesk.post("/presence", data={"status": "available"})
    assert store_of(helpdesk).get_presence("grace") == "available"
    await helpdesk.post("/logout")
    assert store_of(helpdesk).get_presence("grace") == "offline"
    assert store_of(helpdesk).count_available() == 0


async def another_browser(client: TestClient, who: Agent) -> TestClient:
    """A browser with its own cookies on the same helpdesk, signed in as ``who``."""
    browser = TestClient(client.server)
    await browser.start_server()
    await sign_in(browser, who)
    return browser


async def test_a_fresh_sign_in_starts_offline_a_second_browser_keeps_the_status(helpdesk):
    store = store_of(helpdesk)
    await helpdesk.post("/presence", data={"status": "available"})
    # Grace opens a second browser while the first is signed in: she stays available.
    second = await another_browser(helpdesk, GRACE)
    try:
        assert store.get_presence("grace") == "available"
    finally:
        await second.session.close()
    # Alan was left "available" by a session that ended without signing out.
    store.set_presence("alan", "available")
    browser = await another_browser(helpdesk, ALAN)
    try:
        assert store.get_presence("alan") == "offline"
        assert 'data-presence="offline"' in header(await page(browser, "/"))
    finally:
        await browser.session.close()


async def test_the_answer_to_a_handoff_counts_available_agents(helpdesk, alan):
    _, nobody = await request_handoff(helpdesk)
    assert (nobody["agents_available"], nobody["estimated_wait_seconds"]) == (0, None)
    assert nobody["queue_position"] == 1
    await helpdesk.post("/presence", data={"status": "available"})
    await alan.post("/presence", data={"status": "away"})
    _, answer = await request_handoff(helpdesk)
    assert answer == {
        "ticket_id": answer["ticket_id"],
        # Grace is free, but for the ticket before this one: one round of 180 s (no hand-backs yet).
        "estimated_wait_seconds": 180,
        "agents_available": 1,
        "queue_position": 2,
    }
    _, third = await request_handoff(helpdesk)
    assert (third["queue_position"], third["estimated_wait_seconds"]) == (3, 2 * 180)


# --- refusals -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Referer": "https://evil.example/page"},
    ],
)
async def test_presence_posts_from_other_sites_are_refused(helpdesk, headers):
    response = await helpdesk.post(
        "/presence", data={"status": "available"}, headers=headers, allow_redirects=False
    )
    assert response.status == 403
    assert store_of(helpdesk).get_presence("grace") == "offline"


async def test_presence_posts_from_the_helpdesk_itself_are_accepted(helpdesk):
    origin = str(helpdesk.make_url("")).rstrip("/")
    response = await helpdesk.post(
        "/presence",
        data={"status": "away"},
        headers={"Origin": origin},
        allow_redirects=False,
    )
    assert response.status == 303
    assert store_of(helpdesk).get_presence("grace") == "away"


async def test_an_unknown_status_is_refused(helpdesk):
    for data in ({"status": "busy"}, {}):
        response = await helpdesk.post("/presence", data=data, allow_redirects=False)
        assert response.status == 400
        assert "status must be one of: available, away, offline" in await response.text()
    assert store_of(helpdesk).get_presence("grace") == "offline"


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil", ""])
async def test_presence_never_redirects_off_site(helpdesk, target):
    response = await helpdesk.post(
        "/presence", data={"status": "away", "next": target}, allow_redirects=False
    )
    assert response.headers["Location"] == "/"


async def test_presence_needs_a_signed_in_agent(helpdesk):
    helpdesk.session.cookie_jar.clear()
    response = await helpdesk.post("/presence", data={"status": "available"})
    assert response.status == 401
    assert store_of(helpdesk).count_available() == 0
