import json

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import ActionExecuted, ConversationPaused, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.handoff_actions import ActionHandleFallback, ActionHandoff, ActionHandoffResume
from handoff.store import ENDED


def user(text, intent, confidence=0.9, ts=100.0):
    return {
        "event": "user",
        "text": text,
        "timestamp": ts,
        "parse_data": {"intent": {"name": intent, "confidence": confidence}, "text": text},
        "input_channel": "rest",
        "metadata": {},
    }


def tracker(events, sender="conv-1", **slots):
    latest = next((e["parse_data"] for e in reversed(events) if e["event"] == "user"), {})
    return Tracker(sender, {"language": "en", **slots}, latest, events, False, None, {}, "action_listen")


def responses(dispatcher):
    return [m["response"] for m in dispatcher.messages]


async def test_request_for_a_person_hands_off_and_pauses(receiver, store):
    events = [user("hello", "greet"), {"event": "bot", "text": "Hi!", "timestamp": 100.5}, user("I want a human", "request_human", 0.97, 101.0)]
    dispatcher = CollectingDispatcher()
    result = await ActionHandoff().run(dispatcher, tracker(events, customer_email="a@example.com"), {})

    [handoff] = store.handoffs("conv-1")
    assert result == [SlotSet("handoff_id", handoff.id), ConversationPaused(), ActionExecuted("action_listen")]
    assert responses(dispatcher) == ["utter_handoff_started", "utter_handoff_wait_minutes"]
    assert dispatcher.messages[1]["wait_minutes"] == 2
    [body] = receiver.events("handoff.requested")
    assert receiver.received[0].signature_ok
    assert body["handoff_id"] == handoff.id and body["reason"] == "customer_request"
    assert body["customer"] == {"email": "a@example.com", "verified": {"email": False}, "sources": {"email": "conversation"}}
    assert [t["text"] for t in body["transcript"]] == ["hello", "Hi!", "I want a human"]
    stored = store.get_handoff(handoff.id)
    assert (stored.ticket_id, stored.estimated_wait_seconds) == ("T-1", 120)


async def test_short_wait_is_said_as_under_a_minute(receiver, store):
    receiver.reply = {"ticket_id": "T-9", "estimated_wait_seconds": 20}
    dispatcher = CollectingDispatcher()
    await ActionHandoff().run(dispatcher, tracker([user("agent", "request_human")]), {})
    assert responses(dispatcher) == ["utter_handoff_started", "utter_handoff_wait_short"]


async def test_helpdesk_down_still_pauses_and_says_so_honestly(receiver, store):
    receiver.status = 503
    dispatcher = CollectingDispatcher()
    result = await ActionHandoff().run(dispatcher, tracker([user("agent", "request_human")]), {})
    assert ConversationPaused() in result
    assert responses(dispatcher) == ["utter_handoff_started", "utter_handoff_delayed"]
    [handoff] = store.handoffs("conv-1")
    [entry] = store.events(handoff.id)
    assert entry.status == "pending" and entry.attempts == 1  # the outbox worker retries it


async def test_slow_helpdesk_does_not_hold_the_turn(receiver, store, monkeypatch):
    monkeypatch.setenv("HANDOFF_FIRST_DELIVERY_WAIT", "0.5")
    from handoff.settings import get_settings

    get_settings.cache_clear()
    receiver.delay = 3
    dispatcher = CollectingDispatcher()
    import time

    start = time.monotonic()
    await ActionHandoff().run(dispatcher, tracker([user("agent", "request_human")]), {})
    assert time.monotonic() - start < 2
    assert responses(dispatcher)[-1] == "utter_handoff_delayed"


async def test_rejected_handoff_is_not_left_paused(receiver, store):
    receiver.status = 400
    dispatcher = CollectingDispatcher()
    result = await ActionHandoff().run(dispatcher, tracker([user("agent", "request_human")]), {})
    assert result == [] and responses(dispatcher) == ["utter_handoff_failed"]
    [handoff] = store.handoffs("conv-1")
    assert handoff.state == ENDED


