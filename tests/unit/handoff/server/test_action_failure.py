"""A failing custom action hands off from the Rasa process (handoff/server/patches/action_failure.py).

A real ``RemoteAction`` calls a loopback endpoint that refuses connections, answers 500 or answers
400; the tracker, domain and response generator are Rasa's own, built from the project's domain.
"""

from __future__ import annotations

import json
import logging
import socket
import time
import uuid

import pytest
from aiohttp import web
from rasa.core.actions.action import ActionExecutionRejection, ActionExtractSlots, RemoteAction
from rasa.core.channels.channel import CollectingOutputChannel
from rasa.core.nlg import TemplatedNaturalLanguageGenerator
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ActiveLoop,
    BotUttered,
    ConversationPaused,
    ConversationResumed,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.exceptions import RasaException
from rasa.utils.endpoints import EndpointConfig

from handoff.schemas import validate_outbound
from handoff.server.patches import action_failure
from handoff.settings import PROJECT_ROOT
from handoff.store import TASK_NO_AGENT, HandoffRow

ENGLISH_REQUEST = "I want to talk to a person"
DUTCH_REQUEST = "Ik wil graag met een medewerker van de klantenservice praten"


@pytest.fixture(scope="module")
def domain():
    return Domain.load(str(PROJECT_ROOT / "domain.yml"))


@pytest.fixture(scope="module")
def nlg(domain):
    return TemplatedNaturalLanguageGenerator(domain.responses)


def response_text(domain, name, language):
    """The text of a domain response in ``language`` (Dutch variants carry a slot condition)."""
    for variant in domain.responses[name]:
        conditions = variant.get("condition") or []
        if language == "nl" and any(c.get("value") == "nl" for c in conditions):
            return variant["text"]
        if language == "en" and not conditions:
            return variant["text"]
    raise AssertionError(f"{name} has no {language} variant")


class Wakes:
    """Stands in for the outbox worker's wake: counts calls."""

    def __init__(self) -> None:
        self.count = 0

    def wake(self) -> None:
        self.count += 1


@pytest.fixture
def wakes():
    waker = Wakes()
    action_failure.uninstall()
    action_failure.install(on_recorded=waker.wake)
    yield waker
    action_failure.uninstall()


