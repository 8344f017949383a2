from handoff.payload import (
    build_handoff_requested,
    channel_details,
    current_session,
    customer_details,
    transcript,
)
from handoff.rules import Trigger

TRIGGER = Trigger("customer_request", "customer_request", "normal", "support", "The customer asked.", ("request_human",))


def user(text, intent, confidence=0.9, ts=100.0, **extra):
    return {
        "event": "user",
        "text": text,
        "timestamp": ts,
        "parse_data": {"intent": {"name": intent, "confidence": confidence}},
        "input_channel": extra.pop("input_channel", "rest"),
        "metadata": extra.pop("metadata", {}),
        **extra,
    }


def bot(text, ts=101.0, **metadata):
    return {"event": "bot", "text": text, "timestamp": ts, "metadata": metadata}


EVENTS = [
    user("old session", "greet", ts=1.0),
    {"event": "session_started", "timestamp": 50.0},
    {"event": "action", "name": "action_listen", "timestamp": 50.1},
    user("hi", "greet", 0.98765, ts=100.0, metadata={"customer": {"name": "Anna", "email": "a@example.com"}, "browser": "Firefox 120", "page": "/checkout"}),
    bot("Hello! How can I help?", ts=100.5),
    user("EXTERNAL: EXTERNAL_handback", "EXTERNAL_handback", ts=100.7, metadata={"is_external": True}),
    bot("Anna speaking", ts=100.8, handoff_role="agent", agent_name="Anna"),
    user("I want a person", "request_human", 0.93, ts=101.0, input_channel="socketio", metadata={"browser": "Firefox 120", "device": "desktop"}),
]


def test_current_session_starts_after_the_last_session_start():
    assert [e.get("text") for e in current_session(EVENTS)][:2] == [None, "hi"]


def test_transcript_has_roles_timestamps_intents_and_skips_external_events():
    turns = transcript(EVENTS)
    assert [(t["role"], t["text"]) for t in turns] == [
        ("customer", "hi"),
        ("bot", "Hello! How can I help?"),
        ("agent", "Anna speaking"),
        ("customer", "I want a person"),
    ]
    assert turns[0]["intent"] == "greet" and turns[0]["confidence"] == 0.9877
    assert turns[0]["timestamp"] == "1970-01-01T00:01:40.000Z"
    assert "intent" not in turns[1]
    assert turns[2]["agent_name"] == "Anna"


def test_customer_details_prefer_the_channel_then_fill_from_slots():
    slots = {"customer_name": "Not Anna", "customer_phone": "+31 6 1234 5678", "customer_email": None}
    assert customer_details(slots, {"customer": {"name": "Anna", "email": "a@example.com"}}) == {
        "name": "Anna",
        "email": "a@example.com",
        "phone": "+31 6 1234 5678",
    }
    assert customer_details({}, None) == {}


def test_channel_details_carry_technical_metadata_but_not_bookkeeping():
    details = channel_details(user("x", "greet", input_channel="socketio", metadata={"browser": "Safari", "is_external": False, "customer": {"name": "A"}}))
    assert details == {"name": "socketio", "browser": "Safari"}
    assert channel_details(None) == {"name": "unknown"}


def test_handoff_requested_follows_the_contract():
    body = build_handoff_requested(
        conversation_id="conv-1", events=EVENTS, slots={"customer_id": "C-42"}, trigger=TRIGGER, language="nl", signals=["explicit_request"]
    )
    assert body["event"] == "handoff.requested"
    assert body["conversation_id"] == "conv-1"
    assert body["reason"] == "customer_request" and body["priority"] == "normal" and body["queue"] == "support"
    assert body["language"] == "nl"
    assert body["trigger"] == {
        "name": "customer_request",
        "intent": "request_human",
        "confidence": 0.93,
        "text": "I want a person",
        "signals": ["explicit_request"],
    }
    # What the channel said of the customer earlier in the session is kept, slots fill the rest.
    assert body["customer"] == {"name": "Anna", "email": "a@example.com", "customer_id": "C-42"}
    assert body["channel"] == {"name": "socketio", "browser": "Firefox 120", "page": "/checkout", "device": "desktop"}
    assert len(body["transcript"]) == 4
    assert "lead" not in body
    assert body["sent_at"].endswith("Z") and len(body["event_id"]) == 36 and len(body["handoff_id"]) == 36
