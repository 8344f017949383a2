"""The JSON Schemas in docs/schemas and the validators in handoff.schemas."""

from __future__ import annotations

import copy
import json

import pytest
from jsonschema import Draft202012Validator

from handoff.schemas import (
    INBOUND_EVENTS,
    OUTBOUND_EVENTS,
    SCHEMA_DIR,
    SchemaValidationError,
    validate_inbound,
    validate_outbound,
)
from tests.support import agent_event, conversation_message, handoff_ended, handoff_requested


def _message(validate, body) -> str:
    with pytest.raises(SchemaValidationError) as caught:
        validate(body)
    return str(caught.value)


# --- the schema files -------------------------------------------------------------------------


@pytest.mark.parametrize("event", OUTBOUND_EVENTS + INBOUND_EVENTS)
def test_each_event_has_a_valid_draft_2020_12_schema(event):
    schema = json.loads((SCHEMA_DIR / f"{event}.json").read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)
    assert schema["properties"]["event"] == {"const": event}
    assert schema["additionalProperties"] is True


def test_event_name_constants():
    assert OUTBOUND_EVENTS == ("handoff.requested", "conversation.message", "handoff.ended", "follow_up.requested")
    assert INBOUND_EVENTS == ("agent.joined", "agent.message", "agent.handback", "agent.transferred")


def test_enumerations_match_the_contract():
    requested = json.loads((SCHEMA_DIR / "handoff.requested.json").read_text(encoding="utf-8"))
    props = requested["properties"]
    reasons = "customer_request bot_failure frustration urgent sensitive complex qualified_lead"
    assert props["reason"]["enum"] == (reasons + " repeat_contact timeout").split()
    assert props["priority"]["enum"] == ["low", "normal", "high", "urgent"]
    assert props["language"]["enum"] == ["en", "nl"]
    roles = props["transcript"]["items"]["properties"]["role"]["enum"]
    assert roles == ["customer", "bot", "agent"]
    ended = json.loads((SCHEMA_DIR / "handoff.ended.json").read_text(encoding="utf-8"))
    causes = "customer_restart session_expired no_agent_timeout customer_left no_agent_available out_of_hours".split()
    assert ended["properties"]["cause"]["enum"] == causes


# --- valid bodies -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        handoff_requested(),
        handoff_requested(customer={}, transcript=[], trigger={}),
        handoff_requested(
            reason="qualified_lead",
            queue="sales",
            language="nl",
            priority="normal",
            lead={"answers": {"company_size": "50-200", "budget": "yes"}, "score": 72},
        ),
        handoff_requested(future_field={"anything": True}),  # forward compatible
        conversation_message(),
        handoff_ended(),
        handoff_ended(cause="no_agent_timeout"),
    ],
)
def test_valid_outbound_bodies_pass(body):
    assert validate_outbound(copy.deepcopy(body)) == body


@pytest.mark.parametrize(
    "body",
    [
        agent_event("agent.joined"),
        agent_event("agent.message"),
        agent_event("agent.message", text="x" * 5000),
        agent_event("agent.handback"),
        agent_event("agent.handback", note="Refund approved, ticket 4411."),
        agent_event("agent.handback", note=None),
        agent_event("agent.joined", agent={"name": "Grace", "id": 7}),
    ],
)
def test_valid_inbound_bodies_pass(body):
    assert validate_inbound(copy.deepcopy(body)) == body


def test_confidence_may_be_null_and_intent_omitted():
    customer = {"role": "customer", "text": "hi", "timestamp": "2024-05-01T11:58:00Z"}
    agent = {"role": "agent", "text": "hello", "timestamp": "2024-05-01T11:58:05Z"}
    body = handoff_requested(transcript=[{**customer, "intent": None, "confidence": None}, agent])
    validate_outbound(body)


# --- invalid bodies, with the message a person reads ------------------------------------------


@pytest.mark.parametrize("body", [None, [], "text", 3])
def test_non_objects_are_rejected(body):
    assert "must be a JSON object" in _message(validate_inbound, body)
    assert "must be a JSON object" in _message(validate_outbound, body)


def test_unknown_event_lists_the_known_ones():
    message = _message(validate_inbound, agent_event("agent.left"))
    assert "unknown event 'agent.left'" in message
    for event in INBOUND_EVENTS:
        assert event in message


