"""Scheduled handoff work: the task table, giving up while waiting, and the follow-up actions."""

import json
import time
import uuid

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.follow_up_actions import (
    ActionSubmitFollowUp,
    ValidateFollowUpForm,
    extract_phone,
    follow_up_detail,
)
from actions.handoff_actions import ActionHandoff, ActionHandoffResume
from handoff.schemas import validate_outbound
from handoff.server.broker import HandoffEventBroker
from handoff.store import (
    ASSIGNED,
    ENDED,
    TASK_NO_AGENT,
    TASK_RESUME,
    TASK_WAIT_UPDATE,
    new_event,
)
from handoff.triggers import load_rules


def requested(store, conversation_id="c1", queue="support", tasks=None, now=None):
    body = new_event("handoff.requested", str(uuid.uuid4()), conversation_id, reason="customer_request", priority="normal", queue=queue)
    handoff, _ = store.create_handoff(body, now=now, tasks=tasks)
    return handoff


def user(text, intent="ask_delivery", ts=100.0):
    return {"event": "user", "text": text, "timestamp": ts, "parse_data": {"intent": {"name": intent, "confidence": 0.9}, "text": text}}


def tracker(events, sender="c1", **slots):
    latest = next((e["parse_data"] for e in reversed(events) if e["event"] == "user"), {})
    return Tracker(sender, {"language": "en", **slots}, latest, events, False, None, {}, "action_listen")


# -- the task table --------------------------------------------------------------------------


def test_tasks_are_scheduled_with_the_handoff_and_due_in_order(store):
    handoff = requested(store, tasks={TASK_NO_AGENT: 300, TASK_WAIT_UPDATE: 120})
    assert {t.kind for t in store.tasks(handoff.id)} == {TASK_NO_AGENT, TASK_WAIT_UPDATE}
    assert store.due_tasks() == []
    due = store.due_tasks(now=time.time() + 301)
    assert [t.kind for t in due] == [TASK_WAIT_UPDATE, TASK_NO_AGENT]


def test_a_leased_task_is_not_run_twice_until_the_lease_ends(store):
    handoff = requested(store, tasks={TASK_NO_AGENT: 0})
    [task] = store.due_tasks(now=time.time() + 1)
    assert store.claim_task(task.id, lease_seconds=60) is not None
    assert store.claim_task(task.id, lease_seconds=60) is None  # another process
    assert store.due_tasks(now=time.time() + 1) == []
    assert store.claim_task(task.id, lease_seconds=60, now=time.time() + 61) is not None  # crashed holder
    store.complete_task(task.id)
    assert store.due_tasks(now=time.time() + 1000) == []
    assert store.tasks(handoff.id)[0].done_at is not None


def test_a_failed_task_is_retried_later(store):
    requested(store, tasks={TASK_NO_AGENT: 0})
    [task] = store.due_tasks(now=time.time() + 1)
    store.claim_task(task.id, 60)
    store.release_task(task.id, retry_in=10)
    assert store.due_tasks(now=time.time() + 1) == []
    assert [t.id for t in store.due_tasks(now=time.time() + 11)] == [task.id]


def test_enqueue_once_queues_one_message_of_a_type_per_handoff(store):
    handoff = requested(store)
    body = new_event("handoff.ended", handoff.id, "c1", cause="no_agent_timeout", follow_up=None)
    assert store.enqueue_once(body) is True
    assert store.enqueue_once(new_event("handoff.ended", handoff.id, "c1", cause="no_agent_timeout")) is False
    assert store.has_event(handoff.id, "handoff.ended")
    assert [e.event_type for e in store.events(handoff.id)] == ["handoff.requested", "handoff.ended"]


