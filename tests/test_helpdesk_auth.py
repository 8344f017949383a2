"""Agent sign-in for the helpdesk: HELPDESK_AGENTS, the signed session cookie, and that every page
and action needs a session except the webhook and the health check."""

# The shared fixtures (helpdesk, alan, assistant, database_url) are imported from test_helpdesk;
# test functions name them as parameters, which ruff reads as redefinitions.
# ruff: noqa: F811

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from http.cookies import SimpleCookie

import pytest
from aiohttp.test_utils import TestClient, TestServer

from handoff.settings import PROJECT_ROOT, SettingsError, load_settings
from helpdesk.auth import (
    SESSION_COOKIE,
    Agent,
    AgentDirectory,
    SessionSigner,
    SignInThrottle,
    development_banner,
    display_name,
    load_agents,
    parse_agents,
)
from tests.test_helpdesk import (  # noqa: F401 - assistant, database_url, helpdesk: fixtures
    GRACE,
    assistant,
    database_url,
    deliver,
    helpdesk,
    make_app,
    make_settings,
    request_handoff,
    sign_in,
)
from tests.test_schemas import handoff_requested

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
    assert len(load_agents(production, environ={"HELPDESK_AGENTS": "sanne:x"})) == 1


def test_in_development_one_agent_gets_a_printed_password():
    directory = load_agents(load_settings(), environ={})
    assert len(directory) == 1
    password = directory.generated_password
    assert password and len(password) >= 12
    assert directory.authenticate("agent", password).name == "Agent"
    banner = development_banner(directory)
    assert "login:    agent" in banner and password in banner
    assert development_banner(load_agents(load_settings(), {"HELPDESK_AGENTS": "a:b"})) is None
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


# --- the session cookie ---------------------------------------------------------------------------

DIRECTORY = AgentDirectory([GRACE])


def test_a_session_names_its_agent_until_it_expires():
    signer = SessionSigner("secret-one", max_age=3600)
    now = time.time()
    value = signer.issue(GRACE, now=now)
    assert signer.verify(value, DIRECTORY, now=now + 10) == GRACE
    assert signer.verify(value, DIRECTORY, now=now + 3601) is None
    assert signer.verify(value, DIRECTORY, now=now - 3600) is None  # from the future


def test_a_forged_or_foreign_session_is_refused():
    signer = SessionSigner("secret-one")
    value = signer.issue(GRACE)
    payload, signature = value.split(".")
    other = Agent("alan", "Alan", "pw")
    forged = SessionSigner("secret-one").issue(other).split(".")[0] + "." + signature
    assert signer.verify(forged, AgentDirectory([GRACE, other])) is None
    assert SessionSigner("secret-two").verify(value, DIRECTORY) is None
    for garbage in ("", "x", "a.b", "a.b.c", payload + ".", "." + signature, "é.é", None):
        assert signer.verify(garbage, DIRECTORY) is None


def test_a_new_password_or_a_removed_agent_ends_the_session():
    signer = SessionSigner("secret-one")
    value = signer.issue(GRACE)
    renewed = AgentDirectory([dataclasses.replace(GRACE, password="a-new-password")])
    assert signer.verify(value, renewed) is None
    assert signer.verify(value, AgentDirectory([Agent("alan", "Alan", "pw")])) is None


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
    assert GRACE.password not in header
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
    throttle = SignInThrottle(max_failures=3, window_seconds=60)
    for second in range(3):
        assert throttle.retry_after("10.0.0.1", "sanne", now=100 + second) == 0
        throttle.failed("10.0.0.1", "sanne", now=100 + second)
    assert throttle.retry_after("10.0.0.1", "Sanne", now=103) == 58
    assert throttle.retry_after("10.0.0.2", "sanne", now=103) == 0  # another address
    assert throttle.retry_after("10.0.0.1", "piet", now=103) == 0  # another agent
    assert throttle.retry_after("10.0.0.1", "sanne", now=161) == 0  # the window passed
    for _ in range(3):
        throttle.failed("10.0.0.1", "piet", now=200)
    throttle.succeeded("10.0.0.1", "piet")  # signing in clears the count
    assert throttle.retry_after("10.0.0.1", "piet", now=200) == 0


async def test_the_sign_in_page_stops_answering_a_guesser(anonymous):
    for _ in range(10):
        response = await anonymous.post("/login", data={"login": "grace", "password": "guess"})
        assert response.status == 401
    response = await anonymous.post("/login", data={"login": "grace", "password": GRACE.password})
    assert response.status == 429
    assert "Too many failed attempts. Try again in 15 min." in await response.text()
    assert (await anonymous.get("/", allow_redirects=False)).status == 303
