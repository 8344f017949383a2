"""The action server dies: the Rasa server hands the conversation off by itself (``bot_failure``).

Real Rasa server and action server on loopback; the action server is killed with SIGKILL, so the
customer's request for a person (rule: ``action_handoff``) cannot run. The Rasa process records
the handoff, tells the customer, pauses, and its outbox worker sends the signed
``handoff.requested`` to the helpdesk (a loopback receiver here).
"""

from __future__ import annotations

import time
import uuid

import pytest
import yaml

from handoff.settings import PROJECT_ROOT
from handoff.store import HandoffStore
from tests.support import helpdesk_event

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def handoffs(stack):
    """The handoff database the stack's Rasa server writes to."""
    store = HandoffStore(f"sqlite:///{stack.workdir / 'var' / 'handoff.db'}")
    yield store
    store.close()


@pytest.fixture
def actions_down(stack):
    """The action server is dead for the test (and running again afterwards)."""
    stack.kill("actions")
    yield
    if stack.processes["actions"].poll() is not None:
        stack.restart("actions")


def technical(language):
    """utter_handoff_technical as domain.yml words it."""
    variants = yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text())["responses"]["utter_handoff_technical"]
    for variant in variants:
        dutch = any(c.get("value") == "nl" for c in variant.get("condition") or [])
        if dutch == (language == "nl"):
            return variant["text"]
    raise AssertionError(f"utter_handoff_technical has no {language} variant")


def texts(messages):
    return [m.get("text", "") for m in messages]


def slots(tracker):
    return tracker["slots"]


def test_dead_action_server_hands_off_and_hand_back_does_not_loop(stack, helpdesk, handoffs, actions_down):
    sender = f"dead-{uuid.uuid4().hex[:8]}"
    assert stack.say(sender, "hello"), "responses need no action server"

    asked_at = time.monotonic()
    answer = stack.say(sender, "I want to talk to a person")
    [requested] = helpdesk.wait_for("handoff.requested", sender)
    print(f"failed action -> handoff.requested received: {(time.monotonic() - asked_at) * 1000:.0f} ms")

    # The customer is told, in English, and the conversation waits for a person.
    assert texts(answer) == [technical("en")]
    tracker = stack.tracker(sender)
    assert tracker["paused"] is True
    assert slots(tracker)["handoff_id"] == requested["handoff_id"]
    assert tracker["events"][-1]["event"] == "action" and tracker["events"][-1]["name"] == "action_listen"

    # The helpdesk: signed, reason bot_failure, what failed, the whole conversation.
    record = next(r for r in helpdesk.received if r.body is requested)
    assert record.signature_ok and record.headers["X-Handoff-Delivery"] == requested["event_id"]
    assert requested["reason"] == "bot_failure" and requested["language"] == "en"
    # The failure is the first signal; the explicit wording of the request is recorded beside it.
    assert requested["trigger"]["signals"] == ["action_failed", "explicit_request"]
    assert requested["trigger"]["action"] == "action_handoff"
    assert requested["trigger"]["intent"] == "request_human"
    transcript = [(t["role"], t["text"]) for t in requested["transcript"]]
    assert transcript[0] == ("customer", "hello") and transcript[1][0] == "bot"
    assert transcript[-1] == ("customer", "I want to talk to a person")
    handoff_id = requested["handoff_id"]

    # The Rasa server's log names the action and the handoff, not what the customer wrote.
    lines = [line for line in stack.log("rasa").splitlines() if "handoff.server.patches.action_failure" in line]
    assert any("action_handoff" in line and handoff_id in line for line in lines), lines
    assert not [line for line in lines if "talk to a person" in line]

    # While paused, what the customer says still reaches the helpdesk (no action involved).
    assert stack.say(sender, "my parcel 4711 never arrived") == []
    [relayed] = helpdesk.wait_for("conversation.message", sender)
    assert relayed["handoff_id"] == handoff_id

    # The agent hands back while the action server is still dead: action_handoff_resume fails,
    # but the bot takes the conversation back rather than handing it straight back again.
    assert stack.helpdesk_event(helpdesk_event("agent.joined", handoff_id, sender)).status_code == 200
    assert stack.helpdesk_event(helpdesk_event("agent.handback", handoff_id, sender)).status_code == 200
    assert stack.tracker(sender)["paused"] is False
    assert [(h.id, h.state, h.end_cause) for h in handoffs.handoffs(sender)] == [(handoff_id, "ended", "handed_back")]
    assert len(helpdesk.events("handoff.requested", sender)) == 1

    # The customer's next message that needs the dead action server hands off again.
    again = stack.say(sender, "can I speak to a manager")
    assert texts(again) == [technical("en")]
    [_, second] = helpdesk.wait_for("handoff.requested", sender, count=2)
    assert second["reason"] == "bot_failure" and second["handoff_id"] != handoff_id

    # Once the action server is back, the hand-back and everything after work as usual.
    print(f"action server back in {stack.restart('actions'):.1f} s")
    back = stack.helpdesk_event(helpdesk_event("agent.handback", second["handoff_id"], sender))
    assert back.status_code == 200
    tracker = stack.tracker(sender)
    assert tracker["paused"] is False
    assert "anything else" in [e["text"] for e in tracker["events"] if e["event"] == "bot"][-1].lower()
    normal = stack.say(sender, "I want to talk to a person")
    [*_, third] = helpdesk.wait_for("handoff.requested", sender, count=3)
    assert third["reason"] == "customer_request" and "action" not in third["trigger"]
    assert any("colleague" in t.lower() for t in texts(normal)) and technical("en") not in texts(normal)


def test_a_dutch_customer_hears_it_in_dutch(stack, helpdesk, handoffs, actions_down):
    # action_assess_turn (which sets the language slot) cannot run either: the language comes
    # from the message itself.
    sender = f"dood-{uuid.uuid4().hex[:8]}"
    answer = stack.say(sender, "Ik wil graag met een medewerker praten")

    assert texts(answer) == [technical("nl")]
    [requested] = helpdesk.wait_for("handoff.requested", sender)
    assert requested["reason"] == "bot_failure" and requested["language"] == "nl"
    tracker = stack.tracker(sender)
    assert tracker["paused"] is True and slots(tracker)["language"] == "nl"
    [handoff] = handoffs.handoffs(sender)
    assert handoff.language == "nl" and handoff.id == requested["handoff_id"]