def test_queue_position_counts_earlier_waiting_handoffs_of_the_same_queue(store):
    now = time.time()
    first = requested(store, "a", now=now - 30)
    requested(store, "b", now=now - 20)
    requested(store, "s", queue="sales", now=now - 15)
    assigned = requested(store, "c", now=now - 10)
    store.mark_assigned(assigned.id, "Sanne")
    last = requested(store, "d", now=now)
    assert store.waiting_ahead(first) == 0
    assert store.waiting_ahead(last) == 2
    assert store.get_handoff(assigned.id).state == ASSIGNED


# -- giving up while waiting -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "gives_up"),
    [
        ("never mind", True),
        ("Never mind!", True),
        ("ok forget it", True),
        ("Laat maar, ik zoek het zelf wel uit", True),
        ("hoeft niet meer, bedankt", True),
        ("never mind the colour, the size is what I need to change on order 1234 today", False),
        ("I mind the delay", False),
        ("my parcel is damaged", False),
        ("", False),
    ],
)
def test_give_up_phrases_from_the_yaml(text, gives_up):
    assert load_rules().waiting.gives_up(text) is gives_up


def test_giving_up_before_an_agent_joined_ends_the_handoff_and_schedules_the_take_back(settings, store):
    broker = HandoffEventBroker(settings, store, start_worker=False)
    handoff = requested(store)
    event = {"sender_id": "c1", "event": "user", "text": "never mind", "timestamp": handoff.created_at + 1, "parse_data": {"intent": {"name": "deny"}}}
    assert broker.handle(event) is True
    ended = store.get_handoff(handoff.id)
    assert (ended.state, ended.end_cause) == (ENDED, "customer_left")
    bodies = [json.loads(e.body) for e in store.events(handoff.id)]
    assert [(b["event"], b.get("cause")) for b in bodies] == [("handoff.requested", None), ("handoff.ended", "customer_left")]
    assert [t.kind for t in store.due_tasks(now=time.time() + 1)] == [TASK_RESUME]


def test_giving_up_after_an_agent_joined_is_said_to_the_agent(settings, store):
    broker = HandoffEventBroker(settings, store, start_worker=False)
    handoff = requested(store)
    store.mark_assigned(handoff.id, "Sanne")
    event = {"sender_id": "c1", "event": "user", "text": "never mind", "timestamp": handoff.created_at + 1, "parse_data": {"intent": {"name": "deny"}}}
    assert broker.handle(event) is True
    assert store.get_handoff(handoff.id).state == ASSIGNED
    assert [e.event_type for e in store.events(handoff.id)] == ["handoff.requested", "conversation.message"]
    assert store.due_tasks(now=time.time() + 1) == []


# -- the actions -------------------------------------------------------------------------------


async def test_a_handoff_schedules_the_no_agent_timeout_and_the_wait_update(receiver, store, settings):
    dispatcher = CollectingDispatcher()
    await ActionHandoff().run(dispatcher, tracker([user("agent", "request_human")]), {})
    [handoff] = store.handoffs("c1")
    tasks = {t.kind: t.due_at - handoff.created_at for t in store.tasks(handoff.id)}
    assert tasks == pytest.approx({TASK_NO_AGENT: settings.no_agent_timeout, TASK_WAIT_UPDATE: settings.wait_update_after}, abs=1)


@pytest.mark.parametrize(
    ("cause", "response"),
    [("handed_back", "utter_handoff_back"), ("handback", "utter_handoff_back"), ("customer_left", "utter_handoff_cancelled"), (None, "utter_handoff_back")],
)
async def test_taking_back_says_what_fits_how_the_handoff_ended(store, cause, response):
    handoff = requested(store)
    if cause:
        store.end_handoff(handoff.id, cause)
    dispatcher = CollectingDispatcher()
    result = await ActionHandoffResume().run(dispatcher, tracker([], handoff_id=handoff.id), {})
    assert [m["response"] for m in dispatcher.messages] == [response]
    assert result == [SlotSet("handoff_id", None)]


