"""Attacks on the agent console's sign-in, against the real helpdesk process (``python -m helpdesk``).

A stand-in assistant (tests.support.Receiver) records whatever the console sends; every attack
checks that nothing was sent and no ticket changed: a cookie copied before signing out, forged and
altered cookies, a flood of sign-in failures from many loopback addresses meant to push a throttled
login out of the throttle, a short password in production, and the cookie's flags in production.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import secrets
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path

import pytest
import requests

from handoff.settings import PROJECT_ROOT
from tests.stack import BIN, free_port
from tests.support import TEST_SECRET, Receiver, handoff_requested, signed

pytestmark = pytest.mark.e2e

COOKIE = "helpdesk_session"
SANNE = ("sanne", "sanne-attack-password")
PIET = ("piet", "piet-attack-password")
#: The agent whose login the throttle test locks (so the other tests can still sign in).
GRACE = ("grace", "grace-attack-password")
AGENTS = ",".join(f"{login}:{password}" for login, password in (SANNE, PIET, GRACE))


class Console:
    """One ``python -m helpdesk`` on a free loopback port, with its own database."""

    def __init__(self, workdir: Path, assistant_url: str, **env: str) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database = workdir / "helpdesk.db"
        self.env = {
            **os.environ,
            "HANDOFF_ENV": "test",
            "HELPDESK_SECRET": TEST_SECRET,
            "HANDOFF_VAR_DIR": str(workdir / "var"),
            "HELPDESK_HOST": "127.0.0.1",
            "HELPDESK_PORT": str(self.port),
            "HELPDESK_DATABASE_URL": f"sqlite:///{self.database}",
            "HELPDESK_AGENTS": AGENTS,
            "RASA_URL": assistant_url,
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> Console:
        self.log = open(self.workdir / "helpdesk.log", "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [str(BIN / "python"), "-m", "helpdesk"],
            cwd=PROJECT_ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"helpdesk exited early:\n{self.read_log()}")
            try:
                if requests.get(self.url + "/health", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"helpdesk not ready in {timeout} s:\n{self.read_log()}")
            time.sleep(0.2)

    def read_log(self) -> str:
        return (self.workdir / "helpdesk.log").read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()

    # -- as the assistant and as agents ----------------------------------------------------------

    def request_handoff(self) -> str:
        """Deliver a signed handoff.requested; the new ticket's id."""
        raw, headers = signed(handoff_requested())
        answer = requests.post(self.url + "/webhook", data=raw, headers=headers, timeout=10)
        assert answer.status_code == 200, answer.text
        return answer.json()["ticket_id"]

    def sign_in(self, agent: tuple[str, str] = SANNE) -> requests.Session:
        browser = requests.Session()
        answer = browser.post(
            self.url + "/login",
            data={"login": agent[0], "password": agent[1]},
            headers={"Origin": self.url},
            allow_redirects=False,
            timeout=10,
        )
        assert answer.status_code == 303, answer.text
        cookie = SimpleCookie(answer.headers["Set-Cookie"])[COOKIE]
        if cookie["secure"]:
            # Production: requests sends a Secure cookie over HTTPS only, as a browser does; here
            # it goes straight to the console, as it would from behind the TLS proxy.
            browser.headers["Cookie"] = f"{COOKIE}={cookie.value}"
        return browser

    def queue(self) -> dict:
        """The inbox's counts and HTML as a freshly signed-in agent sees them."""
        answer = self.sign_in(PIET).get(self.url + "/partials/inbox", timeout=10)
        assert answer.status_code == 200
        return answer.json()


@pytest.fixture(scope="module")
def assistant() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def console(tmp_path_factory, assistant) -> Iterator[Console]:
    base = assistant.url.rsplit("/webhook", 1)[0]
    running = Console(tmp_path_factory.mktemp("console"), base).start()
    yield running
    running.stop()


def with_cookie(value: str) -> dict[str, str]:
    return {"Cookie": f"{COOKIE}={value}"}


