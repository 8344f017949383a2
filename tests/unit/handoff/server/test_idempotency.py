"""handoff.server.idempotency and the REST channel: a customer message with a message id is handled once.

The turn is a stand-in for Rasa's (``on_new_message`` sends the bot's answer to the channel's
output); the lock store and tracker store are Rasa's in-memory ones. The REST channel runs in a
Sanic app as Rasa registers it. tests/e2e/test_scaled.py kills a replica mid-turn for real.
"""

from __future__ import annotations

import asyncio
import uuid
from types import SimpleNamespace

import pytest
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage, register
from rasa.core.lock_store import InMemoryLockStore
from rasa.core.tracker_store import InMemoryTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from sanic import Sanic

from handoff.idempotency import MemoryReplyStore
from handoff.server import idempotency
from handoff.server.idempotency import OnceHandler, reply_from_tracker
from handoff.server.rest import HandoffRestInput

REST = "/webhooks/rest/webhook"


class Turns:
    """Stands in for Rasa's turn: answers "answer to <text>" (after ``delay``), counts the turns."""

    def __init__(self, delay: float = 0.0, fail: bool = False) -> None:
        self.delay = delay
        self.fail = fail
        self.handled: list[str] = []

    async def __call__(self, message: UserMessage) -> None:
        self.handled.append(message.text)
        await asyncio.sleep(self.delay)
        if self.fail:
            raise RuntimeError("the turn failed")
        await message.output_channel.send_response(message.sender_id, {"text": f"answer to {message.text}"})

    async def handle_message(self, message: UserMessage) -> None:  # as Rasa's agent
        await self(message)


@pytest.fixture(autouse=True)
def fresh_store(monkeypatch):
    store = MemoryReplyStore()
    monkeypatch.setattr(idempotency, "_memory", store)
    return store


def agent() -> SimpleNamespace:
    return SimpleNamespace(lock_store=InMemoryLockStore(), tracker_store=InMemoryTrackerStore(Domain.empty()))


def handler(turns: Turns, with_agent: SimpleNamespace | None = None) -> OnceHandler:
    once = OnceHandler(turns)
    once.bind(SimpleNamespace(ctx=SimpleNamespace(agent=with_agent or agent())))
    return once


def message(text: str, message_id: str | None, sender: str = "anna") -> UserMessage:
    metadata = {"message_id": message_id} if message_id else {}
    return UserMessage(text, CollectingOutputChannel(), sender, input_channel="rest", metadata=metadata)


def texts(msg: UserMessage) -> list[str]:
    return [m["text"] for m in msg.output_channel.messages]


async def test_a_repeated_message_id_gets_the_same_answer_without_a_second_turn():
    turns = Turns()
    once = handler(turns)
    first, again = message("when are you open?", "m-1"), message("when are you open?", "m-1")
    assert await once.handle(first) is False
    assert await once.handle(again) is True
    assert turns.handled == ["when are you open?"]
    assert texts(again) == texts(first) == ["answer to when are you open?"]
    assert first.message_id == "m-1", "the id becomes the message id of the user event"


async def test_messages_without_an_id_or_with_other_ids_are_each_handled():
    turns = Turns()
    once = handler(turns)
    for msg in (message("hi", None), message("hi", None), message("hi", "m-1"), message("hi", "m-2"), message("hi", "m-1", sender="bob")):
        await once.handle(msg)
    assert turns.handled == ["hi"] * 5


async def test_the_same_message_twice_at_once_runs_one_turn_and_both_get_the_answer():
    turns = Turns(delay=0.3)
    once = handler(turns)
    first, again = message("where is my order?", "m-1"), message("where is my order?", "m-1")
    answered = await asyncio.gather(once.handle(first), once.handle(again))
    assert sorted(answered) == [False, True]
    assert turns.handled == ["where is my order?"]
    assert texts(first) == texts(again) == ["answer to where is my order?"]


