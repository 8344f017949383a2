"""The customer web chat's server: its settings, its page, the vendored socket.io client, and the
handoff notices the page learns from the domain."""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import time
from html.parser import HTMLParser

import pytest
import requests
import yaml
from aiohttp.test_utils import TestClient, TestServer

from handoff.settings import PROJECT_ROOT, SettingsError
from webchat.app import STATIC_DIR, create_app
from webchat.config import load_config
from webchat.notices import load_notices, text_pattern
from webchat.page import SOCKET_IO_CLIENT

#: sha256 of dist/socket.io.min.js in the npm package socket.io-client 4.8.4.
SOCKET_IO_SHA256 = "d5d79a35039e860b32bdef4795528b05c2f788d4b2d9dacc913120e2878f7b3f"


class Scripts(HTMLParser):
    """The page's script elements: (attributes, text)."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self._open: dict[str, str | None] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "script":
            self._open = dict(attrs)
            self.scripts.append((self._open, ""))

    def handle_data(self, data):
        if self._open is not None:
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)

    def handle_endtag(self, tag):
        if tag == "script":
            self._open = None


def page_scripts(html: str) -> list[tuple[dict[str, str | None], str]]:
    parser = Scripts()
    parser.feed(html)
    return parser.scripts


def classify(notices: list[dict], text: str) -> tuple[str, str | None] | None:
    """What the page does with a message (the patterns are plain enough for Python's re)."""
    for notice in notices:
        match = re.search(notice["pattern"], text)
        if match:
            group = notice["agent_group"]
            return notice["kind"], match.group(group) if group else None
    return None


# --- settings -------------------------------------------------------------------------------------


def test_defaults_are_local():
    config = load_config({})
    assert (config.host, config.port) == ("127.0.0.1", 5090)
    assert config.socket_url == "http://127.0.0.1:5005"
    assert config.socket_path == "/socket.io"
    assert config.socket_origins == ["http://127.0.0.1:5005", "ws://127.0.0.1:5005"]


def test_the_rasa_url_follows_the_environment():
    assert load_config({"RASA_PORT": "6005"}).socket_url == "http://127.0.0.1:6005"
    assert load_config({"RASA_URL": "http://rasa:5005/"}).socket_url == "http://rasa:5005"
    public = load_config({"RASA_URL": "http://rasa:5005", "WEBCHAT_SOCKET_URL": "https://chat.example"})
    assert public.socket_url == "https://chat.example"
    assert public.socket_origins == ["https://chat.example", "wss://chat.example"]
    assert load_config({"WEBCHAT_PORT": "7000", "WEBCHAT_HOST": "0.0.0.0"}).port == 7000


@pytest.mark.parametrize(
    "environ",
    [{"WEBCHAT_PORT": "web"}, {"WEBCHAT_PORT": "70000"}, {"RASA_URL": "rasa:5005"}, {"WEBCHAT_SOCKET_PATH": "socket.io"}],
)
def test_bad_settings_are_refused(environ):
    with pytest.raises(SettingsError):
        load_config(environ)


# --- handoff notices ------------------------------------------------------------------------------


def test_the_domains_notices_are_recognised_in_both_languages():
    notices = load_notices()
    assert {n["kind"] for n in notices} == {"handoff", "wait", "joined", "back"}
    domain = yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text())["responses"]
    started_en = domain["utter_handoff_started"][-1]["text"]
    started_nl = domain["utter_handoff_started"][0]["text"]
    assert classify(notices, started_en) == ("handoff", None)
    assert classify(notices, started_nl) == ("handoff", None)
    assert classify(notices, "The expected waiting time is about 12 min. Please stay in this chat.") == ("wait", None)
    assert classify(notices, "Sanne from customer service has joined the conversation.") == ("joined", "Sanne")
    assert classify(notices, "Piet de Vries van de klantenservice is bij het gesprek gekomen.") == (
        "joined",
        "Piet de Vries",
    )
    back = domain["utter_handoff_back"][-1]["text"]
    assert classify(notices, back) == ("back", None)
    assert "anything else" in back
    # What an agent or the bot says otherwise is no notice.
    for text in ("Hi Joost, I'll correct the address on your invoice.", domain["utter_anything_else"][-1]["text"]):
        assert classify(notices, text) is None


def test_patterns_match_the_text_literally():
    pattern = text_pattern("Price (incl. VAT) is $5? [yes]|no\\ {agent_name} / {other}.")
    assert pattern["agent_group"] == 1
    assert re.search(pattern["pattern"], "Price (incl. VAT) is $5? [yes]|no\\ Ann Lee / x.")
    assert not re.search(pattern["pattern"], "Price (incl, VAT) is $5? [yes]|no\\ Ann / x.")
    assert re.search(pattern["pattern"], "  Price  (incl. VAT) is $5? [yes]|no\\ A / b.  ")


