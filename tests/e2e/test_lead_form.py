"""The lead form over REST with the real Rasa and action servers: everything at once, and a
correction, in English and Dutch."""

from __future__ import annotations

import uuid

import pytest

pytestmark = pytest.mark.e2e


def new_sender(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize(
    "text, language",
    [
        ("We'd like a quote for our company: we're 250 people, budget about 50k, starting next month. I'm Anna de Vries, anna@acme.example", "en"),
        ("Wij willen een offerte voor ons bedrijf: we zijn met 250 mensen, budget zo'n 50.000 euro, starten volgende maand. Ik heet Anna de Vries, anna@acme.example", "nl"),
    ],
)
def test_every_detail_at_once_qualifies_without_a_question(stack, helpdesk, text, language):
    sender = new_sender(f"lead-all-{language}")
    stack.say(sender, text)
    [requested] = helpdesk.wait_for("handoff.requested", sender)
    assert requested["reason"] == "qualified_lead" and requested["language"] == language
    lead = requested["lead"]
    assert lead["company_size"] == 250 and lead["budget_eur"] == 50000.0 and lead["timeline_months"] == 1.0
    assert lead["name"] == "Anna de Vries" and lead["email"] == "anna@acme.example"


@pytest.mark.parametrize(
    "answers, correction, language",
    [
        (["We'd like a quote for our company", "we're 5 people", "within a month", "about 30k"], "no, 60 people", "en"),
        (["Wij willen graag een offerte voor ons bedrijf", "we zijn met 5 mensen", "binnen een maand", "ongeveer 30.000 euro"], "nee, 60 mensen", "nl"),
    ],
)
def test_out_of_order_answers_and_a_correction(stack, helpdesk, answers, correction, language):
    sender = new_sender(f"lead-fix-{language}")
    for answer in answers:
        stack.say(sender, answer)
    slots = stack.tracker(sender)["slots"]
    assert slots["lead_company_size"] == "5" and slots["lead_budget"] == "30000"
    assert slots["lead_timeline"] in ("within a month", "binnen een maand")
    assert slots["requested_slot"] == "customer_name"  # the timeline is not asked again
    stack.say(sender, correction)
    slots = stack.tracker(sender)["slots"]
    assert slots["lead_company_size"] == "60" and slots["customer_name"] is None
    stack.say(sender, "Anna de Vries")
    stack.say(sender, "anna@acme.example")
    [requested] = helpdesk.wait_for("handoff.requested", sender)
    assert requested["lead"]["company_size"] == 60 and requested["lead"]["name"] == "Anna de Vries"