async def test_a_failed_turn_gives_the_message_back(fresh_store):
    failing = Turns(fail=True)
    with pytest.raises(RuntimeError):
        await handler(failing).handle(message("hello", "m-1"))
    assert fresh_store.get("anna", "m-1") is None, "the claim was released"
    turns = Turns()
    await handler(turns).handle(message("hello", "m-1"))
    assert turns.handled == ["hello"]


def saved_turn(sender: str, message_id: str, *bot_texts: str) -> DialogueStateTracker:
    tracker = DialogueStateTracker(sender, slots=[])
    tracker.update(UserUttered("earlier", message_id="m-0"))
    tracker.update(BotUttered("earlier answer"))
    tracker.update(ActionExecuted("action_listen"))
    tracker.update(UserUttered("I want to talk to a person", message_id=message_id))
    for text in bot_texts:
        tracker.update(BotUttered(text, metadata={"utter_action": "utter_handoff_started"}))
    tracker.update(ActionExecuted("action_listen"))
    tracker.update(BotUttered("an agent's message, pushed later"))
    return tracker


def test_the_reply_of_a_saved_turn_is_read_from_the_tracker():
    tracker = saved_turn("anna", "m-7", "One moment, a colleague takes over.", "The wait is about 2 minutes.")
    reply = reply_from_tracker(tracker, "m-7")
    assert [m["text"] for m in reply] == ["One moment, a colleague takes over.", "The wait is about 2 minutes."]
    assert reply_from_tracker(tracker, "m-unknown") is None


async def test_a_claim_left_by_a_process_that_died_is_taken_over(fresh_store, monkeypatch):
    """A replica claimed the message, saved the turn and died before it stored the reply: the
    message sent again is answered from the tracker, and its turn does not run twice."""
    monkeypatch.setattr(idempotency, "claim_seconds", lambda: 0.3)
    with_agent = agent()
    await with_agent.tracker_store.save(saved_turn("anna", "m-7", "One moment, a colleague takes over."))
    assert fresh_store.claim("anna", "m-7", 0.3)  # the process that died
    turns = Turns()
    again = message("I want to talk to a person", "m-7")
    assert await handler(turns, with_agent).handle(again) is True
    assert turns.handled == []
    assert texts(again) == ["One moment, a colleague takes over."]
    assert fresh_store.get("anna", "m-7").reply[0]["text"] == "One moment, a colleague takes over."


async def test_a_claim_left_before_the_turn_was_saved_runs_the_turn(fresh_store, monkeypatch):
    monkeypatch.setattr(idempotency, "claim_seconds", lambda: 0.3)
    assert fresh_store.claim("anna", "m-8", 0.3)
    turns = Turns()
    again = message("hello", "m-8")
    assert await handler(turns).handle(again) is False
    assert turns.handled == ["hello"] and texts(again) == ["answer to hello"]


@pytest.mark.redis
def test_with_a_redis_lock_store_the_replies_are_in_that_redis_under_its_prefix():
    from rasa.core.lock_store import RedisLockStore

    from handoff.idempotency import RedisReplyStore

    lock_store = RedisLockStore(host="127.0.0.1", port=6379, db=0, key_prefix="test" + uuid.uuid4().hex[:8])
    store = idempotency.reply_store(lock_store)
    assert isinstance(store, RedisReplyStore) and store.client is lock_store.red
    assert store.prefix == lock_store.key_prefix.replace("lock:", "message:")
    assert idempotency.reply_store(lock_store) is store
    assert isinstance(idempotency.reply_store(InMemoryLockStore()), MemoryReplyStore)


# -- the REST channel -----------------------------------------------------------------------------


@pytest.fixture
def server():
    app = Sanic(f"rest-{uuid.uuid4().hex[:8]}")
    register([HandoffRestInput()], app, route="/webhooks/")
    turns = Turns()
    app.ctx.agent = SimpleNamespace(handle_message=turns, lock_store=InMemoryLockStore(), tracker_store=None)
    app.ctx.turns = turns
    return app


