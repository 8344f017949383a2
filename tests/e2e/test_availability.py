"""Telling customers and agents the truth, on the real stack (Rasa, action server, embedded
helpdesk on loopback): nobody available, out of hours in both languages, follow-ups as tasks, a
repeat contact's earlier conversation, transfers.

The business-hours clock is set through the settings (``HANDOFF_NOW``), never by sleeping: one stack
runs on a Monday morning (open), one on a Sunday night (closed).
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
import uuid

import pytest
from jsonschema import Draft202012Validator

from handoff.schemas import SCHEMA_DIR
from tests.stack import Stack

pytestmark = pytest.mark.e2e

SUNDAY_NIGHT = "2026-12-06T03:00:00+01:00"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    running = Stack(tmp_path_factory.mktemp("open-hours"), with_helpdesk=True).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def closed(tmp_path_factory):
    running = Stack(tmp_path_factory.mktemp("closed"), with_helpdesk=True, HANDOFF_NOW=SUNDAY_NIGHT).start()
    yield running
    running.stop()


def texts(messages):
    return [m.get("text") or "" for m in messages]


def page(session, stack, path):
    answer = session.get(stack.helpdesk_url + path, timeout=30)
    answer.raise_for_status()
    return answer.text


def eventually(check, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.3)


def post(session, stack, path, **form):
    return session.post(
        stack.helpdesk_url + path, data=form, headers={"Origin": stack.helpdesk_url}, allow_redirects=False, timeout=30
    )


def helpdesk_rows(stack, query, *args):
    with sqlite3.connect(stack.workdir / "var" / "helpdesk.db") as db:
        return db.execute(query, args).fetchall()


def handoff_rows(stack, query, *args):
    with sqlite3.connect(stack.workdir / "var" / "handoff.db") as db:
        return db.execute(query, args).fetchall()


def ticket_of(stack, sender):
    rows = eventually(lambda: helpdesk_rows(stack, "SELECT ticket_id FROM tickets WHERE conversation_id = ? ORDER BY id", sender))
    assert rows, f"no ticket for {sender}"
    return rows[-1][0]


def follow_up_of(stack, sender):
    rows = eventually(
        lambda: helpdesk_rows(
            stack, "SELECT follow_up_id, origin, method, contact, due_at, state, owner FROM follow_ups WHERE conversation_id = ?", sender
        )
    )
    assert rows, f"no follow-up for {sender}"
    return rows[0]


def test_nobody_available_is_told_at_once_and_leaves_a_callback_that_becomes_a_task(stack):
    sender = f"nobody-{uuid.uuid4().hex[:8]}"
    stack.set_presence(stack.standby, "away")  # signed in, but not available
    try:
        answer = texts(stack.say(sender, "I want to talk to a person"))
    finally:
        stack.set_presence(stack.standby, "available")
    assert answer[0].startswith("I'm sorry, none of my colleagues is available right now, so I won't keep you waiting.")
    assert "Leave your phone number" in answer[1]
    assert not any("putting you through" in t for t in answer)
    assert stack.tracker(sender)["latest_event_time"] and not stack.tracker(sender).get("paused")

    reply = texts(stack.say(sender, "call me on 06 1234 5678 please"))
    # Monday 10:00 + 4 opening hours of support.
    assert reply == [
        "Thank you. A colleague will call you back at 0612345678, at the latest today at 14:00. "
        "Is there anything else I can do for you in the meantime?"
    ]
    ticket_id = ticket_of(stack, sender)
    assert eventually(
        lambda: helpdesk_rows(stack, "SELECT state, close_cause FROM tickets WHERE ticket_id = ?", ticket_id) == [("closed", "no_agent_available")]
    )
    # The helpdesk's answer said so, in the documented shape.
    [(answer_text,)] = helpdesk_rows(
        stack,
        "SELECT response FROM processed_events WHERE event = 'handoff.requested' AND handoff_id = "
        "(SELECT handoff_id FROM tickets WHERE ticket_id = ?)",
        ticket_id,
    )
    answer = json.loads(answer_text)
    Draft202012Validator(json.loads((SCHEMA_DIR / "handoff.requested.answer.json").read_text())).validate(answer)
    assert (answer["agents_available"], answer["estimated_wait_seconds"]) == (0, None)
    follow_up_id, origin, method, contact, due_at, state, owner = follow_up_of(stack, sender)
    assert (origin, method, contact, state, owner) == ("no_agent_available", "callback", "0612345678", "open", None)
    assert str(due_at).startswith("2026-12-07 13:00")  # UTC

    # Sanne sees it in the Follow-ups view, claims it, calls, and closes it as done.
    sanne = stack.sign_in("sanne")
    view = page(sanne, stack, "/follow-ups")
    assert "0612345678" in view and follow_up_id in view
    assert post(sanne, stack, f"/follow-ups/{follow_up_id}/claim").status_code == 303
    assert follow_up_of(stack, sender)[5:] == ("open", "sanne")
    answer = post(sanne, stack, f"/follow-ups/{follow_up_id}/close", outcome="done", note="Called, parcel resent.")
    assert answer.status_code == 303
    assert follow_up_of(stack, sender)[5:] == ("done", "sanne")
    assert helpdesk_rows(stack, "SELECT outcome_note, closed_by FROM follow_ups WHERE follow_up_id = ?", follow_up_id) == [
        ("Called, parcel resent.", "sanne")
    ]


def test_a_follow_up_nobody_reached_is_closed_as_such_by_whom_it_was_assigned_to(closed):
    sender = f"unreached-{uuid.uuid4().hex[:8]}"
    closed.say(sender, "I want to talk to a person")
    closed.say(sender, "+31 20 555 0199")
    follow_up_id = follow_up_of(closed, sender)[0]
    sanne, piet = closed.sign_in("sanne"), closed.sign_in("piet")
    assert post(sanne, closed, f"/follow-ups/{follow_up_id}/claim").status_code == 303
    assert post(sanne, closed, f"/follow-ups/{follow_up_id}/assign", login="piet").status_code == 303
    assert follow_up_of(closed, sender)[6] == "piet"
    assert post(piet, closed, f"/follow-ups/{follow_up_id}/close", outcome="not_reached", note="Voicemail twice.").status_code == 303
    assert follow_up_of(closed, sender)[5] == "not_reached"


@pytest.mark.parametrize(
    ("language", "ask", "contact", "closed_text", "confirmation"),
    [
        (
            "en",
            "I want to talk to a person",
            "my email is ada@example.com",
            "Our customer service team is not available right now. We are back tomorrow at 09:00.",
            "Thank you. We'll answer your question by email at ada@example.com, at the latest tomorrow at 13:00, "
            "with our whole conversation attached. Is there anything else I can do for you in the meantime?",
        ),
        (
            "nl",
            "ik wil graag een medewerker spreken",
            "mijn mailadres is kees@voorbeeld.nl",
            "Onze klantenservice is nu niet bereikbaar. We zijn er weer morgen om 09:00.",
            "Dank je. We beantwoorden je vraag uiterlijk morgen om 13:00 per e-mail op kees@voorbeeld.nl; "
            "ons hele gesprek gaat mee. Kan ik intussen nog iets anders voor je doen?",
        ),
    ],
)
def test_out_of_hours_the_customer_hears_when_the_team_is_back_and_leaves_an_email(closed, language, ask, contact, closed_text, confirmation):
    sender = f"closed-{language}-{uuid.uuid4().hex[:8]}"
    answer = texts(closed.say(sender, ask))
    assert answer[0] == closed_text
    assert len(answer) == 2 and ("e-mailadres" if language == "nl" else "email address") in answer[1]
    assert texts(closed.say(sender, contact)) == [confirmation]

    _, origin, method, stored_contact, due_at, state, _ = follow_up_of(closed, sender)
    assert (origin, method, state) == ("out_of_hours", "email", "open")
    assert stored_contact == contact.rsplit(" ", 1)[-1]
    assert str(due_at).startswith("2026-12-07 12:00")  # Monday 09:00 + 4 h in Amsterdam, in UTC
    ticket_id = ticket_of(closed, sender)
    assert eventually(
        lambda: helpdesk_rows(closed, "SELECT close_cause FROM tickets WHERE ticket_id = ?", ticket_id) == [("out_of_hours",)]
    )
    [(payload,)] = helpdesk_rows(closed, "SELECT transcript FROM follow_ups WHERE conversation_id = ?", sender)
    assert ask in [turn["text"] for turn in json.loads(payload)]


def hand_off_and_back(stack, agent, sender, text, note, metadata=None):
    stack.say(sender, text, metadata=metadata)
    ticket_id = ticket_of(stack, sender)
    assert post(agent, stack, f"/tickets/{ticket_id}/join").status_code == 303
    assert post(agent, stack, f"/tickets/{ticket_id}/reply", text="Let me look into that for you.").status_code == 303
    assert post(agent, stack, f"/tickets/{ticket_id}/handback", note=note).status_code == 303
    return ticket_id


def test_a_repeat_contact_shows_the_agent_the_earlier_conversation(stack):
    sanne = stack.sign_in("sanne")
    email = f"jan-{uuid.uuid4().hex[:6]}@example.com"
    details = {"customer": {"email": email, "name": "Jan"}}  # from the channel: unverified
    first = f"repeat-1-{uuid.uuid4().hex[:6]}"
    stack.say(first, "where is my refund?", metadata=details)
    assert handoff_rows(stack, "SELECT resolved FROM conversation_issues WHERE conversation_id = ?", first) == [(0,)]
    first_ticket = hand_off_and_back(
        stack, sanne, first, "I want to talk to a person about my refund", "Refund approved, 3-5 working days.", details
    )
    # The agent resolved it: coming back about it is not "the same unresolved issue".
    assert handoff_rows(stack, "SELECT resolved FROM conversation_issues WHERE conversation_id = ?", first) == [(1,)]

    # Days later, from another browser, the same email address.
    second = f"repeat-2-{uuid.uuid4().hex[:6]}"
    stack.say(second, "can I speak to an agent please", metadata=details)
    second_ticket = ticket_of(stack, second)
    assert second_ticket != first_ticket
    [(payload,)] = helpdesk_rows(stack, "SELECT payload FROM tickets WHERE ticket_id = ?", second_ticket)
    previous = json.loads(payload)["previous_handoff"]
    assert (previous["matched_by"], previous["verified"], previous["outcome"]) == ("email", False, "handed_back")
    assert previous["note"] == "Refund approved, 3-5 working days."
    assert "I want to talk to a person about my refund" in [t["text"] for t in previous["transcript"]]

    view = page(sanne, stack, f"/tickets/{second_ticket}")
    history = view[view.index("Earlier contacts"):]
    assert first_ticket in history and "Refund approved, 3-5 working days." in history
    assert "unverified" in history
    assert "I want to talk to a person about my refund" in history


def test_a_transfer_moves_the_ticket_to_sales_and_tells_the_customer(stack):
    sanne = stack.sign_in("sanne")
    sender = f"transfer-{uuid.uuid4().hex[:8]}"
    stack.say(sender, "I want to talk to a person")
    ticket_id = ticket_of(stack, sender)
    [(answer_text,)] = helpdesk_rows(
        stack, "SELECT response FROM processed_events WHERE event = 'handoff.requested' AND handoff_id = "
        "(SELECT handoff_id FROM tickets WHERE ticket_id = ?)", ticket_id,
    )
    answer = json.loads(answer_text)
    Draft202012Validator(json.loads((SCHEMA_DIR / "handoff.requested.answer.json").read_text())).validate(answer)
    assert answer["agents_available"] == 1 and answer["queue_position"] >= 1  # standby
    assert post(sanne, stack, f"/tickets/{ticket_id}/join").status_code == 303
    answer = post(sanne, stack, f"/tickets/{ticket_id}/transfer", queue="sales", note="Wants a quote for 40 seats.")
    assert answer.status_code == 303

    assert helpdesk_rows(stack, "SELECT queue, state, agent_name FROM tickets WHERE ticket_id = ?", ticket_id) == [("sales", "waiting", None)]
    [(handoff_queue, handoff_state)] = handoff_rows(stack, "SELECT queue, state FROM handoffs WHERE conversation_id = ?", sender)
    assert (handoff_queue, handoff_state) == ("sales", "requested")
    bot = [e for e in stack.tracker(sender)["events"] if e["event"] == "bot"]
    assert bot[-1]["text"].startswith("I'm passing you on to our sales team.")
    assert bot[-1]["metadata"]["notice"] == "transferred"
    assert "Wants a quote for 40 seats." not in json.dumps(stack.tracker(sender))  # the note is for colleagues
    view = page(sanne, stack, f"/tickets/{ticket_id}")
    assert "Wants a quote for 40 seats." in view and re.search(r"support\s*(→|to)\s*sales", view)

    # An unknown queue is refused by the assistant, and nothing changes.
    refused = post(sanne, stack, f"/tickets/{ticket_id}/transfer", queue="billing", note="x")
    assert refused.status_code in (303, 400)
    assert helpdesk_rows(stack, "SELECT queue FROM tickets WHERE ticket_id = ?", ticket_id) == [("sales",)]


def test_the_follow_ups_view_and_a_ticket_with_history_in_the_browser(stack, browser):
    from playwright.sync_api import expect

    from tests.e2e.test_browser import SANNE, TIMEOUT_MS, shoot, sign_in

    expect.set_options(timeout=TIMEOUT_MS)
    agent = stack.sign_in("piet")
    # A customer nobody could take leaves a number; another comes back about a refund.
    waiting = f"browser-fu-{uuid.uuid4().hex[:6]}"
    stack.set_presence(stack.standby, "away")
    try:
        stack.say(waiting, "I want to talk to a person")
    finally:
        stack.set_presence(stack.standby, "available")
    stack.say(waiting, "+31 6 5555 0123")
    email = f"eva-{uuid.uuid4().hex[:6]}@example.com"
    details = {"customer": {"email": email, "name": "Eva"}}
    hand_off_and_back(
        stack, agent, f"browser-h1-{uuid.uuid4().hex[:6]}", "I want to talk to a person about a damaged parcel",
        "Replacement sent, order 10452.", details,
    )
    again = f"browser-h2-{uuid.uuid4().hex[:6]}"
    stack.say(again, "can I speak to an agent please", metadata=details)
    ticket_id = ticket_of(stack, again)

    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page_ = context.new_page()
    sign_in(page_, stack.helpdesk_url, SANNE)
    page_.click("text=Follow-ups")
    expect(page_).to_have_url(re.compile(r"/follow-ups$"))
    expect(page_.locator("body")).to_contain_text("+31655550123")
    expect(page_.locator("body")).to_contain_text("unverified")
    shoot(page_, "follow-ups", publish="follow-ups.png")

    page_.goto(f"{stack.helpdesk_url}/tickets/{ticket_id}")
    history = page_.locator("#history")
    expect(history).to_contain_text("Replacement sent, order 10452.")
    expect(history).to_contain_text("unverified")
    history.locator("details summary").first.click()
    expect(history).to_contain_text("damaged parcel")
    history.scroll_into_view_if_needed()
    shoot(page_, "ticket-history", publish="ticket-history.png")
    context.close()
