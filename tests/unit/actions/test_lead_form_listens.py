"""The lead form reads every answer a message holds: out of order, all at once, corrected."""

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.lead_actions import ValidateLeadForm
from handoff.leads import read_lead_details, read_timeline

DOMAIN = {"forms": {"lead_form": {"required_slots": ["lead_company_size", "lead_budget", "lead_timeline", "customer_name", "customer_email"]}}, "slots": {}}


def turn(text, requested=None, intent="inform", language="en", **slots):
    """A tracker whose latest message is ``text``, with Rasa's from_text candidate for the asked slot."""
    events = [{"event": "user", "text": text, "timestamp": 1.0, "parse_data": {"intent": {"name": intent, "confidence": 1}, "text": text}, "metadata": {}}]
    if requested:
        events.append({"event": "slot", "name": requested, "value": text, "timestamp": 1.1})
    filled = {"language": language, "requested_slot": requested, **slots}
    if requested:
        filled[requested] = text
    return Tracker("lead-2", filled, {"intent": {"name": intent, "confidence": 1}, "text": text}, events, False, None, {"name": "lead_form"}, "action_listen")


async def validate(text, requested=None, **kw):
    dispatcher = CollectingDispatcher()
    events = await ValidateLeadForm().run(dispatcher, turn(text, requested, **kw), DOMAIN)
    values = {e["name"]: e["value"] for e in events if e["event"] == "slot"}
    return values, [m["response"] for m in dispatcher.messages]


@pytest.mark.parametrize(
    "text, language",
    [
        ("We're about 50 people, budget around 20k, we'd like to start within a month. I'm Jan de Vries, jan@acme.example", "en"),
        ("We zijn met 50 mensen, budget zo'n 20.000 euro, we willen binnen een maand beginnen. Ik heet Jan de Vries, jan@acme.example", "nl"),
    ],
)
async def test_everything_at_once_fills_every_slot(text, language):
    values, said = await validate(text, None, language=language)
    assert values["lead_company_size"] == "50"
    assert values["lead_budget"] == "20000"
    assert read_timeline(values["lead_timeline"]) == 1.0
    assert values["customer_name"] == "Jan de Vries"
    assert values["customer_email"] == "jan@acme.example"
    assert said == []


@pytest.mark.parametrize("answer", ["within a month", "binnen een maand"])
async def test_a_timeline_given_for_the_budget_fills_the_timeline(answer):
    values, said = await validate(answer, "lead_budget")
    assert values["lead_budget"] is None
    assert read_timeline(values["lead_timeline"]) == 1.0
    assert said == []  # the form asks for the budget again


@pytest.mark.parametrize("name", ["Eline Hendriks", "my name is Eline Hendriks", "ik heet Eline Hendriks"])
async def test_a_name_given_for_the_timeline_is_a_name_not_a_date(name):
    values, said = await validate(name, "lead_timeline")
    assert values["lead_timeline"] is None
    assert values.get("customer_name") == ("Eline Hendriks" if name != "Eline Hendriks" else None)
    if name == "Eline Hendriks":
        assert said == ["utter_lead_invalid_timeline"]


@pytest.mark.parametrize("text", ["no, 60 people", "nee, 60 mensen", "sorry, we are 60 employees"])
async def test_a_correction_replaces_an_earlier_answer(text):
    values, said = await validate(text, "lead_timeline", lead_company_size="45", lead_budget="12000", intent="deny")
    assert values["lead_company_size"] == "60"
    assert values["lead_timeline"] is None
    assert said == []


@pytest.mark.parametrize(
    "requested, answer, response",
    [
        ("customer_name", "jan@acme.example", None),  # an e-mail address is no name, but is kept as the e-mail
        ("customer_name", "12345", "utter_lead_invalid_name"),
        ("customer_email", "Jan de Vries", "utter_lead_invalid_email"),
        ("lead_company_size", "9" * 400, "utter_lead_invalid_company_size"),
        ("lead_budget", "€ " + "9" * 400, "utter_lead_invalid_budget"),
        ("lead_timeline", "banana", "utter_lead_invalid_timeline"),
    ],
)
async def test_each_answer_is_checked_for_what_it_is(requested, answer, response):
    values, said = await validate(answer, requested)
    assert values[requested] is None
    assert said == ([response] if response else [])
    if requested == "customer_name" and "@" in answer:
        assert values["customer_email"] == answer


async def test_phone_and_company_are_kept_when_given():
    values, _ = await validate("our company is Acme BV, call me on +31 6 1234 5678", "lead_company_size")
    assert values["lead_company"] == "Acme BV"
    assert values["customer_phone"] == "+31612345678"


async def test_a_question_about_the_shop_fills_nothing():
    values, said = await validate("do you deliver to 50 people in 3 months?", "lead_budget", intent="ask_delivery")
    assert "lead_company_size" not in values and "lead_timeline" not in values


@pytest.mark.parametrize(
    "text, expected",
    [
        ("in maart", True),
        ("1 september", True),
        ("next quarter", True),
        ("volgend jaar", True),
        ("just looking", True),
        ("Jan de Vries", False),
        ("60 people", False),
    ],
)
def test_a_timeline_is_a_date_or_period(text, expected):
    assert ("timeline" in read_lead_details(text, "timeline")) is expected
