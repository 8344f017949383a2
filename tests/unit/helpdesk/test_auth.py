"""Agent sign-in for the helpdesk: HELPDESK_AGENTS and its password length, sessions stored in the
helpdesk database (revoked at sign-out, expiring, ended by a new password), the sign-in throttle,
and that every page and action needs a session except the webhook and the health check."""

# The shared fixtures (helpdesk, alan, assistant, database_url) are imported from test_helpdesk;
# test functions name them as parameters, which ruff reads as redefinitions.
# ruff: noqa: F811

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import subprocess
import sys
from datetime import timedelta
from http.cookies import SimpleCookie

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient, TestServer

from handoff.settings import PROJECT_ROOT, SettingsError, load_settings
from helpdesk import views
from helpdesk.auth import (
    MIN_PASSWORD_LENGTH,
    SESSION_COOKIE,
    Agent,
    AgentDirectory,
    SignInThrottle,
    development_banner,
    display_name,
    load_agents,
    parse_agents,
)
from helpdesk.db import AgentSession, create_engine_for, init_database, utcnow
from helpdesk.sessions import SESSION_IDLE_TIMEOUT, SESSION_MAX_AGE, SessionStore, hash_token
from tests.helpdesk_support import GRACE, deliver, make_app, make_settings, request_handoff, sign_in
from tests.support import handoff_requested

# --- HELPDESK_AGENTS ------------------------------------------------------------------------------


def test_agents_are_read_from_the_environment_value():
    agents = parse_agents(" sanne:password1, piet.jansen:pass:word:2 ,")
    assert agents == [
        Agent("sanne", "Sanne", "password1"),
        Agent("piet.jansen", "Piet Jansen", "pass:word:2"),  # a password may hold colons
    ]
    assert "password1" not in repr(agents[0])


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("sanne", "has no password"),
        ("sanne:", "has no password"),
        ("sanne:a,sanne:b", "twice"),
        ("sanne:a,SANNE:b", "twice"),
        ("piet_jansen:a,piet.jansen:b", "twice"),  # the same display name
        ("sanne de wit:a", "may only contain"),
        (" , ", "lists no agent"),
    ],
)
def test_malformed_agents_are_refused_with_the_reason(raw, problem):
    with pytest.raises(SettingsError, match=problem):
        parse_agents(raw)


def test_display_names():
    assert display_name("sanne") == "Sanne"
    assert display_name("piet_de-vries") == "Piet De Vries"
    assert display_name("AB") == "AB"


def test_outside_development_the_agents_are_required():
    production = dataclasses.replace(load_settings(), environment="production")
    with pytest.raises(SettingsError, match="HELPDESK_AGENTS is not set"):
        load_agents(production, environ={})
    assert len(load_agents(production, environ={"HELPDESK_AGENTS": "sanne:x" * 12})) == 1


def test_outside_development_short_passwords_are_refused_naming_the_agent():
    production = dataclasses.replace(load_settings(), environment="production")
    raw = "sanne:long-enough-password,piet:short-pw-11"
    with pytest.raises(SettingsError) as refused:
        load_agents(production, environ={"HELPDESK_AGENTS": raw})
    message = str(refused.value)
    assert "piet" in message and f"{MIN_PASSWORD_LENGTH} characters" in message
    assert "short-pw-11" not in message and "sanne" not in message
    exactly = "x" * MIN_PASSWORD_LENGTH
    assert len(load_agents(production, environ={"HELPDESK_AGENTS": f"piet:{exactly}"})) == 1


def test_in_development_short_passwords_are_only_warned_about(caplog):
    with caplog.at_level(logging.WARNING, logger="helpdesk.auth"):
        directory = load_agents(load_settings(), environ={"HELPDESK_AGENTS": "piet:short"})
    assert directory.authenticate("piet", "short") is not None
    assert "the password of piet is shorter than 12 characters" in caplog.text
    assert "short" not in caplog.text.replace("shorter", "")


def test_in_development_one_agent_gets_a_printed_password():
    directory = load_agents(load_settings(), environ={})
    assert len(directory) == 1
    password = directory.generated_password
    assert password and len(password) >= MIN_PASSWORD_LENGTH
    assert directory.authenticate("agent", password).name == "Agent"
    banner = development_banner(directory)
    assert "login:    agent" in banner and password in banner
    listed = load_agents(load_settings(), {"HELPDESK_AGENTS": "a:long-password-1"})
    assert development_banner(listed) is None
    # A new password at every start.
    assert load_agents(load_settings(), environ={}).generated_password != password