async def test_no_agent_in_time_asks_for_a_contact_detail(store):
    handoff = requested(store)
    store.end_handoff(handoff.id, "no_agent_timeout")
    dispatcher = CollectingDispatcher()
    result = await ActionHandoffResume().run(dispatcher, tracker([], handoff_id=handoff.id), {})
    assert [m["response"] for m in dispatcher.messages] == ["utter_handoff_no_agent"]
    assert result == [SlotSet("handoff_id", None), SlotSet("follow_up_handoff_id", handoff.id), FollowupAction("follow_up_form")]


@pytest.mark.parametrize(
    ("text", "intent", "expected"),
    [
        ("call me on 06 12345678", "inform", "0612345678"),
        ("+31 (0)20 555 0147", "inform", "+31205550147"),
        ("mail me at Anna.de.Vries@example.com", "inform", "anna.de.vries@example.com"),
        ("no thanks", "deny", "declined"),
        ("what are your opening hours?", "ask_opening_hours", None),
    ],
)
def test_the_contact_detail_is_read_from_the_answer(text, intent, expected):
    dispatcher = CollectingDispatcher()
    result = ValidateFollowUpForm().validate_follow_up_contact(text, dispatcher, tracker([user(text, intent)]), {})
    got = result["follow_up_contact"]
    assert (got.lower() if got else got) == expected
    assert [m["response"] for m in dispatcher.messages] == ([] if expected else ["utter_follow_up_invalid"])


def test_extract_phone_needs_enough_digits():
    assert extract_phone("order 12345") is None
    assert extract_phone("bel 020-5550147") == "0205550147"


@pytest.mark.parametrize(
    ("contact", "detail", "message"),
    [
        (
            "0612345678",
            {"method": "callback", "phone": "0612345678"},
            {"response": "utter_follow_up_callback_due", "phone": "0612345678", "due": "today at 14:00"},
        ),
        (
            "anna@example.com",
            {"method": "email", "email": "anna@example.com"},
            {"response": "utter_follow_up_email_due", "email": "anna@example.com", "due": "today at 14:00"},
        ),
        ("declined", None, {"response": "utter_follow_up_declined"}),
    ],
)
async def test_submitting_the_follow_up_tells_the_helpdesk_once(store, monkeypatch, contact, detail, message):
    # Monday 10:00 in Amsterdam: support is open, and a follow-up is due 4 opening hours later.
    monkeypatch.setenv("HANDOFF_NOW", "2026-12-07T10:00:00+01:00")
    handoff = requested(store)
    store.end_handoff(handoff.id, "no_agent_timeout")
    assert follow_up_detail(contact) == detail
    for _ in range(2):
        dispatcher = CollectingDispatcher()
        slots = {"follow_up_contact": contact, "follow_up_handoff_id": handoff.id}
        result = await ActionSubmitFollowUp().run(dispatcher, tracker([], **slots), {})
        assert [{k: v for k, v in m.items() if k in ("response", "phone", "email", "due")} for m in dispatcher.messages] == [message]
        assert result == [SlotSet("follow_up_contact", None), SlotSet("follow_up_handoff_id", None)]
    [ended] = [json.loads(e.body) for e in store.events(handoff.id) if e.event_type == "handoff.ended"]
    assert ended["cause"] == "no_agent_timeout" and ended["follow_up"] == detail
    follow_ups = [json.loads(e.body) for e in store.events(handoff.id) if e.event_type == "follow_up.requested"]
    if detail is None:
        assert follow_ups == []
    else:
        [follow_up] = follow_ups
        validate_outbound(follow_up)
        assert follow_up["origin"] == "no_agent_timeout" and follow_up["method"] == detail["method"]
        assert follow_up["due_at"] == "2026-12-07T13:00:00.000Z"  # 14:00 in Amsterdam
        assert follow_up["queue"] == handoff.queue and follow_up["reason"] == handoff.reason
    assert store.due_tasks(now=time.time() + 10_000) == []  # no deadline task was scheduled here

