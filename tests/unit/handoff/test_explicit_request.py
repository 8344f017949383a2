"""The keyword backstop for explicit requests for a person (handoff/explicit_request.py)."""

import pytest
import yaml

from handoff.explicit_request import ExplicitRequestConfig, normalise
from handoff.triggers import RulesError, load_rules, parse_rules


@pytest.fixture(scope="module")
def matcher():
    return load_rules().explicit_request


@pytest.mark.parametrize(
    "text",
    [
        "agent",
        "Human please!",
        "I want to talk to a person",
        "this bot is useless, how do I contact a human?",
        "you don't understand me. can I reach someone from customer service",
        "tlak to a huamn",
        "speak to an agnet",
        "i wanna talk with a live agenrt",
        "connect me with a representative",
        "can someone call me back",
        "what is your phone number?",
        "is anyone there?",
        "I'd rather have a real person",
        "Get me your manager",
        "medewerker!",
        "kan ik een medewerker spreken",
        "ik wil iemand spreken",
        "met een persoon spreken",
        "Hoe kan ik contact opnemen met de klantenservice?",
        "wie kan ik bellen",
        "is er iemand aanwezig",
        "zijn jullie telefonisch bereikbaar?",
        "ik wil een mens",
        "medwerker graag",
        "dit helpt niet, ik wil een collega",
        "Mag ik uw leidinggevende?",
    ],
)
def test_explicit_requests_in_both_languages(matcher, text):
    assert matcher.match(text) is not None, text


@pytest.mark.parametrize(
    "text",
    [
        "customer service hours?",
        "someone hacked my account",
        "I want to give someone a gift card",
        "I need an invoice for my manager",
        "how do I become a travel agent",
        "who is the manager of Ajax",
        "how do I manage my account",
        "I need stuff for my kitchen",
        "ok talk to you later",
        "I want to change my phone number",
        "Moet er iemand thuis zijn bij de bezorging?",
        "ik wil mijn telefoonnummer wijzigen",
        "niemand heeft mijn pakket aangenomen",
        "wat voor weer wordt het morgen",
        "",
    ],
)
def test_not_requests(matcher, text):
    assert matcher.match(text) is None, text


def test_words_are_compared_without_case_or_accents():
    assert normalise("Één MEDEWERKER, graag’s") == ["een", "medewerker", "graag's"]


def test_a_person_word_takes_a_short_ending_but_a_verb_no_past_tense(matcher):
    assert matcher.match("agents please") is not None
    assert matcher.match("are there medewerkers online, ik wil bellen") is not None
    assert matcher.match("I talked to your colleague yesterday") is None


def test_a_very_long_message_is_handled_word_by_word(matcher):
    assert matcher.match("x" * 16000) is None
    assert matcher.match("blah " * 3000 + "I want to talk to a human") is not None


def test_an_empty_section_matches_nothing():
    assert ExplicitRequestConfig.from_dict(None).match("agent") is None


def test_a_bad_section_is_reported_with_its_place():
    data = yaml.safe_load(open(load_rules.__globals__["rules_path"](), encoding="utf-8"))
    data["explicit_request"]["persons"] = {"de": ["Mensch"]}
    with pytest.raises(RulesError, match="explicit_request"):
        parse_rules(data)


def test_min_confidence_needs_a_confirming_question():
    data = yaml.safe_load(open(load_rules.__globals__["rules_path"](), encoding="utf-8"))
    del data["triggers"]["money_trouble"]["confirm_response"]
    with pytest.raises(RulesError, match="confirm_response"):
        parse_rules(data)


def test_first_turn_moves():
    rules = load_rules()
    assert rules.first_turn("request_human", 1.0) == "handoff"
    assert rules.first_turn("money_trouble", 0.95) == "handoff"
    assert rules.first_turn("money_trouble", 0.6) == "offer"
    assert rules.first_turn("out_of_scope", 0.99) == "offer"
    assert rules.first_turn("nlu_fallback", 0.5) == "rephrase"
    assert rules.first_turn("ask_invoice", 0.9) == "answer"


def test_the_pipeline_component_overrides_the_classifier():
    from rasa.shared.nlu.training_data.message import Message

    from handoff.server.nlu_backstop import ExplicitRequestBackstop

    component = ExplicitRequestBackstop(ExplicitRequestBackstop.get_default_config())
    complaint_and_request = Message(data={"text": "you're useless, how can I reach a human?", "intent": {"name": "express_frustration", "confidence": 0.7}, "intent_ranking": [{"name": "express_frustration", "confidence": 0.7}, {"name": "request_human", "confidence": 0.2}]})
    routine = Message(data={"text": "where is my invoice", "intent": {"name": "ask_invoice", "confidence": 0.9}})
    component.process([complaint_and_request, routine])
    assert complaint_and_request.get("intent") == {"name": "request_human", "confidence": 1.0}
    assert [r["name"] for r in complaint_and_request.get("intent_ranking")] == ["request_human", "express_frustration"]
    assert complaint_and_request.get("explicit_request")["intent_before"] == "express_frustration"
    assert "explicit_request" in complaint_and_request.as_dict(only_output_properties=True)
    assert routine.get("intent")["name"] == "ask_invoice"
    assert routine.get("explicit_request") is None


def test_a_request_without_any_word_for_a_person_is_not_trusted():
    from rasa.shared.nlu.training_data.message import Message

    from handoff.server.nlu_backstop import ExplicitRequestBackstop

    component = ExplicitRequestBackstop(ExplicitRequestBackstop.get_default_config())
    no_person = Message(data={"text": "wat is de temperatuur", "intent": {"name": "request_human", "confidence": 0.98}})
    with_person = Message(data={"text": "are any agents around, I need one", "intent": {"name": "request_human", "confidence": 0.9}})
    component.process([no_person, with_person])
    assert no_person.get("intent") == {"name": "request_human", "confidence": 0.5}
    assert no_person.get("unsupported_request") == {"confidence_before": 0.98}
    assert load_rules().first_turn("request_human", 0.5) == "offer"
    assert with_person.get("intent")["confidence"] == 0.9


@pytest.mark.parametrize(
    "text",
    ["Domme chatbot. Medewerker nu.", "Bot, I'm done with you. Human.", "someone from customer care", "contact support", "Are any agents available?", "Kunt u dit escaleren naar een leidinggevende?"],
)
def test_requests_after_a_complaint_or_without_a_verb(matcher, text):
    assert matcher.match(text) is not None, text


@pytest.mark.parametrize("text", ["Hoe vraag ik mijn leidinggevende om opslag?", "How do I apply for a job as a call centre agent?", "Does the vacuum support carpets?"])
def test_more_look_alikes(matcher, text):
    assert matcher.match(text) is None, text


def test_typos_in_a_plural_and_in_a_several_word_name(matcher):
    assert matcher.match("mederwerkers?") is not None
    assert matcher.match("custmer servce please") is not None
    assert not matcher.evidence("wat is de temperatuur")


def test_evidence_needs_a_person_and_a_way_of_reaching_them(matcher):
    assert matcher.evidence("are any agents around, I want one")
    assert matcher.evidence("call me back")  # a phrase is enough
    assert not matcher.evidence("What's the plural of person?")
    assert not matcher.evidence("call a taxi for me")


@pytest.mark.parametrize("text", ["I already phoned you about this on Tuesday", "we have 150 employees", "wacht even, chat ik nu met een echt mens?"])
def test_past_contact_lead_answers_and_questions_about_the_bot(matcher, text):
    assert matcher.match(text) is None, text
