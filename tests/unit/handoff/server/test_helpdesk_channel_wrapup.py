"""The helpdesk channel and an agent's wrap-up (``wrap_up`` of agent.handback): an intent the
model's domain does not have is refused with 400 before anything is looked up; a valid wrap-up is
kept with the hand-back note."""

from __future__ import annotations

import contextlib
import uuid
from types import SimpleNamespace

import pytest
from sanic import Sanic

from handoff.server import helpdesk_channel
from handoff.server.helpdesk_channel import HelpdeskInput, unknown_wrap_up_intent
from tests.support import handoff_requested, helpdesk_event, signed

URL = "/webhooks/helpdesk/webhook"
INTENTS = ["greet", "ask_refund_status", "EXTERNAL_handback"]


class FakeTrackerStore:
    async def exists(self, _conversation_id: str) -> bool:
        return True


class FakeLockStore:
    @contextlib.asynccontextmanager
    async def lock(self, _conversation_id: str):
        yield


class FakeProcessor:
    async def get_tracker(self, conversation_id: str):
        return SimpleNamespace(sender_id=conversation_id)


def fake_agent(intents=INTENTS, domain=True):
    return SimpleNamespace(
        domain=SimpleNamespace(intents=list(intents)) if domain else None,
        tracker_store=FakeTrackerStore(),
        lock_store=FakeLockStore(),
        processor=FakeProcessor(),
    )


@pytest.fixture
def taken_back(monkeypatch):
    """The conversations the channel gave back to the bot (Rasa's part is not run here)."""
    calls: list[str] = []

    async def take_back(_agent, tracker, _output):
        calls.append(tracker.sender_id)

    monkeypatch.setattr(helpdesk_channel, "take_back", take_back)
    monkeypatch.setattr(helpdesk_channel, "output_channel_for", lambda _app, _tracker: None)
    return calls


def make_client(agent):
    app = Sanic(f"wrapup-{uuid.uuid4().hex[:8]}")
    app.blueprint(HelpdeskInput().blueprint(lambda _message: None), url_prefix="/webhooks/helpdesk")
    app.ctx.agent = agent
    return app.test_client


def open_handoff(store, conversation: str = "conv-wrap") -> str:
    body = handoff_requested(handoff_id=str(uuid.uuid4()), conversation_id=conversation)
    handoff, _ = store.create_handoff(body, now=1000.0)
    store.mark_assigned(handoff.id, "Sanne")
    return handoff.id


def handback(handoff_id: str, conversation: str = "conv-wrap", **fields):
    return helpdesk_event("agent.handback", handoff_id, conversation, **fields)


def post(client, body):
    raw, headers = signed(body)
    _, answer = client.post(URL, content=raw, headers=headers)
    return answer


def test_an_intent_outside_the_domain_is_400_naming_the_field(store, taken_back):
    handoff_id = open_handoff(store)
    body = handback(
        handoff_id,
        note="Refund paid.",
        wrap_up={"outcome": "resolved", "why": "bot_misunderstood", "intent": "ask_for_a_pony", "new_topic": False},
    )
    answer = post(make_client(fake_agent()), body)
    assert answer.status == 400
    assert "wrap_up.intent" in answer.json["error"] and "ask_for_a_pony" in answer.json["error"]
    assert store.get_handoff(handoff_id).is_active  # nothing happened
    assert not store.inbound_seen(body["event_id"])
    assert store.wrap_ups() == [] and taken_back == []


def test_a_wrap_up_that_breaks_the_schema_is_400(store, taken_back):
    handoff_id = open_handoff(store)
    body = handback(handoff_id, wrap_up={"outcome": "resolved", "why": "bored"})
    answer = post(make_client(fake_agent()), body)
    assert answer.status == 400 and "wrap_up.why" in answer.json["error"]
    assert store.get_handoff(handoff_id).is_active


def test_a_hand_back_keeps_the_wrap_up_with_the_note(store, taken_back):
    handoff_id = open_handoff(store)
    wrap_up = {"outcome": "resolved", "why": "bot_misunderstood", "intent": "ask_refund_status", "new_topic": False}
    body = handback(handoff_id, note="Refund paid.", wrap_up=wrap_up)
    answer = post(make_client(fake_agent()), body)
    assert answer.status == 200, answer.json
    assert taken_back == ["conv-wrap"]
    assert store.get_handoff(handoff_id).end_cause == "handed_back"
    assert store.record(handoff_id)["note"] == "Refund paid."
    [kept] = store.wrap_ups()
    assert kept == {
        "handoff_id": handoff_id,
        "conversation_id": "conv-wrap",
        "outcome": "resolved",
        "why": "bot_misunderstood",
        "intent": "ask_refund_status",
        "new_topic": False,
        "note": "Refund paid.",
        "agent": "Sanne",
        "created_at": kept["created_at"],
    }


def test_a_hand_back_without_a_wrap_up_keeps_none(store, taken_back):
    handoff_id = open_handoff(store)
    answer = post(make_client(fake_agent()), handback(handoff_id, note="Done."))
    assert answer.status == 200
    assert store.wrap_ups() == []


def test_a_new_topic_needs_no_intent(store, taken_back):
    handoff_id = open_handoff(store)
    wrap_up = {"outcome": "not_resolved", "why": "bot_misunderstood", "intent": None, "new_topic": True}
    assert post(make_client(fake_agent()), handback(handoff_id, wrap_up=wrap_up)).status == 200
    [kept] = store.wrap_ups()
    assert (kept["intent"], kept["new_topic"], kept["note"]) == (None, True, None)


def test_unknown_wrap_up_intent():
    agent = fake_agent()
    assert unknown_wrap_up_intent(agent, {"outcome": "resolved", "why": "other"}) is None
    assert unknown_wrap_up_intent(agent, {"intent": None}) is None
    assert unknown_wrap_up_intent(agent, {"intent": "greet"}) is None
    problem = unknown_wrap_up_intent(agent, {"intent": "x" * 300})
    assert problem.startswith("agent.handback: at wrap_up.intent: 'xxx") and len(problem) < 200
    # Without a loaded model there is no domain to check against.
    assert unknown_wrap_up_intent(fake_agent(domain=False), {"intent": "anything"}) is None
