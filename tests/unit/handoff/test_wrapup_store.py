"""handoff.store: the agents' wrap-ups (``wrap_up`` of agent.handback), kept, read and erased with
the conversation; and the wrap-up's place in the agent.handback schema."""

from __future__ import annotations

import uuid

import pytest

from handoff.schemas import SchemaValidationError, validate_inbound
from handoff.store import WRAP_UP_OUTCOMES, WRAP_UP_REASONS, HandoffWrapUpRow
from tests.support import agent_event, handoff_requested

MISUNDERSTOOD = {"outcome": "resolved", "why": "bot_misunderstood", "intent": "ask_refund_status", "new_topic": False}


def open_handoff(store, conversation: str = "conv-a", now: float = 1000.0) -> str:
    body = handoff_requested(handoff_id=str(uuid.uuid4()), conversation_id=conversation)
    handoff, _ = store.create_handoff(body, now=now)
    return handoff.id


def test_a_wrap_up_is_kept_and_read_back(store):
    handoff_id = open_handoff(store)
    store.record_wrap_up(handoff_id, "conv-a", MISUNDERSTOOD, "Grace", note="Refund paid.", now=2000.0)
    assert store.wrap_ups() == [
        {
            "handoff_id": handoff_id,
            "conversation_id": "conv-a",
            "outcome": "resolved",
            "why": "bot_misunderstood",
            "intent": "ask_refund_status",
            "new_topic": False,
            "note": "Refund paid.",
            "agent": "Grace",
            "created_at": 2000.0,
        }
    ]


def test_optional_fields_default_and_the_clock_is_now(store):
    handoff_id = open_handoff(store)
    store.record_wrap_up(handoff_id, "conv-a", {"outcome": "needs_follow_up", "why": "policy_needs_person"}, None)
    [kept] = store.wrap_ups()
    assert (kept["intent"], kept["new_topic"], kept["note"], kept["agent"]) == (None, False, None, None)
    assert kept["created_at"] > 1_700_000_000


def test_wrap_ups_since_and_in_order(store):
    ids = [open_handoff(store, f"conv-{n}") for n in range(3)]
    for n, handoff_id in enumerate(ids):
        store.record_wrap_up(handoff_id, f"conv-{n}", {"outcome": "resolved", "why": "other"}, "Grace", now=3000.0 - n * 100)
    assert [w["handoff_id"] for w in store.wrap_ups()] == list(reversed(ids))
    assert [w["handoff_id"] for w in store.wrap_ups(since=2900.0)] == [ids[1], ids[0]]
    assert store.wrap_ups(since=3000.5) == []


def test_a_second_wrap_up_of_a_handoff_replaces_the_first(store):
    handoff_id = open_handoff(store)
    store.record_wrap_up(handoff_id, "conv-a", MISUNDERSTOOD, "Grace", now=2000.0)
    store.record_wrap_up(handoff_id, "conv-a", {"outcome": "not_resolved", "why": "other"}, "Alan", now=2100.0)
    [kept] = store.wrap_ups()
    assert (kept["outcome"], kept["why"], kept["intent"], kept["agent"], kept["created_at"]) == (
        "not_resolved",
        "other",
        None,
        "Alan",
        2100.0,
    )


@pytest.mark.parametrize(
    ("wrap_up", "problem"),
    [
        ({"outcome": "fine", "why": "other"}, "unknown wrap-up outcome 'fine'"),
        ({"outcome": "resolved", "why": "bored"}, "unknown wrap-up reason 'bored'"),
        ({"why": "other"}, "unknown wrap-up outcome None"),
    ],
)
def test_unknown_codes_are_refused(store, wrap_up, problem):
    with pytest.raises(ValueError, match=problem):
        store.record_wrap_up(open_handoff(store), "conv-a", wrap_up, "Grace")
    assert store.wrap_ups() == []


def test_wrap_ups_are_erased_with_the_conversation(store):
    kept_id = open_handoff(store, "conv-keep")
    gone_id = open_handoff(store, "conv-gone")
    store.record_wrap_up(kept_id, "conv-keep", MISUNDERSTOOD, "Grace")
    store.record_wrap_up(gone_id, "conv-gone", MISUNDERSTOOD, "Grace")

    assert store.erase_conversations(["conv-gone"], dry_run=True)["wrapups"] == 1
    assert len(store.wrap_ups()) == 2
    counts = store.erase_conversations(["conv-gone", "conv-unknown"])
    assert counts["wrapups"] == 1 and counts["handoffs"] == 1
    assert [w["handoff_id"] for w in store.wrap_ups()] == [kept_id]
    assert store.erase_conversations(["conv-gone"])["wrapups"] == 0