def assert_refused(console: Console, cookie: str, ticket_id: str) -> None:
    """Every page, fragment, stream and action refuses ``cookie`` and shows nothing of the ticket."""
    headers = with_cookie(cookie)
    page = requests.get(console.url + "/", headers=headers, allow_redirects=False, timeout=10)
    assert page.status_code == 303 and page.headers["Location"] == "/login"
    assert ticket_id not in page.text
    ticket = requests.get(
        f"{console.url}/tickets/{ticket_id}", headers=headers, allow_redirects=False, timeout=10
    )
    assert ticket.status_code == 303 and ticket.headers["Location"].startswith("/login")
    for path in ("/partials/inbox", f"/partials/tickets/{ticket_id}", "/events"):
        answer = requests.get(console.url + path, headers=headers, timeout=10)
        assert answer.status_code == 401, path
        assert ticket_id not in answer.text and "Ada Lovelace" not in answer.text
    for action in ("join", "takeover", "reply", "handback"):
        answer = requests.post(
            f"{console.url}/tickets/{ticket_id}/{action}",
            data={"text": "hello from a stolen cookie"},
            headers={**headers, "Origin": console.url},
            allow_redirects=False,
            timeout=10,
        )
        assert answer.status_code == 401, action


def assert_untouched(console: Console, assistant: Receiver, ticket_id: str) -> None:
    """Nothing reached the assistant and the ticket still waits, unclaimed and unanswered."""
    assert assistant.received == []
    queue = console.queue()
    assert ticket_id in queue["html"]["queue"]
    ticket = console.sign_in(PIET).get(f"{console.url}/tickets/{ticket_id}", timeout=10).text
    assert "Nobody has claimed this yet" in ticket
    assert "stolen cookie" not in ticket and "joined the conversation" not in ticket


def test_a_cookie_copied_before_signing_out_is_refused_afterwards(console, assistant):
    ticket_id = console.request_handoff()
    browser = console.sign_in(SANNE)
    copied = browser.cookies[COOKIE]
    # The copy works while the agent is signed in ...
    assert requests.get(console.url + "/partials/inbox", headers=with_cookie(copied), timeout=10).ok
    answer = browser.post(
        console.url + "/logout", headers={"Origin": console.url}, allow_redirects=False, timeout=10
    )
    assert answer.status_code == 303
    # ... and not after signing out, although it is byte for byte the same cookie.
    assert_refused(console, copied, ticket_id)
    assert_untouched(console, assistant, ticket_id)


def test_forged_and_altered_cookies_are_refused(console, assistant):
    ticket_id = console.request_handoff()
    genuine = console.sign_in(SANNE).cookies[COOKIE]
    flipped = genuine[:10] + ("A" if genuine[10] != "A" else "B") + genuine[11:]
    # The former cookie format: a login signed with a key derived from the shared secret.
    key = hmac.new(TEST_SECRET.encode(), b"helpdesk agent session v1", hashlib.sha256).digest()
    payload = json.dumps({"login": "sanne", "at": int(time.time()), "fp": "x"}).encode()
    body = base64.urlsafe_b64encode(payload).rstrip(b"=")
    signature = base64.urlsafe_b64encode(hmac.new(key, body, hashlib.sha256).digest()).rstrip(b"=")
    forgeries = [
        flipped,
        genuine[:-1],
        genuine + "A",
        secrets.token_urlsafe(32),  # well-formed, never issued
        hashlib.sha256(genuine.encode()).hexdigest(),  # what the database stores
        f"{body.decode()}.{signature.decode()}",
        "sanne",
        "%00" * 43,
    ]
    for forged in forgeries:
        assert_refused(console, forged, ticket_id)
    assert_untouched(console, assistant, ticket_id)


