"""A customer on REST lands in the embedded agent inbox; the agent answers and hands back from it."""

from __future__ import annotations

import re
import time
import uuid

import pytest
import requests

from tests.stack import Stack

pytestmark = pytest.mark.e2e

#: Long enough for the agent of the first test to claim in time, short enough to wait out.
NO_AGENT_TIMEOUT = 25


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    running = Stack(
        tmp_path_factory.mktemp("inbox"), with_helpdesk=True, HANDOFF_NO_AGENT_TIMEOUT=str(NO_AGENT_TIMEOUT), HANDOFF_TASK_POLL_INTERVAL="0.3"
    ).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def agent(stack):
    """A browser session signed in to the embedded helpdesk as Sanne."""
    assert requests.get(stack.helpdesk_url + "/", allow_redirects=False, timeout=10).status_code in (302, 303)
    return stack.sign_in("sanne")


def page(agent, stack, path="/"):
    answer = agent.get(stack.helpdesk_url + path, allow_redirects=False, timeout=10)
    assert answer.status_code == 200
    return answer.text


def eventually(check, timeout=15):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


def test_agent_works_a_handoff_from_the_inbox(stack, agent):
    sender = f"inbox-{uuid.uuid4().hex[:8]}"
    stack.say(sender, "hi there", metadata={"customer": {"name": "Joost Bakker", "email": "joost@example.nl"}})
    told = " ".join(m.get("text", "") for m in stack.say(sender, "I need to speak to a human"))
    assert "colleague" in told.lower()

    # The handoff is in the inbox with the customer and the whole conversation.
    inbox = eventually(lambda: sender in page(agent, stack) or "Joost Bakker" in page(agent, stack) and page(agent, stack))
    assert inbox and "Joost Bakker" in page(agent, stack)
    ticket_id = re.search(r"/tickets/(HD-[0-9A-F]+)", page(agent, stack)).group(1)
    ticket = page(agent, stack, f"/tickets/{ticket_id}")
    for expected in ("hi there", "I need to speak to a human", "joost@example.nl", "customer_request"):
        assert expected in ticket, expected

    # What the customer says while waiting appears on the ticket.
    assert stack.say(sender, "my invoice shows the wrong address") == []
    assert eventually(lambda: "my invoice shows the wrong address" in page(agent, stack, f"/tickets/{ticket_id}"))

    # The agent replies from the page (joining first); the customer's conversation has it.
    form = {"text": "Hi Joost, I'll correct the address on your invoice."}
    answer = agent.post(f"{stack.helpdesk_url}/tickets/{ticket_id}/reply", data=form, allow_redirects=False, timeout=30)
    assert answer.status_code == 303
    events = stack.tracker(sender)["events"]
    agent_turns = [e["text"] for e in events if (e.get("metadata") or {}).get("handoff_role") == "agent"]
    assert agent_turns == ["Hi Joost, I'll correct the address on your invoice."]
    assert any("Sanne" in (e.get("text") or "") for e in events if (e.get("metadata") or {}).get("handoff_role") == "notice")

    # Hand-back from the page: the bot is back.
    answer = agent.post(
        f"{stack.helpdesk_url}/tickets/{ticket_id}/handback", data={"note": "Address fixed."}, allow_redirects=False, timeout=30
    )
    assert answer.status_code == 303
    tracker = stack.tracker(sender)
    assert tracker["paused"] is False
    assert "anything else" in [e["text"] for e in tracker["events"] if e["event"] == "bot"][-1].lower()
    assert stack.say(sender, "how long does delivery take?")

    # Handing back twice is refused visibly instead of pretending.
    again = agent.post(f"{stack.helpdesk_url}/tickets/{ticket_id}/handback", data={}, timeout=30)
    assert again.status_code == 200 and "This ticket is closed; nothing was sent." in again.text


def ticket_of(agent, stack, sender):
    """The ticket id of the conversation's newest handoff, from the 'all tickets' list."""
    def find():
        for ticket_id in re.findall(r"/tickets/(HD-[0-9A-F]+)", page(agent, stack)):
            if sender in page(agent, stack, f"/tickets/{ticket_id}"):
                return ticket_id
        return None

    return eventually(find)


def test_a_restart_during_the_handoff_closes_the_ticket_on_the_console(stack, agent):
    sender = f"restart-{uuid.uuid4().hex[:8]}"
    stack.say(sender, "I want to talk to a person")
    ticket_id = ticket_of(agent, stack, sender)
    assert ticket_id

    stack.say(sender, "/restart")
    assert eventually(lambda: "the customer restarted the conversation" in page(agent, stack, f"/tickets/{ticket_id}"))
    # Replying or handing back now sends nothing and says why.
    answer = agent.post(f"{stack.helpdesk_url}/tickets/{ticket_id}/reply", data={"text": "Hello?"}, timeout=30)
    assert answer.status_code == 200 and "This ticket is closed; nothing was sent." in answer.text
    assert not [e for e in stack.tracker(sender)["events"] if (e.get("metadata") or {}).get("handoff_role") == "agent"]


def test_no_agent_in_time_the_console_shows_how_to_follow_up(stack, agent):
    sender = f"noagent-{uuid.uuid4().hex[:8]}"
    stack.say(sender, "I want to talk to a person")
    ticket_id = ticket_of(agent, stack, sender)
    assert ticket_id
    assert eventually(lambda: stack.tracker(sender)["paused"] is False, timeout=NO_AGENT_TIMEOUT + 20)
    assert "answer your question by email" in " ".join(m.get("text", "") for m in stack.say(sender, "anna@example.com")).lower()
    ticket = eventually(lambda: (p := page(agent, stack, f"/tickets/{ticket_id}")) and "Answer the customer by email at anna@example.com" in p and p)
    assert ticket and "no agent joined in time" in ticket
