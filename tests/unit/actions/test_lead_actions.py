import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import ConversationPaused
from rasa_sdk.executor import CollectingDispatcher

from actions.lead_actions import ActionSubmitLead, ValidateLeadForm


def tracker(**slots):
    event = {"event": "user", "text": "x", "timestamp": 1.0, "parse_data": {"intent": {"name": "inform", "confidence": 1}}, "metadata": {}}
    return Tracker("lead-1", {"language": "en", **slots}, event["parse_data"], [event], False, None, {"name": "lead_form"}, "lead_form")


@pytest.mark.parametrize(
    "method, given, expected",
    [
        ("validate_lead_company_size", "about 250 employees", "250"),
        ("validate_lead_company_size", "250 medewerkers", "250"),
        ("validate_lead_company_size", "no idea", None),
        ("validate_lead_budget", "about 50k", "50000"),
        ("validate_lead_budget", "€ 12.500", "12500"),
        ("validate_lead_budget", "lots", None),
        ("validate_lead_timeline", "within 3 months", "within 3 months"),
        ("validate_customer_email", "it's anna@example.com", "anna@example.com"),
        ("validate_customer_email", "anna at example", None),
    ],
)
def test_answers_are_read_from_free_text(method, given, expected):
    dispatcher = CollectingDispatcher()
    slot = method.removeprefix("validate_")
    assert getattr(ValidateLeadForm(), method)(given, dispatcher, tracker(), {}) == {slot: expected}
    if expected is None:
        assert dispatcher.messages[0]["response"].startswith("utter_lead_invalid_")


async def test_qualified_lead_goes_to_sales_with_answers_and_score(receiver, store):
    answers = dict(lead_company_size="250", lead_budget="50000", lead_timeline="next month", customer_name="Anna", customer_email="anna@example.com")
    dispatcher = CollectingDispatcher()
    events = await ActionSubmitLead().run(dispatcher, tracker(**answers), {})
    assert ConversationPaused() in events
    [body] = receiver.events("handoff.requested")
    assert body["reason"] == "qualified_lead" and body["queue"] == "sales" and body["priority"] == "high"
    assert body["lead"]["score"] == 100 and body["lead"]["qualified"] is True
    assert body["lead"]["company_size"] == 250 and body["lead"]["budget_eur"] == 50000.0
    assert body["lead"]["timeline_months"] == 1.0 and body["lead"]["email"] == "anna@example.com"


async def test_unqualified_lead_gets_self_serve_and_no_promise(receiver, store):
    answers = dict(lead_company_size="2", lead_budget="300", lead_timeline="just looking", customer_name="Bo", customer_email="bo@example.com")
    dispatcher = CollectingDispatcher()
    events = await ActionSubmitLead().run(dispatcher, tracker(**answers), {})
    assert ConversationPaused() not in events
    # No e-mail is promised: the helpdesk contract has no follow-up without a handoff.
    assert [m["response"] for m in dispatcher.messages] == ["utter_lead_not_qualified"]
    assert receiver.received == []