def test_erase_counts_name_wrapups_even_when_nothing_is_found(store):
    assert store.erase_conversations([]) == {
        "handoffs": 0,
        "outbox": 0,
        "tasks": 0,
        "inbound_events": 0,
        "topics": 0,
        "records": 0,
        "wrapups": 0,
    }


def test_the_table():
    assert HandoffWrapUpRow.__tablename__ == "handoff_wrapups"
    columns = [c.name for c in HandoffWrapUpRow.__table__.columns]
    assert columns == ["handoff_id", "conversation_id", "outcome", "why", "intent", "new_topic", "note", "agent", "created_at"]
    assert HandoffWrapUpRow.__table__.c.conversation_id.index


# --- the schema -----------------------------------------------------------------------------------


def test_the_codes_match_the_schema():
    from handoff.schemas import load_schema

    wrap_up = load_schema("agent.handback")["properties"]["wrap_up"]
    assert tuple(wrap_up["properties"]["outcome"]["enum"]) == WRAP_UP_OUTCOMES
    assert tuple(wrap_up["properties"]["why"]["enum"]) == WRAP_UP_REASONS
    assert wrap_up["additionalProperties"] is False
    assert wrap_up["required"] == ["outcome", "why"]


@pytest.mark.parametrize(
    "wrap_up",
    [
        MISUNDERSTOOD,
        {"outcome": "not_resolved", "why": "bot_misunderstood", "intent": None, "new_topic": True},
        {"outcome": "needs_follow_up", "why": "policy_needs_person"},
        *({"outcome": "resolved", "why": why} for why in WRAP_UP_REASONS),
        *({"outcome": outcome, "why": "other", "new_topic": False} for outcome in WRAP_UP_OUTCOMES),
    ],
)
def test_valid_wrap_ups_pass(wrap_up):
    body = agent_event("agent.handback", note="Done.", wrap_up=wrap_up)
    assert validate_inbound(body) is body


def test_a_handback_without_a_wrap_up_still_passes():
    assert validate_inbound(agent_event("agent.handback"))


@pytest.mark.parametrize(
    ("wrap_up", "problem"),
    [
        ({"why": "other"}, "at wrap_up: 'outcome' is a required property"),
        ({"outcome": "resolved"}, "at wrap_up: 'why' is a required property"),
        ({"outcome": "fixed", "why": "other"}, "at wrap_up.outcome: 'fixed' is not one of: resolved, needs_follow_up, not_resolved"),
        ({"outcome": "resolved", "why": "bored"}, "at wrap_up.why: 'bored' is not one of: bot_misunderstood"),
        ({"outcome": "resolved", "why": "other", "intent": ""}, "at wrap_up.intent: '' is too short"),
        ({"outcome": "resolved", "why": "other", "intent": 7}, "at wrap_up.intent: expected a string or null, got a number"),
        ({"outcome": "resolved", "why": "other", "intent": "x" * 256}, "at wrap_up.intent: too long: 256 characters, maximum 255"),
        ({"outcome": "resolved", "why": "other", "new_topic": "yes"}, "at wrap_up.new_topic: expected true or false, got a string"),
        ({"outcome": "resolved", "why": "other", "mood": "happy"}, "at wrap_up: Additional properties are not allowed ('mood' was unexpected)"),
        ("resolved", "at wrap_up: expected an object, got a string"),
        (None, "at wrap_up: expected an object, got null"),
    ],
)
def test_invalid_wrap_ups_are_refused(wrap_up, problem):
    with pytest.raises(SchemaValidationError) as caught:
        validate_inbound(agent_event("agent.handback", wrap_up=wrap_up))
    assert problem in str(caught.value)
    assert str(caught.value).startswith("agent.handback: ")


def test_the_envelope_stays_open_to_new_fields():
    body = agent_event("agent.handback", wrap_up=MISUNDERSTOOD, future_field={"anything": True})
    assert validate_inbound(body) is body


@pytest.mark.parametrize(
    ("wrap_up", "kept"),
    [
        ({"outcome": "resolved", "why": "other", "intent": "ask_refund_status", "new_topic": True}, (None, False)),
        ({"outcome": "resolved", "why": "bot_misunderstood", "intent": "ask_refund_status", "new_topic": True}, (None, True)),
        ({"outcome": "resolved", "why": "bot_misunderstood", "intent": "ask_refund_status"}, ("ask_refund_status", False)),
    ],
    ids=["other reason", "new topic", "intent"],
)
def test_the_intent_and_new_topic_count_only_when_the_bot_misunderstood(store, wrap_up, kept):
    store.record_wrap_up(open_handoff(store), "conv-a", wrap_up, "Grace")
    [row] = store.wrap_ups()
    assert (row["intent"], row["new_topic"]) == kept
