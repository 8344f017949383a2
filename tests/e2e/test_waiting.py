"""Time in a conversation, end to end: wait updates, no agent in time, giving up, a restart, a
conversation that drags on, and a customer back about an unresolved issue.

The timers are the durable tasks of handoff/server/tasks.py; here they run with seconds instead of
minutes (HANDOFF_NO_AGENT_TIMEOUT and friends), and the conversation timeout of handoff_rules.yml
after a few turns instead of twelve.
"""

from __future__ import annotations

import time
import uuid

import pytest
import yaml

from handoff.settings import PROJECT_ROOT
from tests.support import helpdesk_event

pytestmark = pytest.mark.e2e

NO_AGENT_TIMEOUT = 8
WAIT_UPDATE_AFTER = 4
FOLLOW_UP_WAIT = 5
MAX_TURNS = 5


@pytest.fixture(scope="module")
def rules_path(tmp_path_factory):
    """The project's handoff_rules.yml with a shorter conversation timeout."""
    rules = yaml.safe_load((PROJECT_ROOT / "handoff_rules.yml").read_text())
    rules["timeout"]["max_turns"] = MAX_TURNS
    path = tmp_path_factory.mktemp("rules") / "handoff_rules.yml"
    path.write_text(yaml.safe_dump(rules, allow_unicode=True))
    return path


@pytest.fixture(scope="module")
def stack_env(rules_path):
    """Short timers and a short conversation timeout for this module's stack."""
    return {
        "HANDOFF_RULES_PATH": str(rules_path),
        "HANDOFF_NO_AGENT_TIMEOUT": str(NO_AGENT_TIMEOUT),
        "HANDOFF_WAIT_UPDATE_AFTER": str(WAIT_UPDATE_AFTER),
        "HANDOFF_FOLLOW_UP_WAIT": str(FOLLOW_UP_WAIT),
        "HANDOFF_TASK_POLL_INTERVAL": "0.3",
    }


def said(messages):
    return " ".join(m.get("text", "") for m in messages).lower()


def bot_events(tracker):
    return [e for e in tracker["events"] if e["event"] == "bot"]


def eventually(check, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.3)


def ask_for_a_person(stack, helpdesk, prefix, wording="I want to talk to a person"):
    sender = f"{prefix}-{uuid.uuid4().hex[:8]}"
    stack.say(sender, "hello")
    stack.say(sender, wording)
    [requested] = helpdesk.wait_for("handoff.requested", sender)
    assert stack.tracker(sender)["paused"] is True
    return sender, requested


def test_no_agent_in_time_the_bot_takes_back_and_arranges_a_callback(stack, helpdesk):
    sender, requested = ask_for_a_person(stack, helpdesk, "timeout")
    asked = time.monotonic()

    # While waiting, the customer hears how it goes (their place in the queue).
    update = eventually(lambda: [e for e in bot_events(stack.tracker(sender)) if "position" in (e.get("text") or "")])
    assert update and (update[0].get("metadata") or {}).get("handoff_role") == "notice"
    assert stack.tracker(sender)["paused"] is True

    # Nobody joins: the bot takes the conversation back, apologises and asks for a contact detail.
    assert eventually(lambda: stack.tracker(sender)["paused"] is False, timeout=NO_AGENT_TIMEOUT + 20)
    waited = time.monotonic() - asked
    print(f"no agent in time: the bot took back after {waited:.1f} s (timeout {NO_AGENT_TIMEOUT} s)")
    assert waited >= NO_AGENT_TIMEOUT - 1
    texts = [e.get("text") or "" for e in bot_events(stack.tracker(sender))]
    assert "no colleague is free" in texts[-2].lower() and "phone number" in texts[-1].lower(), texts[-3:]
    assert helpdesk.events("handoff.ended", sender) == []  # not before the customer answered

    # An agent arriving now is too late: the handoff is over.
    late = stack.helpdesk_event(helpdesk_event("agent.joined", requested["handoff_id"], sender))
    assert late.status_code == 409

    answer = said(stack.say(sender, "please call me on 06 12345678"))
    assert "call you back at 0612345678" in answer and "anything else" in answer
    [ended] = helpdesk.wait_for("handoff.ended", sender)
    assert ended["handoff_id"] == requested["handoff_id"]
    assert ended["cause"] == "no_agent_timeout"
    assert ended["follow_up"] == {"method": "callback", "phone": "0612345678"}

    # The bot is itself again.
    assert "deliver" in said(stack.say(sender, "how long does delivery take?"))


