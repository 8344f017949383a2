"""A customer in the web chat and agents in the console, in headless Chromium, against the real
stack: Rasa server, action server, embedded helpdesk and web chat on loopback.

Chromium is Debian's (`make browsers` installs it); Playwright drives it, never downloading a
browser of its own (the ``browser`` fixture is in tests/e2e/conftest.py). Screenshots of both screens go to results/screenshots/, and the current ones
to docs/screenshots/.
"""

from __future__ import annotations

import re
import shutil
import time
import uuid
from pathlib import Path

import pytest
import requests

from handoff.settings import PROJECT_ROOT
from tests.stack import Stack

pytestmark = pytest.mark.e2e

SCREENSHOTS = PROJECT_ROOT / "results" / "screenshots"
DOCS_SCREENSHOTS = PROJECT_ROOT / "docs" / "screenshots"
# Agents of tests.stack.HELPDESK_AGENTS.
SANNE = ("sanne", "sanne-e2e-password")
PIET = ("piet", "piet-e2e-password")
TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    running = Stack(tmp_path_factory.mktemp("browser"), with_helpdesk=True, with_webchat=True).start()
    yield running
    running.stop()


def shoot(page, name: str, *, publish: str | None = None) -> Path:
    """Screenshot ``page`` into results/screenshots/ (and docs/screenshots/<publish> too)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    if publish:
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_SCREENSHOTS / publish)
    return path


def sign_in(page, helpdesk_url: str, login: tuple[str, str]) -> None:
    from playwright.sync_api import expect

    page.goto(helpdesk_url + "/")
    expect(page).to_have_url(re.compile(r"/login$"))
    page.fill("input[name=login]", login[0])
    page.fill("input[name=password]", login[1])
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_contain_text("Inbox")
    # The live stream is connected: new tickets appear without a reload.
    expect(page.locator("#live-status")).to_have_class(re.compile(r"\bon\b"), timeout=TIMEOUT_MS)


def say(page, text: str) -> None:
    page.fill("#message", text)
    page.press("#message", "Enter")


def test_customer_and_agents_work_a_handoff_in_their_browsers(stack, browser):
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    started = time.monotonic()
    timings: dict[str, float] = {}

    # Two agents sign in to the console and keep their inboxes open.
    sanne_context = browser.new_context(viewport={"width": 1440, "height": 900})
    sanne = sanne_context.new_page()
    sign_in(sanne, stack.helpdesk_url, SANNE)
    piet_context = browser.new_context(viewport={"width": 1280, "height": 800})
    piet = piet_context.new_page()
    sign_in(piet, stack.helpdesk_url, PIET)
    for page in (sanne, piet):
        page.evaluate("window.stillTheSamePage = true")

    # A customer opens the web chat and talks to the bot.
    customer_context = browser.new_context(viewport={"width": 480, "height": 860}, locale="en-GB")
    customer = customer_context.new_page()
    customer.goto(stack.webchat_url + "/")
    expect(customer.locator("#head-status")).to_have_text("Virtual assistant · online")
    session_id = customer.locator("body").get_attribute("data-session")
    assert session_id and re.fullmatch(r"[0-9a-f]{32}", session_id)
    say(customer, "hi there")
    expect(customer.locator(".from-bot .bubble")).to_have_count(1)
    expect(customer.locator(".from-bot .who-name").first).to_have_text("Northwind Shop assistant")

    # ... and asks for a person: the handoff notice with the wait.
    say(customer, "I want to talk to a person")
    expect(customer.locator(".notice-handoff")).to_contain_text("putting you through to a colleague")
    expect(customer.locator(".notice-wait")).to_contain_text(re.compile(r"less than a minute|about \d+ min"))
    expect(customer.locator("#head-title")).to_have_text("Connecting you to a colleague")
    timings["handoff notice"] = time.monotonic() - started
    shoot(customer, "01-customer-waiting")

    # The ticket appears in both inboxes by itself, with priority and reason at a glance.
    for page in (sanne, piet):
        row = page.locator("tr.state-waiting")
        expect(row).to_have_count(1)
        expect(row).to_contain_text("Customer asked for a person")
        expect(row.locator(".badge")).to_have_text("normal")
        expect(row).to_contain_text("support")
        expect(row).to_contain_text("English")
        assert page.evaluate("window.stillTheSamePage") is True  # no reload
    expect(sanne).to_have_title(re.compile(r"\(1 waiting\)"))
    timings["ticket live in the inbox"] = time.monotonic() - started
    shoot(sanne, "02-agent-inbox")

    # Sanne opens it: reason, customer details, transcript, and the chat's page metadata.
    sanne.locator("tr.state-waiting a").click()
    expect(sanne.locator("#timeline")).to_contain_text("I want to talk to a person")
    expect(sanne.locator("#timeline")).to_contain_text("hi there")
    details = sanne.locator(".details-pane")
    expect(details).to_contain_text("The customer asked to talk to a person.")
    expect(details).to_contain_text("socketio")
    expect(details).to_contain_text("HeadlessChrome")
    expect(details).to_contain_text("en-GB")

    # She claims it: the customer is told who joined; Piet sees who took it, live.
    sanne.get_by_role("button", name="Claim").click()
    expect(sanne.locator(".claim-bar")).to_contain_text("You are handling this conversation.")
    expect(customer.locator(".notice-joined")).to_have_text(
        "Sanne from customer service has joined the conversation."
    )
    expect(customer.locator("#head-title")).to_have_text("Sanne")
    expect(piet.locator("tr.state-assigned")).to_contain_text("with Sanne")
    assert piet.evaluate("window.stillTheSamePage") is True
    timings["claimed"] = time.monotonic() - started

    # What the customer writes now appears on Sanne's open page without a reload.
    sanne.evaluate("window.stillTheSamePage = true")
    say(customer, "My parcel never arrived, order 4411.")
    expect(sanne.locator("#timeline")).to_contain_text("My parcel never arrived, order 4411.")
    assert sanne.evaluate("window.stillTheSamePage") is True

    # She replies; the customer sees it as hers, not the bot's.
    reply = "Hi, I'm Sanne. I'm sorry about that: I'll send order 4411 again today."
    sanne.fill("#reply-text", reply)
    sanne.get_by_role("button", name="Send reply").click()
    agent_bubbles = customer.locator(".from-agent")
    expect(agent_bubbles).to_have_count(1)
    expect(agent_bubbles.locator(".bubble")).to_have_text(reply)
    expect(agent_bubbles.locator(".who-name")).to_have_text("Sanne")
    expect(agent_bubbles.locator(".who-role")).to_have_text("Customer service")
    expect(customer.locator(".from-bot")).to_have_count(1)  # still only the bot's greeting
    timings["agent reply seen by the customer"] = time.monotonic() - started

    # Piet can look but must take over deliberately.
    piet.goto(sanne.url)
    expect(piet.locator(".claim-bar")).to_contain_text("Sanne is handling this conversation.")
    expect(piet.get_by_role("button", name="Take over from Sanne")).to_be_visible()
    expect(piet.locator("#reply-text")).to_be_disabled()

    # A reload of the chat keeps the conversation, the session and who is speaking.
    customer.reload()
    expect(customer.locator(".from-agent .bubble")).to_have_text(reply)
    expect(customer.locator("#head-title")).to_have_text("Sanne")
    expect(customer.locator("body")).to_have_attribute("data-session", session_id)
    say(customer, "Thank you! Will I get a new track-and-trace code?")
    expect(sanne.locator("#timeline")).to_contain_text("Will I get a new track-and-trace code?")
    second = "Yes, you'll get it by e-mail as soon as the parcel ships."
    sanne.fill("#reply-text", second)
    sanne.keyboard.press("Control+Enter")
    expect(customer.locator(".from-agent .bubble").last).to_have_text(second)

    shoot(customer, "03-customer-chat", publish="customer-chat.png")
    sanne.locator("#timeline-scroll").evaluate("pane => { pane.scrollTop = pane.scrollHeight; }")
    shoot(sanne, "04-agent-console", publish="agent-console.png")

    # Sanne hands back with her wrap-up and a note: the customer is with the bot again.
    sanne.select_option("#handback-outcome", "resolved")
    sanne.select_option("#handback-why", "policy_needs_person")
    expect(sanne.locator("#handback-intent")).to_be_hidden()  # only for "bot misunderstood"
    sanne.fill("#handback-note", "Order 4411 reshipped; new track-and-trace follows by e-mail.")
    sanne.get_by_role("button", name="Hand back to the bot").click()
    expect(sanne.locator(".closed-note")).to_contain_text("handed back to the bot")
    expect(sanne.locator("#wrap-up")).to_contain_text("Resolved")
    expect(customer.locator(".notice-back")).to_have_text(
        "Sanne handed the conversation back to the assistant."
    )
    expect(customer.locator(".from-bot .bubble").last).to_contain_text("anything else")
    expect(customer.locator("#head-title")).to_have_text("Northwind Shop assistant")
    timings["handed back"] = time.monotonic() - started
    expect(piet.locator(".closed-note")).to_contain_text("handed back to the bot")  # live

    # The bot answers the next question itself.
    bot_before = customer.locator(".from-bot").count()
    say(customer, "how long does delivery take?")
    expect(customer.locator(".from-bot")).to_have_count(bot_before + 1)
    expect(customer.locator(".from-agent")).to_have_count(2)
    shoot(customer, "05-customer-back-with-the-bot")
    shoot(sanne, "06-agent-console-closed")

    # The conversation Rasa kept: the agent's turns are marked as the agent's.
    events = stack.tracker(session_id)["events"]
    agent_turns = [e["text"] for e in events if (e.get("metadata") or {}).get("handoff_role") == "agent"]
    assert agent_turns == [reply, second]
    customer_turns = [e for e in events if e.get("event") == "user"]
    assert customer_turns[0]["metadata"]["page"] == "/"
    assert "HeadlessChrome" in customer_turns[0]["metadata"]["browser"]

    for context in (customer_context, sanne_context, piet_context):
        context.close()
    print("timings (s since the agents signed in):", {k: round(v, 1) for k, v in timings.items()})


def test_signing_in_is_required_and_wrong_passwords_are_refused(stack, browser):
    from playwright.sync_api import expect

    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{stack.helpdesk_url}/tickets/HD-{uuid.uuid4().hex[:8].upper()}")
    expect(page).to_have_url(re.compile(r"/login\?next=/tickets/HD-"))
    page.fill("input[name=login]", "sanne")
    page.fill("input[name=password]", "not-her-password")
    page.click("button[type=submit]")
    expect(page.locator(".banner.error")).to_have_text("That login and password do not match. Try again.")
    page.fill("input[name=password]", SANNE[1])
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_contain_text("No ticket")  # back where she was going
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto(stack.helpdesk_url + "/")
    expect(page).to_have_url(re.compile(r"/login$"))
    context.close()


def test_the_chat_resumes_only_with_its_token_and_start_over_forgets_everything(stack, browser):
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    context = browser.new_context(viewport={"width": 480, "height": 860}, locale="en-GB")
    page = context.new_page()
    page.goto(stack.webchat_url + "/")
    expect(page.locator("#head-status")).to_have_text("Virtual assistant · online")
    first = page.locator("body").get_attribute("data-session")
    assert first and re.fullmatch(r"[0-9a-f]{32}", first)
    stored = page.evaluate("JSON.parse(localStorage.getItem('northwind.webchat.token'))")
    assert stored["session_id"] == first and re.fullmatch(r"[0-9a-f]{64}", stored["session_token"])

    # The embedding site's signed identity goes with the message as metadata.
    page.evaluate("window.handoffChat = { identity: 'eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmVk' }")
    say(page, "hi there")
    expect(page.locator(".from-bot .bubble")).to_have_count(1)
    [greeting] = [e for e in stack.tracker(first)["events"] if e["event"] == "user"]
    assert greeting["metadata"]["customer_identity"] == "eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmVk"

    # A reload resumes the conversation with the stored token; a wrong token gets a new session.
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-session", first)
    page.evaluate(
        "id => localStorage.setItem('northwind.webchat.token', JSON.stringify({session_id: id, session_token: '0'.repeat(64)}))",
        first,
    )
    page.reload()
    expect(page.locator("body")).not_to_have_attribute("data-session", first)
    expect(page.locator("body")).to_have_attribute("data-session", re.compile(r"^[0-9a-f]{32}$"))
    second = page.locator("body").get_attribute("data-session")
    assert second != first

    # Start over: the old conversation is restarted in Rasa, the chat's storage is emptied and a
    # new session begins with an empty log.
    say(page, "how long does delivery take?")
    expect(page.locator(".from-bot")).to_have_count(2)
    page.evaluate("sessionStorage.setItem('northwind.webchat.draft', '\"x\"'); sessionStorage.setItem('other', '1')")
    say(page, "/restart")
    expect(page.locator("body")).to_have_attribute("data-session", re.compile(r"^[0-9a-f]{32}$"))
    third = page.locator("body").get_attribute("data-session")
    assert third not in (first, second)
    expect(page.locator(".msg")).to_have_count(0)
    expect(page.locator("#intro")).to_be_visible()
    storage = page.evaluate(
        "({local: Object.keys(localStorage).sort(), session: Object.keys(sessionStorage).sort(),"
        " token: JSON.parse(localStorage.getItem('northwind.webchat.token'))})"
    )
    assert storage["session"] == ["other"]  # only the chat's own keys are removed
    assert storage["local"] == ["northwind.webchat.session", "northwind.webchat.token"]
    assert storage["token"]["session_id"] == third
    url = f"{stack.rasa_url}/conversations/{second}/tracker"
    deadline = time.monotonic() + 30  # the /restart turn may still be running in Rasa
    while True:
        events = requests.get(url, params={"include_events": "ALL"}, timeout=30).json()["events"]
        if "restart" in [e["event"] for e in events]:
            break
        assert time.monotonic() < deadline, [e["event"] for e in events]
        time.sleep(0.3)
    assert "how long does delivery take?" in [e.get("text") for e in events if e["event"] == "user"]
    say(page, "hello")
    expect(page.locator(".from-bot")).to_have_count(1)
    assert [e["text"] for e in stack.tracker(third)["events"] if e["event"] == "user"] == ["hello"]
    context.close()
