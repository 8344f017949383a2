"""Escalation triggers through the running stack, in Dutch and English."""

from __future__ import annotations

import uuid

import pytest

pytestmark = pytest.mark.e2e


def said(messages):
    return " ".join(m.get("text", "") for m in messages).lower()


def new_sender(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_dutch_customer_asks_for_a_medewerker(stack, helpdesk):
    sender = new_sender("nl")
    assert "hallo" in said(stack.say(sender, "Hallo, goedemorgen"))
    answer = said(stack.say(sender, "Ik wil graag met een medewerker spreken"))
    assert "medewerker" in answer
    [requested] = helpdesk.wait_for("handoff.requested", sender)
    assert requested["reason"] == "customer_request"
    assert requested["language"] == "nl"
    assert [t["text"] for t in requested["transcript"] if t["role"] == "customer"] == [
        "Hallo, goedemorgen",
        "Ik wil graag met een medewerker spreken",
    ]


@pytest.mark.parametrize(
    "text, reason, priority",
    [
        ("It's urgent, I'm leaving for the airport in two hours and my order isn't here", "urgent", "urgent"),
        ("Het is dringend, ik vertrek morgenochtend vroeg naar het buitenland", "urgent", "urgent"),
        ("I can't pay my invoice this month, can we arrange something?", "sensitive", "high"),
        ("Ik wil al mijn persoonsgegevens laten verwijderen", "sensitive", "high"),
        ("Someone placed an order with my account, I think it's fraud", "sensitive", "high"),
    ],
)
def test_urgent_and_sensitive_hand_off_at_once(stack, helpdesk, text, reason, priority):
    sender = new_sender("now")
    stack.say(sender, text)
    [requested] = helpdesk.wait_for("handoff.requested", sender)
    assert (requested["reason"], requested["priority"]) == (reason, priority)
    assert stack.tracker(sender)["paused"] is True


def test_out_of_scope_is_offered_first_and_can_be_declined(stack, helpdesk):
    sender = new_sender("decline")
    offer = said(stack.say(sender, "Can you engrave a custom text on the watch I bought last year?"))
    assert "colleague" in offer
    assert helpdesk.events("handoff.requested", sender) == []
    declined = said(stack.say(sender, "no thanks"))
    assert "what else" in declined
    assert helpdesk.events("handoff.requested", sender) == []
    assert stack.tracker(sender)["paused"] is False


def test_out_of_scope_offer_accepted_in_dutch(stack, helpdesk):
    sender = new_sender("accept")
    offer = said(stack.say(sender, "Repareren jullie ook een stofzuiger die buiten de garantie valt?"))
    assert "medewerker" in offer
    stack.say(sender, "ja graag")
    [requested] = helpdesk.wait_for("handoff.requested", sender)
    assert requested["reason"] == "complex" and requested["language"] == "nl"


def test_frustration_signals_are_listed(stack, helpdesk):
    sender = new_sender("angry")
    stack.say(sender, "where is my order?")
    stack.say(sender, "THIS DOES NOT HELP, THAT'S NOT WHAT I ASKED")
    [requested] = helpdesk.wait_for("handoff.requested", sender)
    assert requested["reason"] == "frustration"
    assert {"explicit_frustration", "caps"} <= set(requested["trigger"]["signals"])


def test_qualified_lead_goes_to_sales(stack, helpdesk):
    sender = new_sender("lead")
    stack.say(sender, "We'd like a quote for our company")
    for answer in ("about 250 employees", "around 50k", "next month", "Anna de Vries", "anna@example.com"):
        stack.say(sender, answer)
    [requested] = helpdesk.wait_for("handoff.requested", sender)
    assert requested["reason"] == "qualified_lead" and requested["queue"] == "sales"
    assert requested["lead"]["qualified"] is True and requested["lead"]["company_size"] == 250
    assert requested["customer"]["email"] == "anna@example.com"


def test_person_on_request_in_the_middle_of_the_lead_form(stack, helpdesk):
    sender = new_sender("lead-nl")
    stack.say(sender, "Wij willen graag een offerte voor zakelijk gebruik")
    stack.say(sender, "ongeveer 40 medewerkers")
    stack.say(sender, "geef me gewoon een medewerker")
    [requested] = helpdesk.wait_for("handoff.requested", sender)
    assert requested["reason"] == "customer_request"
    tracker = stack.tracker(sender)
    assert tracker["paused"] is True and not (tracker.get("active_loop") or {}).get("name")


@pytest.mark.parametrize(
    "text, language",
    [
        ("this bot is useless, how do I contact a human?", "en"),
        ("Je snapt me niet. Wie kan ik bellen over mijn bestelling?", "nl"),
    ],
)
def test_an_explicit_request_after_a_complaint_hands_off_at_once(stack, helpdesk, text, language):
    sender = new_sender("explicit")
    stack.say(sender, text)
    [requested] = helpdesk.wait_for("handoff.requested", sender)
    assert requested["reason"] == "customer_request" and requested["language"] == language
    assert requested["trigger"]["intent"] == "request_human" and requested["trigger"]["confidence"] == 1.0
    assert "explicit_request" in requested["trigger"]["signals"]
    assert stack.tracker(sender)["paused"] is True


def test_a_matter_recognised_with_little_confidence_is_asked_first(stack, helpdesk):
    # "/intent@confidence" is Rasa's own way to send an intent with a given confidence.
    sender = new_sender("unsure")
    question = said(stack.say(sender, "/money_trouble@0.6"))
    assert "problem with paying" in question
    assert stack.tracker(sender)["paused"] is False
    assert helpdesk.events("handoff.requested", sender) == []
    stack.say(sender, "yes please")
    [requested] = helpdesk.wait_for("handoff.requested", sender)
    assert (requested["reason"], requested["priority"]) == ("sensitive", "high")
    assert requested["trigger"]["signals"] == ["low_confidence"]
    assert stack.tracker(sender)["paused"] is True


def test_a_matter_recognised_with_little_confidence_can_be_declined(stack, helpdesk):
    sender = new_sender("unsure-no")
    assert "complaint" in said(stack.say(sender, "/complaint@0.55"))
    assert "what else" in said(stack.say(sender, "no thanks"))
    assert helpdesk.events("handoff.requested", sender) == []
    assert stack.tracker(sender)["paused"] is False


def test_a_confident_sensitive_matter_is_not_asked(stack, helpdesk):
    sender = new_sender("sure")
    stack.say(sender, "/money_trouble@0.97")
    [requested] = helpdesk.wait_for("handoff.requested", sender)
    assert requested["trigger"]["signals"] == []
    assert stack.tracker(sender)["paused"] is True


@pytest.mark.parametrize(
    "text, expected",
    [("what will the weather be like tomorrow?", "northwind shop's assistant"), ("zet een wekker voor morgenochtend om zeven uur", "northwind shop")],
)
def test_a_general_assistant_request_gets_the_scope_and_an_offer(stack, helpdesk, text, expected):
    sender = new_sender("oos")
    answer = said(stack.say(sender, text))
    assert expected in answer
    assert stack.tracker(sender)["paused"] is False
    assert helpdesk.events("handoff.requested", sender) == []


@pytest.mark.parametrize(
    "first, frustrated, again",
    [
        ("where's my package, it was due on monday", "this chat is completely pointless", "you keep giving me the same useless answer"),
        ("waar blijft mijn pakket, het zou maandag komen", "deze chat heeft echt geen enkel nut", "je geeft steeds hetzelfde nutteloze antwoord"),
    ],
)
def test_frustrated_again_after_an_ignored_offer_hands_off_without_a_second_offer(stack, helpdesk, first, frustrated, again):
    sender = new_sender("again")
    stack.say(sender, first)
    offer = stack.say(sender, frustrated)
    assert offer and helpdesk.events("handoff.requested", sender) == [], "a person is offered first"
    answer = stack.say(sender, again)
    [requested] = helpdesk.wait_for("handoff.requested", sender)
    assert requested["reason"] == "frustration"
    assert "frustrated_after_offer" in requested["trigger"]["signals"]
    assert stack.tracker(sender)["paused"] is True
    # The offer is not said a second time.
    assert not {m.get("text") for m in offer} & {m.get("text") for m in answer}


def test_an_offer_is_not_repeated_word_for_word(stack, helpdesk):
    sender = new_sender("reword")
    first = stack.say(sender, "Can you engrave a custom text on the watch I bought last year?")
    stack.say(sender, "no thanks")
    second = stack.say(sender, "Do you also repair vacuum cleaners that are out of warranty?")
    offers = [m.get("text") for m in first + second if "colleague" in (m.get("text") or "").lower()]
    assert len(offers) == 2 and offers[0] != offers[1], offers
