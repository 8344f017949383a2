"""Each path of a handoff as the customer sees it in the web chat, in headless Chromium against
the real Rasa server, action server and web chat; the helpdesk is a signed webhook receiver, and
the agent's side is its signed events. Each path checks who the page says is speaking (from the
messages' metadata) and the window's language, and saves results/browser/<path>.png.
"""

from __future__ import annotations

import re
import time
import uuid

import pytest

from handoff.settings import PROJECT_ROOT
from tests.stack import Stack
from tests.support import helpdesk_event

pytestmark = pytest.mark.e2e

SHOTS = PROJECT_ROOT / "results" / "browser"
TIMEOUT_MS = 30_000
NO_AGENT_TIMEOUT = 25
WAIT_UPDATE_AFTER = 5
ASSISTANT = {"en": "Northwind Shop assistant", "nl": "Northwind Shop-assistent"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory, helpdesk):
    running = Stack(
        tmp_path_factory.mktemp("browser_paths"),
        webhook_url=helpdesk.url,
        with_webchat=True,
        HANDOFF_NO_AGENT_TIMEOUT=str(NO_AGENT_TIMEOUT),
        HANDOFF_WAIT_UPDATE_AFTER=str(WAIT_UPDATE_AFTER),
        HANDOFF_FOLLOW_UP_WAIT="60",
        HANDOFF_TASK_POLL_INTERVAL="0.3",
    ).start()
    yield running
    running.stop()


@pytest.fixture
def chat(stack, browser, request):
    """A customer's chat window; ``request.param`` is the browser's locale."""
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    locale = getattr(request, "param", "en-GB")
    context = browser.new_context(viewport={"width": 480, "height": 860}, locale=locale)
    page = context.new_page()
    page.goto(stack.webchat_url + "/")
    expect(page.locator("body")).to_have_attribute("data-session", re.compile(r"^[0-9a-f]{32}$"))
    yield page
    context.close()