def test_direction_is_enforced():
    assert "unknown event 'handoff.requested'" in _message(validate_inbound, handoff_requested())
    assert "unknown event 'agent.joined'" in _message(
        validate_outbound, agent_event("agent.joined")
    )


def test_missing_event():
    body = agent_event("agent.joined")
    del body["event"]
    assert "'event' is a required property" in _message(validate_inbound, body)


def test_agent_message_needs_text():
    body = agent_event("agent.message")
    del body["text"]
    assert _message(validate_inbound, body) == "agent.message: 'text' is a required property"


def test_agent_message_text_must_not_be_empty():
    message = _message(validate_inbound, agent_event("agent.message", text=""))
    assert message.startswith("agent.message: at text: '' is too short")


def test_agent_message_text_length_is_limited():
    message = _message(validate_inbound, agent_event("agent.message", text="x" * 5001))
    assert "at text" in message and "5001" in message and "5000" in message


def test_agent_name_is_required():
    message = _message(validate_inbound, agent_event("agent.joined", agent={}))
    assert message == "agent.joined: at agent: 'name' is a required property"


def test_uuid_format_is_checked():
    message = _message(validate_inbound, agent_event("agent.joined", handoff_id="ticket-12"))
    assert "at handoff_id: 'ticket-12' is not a valid uuid" in message


@pytest.mark.parametrize("sent_at", ["yesterday", "2024-05-01T12:00:00", "2024-13-01T12:00:00Z"])
def test_sent_at_must_be_a_date_time_with_a_time_zone(sent_at):
    message = _message(validate_outbound, handoff_ended(sent_at=sent_at))
    assert f"at sent_at: '{sent_at}' is not a valid date-time" in message


def test_unknown_reason_lists_the_allowed_values():
    message = _message(validate_outbound, handoff_requested(reason="angry"))
    assert "at reason: 'angry' is not one of: customer_request, bot_failure" in message


def test_priority_and_language_enumerations():
    assert "at priority" in _message(validate_outbound, handoff_requested(priority="asap"))
    assert "at language" in _message(validate_outbound, handoff_requested(language="de"))


def test_qualified_lead_requires_lead():
    message = _message(validate_outbound, handoff_requested(reason="qualified_lead"))
    assert "'lead' is a required property" in message


def test_channel_needs_a_name():
    assert "at channel: 'name' is a required property" in _message(
        validate_outbound, handoff_requested(channel={"browser": "Safari"})
    )


def test_customer_must_be_an_object():
    message = _message(validate_outbound, handoff_requested(customer=None))
    assert message == "handoff.requested: at customer: expected an object, got null"


def test_customer_fields_may_say_whether_they_are_verified():
    customer = {
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "verified": {"name": True, "email": False},
        "sources": {"name": "identity", "email": "channel"},
    }
    validate_outbound(handoff_requested(customer=customer))
    validate_outbound(handoff_requested(customer={"name": "Ada"}))  # older assistants: no flags
    assert "at customer.verified.name" in _message(
        validate_outbound, handoff_requested(customer={**customer, "verified": {"name": "yes"}})
    )
    assert "at customer.sources.name" in _message(
        validate_outbound, handoff_requested(customer={**customer, "sources": {"name": "signed"}})
    )


def test_transcript_turn_problems_name_the_turn():
    body = handoff_requested()
    body["transcript"][1]["role"] = "robot"
    body["transcript"][2]["confidence"] = 1.5
    del body["transcript"][0]["timestamp"]
    message = _message(validate_outbound, body)
    assert "at transcript[0]: 'timestamp' is a required property" in message
    assert "at transcript[1].role: 'robot' is not one of: customer, bot, agent" in message
    assert "at transcript[2].confidence: 1.5 is greater than the maximum of 1" in message


def test_conversation_message_role_must_be_customer():
    body = conversation_message()
    body["message"]["role"] = "agent"
    message = _message(validate_outbound, body)
    assert "at message.role: must be 'customer'" in message


def test_handoff_ended_cause():
    message = _message(validate_outbound, handoff_ended(cause="bored"))
    assert message.startswith("handoff.ended: at cause: 'bored' is not one of: customer_restart")


def test_many_problems_are_summarised():
    body = {"event": "handoff.requested"}
    error = pytest.raises(SchemaValidationError, validate_outbound, body).value
    assert len(error.problems) > 5
    assert "more problems" in str(error)


def test_long_values_are_shortened_in_messages():
    message = _message(validate_outbound, handoff_requested(reason="x" * 1000))
    assert len(message) < 400