def test_rest_message_id_in_the_body_or_the_metadata(server):
    body = {"sender": "anna", "message": "when are you open?", "message_id": "m-1"}
    _, first = server.test_client.post(REST, json=body)
    _, again = server.test_client.post(REST, json={**body, "message_id": None, "metadata": {"message_id": "m-1"}})
    assert first.status == again.status == 200
    assert first.json == again.json == [{"recipient_id": "anna", "text": "answer to when are you open?"}]
    assert server.ctx.turns.handled == ["when are you open?"]
    _, other = server.test_client.post(REST, json={**body, "message_id": "m-2"})
    _, plain = server.test_client.post(REST, json={"sender": "anna", "message": "when are you open?"})
    assert other.json == plain.json == first.json
    assert len(server.ctx.turns.handled) == 3


@pytest.mark.parametrize("bad", ["", "a b", "x" * 129, 7])
def test_rest_refuses_an_invalid_message_id(server, bad):
    _, answer = server.test_client.post(REST, json={"sender": "anna", "message": "hi", "message_id": bad})
    assert answer.status == 400
    assert "message_id must be a string" in answer.text
    assert server.ctx.turns.handled == []


def test_the_credentials_use_this_channel(monkeypatch):
    from rasa.core.run import create_http_input_channels

    from handoff.settings import PROJECT_ROOT

    monkeypatch.setenv("SOCKETIO_REDIS_URL", "redis://127.0.0.1:6399/0")  # credentials.scaled.yml wants it

    for credentials in ("credentials.yml", "credentials.scaled.yml"):
        channels = create_http_input_channels(None, str(PROJECT_ROOT / credentials))
        rest = [channel for channel in channels if channel.name() == "rest"]
        assert len(rest) == 1 and isinstance(rest[0], HandoffRestInput), credentials


async def test_a_claim_left_after_the_turn_recorded_a_handoff_is_run_again_but_not_relayed(fresh_store, monkeypatch, store):
    """The dead replica's turn got as far as recording the handoff: the turn runs again (the
    customer gets an answer), and the relay knows the handoff's transcript has the message."""
    from handoff.store import new_event

    monkeypatch.setattr(idempotency, "claim_seconds", lambda: 0.3)
    assert fresh_store.claim("anna", "m-9", 0.3)  # the process that died...
    store.create_handoff(new_event("handoff.requested", str(uuid.uuid4()), "anna", reason="customer_request", priority="normal", queue="support"))
    turns = Turns()
    assert await handler(turns).handle(message("I want to talk to a person", "m-9")) is False
    assert turns.handled == ["I want to talk to a person"]
    assert idempotency.in_transcript("anna", "m-9")
    assert not idempotency.in_transcript("anna", "m-10") and not idempotency.in_transcript("bob", "m-9")


async def test_a_claim_left_before_the_handoff_was_recorded_is_relayed(fresh_store, monkeypatch, store):
    from handoff.store import new_event

    monkeypatch.setattr(idempotency, "claim_seconds", lambda: 0.3)
    store.create_handoff(new_event("handoff.requested", str(uuid.uuid4()), "anna", reason="customer_request", priority="normal", queue="support"))
    assert fresh_store.claim("anna", "m-11", 0.3)  # a message during the handoff, whose replica died
    await handler(Turns()).handle(message("my parcel never came", "m-11"))
    assert not idempotency.in_transcript("anna", "m-11")


async def test_a_message_rasa_gave_up_the_lock_for_is_given_again():
    """Rasa raises LockError before the turn starts when the message waited past the lock's
    lifetime; its REST channel would answer 200 with nothing and the message would be lost."""
    from rasa.core.lock_store import LockError

    class LockLostOnce(Turns):
        async def __call__(self, msg):
            if not self.handled:
                self.handled.append(None)
                raise LockError("Could not acquire lock")
            await super().__call__(msg)

    for key in ("m-1", None):
        turns = LockLostOnce()
        msg = message("hello", key)
        await handler(turns).handle(msg)
        assert turns.handled == [None, "hello"] and texts(msg) == ["answer to hello"]