@pytest.fixture
def refused_url():
    """A loopback address where nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/webhook"


@pytest.fixture
async def action_server():
    """A loopback action server: /500 fails, /400 rejects (as a form does), /ok answers."""

    async def fail(request):
        await request.read()
        return web.Response(status=500, text="Internal Server Error")

    async def reject(request):
        body = await request.json()
        error = {"action_name": body["next_action"], "error": "not this time"}
        return web.json_response(error, status=400)

    async def ok(request):
        await request.read()
        return web.json_response({"events": [{"event": "slot", "name": "customer_name", "value": "Anna"}], "responses": []})

    app = web.Application()
    app.router.add_post("/500", fail)
    app.router.add_post("/400", reject)
    app.router.add_post("/ok", ok)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


def conversation(domain, text, intent="request_human", sender=None, extra=(), before=()):
    """A tracker as Rasa holds it when the policies have just predicted the next action."""
    now = time.time() - 10
    events = [
        ActionExecuted("action_session_start", timestamp=now),
        SessionStarted(timestamp=now),
        ActionExecuted("action_listen", timestamp=now),
        UserUttered("hello", intent={"name": "greet", "confidence": 0.99}, input_channel="rest", timestamp=now + 1),
        ActionExecuted("utter_greet", timestamp=now + 2),
        BotUttered(response_text(domain, "utter_greet", "en"), timestamp=now + 2),
        ActionExecuted("action_listen", timestamp=now + 3),
        *before,
        UserUttered(
            text,
            intent={"name": intent, "confidence": 0.93},
            input_channel="rest",
            metadata={"browser": "Firefox 126"},
            timestamp=now + 4,
        ),
        *extra,
    ]
    return DialogueStateTracker.from_events(sender or f"c-{uuid.uuid4().hex[:8]}", events, slots=domain.slots)


async def run(url, name, domain, nlg, tracker):
    action = RemoteAction(name, EndpointConfig(url))
    return await action.run(CollectingOutputChannel(), nlg, tracker, domain)


def outbox_bodies(store, handoff_id):
    return [json.loads(e.body) for e in store.events(handoff_id)]


async def test_unreachable_action_server_hands_off(domain, nlg, store, settings, wakes, refused_url, caplog):
    tracker = conversation(domain, ENGLISH_REQUEST)
    caplog.set_level(logging.INFO)

    events = await run(refused_url, "action_handoff", domain, nlg, tracker)

    [handoff] = store.handoffs(tracker.sender_id)
    assert [type(e) for e in events] == [BotUttered, SlotSet, ConversationPaused, ActionExecuted]
    assert events[0].text == response_text(domain, "utter_handoff_technical", "en")
    assert events[1] == SlotSet("handoff_id", handoff.id)
    assert events[-1].action_name == "action_listen"
    assert (handoff.reason, handoff.state, handoff.language, handoff.queue) == ("bot_failure", "requested", "en", "support")

    [body] = outbox_bodies(store, handoff.id)
    validate_outbound(body)
    assert body["event"] == "handoff.requested" and body["conversation_id"] == tracker.sender_id
    assert body["reason"] == "bot_failure" and body["language"] == "en"
    assert body["trigger"]["signals"] == ["action_failed"]
    assert body["trigger"]["action"] == "action_handoff"
    assert body["trigger"]["intent"] == "request_human" and body["trigger"]["text"] == ENGLISH_REQUEST
    assert [(t["role"], t["text"]) for t in body["transcript"]] == [
        ("customer", "hello"),
        ("bot", response_text(domain, "utter_greet", "en")),
        ("customer", ENGLISH_REQUEST),
    ]
    assert body["channel"] == {"name": "rest", "browser": "Firefox 126"}
    # The same timers as any handoff (nobody joins: the bot takes the conversation back).
    assert TASK_NO_AGENT in [t.kind for t in store.tasks(handoff.id)]
    # The outbox worker is woken for it rather than waiting for its next poll.
    assert wakes.count == 1
    # Ids and action names in the log; never what the customer wrote.
    assert any(handoff.id in r.getMessage() and "action_handoff" in r.getMessage() for r in caplog.records)
    assert all(ENGLISH_REQUEST not in r.getMessage() and "hello" not in r.getMessage() for r in caplog.records)


async def test_a_500_hands_off_in_the_customers_language(domain, nlg, store, wakes, action_server):
    # The language slot is still at its initial value (action_assess_turn never answered): the
    # latest message decides.
    tracker = conversation(domain, DUTCH_REQUEST)
    assert tracker.get_slot("language") == "en"

    events = await run(f"{action_server}/500", "action_handoff", domain, nlg, tracker)

    [handoff] = store.handoffs(tracker.sender_id)
    assert events[0].text == response_text(domain, "utter_handoff_technical", "nl")
    assert SlotSet("language", "nl") in events and isinstance(events[-2], ConversationPaused)
    [body] = outbox_bodies(store, handoff.id)
    assert body["language"] == "nl" and handoff.language == "nl"
    assert body["trigger"]["signals"] == ["action_failed"] and body["reason"] == "bot_failure"


async def test_a_language_set_earlier_is_kept(domain, nlg, store, wakes, refused_url):
    # Set to Dutch by an earlier turn; a short message does not change that.
    tracker = conversation(domain, "ok", intent="affirm", before=[SlotSet("language", "nl")])

    events = await run(refused_url, "action_offer_handoff", domain, nlg, tracker)

    assert events[0].text == response_text(domain, "utter_handoff_technical", "nl")
    assert not [e for e in events if isinstance(e, SlotSet) and e.key == "language"]
    [handoff] = store.handoffs(tracker.sender_id)
    assert handoff.language == "nl"


async def test_a_rejection_still_raises(domain, nlg, store, wakes, action_server):
    tracker = conversation(domain, "20 people", intent="inform")

    with pytest.raises(ActionExecutionRejection):
        await run(f"{action_server}/400", "action_submit_lead", domain, nlg, tracker)

    assert store.handoffs(tracker.sender_id) == [] and wakes.count == 0


async def test_an_answering_action_server_is_untouched(domain, nlg, store, wakes, action_server):
    tracker = conversation(domain, ENGLISH_REQUEST)

    events = await run(f"{action_server}/ok", "action_handoff", domain, nlg, tracker)

    assert events == [SlotSet("customer_name", "Anna")]
    assert store.handoffs(tracker.sender_id) == []


@pytest.mark.parametrize("name", ["action_assess_turn", "validate_lead_form", "action_validate_slot_mappings"])
async def test_actions_rasa_runs_by_itself_are_not_handed_off(domain, nlg, store, wakes, refused_url, name):
    tracker = conversation(domain, ENGLISH_REQUEST)

    with pytest.raises(RasaException):
        await run(refused_url, name, domain, nlg, tracker)

    assert store.handoffs(tracker.sender_id) == []


async def test_a_failing_slot_mapping_only_loses_its_slots(domain, nlg, store, wakes, refused_url):
    # As Rasa runs it after every customer message: action_extract_slots calls action_assess_turn.
    tracker = conversation(domain, DUTCH_REQUEST)

    events = await ActionExtractSlots(EndpointConfig(refused_url)).run(CollectingOutputChannel(), nlg, tracker, domain)

    assert not [e for e in events if isinstance(e, (ConversationPaused, BotUttered))]
    assert store.handoffs(tracker.sender_id) == []


async def test_a_paused_conversation_is_left_alone(domain, nlg, store, wakes, refused_url):
    tracker = conversation(domain, ENGLISH_REQUEST, extra=[ConversationPaused()])

    with pytest.raises(RasaException):
        await run(refused_url, "action_handoff", domain, nlg, tracker)

    assert store.handoffs(tracker.sender_id) == []


async def test_a_failing_hand_back_does_not_hand_off_again(domain, nlg, store, wakes, refused_url):
    # The helpdesk handed back: resume, then EXTERNAL_handback runs action_handoff_resume.
    handback = UserUttered.create_external("EXTERNAL_handback")
    tracker = conversation(domain, ENGLISH_REQUEST, extra=[ConversationResumed(), handback])

    with pytest.raises(RasaException):
        await run(refused_url, "action_handoff_resume", domain, nlg, tracker)

    assert store.handoffs(tracker.sender_id) == [] and wakes.count == 0


async def test_an_active_handoff_is_paused_again_not_requested_twice(domain, nlg, store, wakes, refused_url):
    tracker = conversation(domain, ENGLISH_REQUEST)
    first = await run(refused_url, "action_handoff", domain, nlg, tracker)
    [handoff] = store.handoffs(tracker.sender_id)

    # Rasa un-paused without ending the handoff, and an action fails again.
    again = conversation(domain, ENGLISH_REQUEST, sender=tracker.sender_id, before=first)
    again.update(ConversationResumed())
    events = await run(refused_url, "action_handoff", domain, nlg, again)

    assert store.handoffs(tracker.sender_id) == [handoff]
    assert len(store.events(handoff.id)) == 1 and wakes.count == 1
    assert SlotSet("handoff_id", handoff.id) in events and isinstance(events[-2], ConversationPaused)


async def test_an_active_form_is_closed(domain, nlg, store, wakes, refused_url):
    tracker = conversation(
        domain, "we have 40 people", intent="inform",
        before=[ActiveLoop("lead_form"), SlotSet("requested_slot", "lead_company_size")],
    )

    events = await run(refused_url, "action_submit_lead", domain, nlg, tracker)

    assert ActiveLoop(None) in events and SlotSet("requested_slot", None) in events
    assert isinstance(events[-2], ConversationPaused)


async def test_a_failing_store_leaves_rasa_to_it(domain, nlg, store, wakes, refused_url, caplog):
    HandoffRow.__table__.drop(store.engine)
    tracker = conversation(domain, ENGLISH_REQUEST)

    with pytest.raises(RasaException):
        await run(refused_url, "action_handoff", domain, nlg, tracker)

    assert wakes.count == 0
    [record] = [r for r in caplog.records if r.name == "handoff.server.patches.action_failure"]
    assert record.levelno == logging.ERROR
    assert "action_handoff" in record.getMessage() and tracker.sender_id in record.getMessage()
    assert ENGLISH_REQUEST not in record.getMessage()


def test_install_wraps_once_and_uninstall_restores():
    action_failure.uninstall()
    original = RemoteAction.run
    action_failure.install()
    wrapped = RemoteAction.run
    action_failure.install()
    assert RemoteAction.run is wrapped and wrapped is not original and action_failure.installed()
    action_failure.uninstall()
    assert RemoteAction.run is original and not action_failure.installed()


def test_not_predicted_actions_come_from_the_domain(domain):
    names = action_failure.not_predicted_actions(domain)
    assert {"action_assess_turn", "validate_lead_form", "validate_follow_up_form"} <= names
    assert not {"action_handoff", "action_handoff_resume", "action_submit_lead"} & names