def test_passwords_are_checked():
    directory = AgentDirectory(parse_agents("sanne:password1,piet:password2"))
    assert directory.authenticate("sanne", "password1").login == "sanne"
    assert directory.authenticate(" Sanne ", "password1").login == "sanne"
    assert directory.authenticate("sanne", "password2") is None
    assert directory.authenticate("sanne", "") is None
    assert directory.authenticate("nobody", "password1") is None


def test_the_helpdesk_refuses_to_start_in_production_without_agents(tmp_path):
    env = {
        **os.environ,
        "HANDOFF_ENV": "production",
        "HELPDESK_SECRET": "a-long-production-secret-0123456789",
        "HANDOFF_VAR_DIR": str(tmp_path),
    }
    env.pop("HELPDESK_AGENTS", None)
    result = subprocess.run(
        [sys.executable, "-m", "helpdesk"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "HELPDESK_AGENTS is not set while HANDOFF_ENV='production'" in result.stderr


# --- sessions in the database ---------------------------------------------------------------------

DIRECTORY = AgentDirectory([GRACE])


@pytest.fixture
def store():
    engine = create_engine_for("sqlite://")
    yield SessionStore(init_database(engine), "secret-one")
    engine.dispose()


def _rows(store: SessionStore) -> list[AgentSession]:
    with store._sessions() as session:
        return list(session.execute(sa.select(AgentSession)).scalars())


def test_the_database_keeps_only_a_hash_of_the_token(store):
    token = store.issue(GRACE)
    assert len(token) == 43
    (row,) = _rows(store)
    assert row.token_hash == hash_token(token) and token not in row.token_hash
    assert row.login == "grace" and row.revoked_at is None
    assert row.expires_at - row.created_at == timedelta(seconds=SESSION_MAX_AGE)
    assert GRACE.password not in row.fingerprint
    assert store.verify(token, DIRECTORY) == GRACE
    assert store.issue(GRACE) != token  # every sign-in its own token


def test_a_session_ends_at_its_maximum_age_however_busy(store):
    start = utcnow()
    token = store.issue(GRACE, now=start)
    moment = start
    while moment < start + timedelta(seconds=SESSION_MAX_AGE - 3600):
        moment += timedelta(seconds=3600)  # used every hour
        assert store.verify(token, DIRECTORY, now=moment) == GRACE
    assert store.verify(token, DIRECTORY, now=start + timedelta(seconds=SESSION_MAX_AGE)) is None


def test_an_unused_session_ends_after_the_idle_timeout(store):
    start = utcnow()
    token = store.issue(GRACE, now=start)
    idle = timedelta(seconds=SESSION_IDLE_TIMEOUT)
    later = start + idle - timedelta(seconds=5)
    assert store.verify(token, DIRECTORY, now=later) == GRACE  # use renews it
    assert store.verify(token, DIRECTORY, now=later + idle - timedelta(seconds=5)) == GRACE
    # Checks that are not the agent's doing (an open event stream) do not renew it.
    quiet = store.issue(GRACE, now=start)
    assert store.verify(quiet, DIRECTORY, now=later, touch=False) == GRACE
    assert store.verify(quiet, DIRECTORY, now=start + idle) is None


def test_a_revoked_session_is_refused(store):
    token = store.issue(GRACE)
    other = store.issue(GRACE)
    assert store.revoke(token) == "grace"
    assert store.verify(token, DIRECTORY) is None
    assert store.revoke(token) is None  # once
    assert store.verify(other, DIRECTORY) == GRACE  # the agent's other browser stays signed in
    (revoked,) = [row for row in _rows(store) if row.revoked_at is not None]
    assert revoked.token_hash == hash_token(token)


def test_signing_out_everywhere_ends_every_session_of_the_agent(store):
    alan = Agent("alan", "Alan", "alan-password-2")
    directory = AgentDirectory([GRACE, alan])
    graces = [store.issue(GRACE) for _ in range(3)]
    alans = store.issue(alan)
    assert store.live_count("grace") == 3
    assert store.revoke_agent("Grace") == 3
    assert all(store.verify(token, directory) is None for token in graces)
    assert store.verify(alans, directory) == alan
    assert store.live_count("grace") == 0 and store.live_count("alan") == 1


def test_a_forged_or_foreign_token_is_refused(store):
    token = store.issue(GRACE)
    altered = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert store.verify(altered, DIRECTORY) is None
    for garbage in ("", "x", token + "x", token[:-1], "é" * 43, " " + token[1:], None):
        assert store.verify(garbage, DIRECTORY) is None
        assert store.revoke(garbage) is None
    # A token of another helpdesk (another secret, so another fingerprint) is no session here.
    assert SessionStore(store._sessions, "secret-two").verify(token, DIRECTORY) is None


def test_a_new_password_or_a_removed_agent_ends_the_session(store):
    token = store.issue(GRACE)
    renewed = AgentDirectory([dataclasses.replace(GRACE, password="a-new-password")])
    assert store.verify(token, renewed) is None
    assert store.verify(token, AgentDirectory([Agent("alan", "Alan", "alan-password-2")])) is None
    # At start-up such sessions are revoked in the table too.
    store.issue(Agent("alan", "Alan", "alan-password-2"))  # alan is no longer listed
    assert store.revoke_outdated(renewed) == 2
    assert store.verify(token, DIRECTORY) is None  # even with the old password back
    assert all(row.revoked_at is not None for row in _rows(store))


def test_expired_sessions_are_removed_at_sign_in(store):
    start = utcnow()
    old = store.issue(GRACE, now=start)
    recent = store.issue(GRACE, now=start + timedelta(hours=1))
    assert len(_rows(store)) == 2
    store.issue(GRACE, now=start + timedelta(seconds=SESSION_IDLE_TIMEOUT + 1800))
    hashes = {row.token_hash for row in _rows(store)}
    assert hash_token(old) not in hashes and hash_token(recent) in hashes
    assert len(hashes) == 2
    assert store.purge_expired(now=start + timedelta(seconds=SESSION_MAX_AGE)) == 2


# --- over HTTP -----------------------------------------------------------------------------------


@pytest.fixture
async def anonymous(assistant, database_url):
    """A browser that has not signed in."""
    async with TestClient(TestServer(make_app(make_settings(assistant.url), database_url))) as client:
        yield client


async def test_pages_send_the_browser_to_sign_in(anonymous):
    response = await anonymous.get("/", allow_redirects=False)
    assert (response.status, response.headers["Location"]) == (303, "/login")
    response = await anonymous.get("/tickets/HD-00000000", allow_redirects=False)
    assert response.headers["Location"] == "/login?next=/tickets/HD-00000000"
    login = await anonymous.get("/login")
    assert login.status == 200
    assert 'name="password"' in await login.text()


async def test_everything_but_the_webhook_and_health_needs_a_session(anonymous, assistant):
    _, answer = await request_handoff(anonymous)  # the webhook is open (it is signed instead)
    ticket = f"/tickets/{answer['ticket_id']}"
    for path in ("/partials/inbox", f"/partials/tickets/{answer['ticket_id']}", "/events"):
        response = await anonymous.get(path)
        assert response.status == 401, path
    for path in ("/", ticket):
        response = await anonymous.get(path, headers={"Accept": "application/json"})
        assert response.status == 401, path
    for action in ("join", "takeover", "reply", "handback"):
        response = await anonymous.post(f"{ticket}/{action}", data={"text": "hi"})
        assert response.status == 401, action
    assert assistant.received == []
    assert (await anonymous.get("/health")).status == 200
    assert (await anonymous.get("/static/helpdesk.css")).status == 200


async def test_signing_in_sets_a_protected_cookie_and_returns_to_the_page(anonymous):
    response = await anonymous.post(
        "/login",
        data={"login": "grace", "password": GRACE.password, "next": "/tickets/HD-1"},
        allow_redirects=False,
    )
    assert response.status == 303
    assert response.headers["Location"] == "/tickets/HD-1"
    header = response.headers["Set-Cookie"]
    cookie = SimpleCookie(header)[SESSION_COOKIE]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert cookie["path"] == "/"
    assert cookie["secure"] == ""  # development over plain HTTP
    assert GRACE.password not in header and len(cookie.value) == 43
    inbox = await anonymous.get("/")
    assert inbox.status == 200
    assert "Grace" in await inbox.text()


async def test_a_wrong_password_is_refused(anonymous):
    response = await anonymous.post(
        "/login", data={"login": "grace", "password": "nope"}, allow_redirects=False
    )
    assert response.status == 401
    text = await response.text()
    assert "That login and password do not match." in text
    assert 'value="grace"' in text
    assert SESSION_COOKIE not in response.cookies
    assert (await anonymous.get("/", allow_redirects=False)).status == 303


@pytest.mark.parametrize(
    "target", ["//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:x"]
)
async def test_sign_in_never_redirects_off_site(anonymous, target):
    response = await anonymous.post(
        "/login",
        data={"login": "grace", "password": GRACE.password, "next": target},
        allow_redirects=False,
    )
    assert response.headers["Location"] == "/"


async def test_sign_in_from_another_site_is_refused(anonymous):
    response = await anonymous.post(
        "/login",
        data={"login": "grace", "password": GRACE.password},
        headers={"Origin": "https://evil.example"},
        allow_redirects=False,
    )
    assert response.status == 403


async def test_signing_out_ends_the_session(helpdesk):
    page = await helpdesk.get("/")
    assert 'action="/logout"' in await page.text()
    response = await helpdesk.post("/logout", allow_redirects=False)
    assert (response.status, response.headers["Location"]) == (303, "/login")
    assert (await helpdesk.get("/", allow_redirects=False)).status == 303


def _session_cookie(client: TestClient) -> str:
    (value,) = [c.value for c in client.session.cookie_jar if c.key == SESSION_COOKIE]
    return value


async def test_a_cookie_copied_before_signing_out_is_refused_afterwards(helpdesk, assistant):
    copied = _session_cookie(helpdesk)
    _, answer = await request_handoff(helpdesk)
    ticket = f"/tickets/{answer['ticket_id']}"
    headers = {"Cookie": f"{SESSION_COOKIE}={copied}"}
    async with TestClient(helpdesk.server) as thief:
        assert (await thief.get("/", headers=headers, allow_redirects=False)).status == 200
        await helpdesk.post("/logout")
        response = await thief.get("/", headers=headers, allow_redirects=False)
        assert (response.status, response.headers["Location"]) == (303, "/login")
        response = await thief.get("/partials/inbox", headers=headers)
        assert response.status == 401
        assert answer["ticket_id"] not in await response.text()
        response = await thief.post(f"{ticket}/join", headers=headers, allow_redirects=False)
        assert response.status == 401
    assert assistant.received == []


async def test_outside_development_the_cookie_is_secure(assistant, database_url):
    settings = make_settings(assistant.url, environment="production")
    async with TestClient(TestServer(make_app(settings, database_url))) as client:
        response = await client.post(
            "/login",
            data={"login": "grace", "password": GRACE.password},
            allow_redirects=False,
        )
    assert response.status == 303
    cookie = SimpleCookie(response.headers["Set-Cookie"])[SESSION_COOKIE]
    assert cookie["secure"] is True and cookie["httponly"] is True


async def test_an_open_event_stream_ends_when_its_session_is_signed_out(helpdesk, monkeypatch):
    monkeypatch.setattr(views, "KEEPALIVE_SECONDS", 0.2)
    copied = _session_cookie(helpdesk)
    async with TestClient(helpdesk.server) as other_tab:
        stream = await other_tab.get("/events", headers={"Cookie": f"{SESSION_COOKIE}={copied}"})
        assert stream.status == 200
        await asyncio.wait_for(stream.content.readline(), 5)  # retry: ...
        await helpdesk.post("/logout")
        rest = await asyncio.wait_for(stream.content.read(), 5)  # the server ends it
        assert b"event: ticket" not in rest


async def test_the_signed_in_page_is_protected_by_headers(helpdesk):
    response = await helpdesk.get("/")
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "<script>" not in await response.text()  # no inline script: the policy forbids it


async def test_the_webhook_behaves_as_before_without_a_session(anonymous):
    body = handoff_requested()
    status, answer = await deliver(anonymous, body)
    assert status == 200 and answer["ticket_id"].startswith("HD-")
    status, answer = await deliver(anonymous, handoff_requested(), secret="wrong")
    assert status == 401


async def test_a_signed_in_agent_is_sent_on_from_the_sign_in_page(helpdesk):
    response = await helpdesk.get("/login?next=/tickets/HD-2", allow_redirects=False)
    assert (response.status, response.headers["Location"]) == (303, "/tickets/HD-2")
    await sign_in(helpdesk)  # signing in again is harmless


def test_repeated_failures_slow_down_guessing():
    throttle = SignInThrottle(["sanne", "piet"], max_failures_per_login=3, window_seconds=60)
    for second in range(3):
        assert throttle.retry_after("10.0.0.1", "sanne", now=100 + second) == 0
        throttle.failed("10.0.0.1", "sanne", now=100 + second)
    assert throttle.retry_after("10.0.0.1", "Sanne", now=103) == 57
    assert throttle.retry_after("10.0.0.1", "piet", now=103) == 0  # another agent
    assert throttle.retry_after("10.0.0.1", "sanne", now=160) == 0  # the window passed
    for _ in range(3):
        throttle.failed("10.0.0.1", "piet", now=200)
    throttle.succeeded("10.0.0.1", "piet", now=200)  # signing in clears its own count
    assert throttle.retry_after("10.0.0.1", "piet", now=200) == 0


def test_failures_for_one_agent_count_from_every_address():
    throttle = SignInThrottle(["sanne"], max_failures_per_login=5, max_failures_per_address=100)
    for host in range(5):
        throttle.failed(f"10.0.0.{host}", "sanne", now=10)
    assert throttle.retry_after("192.0.2.9", "sanne", now=11) == 899  # from anywhere
    # An IPv6 address counts as its /64.
    assert throttle.address_key("2001:db8:1:2::1") == throttle.address_key("2001:db8:1:2:ff::9")
    assert throttle.address_key("::ffff:10.0.0.1") == "10.0.0.1"


def test_failures_from_one_address_count_for_every_login():
    throttle = SignInThrottle(max_failures_per_login=100, max_failures_per_address=4)
    for index in range(4):
        throttle.failed("10.0.0.7", f"guess-{index}", now=10)
    assert throttle.retry_after("10.0.0.7", "sanne", now=11) == 899
    assert throttle.retry_after("10.0.0.8", "sanne", now=11) == 0


def test_a_success_elsewhere_does_not_clear_a_throttled_login():
    throttle = SignInThrottle(["sanne"], max_failures_per_login=3)
    for _ in range(2):
        throttle.failed("10.0.0.66", "sanne", now=10)
    throttle.failed("10.0.0.1", "sanne", now=10)  # the agent mistyped once
    assert throttle.retry_after("10.0.0.1", "sanne", now=11) > 0
    throttle.succeeded("10.0.0.1", "sanne", now=11)  # e.g. let in before the limit was reached
    assert throttle.retry_after("10.0.0.1", "sanne", now=11) == 0
    throttle.failed("10.0.0.66", "sanne", now=12)
    assert throttle.retry_after("10.0.0.66", "sanne", now=12) > 0  # the attacker's 3 still count


def test_flooding_the_throttle_does_not_release_a_throttled_login_or_address():
    throttle = SignInThrottle(
        ["sanne"], max_failures_per_login=3, max_failures_per_address=3, max_entries=50
    )
    for _ in range(3):
        throttle.failed("10.0.0.66", "sanne", now=10)
        throttle.failed("10.0.0.77", "nobody", now=10)
    assert throttle.retry_after("10.1.0.1", "sanne", now=10) > 0
    assert throttle.retry_after("10.0.0.77", "piet", now=10) > 0
    # Thousands of made-up logins from thousands of addresses fill the table...
    for index in range(5000):
        throttle.failed(f"10.9.{index // 250}.{index % 250}", f"made-up-{index}", now=20)
    assert len(throttle._others) <= 50
    # ...and neither the throttled agent login nor the throttled address is forgotten.
    assert throttle.retry_after("10.1.0.1", "sanne", now=30) > 0
    assert throttle.retry_after("10.0.0.77", "piet", now=30) > 0
    # Once the window passes, the old counters make room again.
    throttle.failed("10.0.0.99", "x", now=2000)
    assert ("address", "10.0.0.99") in throttle._others


async def test_the_sign_in_page_stops_answering_a_guesser(anonymous):
    for _ in range(10):
        response = await anonymous.post("/login", data={"login": "grace", "password": "guess"})
        assert response.status == 401
    response = await anonymous.post("/login", data={"login": "grace", "password": GRACE.password})
    assert response.status == 429
    assert 890 <= int(response.headers["Retry-After"]) <= 900
    assert "Too many failed attempts. Try again in 15 min." in await response.text()
    assert SESSION_COOKIE not in response.cookies
    assert (await anonymous.get("/", allow_redirects=False)).status == 303