def test_no_agent_and_a_silent_customer_the_helpdesk_still_hears_the_end(stack, helpdesk):
    sender, requested = ask_for_a_person(stack, helpdesk, "silent")
    [ended] = helpdesk.wait_for("handoff.ended", sender, timeout=NO_AGENT_TIMEOUT + FOLLOW_UP_WAIT + 20)
    assert ended["cause"] == "no_agent_timeout" and ended["follow_up"] is None
    assert stack.tracker(sender)["paused"] is False


def test_an_email_ticket_in_dutch(stack, helpdesk):
    sender, _ = ask_for_a_person(stack, helpdesk, "nl", wording="Ik wil graag met een medewerker spreken")
    assert eventually(lambda: stack.tracker(sender)["paused"] is False, timeout=NO_AGENT_TIMEOUT + 20)
    texts = [e.get("text") or "" for e in bot_events(stack.tracker(sender))]
    assert "geen medewerker vrij" in texts[-2].lower(), texts[-3:]
    answer = said(stack.say(sender, "mail maar naar joost@example.nl"))
    assert "per e-mail" in answer and "joost@example.nl" in answer
    [ended] = helpdesk.wait_for("handoff.ended", sender)
    assert ended["follow_up"] == {"method": "email", "email": "joost@example.nl"}


def test_a_customer_who_gives_up_waiting_gets_the_bot_back(stack, helpdesk):
    sender, requested = ask_for_a_person(stack, helpdesk, "left")
    assert stack.say(sender, "never mind") == []  # the turn itself is the paused one
    [ended] = helpdesk.wait_for("handoff.ended", sender)
    assert ended["cause"] == "customer_left"
    assert eventually(lambda: stack.tracker(sender)["paused"] is False, timeout=10)
    assert "cancelled your request" in (bot_events(stack.tracker(sender))[-1].get("text") or "").lower()
    assert helpdesk.events("conversation.message", sender) == []  # "never mind" was not for an agent
    handback = stack.helpdesk_event(helpdesk_event("agent.handback", requested["handoff_id"], sender))
    assert handback.status_code == 409
    assert "deliver" in said(stack.say(sender, "how long does delivery take?"))


def test_a_conversation_that_drags_on_offers_a_person(stack, helpdesk):
    sender = f"long-{uuid.uuid4().hex[:8]}"
    questions = [
        "hi",
        "what are your opening hours?",
        "how long does delivery take?",
        "which payment methods do you accept?",
    ]
    for question in questions:
        assert "colleague" not in said(stack.say(sender, question))
    offer = said(stack.say(sender, "where is my order?"))  # the fifth message
    assert "we've been at this for a while" in offer and "colleague" in offer
    stack.say(sender, "yes please")
    [requested] = helpdesk.wait_for("handoff.requested", sender)
    assert requested["reason"] == "timeout" and "many_turns" in requested["trigger"]["signals"]


def test_a_customer_back_about_an_unresolved_issue_is_offered_a_person(stack, helpdesk):
    sender = f"again-{uuid.uuid4().hex[:8]}"
    assert said(stack.say(sender, "where is my order?"))
    # They leave without the matter settled, and come back in a new session about the same thing.
    stack.say(sender, "/session_start")
    offer = said(stack.say(sender, "where is my order?"))
    assert "contacted us about this before" in offer
    stack.say(sender, "yes")
    [requested] = helpdesk.wait_for("handoff.requested", sender)
    assert requested["reason"] == "repeat_contact" and requested["trigger"]["signals"] == ["same_unresolved_issue"]
    # The transcript is the current session; the reason tells the agent there was an earlier one.
    assert [t["text"] for t in requested["transcript"] if t["role"] == "customer"] == ["where is my order?", "yes"]


def test_the_no_agent_timeout_survives_a_restart(stack, helpdesk):
    sender, _ = ask_for_a_person(stack, helpdesk, "restart")
    stack.stop()
    time.sleep(NO_AGENT_TIMEOUT + 1)  # the timeout passes while nothing runs
    stack.start()
    assert eventually(lambda: stack.tracker(sender)["paused"] is False, timeout=20)
    texts = [e.get("text") or "" for e in bot_events(stack.tracker(sender))]
    assert "no colleague is free" in texts[-2].lower(), texts[-3:]
