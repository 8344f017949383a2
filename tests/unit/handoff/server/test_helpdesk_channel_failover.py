"""The helpdesk channel when a replica died in the middle of a helpdesk event.

The balancer sends a helpdesk event again to another replica when the first one closed the
connection without answering (deploy/haproxy.cfg.j2). When that replica had already pushed the
agent's message (it is in the tracker) but not recorded the event, the retry is a duplicate; when it
had ended the handoff as handed back but not yet given the conversation back to the bot, the retry
finishes the hand-back. Rasa's part (pushing, taking back) is recorded, not run.
"""

from __future__ import annotations

import contextlib
import uuid
from types import SimpleNamespace

import pytest
from rasa.shared.core.events import BotUttered, ConversationPaused
from rasa.shared.core.trackers import DialogueStateTracker
from sanic import Sanic

from handoff.lifecycle import EndCause
from handoff.server import helpdesk_channel
from handoff.server.helpdesk_channel import EVENT_ID_KEY, HelpdeskInput
from tests.support import handoff_requested, helpdesk_event, signed

URL = "/webhooks/helpdesk/webhook"
CONVERSATION = "conv-failover"


class Rasa:
    """Stands in for Rasa's agent: one tracker, the pushes and take-backs the channel asks for."""

    def __init__(self) -> None:
        self.tracker = DialogueStateTracker(CONVERSATION, slots=[])
        self.pushed: list[BotUttered] = []
        self.taken_back: list[str] = []
        self.domain = SimpleNamespace(intents=["EXTERNAL_handback"])
        self.tracker_store = SimpleNamespace(exists=self._exists)
        self.lock_store = SimpleNamespace(lock=self._lock)
        self.processor = SimpleNamespace(get_tracker=self._get_tracker, nlg=SimpleNamespace(generate=self._generate))

    async def _exists(self, _conversation_id: str) -> bool:
        return True

    @contextlib.asynccontextmanager
    async def _lock(self, _conversation_id: str):
        yield

    async def _get_tracker(self, _conversation_id: str) -> DialogueStateTracker:
        return self.tracker

    async def _generate(self, *_args, **_kwargs):
        return None


@pytest.fixture
def rasa(monkeypatch):
    fake = Rasa()

    async def push(_agent, tracker, _output, event):
        tracker.update(event)
        fake.pushed.append(event)

    async def take_back(_agent, tracker, _output):
        fake.taken_back.append(tracker.sender_id)

    monkeypatch.setattr(helpdesk_channel, "push", push)
    monkeypatch.setattr(helpdesk_channel, "take_back", take_back)
    monkeypatch.setattr(helpdesk_channel, "output_channel_for", lambda _app, _tracker: None)
    return fake


def client(rasa: Rasa):
    app = Sanic(f"failover-{uuid.uuid4().hex[:8]}")
    app.blueprint(HelpdeskInput().blueprint(lambda _message: None), url_prefix="/webhooks/helpdesk")
    app.ctx.agent = rasa
    return app.test_client


def post(test_client, body):
    raw, headers = signed(body)
    _, answer = test_client.post(URL, content=raw, headers=headers)
    return answer


def open_handoff(store) -> str:
    handoff, _ = store.create_handoff(handoff_requested(handoff_id=str(uuid.uuid4()), conversation_id=CONVERSATION))
    return handoff.id


def test_an_agent_message_carries_its_event_id_and_is_pushed_once(store, rasa):
    handoff_id = open_handoff(store)
    body = helpdesk_event("agent.message", handoff_id, CONVERSATION, text="Found it, it ships today.")
    assert post(client(rasa), body).json["status"] == "ok"
    [pushed] = rasa.pushed
    assert pushed.text == "Found it, it ships today." and pushed.metadata[EVENT_ID_KEY] == body["event_id"]
    assert post(client(rasa), body).json["status"] == "duplicate"
    assert len(rasa.pushed) == 1


def test_a_message_pushed_by_a_replica_that_died_before_recording_it_is_a_duplicate(store, rasa):
    handoff_id = open_handoff(store)
    body = helpdesk_event("agent.message", handoff_id, CONVERSATION, text="Found it, it ships today.")
    # The dead replica's push is in the tracker; the event is not recorded as done.
    rasa.tracker.update(BotUttered("Found it, it ships today.", metadata={"handoff_role": "agent", EVENT_ID_KEY: body["event_id"]}))
    assert not store.inbound_seen(body["event_id"])
    answer = post(client(rasa), body)
    assert answer.status == 200 and answer.json["status"] == "duplicate"
    assert rasa.pushed == [] and store.inbound_seen(body["event_id"])


def test_a_hand_back_a_replica_did_not_finish_is_finished(store, rasa):
    handoff_id = open_handoff(store)
    rasa.tracker.update(ConversationPaused())
    assert store.end_handoff(handoff_id, EndCause.HANDED_BACK)  # ... and then the replica died
    body = helpdesk_event("agent.handback", handoff_id, CONVERSATION, note="Refund paid.")
    answer = post(client(rasa), body)
    assert answer.status == 200 and answer.json["status"] == "ok"
    assert rasa.taken_back == [CONVERSATION]
    assert store.record(handoff_id)["note"] == "Refund paid."


def test_a_hand_back_of_a_finished_hand_back_is_still_409(store, rasa):
    handoff_id = open_handoff(store)
    assert store.end_handoff(handoff_id, EndCause.HANDED_BACK)  # the bot has the conversation again: not paused
    answer = post(client(rasa), helpdesk_event("agent.handback", handoff_id, CONVERSATION))
    assert answer.status == 409 and rasa.taken_back == []


def test_a_stale_hand_back_does_not_end_a_newer_handoff(store, rasa):
    old = open_handoff(store)
    assert store.end_handoff(old, EndCause.HANDED_BACK)
    open_handoff(store)  # the customer asked again: paused for the new one
    rasa.tracker.update(ConversationPaused())
    answer = post(client(rasa), helpdesk_event("agent.handback", old, CONVERSATION))
    assert answer.status == 409 and rasa.taken_back == []


def test_an_event_that_cannot_have_the_conversations_lock_in_time_is_answered_503_and_done_later(store, rasa):
    from rasa.core.lock_store import LockError

    handoff_id = open_handoff(store)
    body = helpdesk_event("agent.message", handoff_id, CONVERSATION, text="Found it, it ships today.")
    taken = rasa.lock_store.lock

    @contextlib.asynccontextmanager
    async def busy(_conversation_id: str):
        raise LockError("Could not acquire lock")
        yield

    rasa.lock_store = SimpleNamespace(lock=busy)
    answer = post(client(rasa), body)
    assert answer.status == 503 and answer.headers["Retry-After"] == "1"
    assert answer.json == {"error": "the conversation is busy: send the same event again", "event_id": body["event_id"]}
    assert rasa.pushed == [] and not store.inbound_seen(body["event_id"])
    # The helpdesk sends it again (the same event_id) once the conversation is free.
    rasa.lock_store = SimpleNamespace(lock=taken)
    assert post(client(rasa), body).json["status"] == "ok"
    assert [event.text for event in rasa.pushed] == ["Found it, it ships today."]
