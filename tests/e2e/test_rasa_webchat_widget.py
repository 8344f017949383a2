"""The community rasa-webchat widget (npm ``rasa-webchat@1.0.1``, its standalone UMD bundle
``lib/index.js``) against the project's default Rasa server: the customer asks for a person in the
widget and sees the handoff notice, the agent's "joined" notice, the agent's reply and the hand-back,
in that order. The agent's side is the helpdesk channel's signed events (as test_browser_paths.py).

The widget is fetched at test time with ``npm pack`` into results/cache/ (gitignored), checked
against the registry's pinned sha512 and served by a small loopback page whose origin is the only one
in ``RASA_CORS_ORIGINS``. Screenshots go to results/browser/rasa-webchat-*.png.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from handoff.settings import PROJECT_ROOT
from tests.stack import Stack
from tests.support import helpdesk_event

pytestmark = pytest.mark.e2e

PACKAGE = "rasa-webchat@1.0.1"
#: `npm view rasa-webchat@1.0.1 dist.integrity`
INTEGRITY = "sha512-Ld1zVJvTAaTrs6A5p8t70agNNrKYRyXlvqXZRgBoDvKKUXbA0jhJKECi5bdPGlaR6jsmqWtVylHS+YqIqo0x8w=="
TARBALL = "rasa-webchat-1.0.1.tgz"
CACHE = PROJECT_ROOT / "results" / "cache" / "rasa-webchat-1.0.1"
SHOTS = PROJECT_ROOT / "results" / "browser"
TIMEOUT_MS = 30_000

HANDOFF_TEXT = "putting you through to a colleague from customer service"
JOINED_TEXT = "Sanne from customer service has joined the conversation."
AGENT_REPLY = "Hi, I'm Sanne from the webchat widget test. Let me look at your order."
BACK_TEXT = "back with the virtual assistant"

PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>rasa-webchat 1.0.1</title></head>
<body>
<script src="/rasa-webchat.js"></script>
<script>
  window.WebChat.default({
    socketUrl: %(socket_url)s,
    socketPath: "/socket.io/",
    customData: {language: "en"},
    initPayload: "/greet",
    title: "Northwind Shop",
    subtitle: "rasa-webchat 1.0.1",
    inputTextFieldHint: "Type a message...",
    params: {storage: "local"}
  }, null);
</script>
</body>
</html>
"""


def _integrity_ok(path) -> bool:
    algorithm, expected = INTEGRITY.split("-", 1)
    digest = hashlib.new(algorithm, path.read_bytes()).digest()
    return base64.b64encode(digest).decode() == expected


def widget_bundle() -> bytes:
    """lib/index.js of rasa-webchat 1.0.1, from the npm registry (cached in results/cache/)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    tarball = CACHE / TARBALL
    if not (tarball.exists() and _integrity_ok(tarball)):
        tarball.unlink(missing_ok=True)
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail(f"npm is not installed: it is needed to fetch {PACKAGE} from the npm registry")
        try:
            done = subprocess.run(
                [npm, "pack", PACKAGE, "--pack-destination", str(CACHE), "--loglevel=error"],
                capture_output=True, text=True, timeout=180, cwd=CACHE,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"`npm pack {PACKAGE}` did not finish in 180 s: is the npm registry reachable?")
        if done.returncode != 0 or not tarball.exists():
            pytest.fail(
                f"`npm pack {PACKAGE}` failed (exit {done.returncode}); the npm registry must be reachable:\n"
                f"{done.stderr.strip()[-2000:]}"
            )
        if not _integrity_ok(tarball):
            tarball.unlink()
            pytest.fail(f"{TARBALL} from the npm registry does not match the pinned integrity {INTEGRITY}")
    with tarfile.open(tarball, "r:gz") as archive:
        member = archive.extractfile("package/lib/index.js")
        assert member is not None, f"{TARBALL} has no package/lib/index.js"
        bundle = member.read()
    (CACHE / "index.js").write_bytes(bundle)
    return bundle


@pytest.fixture(scope="module")
def widget_page():
    """A loopback page that loads the widget; its origin is known before the stack starts, and the
    page's socketUrl is filled in once the stack has its port (``widget_page["socket_url"]``)."""
    files: dict[str, tuple[str, bytes]] = {"/rasa-webchat.js": ("application/javascript", widget_bundle())}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path.split("?", 1)[0] == "/":
                body = (PAGE % {"socket_url": json.dumps(state["socket_url"])}).encode()
                kind = "text/html; charset=utf-8"
            elif self.path in files:
                kind, body = files[self.path]
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state = {"origin": f"http://127.0.0.1:{server.server_address[1]}", "socket_url": ""}
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, helpdesk, widget_page):
    running = Stack(
        tmp_path_factory.mktemp("rasa_webchat_widget"),
        webhook_url=helpdesk.url,
        RASA_CORS_ORIGINS=widget_page["origin"],
    ).start()
    widget_page["socket_url"] = running.rasa_url
    yield running
    running.stop()