def test_notices_come_from_the_domain_and_the_handoff_rules(tmp_path):
    (tmp_path / "domain").mkdir()
    (tmp_path / "domain" / "handoff.yml").write_text(
        yaml.safe_dump(
            {
                "responses": {
                    "utter_handoff_started": [{"text": "One moment, please."}],
                    "utter_handoff_agent_joined": [{"text": "Hello from {agent_name}!"}],
                    "utter_handoff_back": [{"text": "Bot again."}],
                    "utter_urgent_handoff": [{"text": "Right away!"}],
                }
            }
        )
    )
    (tmp_path / "handoff_rules.yml").write_text(
        yaml.safe_dump({"triggers": {"urgent": {"reason": "urgent", "response": "utter_urgent_handoff"}}})
    )
    notices = load_notices(tmp_path)
    assert classify(notices, "One moment, please.") == ("handoff", None)
    assert classify(notices, "Right away!") == ("handoff", None)
    assert classify(notices, "Hello from Sanne!") == ("joined", "Sanne")
    assert classify(notices, "Bot again.") == ("back", None)
    # Without a domain only the helpdesk channel's own fallback is known.
    assert [n["kind"] for n in load_notices(tmp_path / "missing")] == ["joined"]


# --- the page -------------------------------------------------------------------------------------


@pytest.fixture
async def webchat():
    config = load_config({"RASA_URL": "http://127.0.0.1:5005", "WEBCHAT_TITLE": "Northwind Shop"})
    async with TestClient(TestServer(create_app(config))) as client:
        yield client


async def test_the_page_knows_where_rasa_is_and_runs_no_inline_script(webchat):
    response = await webchat.get("/")
    assert response.status == 200
    html = await response.text()
    scripts = page_scripts(html)
    sources = [attrs.get("src") for attrs, _text in scripts if attrs.get("src")]
    assert sources == [f"/static/{SOCKET_IO_CLIENT}", "/static/chat.js"]
    [(_attrs, data)] = [(a, t) for a, t in scripts if a.get("type") == "application/json"]
    config = json.loads(data)
    assert config["socketUrl"] == "http://127.0.0.1:5005"
    assert config["socketPath"] == "/socket.io"
    assert any(n["kind"] == "joined" for n in config["notices"])
    assert all(a.get("src") or a.get("type") == "application/json" for a, _t in scripts)

    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "connect-src 'self' http://127.0.0.1:5005 ws://127.0.0.1:5005" in policy


async def test_the_page_escapes_its_configuration():
    config = load_config({"WEBCHAT_TITLE": "</script><script>alert(1)</script>"})
    async with TestClient(TestServer(create_app(config, notices=[]))) as client:
        html = await (await client.get("/")).text()
    assert "<script>alert(1)" not in html
    [data] = [t for a, t in page_scripts(html) if a.get("type") == "application/json"]
    assert json.loads(data)["title"] == "</script><script>alert(1)</script>"


async def test_static_files_and_health(webchat):
    for name, needle in (
        (SOCKET_IO_CLIENT, "Socket.IO v4.8.4"),
        ("chat.js", "session_request"),
        ("chat.css", ".from-agent"),
    ):
        response = await webchat.get(f"/static/{name}")
        assert response.status == 200, name
        assert needle in await response.text(), name
    health = await (await webchat.get("/health")).json()
    assert health == {"status": "ok", "service": "webchat", "rasa": "http://127.0.0.1:5005/socket.io"}


def test_the_socket_io_client_is_the_pinned_npm_file_with_its_licence():
    client = STATIC_DIR / SOCKET_IO_CLIENT
    assert hashlib.sha256(client.read_bytes()).hexdigest() == SOCKET_IO_SHA256
    licence = (STATIC_DIR / "socket.io-4.8.4.LICENSE").read_text()
    assert "The MIT License" in licence and "Guillermo Rauch" in licence
    # Rasa 3.6's server speaks Socket.IO protocol 5 (python-socketio 5.8): client 4.x.
    assert SOCKET_IO_CLIENT.startswith("socket.io-4.")


def test_the_chat_talks_the_socketio_channel_protocol():
    script = (STATIC_DIR / "chat.js").read_text()
    for needle in (
        '"session_request"',
        '"session_confirm"',
        '"user_uttered"',
        '"bot_uttered"',
        "session_id: sessionId",
        "metadata: metadata()",
        "page: window.location.pathname",
        "browser: navigator.userAgent",
        "language: navigator.language",
        "localStorage",
        # The session is resumed only with the token the server issued for it.
        '"session_token"',
        "request.session_token = token.session_token",
        'save("token", token)',
        # A signed customer identity from the embedding site goes with each message.
        '"data-customer-identity"',
        "window.handoffChat && window.handoffChat.identity",
        "data.customer_identity = identity",
        # Start over forgets what the chat stored, in both storages.
        "function startOver(",
        "window.sessionStorage",
        "removeItem(key)",
    ):
        assert needle in script, needle
    assert "innerHTML" not in script  # messages are shown as text, never as markup


def test_python_m_webchat_serves_on_loopback(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "WEBCHAT_PORT": str(port), "RASA_PORT": "5999"}
    env.pop("WEBCHAT_HOST", None)
    env.pop("RASA_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "webchat"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = requests.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except requests.ConnectionError:
                assert process.poll() is None, process.stdout.read().decode()
                assert time.monotonic() < deadline, "web chat not up in 30 s"
                time.sleep(0.2)
        assert answer.json()["rasa"] == "http://127.0.0.1:5999/socket.io"
        listening = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True)
        if listening.returncode == 0 and listening.stdout.strip():
            assert [line.split()[3] for line in listening.stdout.splitlines()] == [f"127.0.0.1:{port}"]
    finally:
        process.terminate()
        process.wait(timeout=10)
