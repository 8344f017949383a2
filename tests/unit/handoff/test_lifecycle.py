"""handoff.lifecycle: end causes and their stored spelling, and the events that pause a conversation."""

import sqlalchemy as sa
from rasa.shared.core.events import ActionExecuted, ActiveLoop, ConversationPaused, Event, SlotSet
from rasa_sdk import events as sdk

from handoff import lifecycle
from handoff.lifecycle import EndCause
from handoff.store import HandoffStore
from tests.support import handoff_requested


def test_end_causes_keep_their_stored_values():
    assert {cause.value for cause in EndCause} == {
        "handed_back",
        "customer_restart",
        "session_expired",
        "no_agent_timeout",
        "customer_left",
        "delivery_rejected",
        "no_agent_available",
        "out_of_hours",
    }
    assert EndCause.CUSTOMER_LEFT == "customer_left" and str(EndCause.CUSTOMER_LEFT) == "customer_left"


def test_the_old_spelling_of_a_hand_back_reads_as_handed_back():
    assert EndCause("handback") is EndCause.HANDED_BACK
    assert EndCause.read("handback") is EndCause.HANDED_BACK
    assert EndCause.read(None) is None and EndCause.read("something new") is None


def test_opening_the_store_rewrites_old_hand_backs_and_keeps_everything_else(tmp_path):
    url = f"sqlite:///{tmp_path / 'handoff.db'}"
    store = HandoffStore(url)
    first, _ = store.create_handoff(handoff_requested(conversation_id="c1"))
    second, _ = store.create_handoff(handoff_requested(conversation_id="c2"))
    store.end_handoff(first.id, EndCause.CUSTOMER_LEFT)
    store.end_handoff(second.id, EndCause.HANDED_BACK)
    with store.engine.begin() as connection:  # as an older version stored it
        connection.execute(sa.text("UPDATE handoffs SET end_cause = 'handback' WHERE id = :id"), {"id": second.id})
    assert store.get_handoff(second.id).end_cause == "handed_back"  # mapped on read
    store.close()

    reopened = HandoffStore(url)
    with reopened.engine.connect() as connection:
        stored = dict(connection.execute(sa.text("SELECT id, end_cause FROM handoffs")).all())
    assert stored == {first.id: "customer_left", second.id: "handed_back"}
    reopened.close()


def test_pause_events_are_those_of_rasa_sdk():
    assert lifecycle.pause_events("h1", "lead_form", {"escalation": "offer", "handoff_offered": None}) == [
        sdk.SlotSet("handoff_id", "h1"),
        sdk.ActiveLoop(None),
        sdk.SlotSet("requested_slot", None),
        sdk.SlotSet("escalation", None),
        sdk.ConversationPaused(),
        sdk.ActionExecuted("action_listen"),
    ]


def test_pause_events_read_by_rasa_are_rasa_events():
    events = [Event.from_parameters(e) for e in lifecycle.pause_events("h1", extra=[lifecycle.slot_event("language", "nl")])]
    assert events == [
        SlotSet("handoff_id", "h1"),
        SlotSet("language", "nl"),
        ConversationPaused(),
        ActionExecuted("action_listen"),
    ]
    assert not any(isinstance(e, ActiveLoop) for e in events)
