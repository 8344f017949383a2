import time
import uuid

import pytest

from handoff.server.broker import HandoffEventBroker
from handoff.store import ENDED, new_event


@pytest.fixture
def broker(settings, store):
    return HandoffEventBroker(settings, store, start_worker=False)


def start_handoff(store, conversation_id="c1"):
    body = new_event("handoff.requested", str(uuid.uuid4()), conversation_id, reason="customer_request", priority="normal", queue="support")
    handoff, _ = store.create_handoff(body)
    return handoff


def user(text, ts, intent="ask_delivery", sender="c1", **extra):
    return {"sender_id": sender, "event": "user", "text": text, "timestamp": ts, "parse_data": {"intent": {"name": intent}}, **extra}


def queued(store, handoff):
    return [e for e in store.events(handoff.id) if e.event_type != "handoff.requested"]


def test_messages_after_the_handoff_are_relayed_in_order(broker, store):
    handoff = start_handoff(store)
    later = handoff.created_at + 1
    assert broker.handle(user("first", later)) and broker.handle(user("second", later + 1))
    import json

    bodies = [json.loads(e.body) for e in queued(store, handoff)]
    assert [b["message"]["text"] for b in bodies] == ["first", "second"]
    assert all(b["event"] == "conversation.message" and b["message"]["role"] == "customer" for b in bodies)
    assert bodies[0]["handoff_id"] == handoff.id and bodies[0]["conversation_id"] == "c1"


def test_the_triggering_turn_is_not_relayed_again(broker, store):
    handoff = start_handoff(store)
    assert not broker.handle(user("I want a person", handoff.created_at - 0.5))
    assert queued(store, handoff) == []


@pytest.mark.parametrize(
    "event",
    [
        user("EXTERNAL: EXTERNAL_handback", 0, intent="EXTERNAL_handback", metadata={"is_external": True}),
        user("/restart", 0, intent="restart"),
        user("hi", 0, sender="someone-else"),
        {"sender_id": "c1", "event": "bot", "text": "Agent says hi", "timestamp": 0},
    ],
)
def test_other_events_are_not_relayed(broker, store, event):
    handoff = start_handoff(store)
    event = {**event, "timestamp": handoff.created_at + 1}
    assert not broker.handle(event)
    assert queued(store, handoff) == []


def test_no_active_handoff_nothing_relayed(broker, store):
    assert not broker.handle(user("hello", time.time()))


@pytest.mark.parametrize("kind, cause", [("restart", "customer_restart"), ("session_started", "session_expired")])
def test_rasa_ending_the_pause_ends_the_handoff_and_tells_the_helpdesk(broker, store, kind, cause):
    import json

    handoff = start_handoff(store)
    assert broker.handle({"sender_id": "c1", "event": kind, "timestamp": handoff.created_at + 1})
    assert store.get_handoff(handoff.id).state == ENDED
    [ended] = queued(store, handoff)
    assert json.loads(ended.body)["cause"] == cause
    # the next message is the bot's again: nothing relayed
    assert not broker.handle(user("hello", handoff.created_at + 2))


def test_publish_never_raises(broker, store, monkeypatch):
    monkeypatch.setattr(store, "active_handoff", lambda _: 1 / 0)
    broker.publish(user("x", time.time()))


def test_the_channels_message_id_goes_with_the_relayed_message(broker, store):
    import json

    from handoff.schemas import validate_outbound

    handoff = start_handoff(store)
    later = handoff.created_at + 1
    assert broker.handle(user("with an id", later, metadata={"message_id": "web-7"}))
    assert broker.handle(user("without", later + 1, metadata={}))
    bodies = [json.loads(e.body) for e in queued(store, handoff)]
    assert [b["message"].get("message_id") for b in bodies] == ["web-7", None]
    for body in bodies:
        validate_outbound(body)


def test_a_message_run_again_after_a_replica_died_in_its_handoff_turn_is_not_relayed_twice(broker, store):
    """The dead replica's turn recorded the handoff (its transcript has the message) but was not
    saved; the turn runs again on another replica, and its user event is not relayed."""
    from handoff.server import idempotency

    handoff = start_handoff(store, conversation_id="c9")
    idempotency.mark_in_transcript("c9", "web-9", 60)
    later = handoff.created_at + 1
    assert not broker.handle(user("I want to talk to a person", later, sender="c9", metadata={"message_id": "web-9"}))
    assert broker.handle(user("my parcel never came", later + 1, sender="c9", metadata={"message_id": "web-10"}))
    assert [e.event_type for e in queued(store, handoff)] == ["conversation.message"]
