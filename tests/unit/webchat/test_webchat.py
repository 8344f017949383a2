"""The customer web chat's server: its settings, its page in both languages, and the vendored
socket.io client; the script renders who speaks from the messages' metadata, not their text."""

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
from aiohttp.test_utils import TestClient, TestServer

from handoff.settings import PROJECT_ROOT, SettingsError
from webchat.app import STATIC_DIR, create_app
from webchat.config import load_config
from webchat.page import SOCKET_IO_CLIENT
from webchat.texts import TEXTS, page_language

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


# --- the page's words ------------------------------------------------------------------------------


def test_the_page_has_every_word_in_both_languages():
    assert set(TEXTS) == {"en", "nl"}
    assert set(TEXTS["en"]) == set(TEXTS["nl"])
    assert TEXTS["en"]["placeholder"] == "Type your message…" and TEXTS["nl"]["placeholder"] == "Typ je bericht…"
    assert TEXTS["nl"]["talkToPerson"] == "Medewerker spreken"
    for language in ("en", "nl"):
        for key, text in TEXTS[language].items():
            assert text.strip(), (language, key)
            assert set(re.findall(r"\{(\w+)\}", text)) <= {"title", "name"}, (language, key)


def test_the_language_asked_for():
    assert page_language("nl") == "nl" and page_language("nl-BE") == "nl" and page_language("EN") == "en"
    assert page_language("de") is None and page_language(None) is None and page_language("") is None


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
    assert config["texts"]["nl"]["talkToPersonMessage"] == "Ik wil een medewerker spreken"
    assert "notices" not in config  # nothing is recognised by its text any more
    assert '<html lang="en">' in html and 'placeholder="Type your message…"' in html
    assert all(a.get("src") or a.get("type") == "application/json" for a, _t in scripts)

    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "connect-src 'self' http://127.0.0.1:5005 ws://127.0.0.1:5005" in policy


async def test_the_page_escapes_its_configuration():
    config = load_config({"WEBCHAT_TITLE": "</script><script>alert(1)</script>"})
    async with TestClient(TestServer(create_app(config))) as client:
        html = await (await client.get("/")).text()
    assert "<script>alert(1)" not in html
    [data] = [t for a, t in page_scripts(html) if a.get("type") == "application/json"]
    assert json.loads(data)["title"] == "</script><script>alert(1)</script>"


async def test_the_page_in_the_language_asked_for(webchat):
    html = await (await webchat.get("/?lang=nl")).text()
    assert '<html lang="nl" data-lang="nl">' in html
    assert 'placeholder="Typ je bericht…"' in html and "Medewerker spreken" in html
    assert "Northwind Shop · Chat met de klantenservice" in html
    other = await (await webchat.get("/?lang=xx")).text()
    assert '<html lang="en">' in other and "data-lang" not in other


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
        # Every message has an id; unacknowledged ones are sent again, with it, after a reconnect.
        "message_id: id",
        'save("pending", pending)',
        "function () { acknowledged(id); }",
        "emit(message.text, message.message_id)",
        # Start over forgets what the chat stored, in both storages.
        "function startOver(",
        "window.sessionStorage",
        "removeItem(key)",
        # Who speaks and the handoff state come from the metadata; the language from the page,
        # the browser, then the conversation.
        "meta.speaker === \"agent\"",
        "meta.agent_name",
        "meta.handoff",
        "meta.language",
        '"handoff_state"',
        "navigator.languages",
        'getAttribute("data-lang")',
        'get("lang")',
    ):
        assert needle in script, needle
    assert "innerHTML" not in script  # messages are shown as text, never as markup
    assert "RegExp(" not in script and "notices" not in script  # no guessing from the text


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
