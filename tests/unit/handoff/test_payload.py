import time

import jwt

from handoff.conversation import current_session
from handoff.identity import VerifiedIdentity
from handoff.payload import (
    build_handoff_requested,
    channel_details,
    customer_details,
    transcript,
)
from handoff.triggers import Trigger

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
        "verified": {"name": False, "email": False, "phone": False},
        "sources": {"name": "channel", "email": "channel", "phone": "conversation"},
    }
    assert customer_details({}, None) == {}


def test_a_verified_identity_wins_and_only_its_fields_are_verified():
    identity = VerifiedIdentity(customer_id="C-7", name="Anna de Vries", email=None, expires_at=0)
    given = {"customer": {"name": "Mallory", "email": "m@example.com", "customer_id": "C-1", "verified": {"name": True}}}
    details = customer_details({"customer_phone": "+31 6 1234 5678"}, given, identity)
    assert details == {
        "customer_id": "C-7",
        "name": "Anna de Vries",
        "email": "m@example.com",
        "phone": "+31 6 1234 5678",
        "verified": {"customer_id": True, "name": True, "email": False, "phone": False},
        "sources": {"customer_id": "identity", "name": "identity", "email": "channel", "phone": "conversation"},
    }


def test_a_customer_cannot_mark_their_own_fields_verified():
    forged = {"customer": {"name": "Mallory", "verified": {"name": True}, "sources": {"name": "identity"}}}
    assert customer_details({}, forged) == {"name": "Mallory", "verified": {"name": False}, "sources": {"name": "channel"}}


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
    assert body["customer"] == {
        "name": "Anna",
        "email": "a@example.com",
        "customer_id": "C-42",
        "verified": {"name": False, "email": False, "customer_id": False},
        "sources": {"name": "channel", "email": "channel", "customer_id": "conversation"},
    }
    assert body["channel"] == {"name": "socketio", "browser": "Firefox 120", "page": "/checkout", "device": "desktop"}
    assert len(body["transcript"]) == 4
    assert "lead" not in body
    assert body["sent_at"].endswith("Z") and len(body["event_id"]) == 36 and len(body["handoff_id"]) == 36


IDENTITY_SECRET = "payload-test-identity-secret-0123456789abcdef"


def _identity_events(token):
    return [
        user("hi", "greet", ts=100.0, metadata={"customer": {"name": "Mallory", "email": "m@example.com"}, "customer_identity": token}),
        user("I want a person", "request_human", 0.95, ts=101.0),
    ]


def test_handoff_requested_takes_a_signed_identity_as_verified(monkeypatch):
    monkeypatch.setenv("HANDOFF_IDENTITY_SECRET", IDENTITY_SECRET)
    token = jwt.encode({"sub": "C-7", "name": "Anna de Vries", "exp": int(time.time()) + 600}, IDENTITY_SECRET, algorithm="HS256")
    body = build_handoff_requested(conversation_id="conv-1", events=_identity_events(token), slots={}, trigger=TRIGGER)
    assert body["customer"]["name"] == "Anna de Vries" and body["customer"]["customer_id"] == "C-7"
    assert body["customer"]["email"] == "m@example.com"
    assert body["customer"]["verified"] == {"customer_id": True, "name": True, "email": False}
    # The token is a credential: it does not travel to the helpdesk.
    assert "customer_identity" not in body["channel"]
    assert token not in str(body)


def test_handoff_requested_without_a_valid_identity_verifies_nothing(monkeypatch):
    monkeypatch.setenv("HANDOFF_IDENTITY_SECRET", IDENTITY_SECRET)
    forged = jwt.encode({"sub": "C-7", "name": "Anna de Vries", "exp": int(time.time()) + 600}, "x" * 40, algorithm="HS256")
    expired = jwt.encode({"sub": "C-7", "exp": int(time.time()) - 3600}, IDENTITY_SECRET, algorithm="HS256")
    for token in (forged, expired, "not-a-token", {"sub": "C-7"}):
        body = build_handoff_requested(conversation_id="conv-1", events=_identity_events(token), slots={}, trigger=TRIGGER)
        assert body["customer"]["name"] == "Mallory"
        assert "customer_id" not in body["customer"]
        assert not any(body["customer"]["verified"].values())
        assert "customer_identity" not in body["channel"]


def test_without_an_identity_secret_nothing_is_verified(monkeypatch):
    monkeypatch.delenv("HANDOFF_IDENTITY_SECRET", raising=False)
    token = jwt.encode({"sub": "C-7", "exp": int(time.time()) + 600}, IDENTITY_SECRET, algorithm="HS256")
    body = build_handoff_requested(conversation_id="conv-1", events=_identity_events(token), slots={}, trigger=TRIGGER)
    assert body["customer"]["verified"] == {"name": False, "email": False}