def _sign_in_from(
    address: str, login: str, password: str, conn_cache: dict
) -> tuple[int, str | None, str | None]:
    """POST /login from loopback source ``address`` (one kept-alive connection per address)."""
    connection = conn_cache.get(address)
    if connection is None:
        port = int(conn_cache["port"])
        connection = http.client.HTTPConnection("127.0.0.1", port, source_address=(address, 0))
        conn_cache[address] = connection
    body = urllib.parse.urlencode({"login": login, "password": password})
    connection.request(
        "POST",
        "/login",
        body=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    response = connection.getresponse()
    response.read()
    return response.status, response.getheader("Retry-After"), response.getheader("Set-Cookie")


def test_flooding_the_throttle_does_not_unlock_a_throttled_login(console, assistant):
    ticket_id = console.request_handoff()
    connections: dict = {"port": console.port}
    login, password = GRACE
    # The attacker guesses Grace's password until the console stops answering.
    statuses = [_sign_in_from("127.0.0.66", login, f"guess-{n}", connections)[0] for n in range(10)]
    assert statuses == [401] * 10
    assert _sign_in_from("127.0.0.66", login, password, connections)[0] == 429

    # Then floods the throttle: 11,000 failures for made-up logins from 370 other addresses
    # (more counters than the throttle keeps), and Piet signing in from yet another address.
    started = time.monotonic()
    for n in range(370):
        address = f"127.0.{10 + n // 200}.{1 + n % 200}"
        for attempt in range(30):
            _sign_in_from(address, f"made-up-{n}-{attempt}", "x", connections)
        connections.pop(address).close()
    flood_seconds = time.monotonic() - started
    log = (console.workdir / "helpdesk.log").read_text(errors="replace")
    assert "sign-in throttle full" in log  # the flood did reach the throttle's bound
    status, _retry, cookie = _sign_in_from("127.0.0.5", PIET[0], PIET[1], connections)
    assert status == 303 and cookie

    # Grace's login is still throttled, from any address, even with the right password.
    for address in ("127.0.0.66", "127.0.0.77", "127.0.3.3"):
        status, retry_after, cookie = _sign_in_from(address, login, password, connections)
        assert status == 429, (address, flood_seconds)
        assert 1 <= int(retry_after) <= 900 and cookie is None
    for connection in connections.values():
        if isinstance(connection, http.client.HTTPConnection):
            connection.close()
    assert_untouched(console, assistant, ticket_id)


def test_a_short_password_in_production_stops_the_helpdesk_from_starting(tmp_path, assistant):
    short = Console(
        tmp_path,
        assistant.url,
        HANDOFF_ENV="production",
        HELPDESK_AGENTS=f"{SANNE[0]}:{SANNE[1]},piet:tulips-2024",
    )
    result = subprocess.run(
        [str(BIN / "python"), "-m", "helpdesk"],
        cwd=PROJECT_ROOT,
        env=short.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "the password of piet is shorter than 12 characters" in result.stderr
    assert "tulips-2024" not in result.stderr + result.stdout
    assert not short.database.exists()  # it stopped before opening anything
    with pytest.raises(requests.ConnectionError):
        requests.get(short.url + "/health", timeout=2)
    assert assistant.received == []


def test_outside_development_the_session_cookie_is_secure(tmp_path, assistant):
    production = Console(tmp_path, assistant.url.rsplit("/webhook", 1)[0], HANDOFF_ENV="production")
    production.start()
    try:
        ticket_id = production.request_handoff()
        answer = requests.post(
            production.url + "/login",
            data={"login": SANNE[0], "password": SANNE[1]},
            headers={"Origin": production.url},
            allow_redirects=False,
            timeout=10,
        )
        assert answer.status_code == 303
        header = answer.headers["Set-Cookie"]
        cookie = SimpleCookie(header)[COOKIE]
        assert cookie["secure"] is True and cookie["httponly"] is True
        assert cookie["samesite"] == "Lax" and cookie["path"] == "/"
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", cookie.value)
        assert SANNE[1] not in header
        # A browser keeps it for HTTPS only; behind the TLS proxy it works as usual.
        assert requests.get(
            production.url + "/partials/inbox", headers=with_cookie(cookie.value), timeout=10
        ).ok
        assert assistant.received == []
        assert ticket_id in production.queue()["html"]["queue"]
    finally:
        production.stop()
