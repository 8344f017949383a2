"""The whole handoff loop against the real Rasa server and action server on loopback."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from tests.support import helpdesk_event, signed

pytestmark = pytest.mark.e2e


def texts(messages):
    return [m.get("text", "") for m in messages]


def bot_texts(tracker):
    return [e.get("text") for e in tracker["events"] if e["event"] == "bot"]


def start_handoff(stack, helpdesk, sender, wording="I want to talk to a person"):
    before = len(helpdesk.events("handoff.requested", sender))
    stack.say(sender, "hello")
    stack.say(sender, wording)
    return helpdesk.wait_for("handoff.requested", sender, count=before + 1)[-1]


def test_full_loop_request_relay_agent_handback(stack, helpdesk):
    sender = f"loop-{uuid.uuid4().hex[:8]}"
    greeting = stack.say(sender, "hello", metadata={"browser": "Firefox 120", "customer": {"name": "Anna de Vries"}})
    assert greeting, "the bot answers a greeting"

    asked_at = time.monotonic()
    answer = stack.say(sender, "I want to talk to a person")
    requested = helpdesk.wait_for("handoff.requested", sender)[0]
    trigger_to_webhook = next(r.at for r in helpdesk.received if r.body is requested) - time.time() + time.monotonic() - asked_at
    print(f"trigger -> webhook received: {trigger_to_webhook * 1000:.0f} ms")

    # The customer hears who takes over, the wait (the helpdesk said 120 s) and that nothing is lost.
    joined = " ".join(texts(answer)).lower()
    assert "colleague" in joined and "2 min" in joined, answer

    # The webhook: signed, with the whole conversation and the reason.
    record = next(r for r in helpdesk.received if r.body is requested)
    assert record.signature_ok and record.headers["X-Handoff-Delivery"] == requested["event_id"]
    assert requested["reason"] == "customer_request" and requested["queue"] == "support"
    assert requested["customer"] == {"name": "Anna de Vries", "verified": {"name": False}, "sources": {"name": "channel"}}
    assert requested["channel"]["name"] == "rest"
    roles = [(t["role"], t["text"]) for t in requested["transcript"]]
    assert roles[0] == ("customer", "hello") and roles[1][0] == "bot"
    assert roles[-1] == ("customer", "I want to talk to a person")
    assert requested["transcript"][-1]["intent"] == "request_human"
    handoff_id = requested["handoff_id"]

    # Paused: the bot is silent, and what the customer says reaches the helpdesk.
    assert stack.tracker(sender)["paused"] is True
    assert stack.say(sender, "my parcel 4711 never arrived") == []
    [relayed] = helpdesk.wait_for("conversation.message", sender)
    assert relayed["handoff_id"] == handoff_id
    assert relayed["message"]["role"] == "customer" and relayed["message"]["text"] == "my parcel 4711 never arrived"

    # The agent joins and writes; both land in the tracker.
    assert stack.helpdesk_event(helpdesk_event("agent.joined", handoff_id, sender)).status_code == 200
    message = helpdesk_event("agent.message", handoff_id, sender, text="Hi Anna, I'm looking into parcel 4711 now.")
    assert stack.helpdesk_event(message).status_code == 200
    # The same event again (a helpdesk retry) is acknowledged but not done twice.
    repeat = stack.helpdesk_event(message)
    assert repeat.status_code == 200 and repeat.json()["status"] == "duplicate"
    events = stack.tracker(sender)["events"]
    agent_turns = [e for e in events if e["event"] == "bot" and (e.get("metadata") or {}).get("handoff_role") == "agent"]
    assert [e["text"] for e in agent_turns] == ["Hi Anna, I'm looking into parcel 4711 now."]
    assert agent_turns[0]["metadata"]["agent_name"] == "Sanne"
    assert any("Sanne" in (t or "") for t in bot_texts(stack.tracker(sender)))
    assert stack.tracker(sender)["paused"] is True

    # Hand-back: the bot resumes and says so; the next message is the bot's again.
    handback_at = time.monotonic()
    back = stack.helpdesk_event(helpdesk_event("agent.handback", handoff_id, sender, note="Parcel re-sent."))
    assert back.status_code == 200
    tracker = stack.tracker(sender)
    print(f"hand-back -> bot reply in tracker: {(time.monotonic() - handback_at) * 1000:.0f} ms")
    assert tracker["paused"] is False
    assert "anything else" in bot_texts(tracker)[-1].lower()
    reply = stack.say(sender, "what are your opening hours?")
    assert reply and all("colleague" not in t.lower() for t in texts(reply))
    assert len(helpdesk.events("conversation.message", sender)) == 1, "after the hand-back nothing is relayed"

    # A second hand-back: the handoff is over.
    again = stack.helpdesk_event(helpdesk_event("agent.handback", handoff_id, sender))
    assert again.status_code == 409

    # A later transcript shows the agent's turn.
    later = start_handoff(stack, helpdesk, sender, wording="can I speak to a manager")
    assert ("agent", "Hi Anna, I'm looking into parcel 4711 now.") in [(t["role"], t["text"]) for t in later["transcript"]]


def test_rephrase_once_then_hand_off(stack, helpdesk):
    sender = f"fallback-{uuid.uuid4().hex[:8]}"
    first = stack.say(sender, "qwertz blorp zzzt")
    assert first and "other words" in " ".join(texts(first)).lower(), first
    assert helpdesk.events("handoff.requested", sender) == []
    stack.say(sender, "flumm grabble snick")
    [requested] = helpdesk.wait_for("handoff.requested", sender)
    assert requested["reason"] == "bot_failure"
    assert stack.tracker(sender)["paused"] is True


@pytest.fixture(scope="module")
def handed_off(stack, helpdesk):
    sender = f"errors-{uuid.uuid4().hex[:8]}"
    return sender, start_handoff(stack, helpdesk, sender)["handoff_id"]


def test_bad_signature_is_401(stack, handed_off):
    sender, handoff_id = handed_off
    raw, headers = signed(helpdesk_event("agent.message", handoff_id, sender, text="hi"))
    headers["X-Handoff-Signature"] = "sha256=" + "0" * 64
    assert stack.helpdesk_event(raw, headers).status_code == 401


def test_stale_timestamp_is_401(stack, handed_off):
    sender, handoff_id = handed_off
    raw, headers = signed(helpdesk_event("agent.message", handoff_id, sender, text="hi"), now=time.time() - 301)
    answer = stack.helpdesk_event(raw, headers)
    assert answer.status_code == 401 and "300 s" in answer.json()["error"]


def test_malformed_json_is_400(stack):
    answer = stack.helpdesk_event(b'{"event": "agent.message", ')
    assert answer.status_code == 400 and "JSON" in answer.json()["error"]


def test_body_missing_fields_is_400_saying_what(stack, handed_off):
    sender, handoff_id = handed_off
    body = helpdesk_event("agent.message", handoff_id, sender)  # no text
    answer = stack.helpdesk_event(body)
    assert answer.status_code == 400 and "text" in answer.json()["error"]


def test_unknown_conversation_or_handoff_is_404(stack, handed_off):
    sender, handoff_id = handed_off
    assert stack.helpdesk_event(helpdesk_event("agent.joined", str(uuid.uuid4()), sender)).status_code == 404
    assert stack.helpdesk_event(helpdesk_event("agent.joined", handoff_id, "nobody-" + sender)).status_code == 404


def test_no_state_change_from_refused_events(stack, handed_off):
    sender, _ = handed_off
    tracker = stack.tracker(sender)
    assert tracker["paused"] is True
    assert not [e for e in tracker["events"] if (e.get("metadata") or {}).get("handoff_role") == "agent"]


def test_restart_during_handoff_tells_the_helpdesk(stack, helpdesk):
    sender = f"restart-{uuid.uuid4().hex[:8]}"
    requested = start_handoff(stack, helpdesk, sender)
    stack.say(sender, "/restart")
    [ended] = helpdesk.wait_for("handoff.ended", sender)
    assert ended["cause"] == "customer_restart" and ended["handoff_id"] == requested["handoff_id"]
    assert stack.tracker(sender)["paused"] is False
    late = stack.helpdesk_event(helpdesk_event("agent.handback", requested["handoff_id"], sender))
    assert late.status_code == 409
    assert json.loads(late.text)["error"]


async def test_agent_messages_reach_a_socketio_customer_live(stack, helpdesk):
    import asyncio

    import socketio

    received: asyncio.Queue = asyncio.Queue()
    client = socketio.AsyncClient()
    client.on("bot_uttered", lambda data: received.put_nowait(data))
    # The server issues the session id (handoff/server/socketio.py): use the one it confirms.
    confirmed: asyncio.Queue = asyncio.Queue()
    client.on("session_confirm", confirmed.put_nowait)

    async def next_text(timeout=30):
        return (await asyncio.wait_for(received.get(), timeout)).get("text", "")

    async def text_matching(predicate, timeout=30):
        """The first pushed text that satisfies ``predicate``; earlier ones are collected."""
        seen = []
        deadline = time.monotonic() + timeout
        while True:
            text = await next_text(max(deadline - time.monotonic(), 0.01))
            if predicate(text):
                return text, seen
            seen.append(text)

    await client.connect(stack.rasa_url, socketio_path="/socket.io", transports=["websocket"])
    try:
        await client.emit("session_request", {})
        session_id = await asyncio.wait_for(confirmed.get(), 10)
        await client.emit("user_uttered", {"message": "can I talk to a real person please", "session_id": session_id})
        assert "colleague" in (await next_text()).lower()
        [requested] = await asyncio.to_thread(helpdesk.wait_for, "handoff.requested", session_id)
        assert requested["channel"]["name"] == "socketio"

        handoff_id = requested["handoff_id"]
        body = helpdesk_event("agent.message", handoff_id, session_id, text="Hello, Sanne here. How can I help?")
        sent_at = time.monotonic()
        assert (await asyncio.to_thread(stack.helpdesk_event, body)).status_code == 200
        _, before = await text_matching(lambda t: t == "Hello, Sanne here. How can I help?")
        assert all("Sanne" not in t for t in before)
        print(f"agent message -> socket.io customer: {(time.monotonic() - sent_at) * 1000:.0f} ms")

        await client.emit("user_uttered", {"message": "thanks, my order is late", "session_id": session_id})
        [relayed] = await asyncio.to_thread(helpdesk.wait_for, "conversation.message", session_id)
        assert relayed["message"]["text"] == "thanks, my order is late"

        back = helpdesk_event("agent.handback", handoff_id, session_id)
        assert (await asyncio.to_thread(stack.helpdesk_event, back)).status_code == 200
        await text_matching(lambda t: "anything else" in t.lower())
    finally:
        await client.disconnect()