def shoot(page, path: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{path}.png"))


def say(page, text: str) -> None:
    page.fill("#message", text)
    page.press("#message", "Enter")


def session(page) -> str:
    return page.locator("body").get_attribute("data-session")


def in_language(page, language: str) -> None:
    """The window's own words are in ``language``."""
    from playwright.sync_api import expect

    expect(page.locator("html")).to_have_attribute("lang", language)
    placeholder = {"en": "Type your message…", "nl": "Typ je bericht…"}[language]
    expect(page.locator("#message")).to_have_attribute("placeholder", placeholder)


def last_bot_is_the_assistant(page, language: str) -> None:
    from playwright.sync_api import expect

    last = page.locator(".msg:not(.from-customer)").last
    expect(last).to_have_class(re.compile(r"\bfrom-bot\b"))
    expect(last.locator(".who-name")).to_have_text(ASSISTANT[language])
    expect(last.locator(".who-role")).to_have_text({"en": "Virtual assistant", "nl": "Virtuele assistent"}[language])


def ask_for_a_person(page, helpdesk, language: str) -> str:
    """Click the button; the handoff notice shows and the helpdesk gets the request."""
    from playwright.sync_api import expect

    button = page.locator("#ask-person")
    expect(button).to_have_text({"en": "Talk to a person", "nl": "Medewerker spreken"}[language])
    button.click()
    expect(page.locator(".from-customer .bubble").last).to_have_text(
        {"en": "I want to talk to a person", "nl": "Ik wil een medewerker spreken"}[language]
    )
    expect(page.locator(".notice-handoff")).to_have_count(1)
    expect(page.locator("body")).to_have_attribute("data-handoff", "waiting")
    expect(button).to_be_hidden()
    [requested] = helpdesk.wait_for("handoff.requested", session(page))
    return requested["handoff_id"]


def handoff_to_hand_back(stack, helpdesk, page, language: str) -> None:
    from playwright.sync_api import expect

    suffix = "" if language == "en" else "-nl"
    in_language(page, language)
    say(page, "hello" if language == "en" else "hallo, goedemiddag")
    expect(page.locator(".from-bot")).to_have_count(1)
    last_bot_is_the_assistant(page, language)
    handoff_id = ask_for_a_person(page, helpdesk, language)
    expect(page.locator("#head-title")).to_have_text(
        {"en": "Connecting you to a colleague", "nl": "We verbinden je met een medewerker"}[language]
    )
    in_language(page, language)
    shoot(page, "handoff" + suffix)
    conversation = session(page)

    assert stack.helpdesk_event(helpdesk_event("agent.joined", handoff_id, conversation)).status_code == 200
    expect(page.locator(".notice-joined")).to_contain_text("Sanne")
    expect(page.locator("#head-title")).to_have_text("Sanne")
    expect(page.locator("#head-status")).to_have_text(
        {"en": "Customer service · Northwind Shop", "nl": "Klantenservice · Northwind Shop"}[language]
    )
    expect(page.locator("body")).to_have_attribute("data-handoff", "agent")
    shoot(page, "agent-joins" + suffix)

    reply = {"en": "Hi, I'm Sanne. Let me look at your order.", "nl": "Hoi, ik ben Sanne. Ik kijk even naar je bestelling."}[language]
    assert stack.helpdesk_event(helpdesk_event("agent.message", handoff_id, conversation, text=reply)).status_code == 200
    agent = page.locator(".from-agent")
    expect(agent).to_have_count(1)
    expect(agent.locator(".bubble")).to_have_text(reply)
    expect(agent.locator(".who-name")).to_have_text("Sanne")
    expect(agent.locator(".who-role")).to_have_text({"en": "Customer service", "nl": "Klantenservice"}[language])
    shoot(page, "agent-message" + suffix)

    # A reload mid-handoff keeps who the customer is talking to, and the language.
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-session", conversation)
    expect(page.locator("#head-title")).to_have_text("Sanne")
    expect(page.locator("body")).to_have_attribute("data-handoff", "agent")
    expect(page.locator("#ask-person")).to_be_hidden()
    in_language(page, language)
    shoot(page, "reload" + suffix)

    back = stack.helpdesk_event(helpdesk_event("agent.handback", handoff_id, conversation, note="Done."))
    assert back.status_code == 200
    expect(page.locator(".notice-back")).to_have_text(
        {"en": "Sanne handed the conversation back to the assistant.",
         "nl": "Sanne heeft het gesprek teruggegeven aan de assistent."}[language]
    )
    last_bot_is_the_assistant(page, language)
    expect(page.locator("#head-title")).to_have_text(ASSISTANT[language])
    expect(page.locator("body")).to_have_attribute("data-handoff", "none")
    expect(page.locator("#ask-person")).to_be_visible()
    in_language(page, language)
    shoot(page, "hand-back" + suffix)


def test_handoff_agent_joins_writes_and_hands_back(stack, helpdesk, chat):
    handoff_to_hand_back(stack, helpdesk, chat, "en")


@pytest.mark.parametrize("chat", ["nl-NL"], indirect=True)
def test_the_same_in_dutch(stack, helpdesk, chat):
    handoff_to_hand_back(stack, helpdesk, chat, "nl")


def test_an_english_browser_follows_a_dutch_conversation(stack, helpdesk, chat):
    from playwright.sync_api import expect

    in_language(chat, "en")
    say(chat, "Hoe lang duurt de levering van mijn bestelling?")
    expect(chat.locator(".from-bot")).to_have_count(1)
    in_language(chat, "nl")
    expect(chat.locator("#ask-person")).to_have_text("Medewerker spreken")
    last_bot_is_the_assistant(chat, "nl")
    shoot(chat, "language-switch")


def test_wait_update_then_no_agent_in_time_and_the_follow_up(stack, helpdesk, chat):
    from playwright.sync_api import expect

    say(chat, "hello")
    expect(chat.locator(".from-bot")).to_have_count(1)
    ask_for_a_person(chat, helpdesk, "en")
    # The queue update is a notice while waiting, not somebody speaking.
    expect(chat.locator(".notice-wait").filter(has_text="still in the queue")).to_have_count(1, timeout=60_000)
    expect(chat.locator("body")).to_have_attribute("data-handoff", "waiting")
    expect(chat.locator(".from-agent")).to_have_count(0)
    shoot(chat, "wait-update")

    # Nobody joins: the assistant says so itself, and asks how to follow up.
    expect(chat.locator(".from-bot .bubble").filter(has_text="no colleague is free")).to_have_count(1, timeout=90_000)
    expect(chat.locator(".from-agent")).to_have_count(0)
    expect(chat.locator("body")).to_have_attribute("data-handoff", "none")
    expect(chat.locator("#head-title")).to_have_text(ASSISTANT["en"])
    expect(chat.locator(".from-bot .bubble").last).to_contain_text("email")
    last_bot_is_the_assistant(chat, "en")
    shoot(chat, "no-agent")

    say(chat, "anna@example.com")
    expect(chat.locator(".from-bot .bubble").last).to_contain_text("anna@example.com")
    last_bot_is_the_assistant(chat, "en")
    expect(chat.locator(".from-agent")).to_have_count(0)
    shoot(chat, "follow-up")


@pytest.mark.parametrize("chat", ["nl-NL"], indirect=True)
def test_a_customer_who_gives_up_gets_the_assistant_back(stack, helpdesk, chat):
    from playwright.sync_api import expect

    say(chat, "hallo, goedemiddag")
    expect(chat.locator(".from-bot")).to_have_count(1)
    ask_for_a_person(chat, helpdesk, "nl")
    say(chat, "laat maar")
    expect(chat.locator(".from-bot .bubble").last).to_contain_text("ingetrokken")
    last_bot_is_the_assistant(chat, "nl")
    expect(chat.locator(".from-agent")).to_have_count(0)
    expect(chat.locator("body")).to_have_attribute("data-handoff", "none")
    expect(chat.locator("#ask-person")).to_be_visible()
    in_language(chat, "nl")
    shoot(chat, "give-up")


def test_a_technical_failure_is_told_by_the_assistant_and_hands_off(stack, helpdesk, chat):
    from playwright.sync_api import expect

    say(chat, "hello")
    expect(chat.locator(".from-bot")).to_have_count(1)
    stack.kill("actions")
    try:
        say(chat, "I want to talk to a person")
        notice = chat.locator(".notice-handoff")
        expect(notice).to_contain_text("something went wrong on my side")
        expect(chat.locator(".from-agent")).to_have_count(0)
        expect(chat.locator("body")).to_have_attribute("data-handoff", "waiting")
        expect(chat.locator("#head-title")).to_have_text("Connecting you to a colleague")
        helpdesk.wait_for("handoff.requested", session(chat))
        shoot(chat, "technical-failure")
    finally:
        stack.restart("actions")


@pytest.mark.parametrize("chat", ["nl-NL"], indirect=True)
def test_start_over_clears_the_chat(stack, helpdesk, chat):
    from playwright.sync_api import expect

    first = session(chat)
    say(chat, "hallo, goedemiddag")
    expect(chat.locator(".from-bot")).to_have_count(1)
    chat.locator("#start-over").click()
    expect(chat.locator("body")).to_have_attribute("data-session", re.compile(r"^[0-9a-f]{32}$"))
    expect(chat.locator("body")).not_to_have_attribute("data-session", first)
    expect(chat.locator(".msg")).to_have_count(0)
    expect(chat.locator("#intro")).to_contain_text("Waarmee kunnen we je helpen?")
    in_language(chat, "nl")
    keys = chat.evaluate("Object.keys(localStorage).filter(k => k.startsWith('northwind.webchat.')).sort()")
    assert "northwind.webchat.items" not in keys
    shoot(chat, "restart")
    assert uuid.UUID(hex=session(chat))


def test_a_message_never_acknowledged_is_sent_again_after_a_reload_and_handled_once(stack, helpdesk, chat):
    """The page closed before the server acknowledged a message: the reloaded chat resumes the
    session and sends it again with its id; sent a second time after that, the server answers it
    from its store and the conversation still holds it once."""
    from playwright.sync_api import expect

    conversation = session(chat)
    text = "what are your opening hours?"
    pending = [{"message_id": f"resend-{uuid.uuid4().hex}", "text": text}]
    chat.evaluate("p => localStorage.setItem('northwind.webchat.pending', JSON.stringify(p))", pending)
    chat.reload()
    expect(chat.locator("body")).to_have_attribute("data-session", conversation)
    expect(chat.locator(".from-bot .bubble").last).to_contain_text("Customer service is available Monday to Friday")
    assert chat.evaluate("JSON.parse(localStorage.getItem('northwind.webchat.pending') || '[]')") == []

    # The same message again, as after a second reconnect: not handled twice.
    chat.evaluate("p => localStorage.setItem('northwind.webchat.pending', JSON.stringify(p))", pending)
    chat.reload()
    expect(chat.locator("body")).to_have_attribute("data-session", conversation)
    deadline = time.time() + 20
    while chat.evaluate("JSON.parse(localStorage.getItem('northwind.webchat.pending') || '[]')") and time.time() < deadline:
        time.sleep(0.2)
    assert chat.evaluate("JSON.parse(localStorage.getItem('northwind.webchat.pending') || '[]')") == []
    # It reached the server again, which answered it from its store (handoff/server/idempotency.py).
    handled_before = f"customer message {pending[0]['message_id']} of {conversation} was handled before"
    deadline = time.time() + 10
    while handled_before not in stack.log("rasa") and time.time() < deadline:
        time.sleep(0.2)
    assert handled_before in stack.log("rasa"), "the reloaded chat did not send the unacknowledged message again"
    user_texts = [e.get("text") for e in stack.tracker(conversation)["events"] if e["event"] == "user"]
    assert user_texts == [text]
    last_bot_is_the_assistant(chat, "en")
    shoot(chat, "resent-after-reload")