def shoot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"rasa-webchat-{name}.png"))


def bot_texts(page) -> list[str]:
    return [" ".join(text.split()) for text in page.locator(".rw-messages-container .rw-response").all_inner_texts()]


def test_the_widget_shows_the_whole_handoff(stack, helpdesk, widget_page, browser):
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    context = browser.new_context(viewport={"width": 480, "height": 860}, locale="en-GB")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(widget_page["origin"] + "/")
        page.locator(".rw-launcher").click()
        responses = page.locator(".rw-messages-container .rw-response")
        # initPayload "/greet": the widget hides it and shows the greeting.
        expect(responses.first).to_be_visible()
        stored = page.evaluate("JSON.parse(localStorage.getItem('chat_session') || 'null')")
        assert stored and stored.get("session_id"), f"the widget stored no session: {stored!r}"
        conversation = stored["session_id"]
        shoot(page, "open")

        page.fill(".rw-new-message", "I want to talk to a person")
        page.press(".rw-new-message", "Enter")
        expect(page.locator(".rw-messages-container .rw-client").last).to_have_text("I want to talk to a person")
        expect(responses.filter(has_text=HANDOFF_TEXT)).to_have_count(1)
        [requested] = helpdesk.wait_for("handoff.requested", conversation)
        handoff_id = requested["handoff_id"]
        assert requested["channel"]["name"] == "socketio"
        shoot(page, "handoff")

        assert stack.helpdesk_event(helpdesk_event("agent.joined", handoff_id, conversation)).status_code == 200
        expect(responses.filter(has_text=JOINED_TEXT)).to_have_count(1)
        shoot(page, "agent-joins")

        message = helpdesk_event("agent.message", handoff_id, conversation, text=AGENT_REPLY)
        assert stack.helpdesk_event(message).status_code == 200
        expect(responses.filter(has_text=AGENT_REPLY)).to_have_count(1)
        shoot(page, "agent-message")

        back = helpdesk_event("agent.handback", handoff_id, conversation, note="Done.")
        assert stack.helpdesk_event(back).status_code == 200
        expect(responses.filter(has_text=BACK_TEXT)).to_have_count(1)
        shoot(page, "hand-back")

        texts = bot_texts(page)
        positions = []
        for expected in (HANDOFF_TEXT, JOINED_TEXT, AGENT_REPLY, BACK_TEXT):
            found = [i for i, text in enumerate(texts) if expected in text]
            assert len(found) == 1, f"{expected!r} shown {len(found)} times in {texts}"
            positions.append(found[0])
        assert positions == sorted(positions), f"out of order: {positions} in {texts}"
        # The widget kept one session throughout (no reconnect to a new conversation).
        assert page.evaluate("JSON.parse(localStorage.getItem('chat_session')).session_id") == conversation
        assert not errors, f"errors on the page: {errors}"
    finally:
        context.close()