async def test_no_second_handoff_while_one_is_active(receiver, store):
    for _ in range(2):
        await ActionHandoff().run(CollectingDispatcher(), tracker([user("agent", "request_human")]), {})
    assert len(store.handoffs("conv-1")) == 1
    assert len(receiver.events("handoff.requested")) == 1


async def test_first_misunderstanding_asks_to_rephrase(receiver, store):
    dispatcher = CollectingDispatcher()
    events = [user("hello", "greet"), user("blorp", "nlu_fallback", 0.3, 101)]
    assert await ActionHandleFallback().run(dispatcher, tracker(events), {}) == []
    assert responses(dispatcher) == ["utter_rephrase"]
    assert receiver.received == []


async def test_second_misunderstanding_in_a_row_hands_off_as_bot_failure(receiver, store):
    dispatcher = CollectingDispatcher()
    events = [user("blorp", "nlu_fallback", 0.3, 100), {"event": "bot", "text": "Sorry?", "timestamp": 100.2}, user("zzzt", "nlu_fallback", 0.2, 101)]
    result = await ActionHandleFallback().run(dispatcher, tracker(events), {})
    assert ConversationPaused() in result
    [body] = receiver.events("handoff.requested")
    assert body["reason"] == "bot_failure"
    assert body["trigger"]["intent"] == "nlu_fallback" and body["trigger"]["text"] == "zzzt"


async def test_misunderstandings_before_a_hand_back_do_not_count(receiver, store):
    events = [user("blorp", "nlu_fallback", 0.3, 100), {"event": "resume", "timestamp": 100.5}, user("zzzt", "nlu_fallback", 0.2, 101)]
    dispatcher = CollectingDispatcher()
    await ActionHandleFallback().run(dispatcher, tracker(events), {})
    assert responses(dispatcher) == ["utter_rephrase"]


async def test_resume_says_the_bot_is_back_and_clears_the_handoff():
    dispatcher = CollectingDispatcher()
    result = await ActionHandoffResume().run(dispatcher, tracker([], handoff_id="h"), {})
    assert result == [SlotSet("handoff_id", None)]
    assert responses(dispatcher) == ["utter_handoff_back"]


@pytest.mark.parametrize("path", ["/health"])
async def test_action_server_http_contract(path, receiver):
    """The action server's own HTTP contract, through rasa-sdk's app."""
    from rasa_sdk.endpoint import create_app

    app = create_app("actions")
    _, health = await app.asgi_client.get(path)
    assert health.status == 200
    body = {
        "next_action": "action_handoff",
        "sender_id": "http-1",
        "tracker": {
            "sender_id": "http-1",
            "slots": {"language": "en"},
            "latest_message": user("get me a manager", "request_human")["parse_data"],
            "events": [user("get me a manager", "request_human")],
            "paused": False,
            "latest_action_name": "action_listen",
        },
        "domain": {},
        "version": "3.6.2",
    }
    _, answer = await app.asgi_client.post("/webhook", content=json.dumps(body))
    assert answer.status == 200
    assert [e["event"] for e in answer.json["events"]] == ["slot", "pause", "action"]
    assert answer.json["responses"][0]["response"] == "utter_handoff_started"


# --- nobody to take it now: out of hours, nobody available -------------------------------------


async def test_out_of_hours_the_customer_hears_when_the_team_is_back_and_is_offered_a_follow_up(receiver, store, monkeypatch):
    monkeypatch.setenv("HANDOFF_NOW", "2026-12-06T03:00:00+01:00")  # Sunday night in Amsterdam
    dispatcher = CollectingDispatcher()
    result = await ActionHandoff().run(dispatcher, tracker([user("ik wil een medewerker", "request_human")], language="nl"), {})

    [handoff] = store.handoffs("conv-1")
    assert handoff.state == ENDED and handoff.end_cause == "out_of_hours"
    assert [m["text"] for m in dispatcher.messages] == [
        "Onze klantenservice is nu niet bereikbaar. We zijn er weer morgen om 09:00."
    ]
    assert result == [
        SlotSet("handoff_id", None),
        SlotSet("follow_up_handoff_id", handoff.id),
        FollowupAction("follow_up_form"),
    ]
    assert ConversationPaused() not in result
    # The helpdesk still gets the conversation (from the outbox), and a deadline for the detail.
    assert [e.event_type for e in store.events(handoff.id)] == ["handoff.requested"]
    assert "follow_up_deadline" in {t.kind for t in store.tasks(handoff.id) if t.done_at is None}


async def test_nobody_available_ends_the_handoff_at_once_and_offers_a_follow_up(receiver, store):
    receiver.reply = {"ticket_id": "T-7", "estimated_wait_seconds": None, "agents_available": 0, "queue_position": 1}
    dispatcher = CollectingDispatcher()
    result = await ActionHandoff().run(dispatcher, tracker([user("agent", "request_human")]), {})

    [handoff] = store.handoffs("conv-1")
    assert handoff.state == ENDED and handoff.end_cause == "no_agent_available" and handoff.ticket_id == "T-7"
    assert responses(dispatcher) == ["utter_handoff_nobody_available"]
    assert result[-2:] == [SlotSet("follow_up_handoff_id", handoff.id), FollowupAction("follow_up_form")]
    assert ConversationPaused() not in result


@pytest.mark.parametrize("available", [1, None, True])
async def test_agents_available_or_unknown_keeps_the_customer_waiting(receiver, store, available):
    receiver.reply = {"ticket_id": "T-8", "estimated_wait_seconds": 30}
    if available is not None:
        receiver.reply["agents_available"] = available
    dispatcher = CollectingDispatcher()
    result = await ActionHandoff().run(dispatcher, tracker([user("agent", "request_human")]), {})
    assert ConversationPaused() in result
    assert responses(dispatcher) == ["utter_handoff_started", "utter_handoff_wait_short"]


async def test_a_qualified_lead_out_of_hours_is_promised_a_call_on_the_number_they_gave(receiver, store, monkeypatch):
    import json as json_module

    from handoff.schemas import validate_outbound
    from handoff.triggers import load_rules

    monkeypatch.setenv("HANDOFF_NOW", "2026-12-05T11:00:00+01:00")  # Saturday: sales is closed
    lead = {"company_size": 40, "email": "ada@example.com", "phone": "+31 20 555 0147", "score": 80, "qualified": True}
    dispatcher = CollectingDispatcher()
    result = await ActionHandoff().hand_off(dispatcher, tracker([user("we need 40 seats", "ask_pricing")]), load_rules().get("qualified_lead"), lead=lead)

    [handoff] = store.handoffs("conv-1")
    assert handoff.end_cause == "out_of_hours"
    assert [m.get("text") or m["response"] for m in dispatcher.messages] == [
        "Our sales team is not available right now. We are back on Monday 7 December at 09:00.",
        "utter_follow_up_callback_due",
    ]
    assert dispatcher.messages[1]["phone"] == "+31205550147" and dispatcher.messages[1]["due"] == "on Monday 7 December at 13:00"
    assert FollowupAction("follow_up_form") not in result and ConversationPaused() not in result
    bodies = {e.event_type: json_module.loads(e.body) for e in store.events(handoff.id)}
    assert list(bodies) == ["handoff.requested", "handoff.ended", "follow_up.requested"]
    follow_up = validate_outbound(bodies["follow_up.requested"])
    assert (follow_up["origin"], follow_up["method"], follow_up["contact"]) == ("out_of_hours", "callback", {"phone": "+31205550147"})
    assert follow_up["queue"] == "sales" and follow_up["lead"]["score"] == 80
    assert bodies["handoff.ended"]["follow_up"] == {"method": "callback", "phone": "+31205550147"}
