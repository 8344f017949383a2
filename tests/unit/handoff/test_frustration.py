import pytest

from handoff.frustration import (
    DEFAULT_FRUSTRATION_CONFIG,
    FRUSTRATION_PHRASES,
    SIGNALS,
    FrustrationConfig,
    FrustrationScore,
    normalise,
    score_frustration,
)

_clock = iter(range(1000, 100000))


def user(text, intent="ask_order_status", **metadata):
    return {
        "event": "user",
        "text": text,
        "timestamp": float(next(_clock)),
        "parse_data": {"intent": {"name": intent, "confidence": 0.9}},
        "metadata": metadata,
    }


def bot(text="Here is what I know."):
    return {"event": "bot", "text": text, "timestamp": float(next(_clock))}


def signals(*events, config=None):
    return score_frustration(list(events), config).signals


# explicit_frustration


@pytest.mark.parametrize(
    "text",
    [
        "This doesn't help",
        "This doesn’t help at all.",
        "that's not what I asked",
        "Useless!",
        "you are a stupid bot",
        "what a waste of time",
        "Ik begrijp het niet",
        "dit helpt niet",
        "Daar heb ik niks aan.",
        "dat vroeg ik niet!",
        "Waardeloos",
        "wat een stomme bot",
    ],
)
def test_frustration_phrases_are_explicit_frustration(text):
    assert signals(user(text, "ask_order_status")) == ["explicit_frustration"]


def test_the_frustration_intent_is_explicit_frustration():
    assert signals(user("meh", "express_frustration")) == ["explicit_frustration"]


@pytest.mark.parametrize(
    "text",
    ["Where is my order", "Is this helpful for kids?", "waar is mijn pakket", "Ik begrijp het"],
)
def test_ordinary_questions_are_not_explicit_frustration(text):
    assert signals(user(text)) == []


def test_only_the_latest_message_counts_for_explicit_frustration():
    assert signals(user("useless"), bot(), user("ok, thanks", "thank")) == []


def test_phrases_from_config_are_added():
    config = FrustrationConfig.from_dict({"phrases": ["Ik Word Hier Moe Van!"]})
    assert signals(user("ik word hier moe van"), config=config) == ["explicit_frustration"]
    assert signals(user("useless"), config=config) == ["explicit_frustration"]


def test_module_phrases_are_written_normalised():
    assert all(phrase == normalise(phrase) for phrase in FRUSTRATION_PHRASES)


# caps


@pytest.mark.parametrize("text", ["WHERE IS MY ORDER", "WAAR IS MIJN PAKKET", "Where IS MY ORDER"])
def test_mostly_capitals_is_caps(text):
    assert signals(user(text)) == ["caps"]


@pytest.mark.parametrize(
    "text", ["OK", "HELP", "NL?", "Where Is My Order", "betalen met iDEAL", "12345"]
)
def test_short_or_mostly_lower_case_messages_are_not_caps(text):
    assert signals(user(text)) == []


def test_caps_min_letters_comes_from_config():
    config = FrustrationConfig.from_dict({"caps_min_letters": 4})
    assert signals(user("HELP"), config=config) == ["caps"]


# repeated_question


def test_the_same_intent_asked_again_after_an_answer_is_a_repeated_question():
    events = [user("where is my order"), bot(), user("has my parcel shipped yet")]
    assert signals(*events) == ["repeated_question"]


def test_the_same_intent_in_dutch_is_a_repeated_question():
    events = [user("waar is mijn pakket"), bot(), user("wanneer komt mijn bestelling nou")]
    assert signals(*events) == ["repeated_question"]


@pytest.mark.parametrize(
    "first, again",
    [
        ("where is my order?", "Where is my order??"),
        ("waar is mijn pakket", "waar is mijn pakket nou"),
        ("Hoe laat zijn jullie open?", "hoe laat zijn jullie open"),
    ],
)
def test_a_similar_text_is_a_repeated_question_whatever_the_intent(first, again):
    events = [user(first, "nlu_fallback"), bot(), user(again, "ask_opening_hours")]
    assert "repeated_question" in signals(*events)


def test_a_message_sent_twice_before_the_bot_answered_is_not_a_repeated_question():
    assert signals(user("where is my order"), user("where is my order")) == []


def test_greetings_and_thanks_said_twice_are_not_questions():
    assert signals(user("hi", "greet"), bot(), user("hello", "greet")) == []
    assert signals(user("bedankt", "thank"), bot(), user("dank je", "thank")) == []


def test_different_questions_are_not_repeated():
    events = [user("where is my order"), bot(), user("when do you open", "ask_opening_hours")]
    assert signals(*events) == []


# shorter_messages


def test_ever_shorter_messages_in_english():
    events = [
        user("I ordered a jacket two weeks ago and it still has not arrived", "ask_order_status"),
        bot(),
        user("so where is it", "ask_delivery"),
        bot(),
        user("hello", "greet"),
    ]
    assert signals(*events) == ["shorter_messages"]


def test_ever_shorter_messages_in_dutch():
    events = [
        user("Ik heb twee weken geleden een jas besteld en die is er nog niet", "ask_order_status"),
        bot(),
        user("waar blijft hij dan", "ask_delivery"),
        bot(),
        user("hallo", "greet"),
    ]
    assert signals(*events) == ["shorter_messages"]


INTENTS = ("ask_returns", "ask_prices", "ask_payment_methods")


def conversation(*texts):
    turns = zip(texts, INTENTS, strict=True)
    return [event for text, intent in turns for event in (user(text, intent), bot())][:-1]


@pytest.mark.parametrize(
    "texts",
    [
        ("can I return shoes I wore once", "what about sale items", "and gift cards"),  # 7, 4, 3
        ("kan ik schoenen retourneren die ik droeg", "en artikelen uit de sale", "cadeaubonnen"),
    ],
)
def test_messages_shrinking_from_long_to_short_are_shorter_messages(texts):
    assert signals(*conversation(*texts)) == ["shorter_messages"]


@pytest.mark.parametrize(
    "texts",
    [
        ("can I return shoes I wore once", "what about sale items", "and the gift cards"),  # 4, 4
        ("can I return shoes I wore once", "en artikelen uit de sale", "the gift cards too"),  # 4
        ("sell any hats", "and scarves", "gloves"),  # 3, 2, 1: never was long
        ("hoi", "hebben jullie ook sjaals", "en hoe zit het met handschoenen en mutsen"),  # longer
    ],
)
def test_messages_that_do_not_shrink_from_long_to_short_are_not_shorter_messages(texts):
    assert signals(*conversation(*texts)) == []


def test_button_payloads_are_not_typed_messages():
    events = [
        user("I ordered a jacket two weeks ago and it still has not arrived", "ask_order_status"),
        bot(),
        user("so where is it", "ask_delivery"),
        bot(),
        user("/affirm", "affirm"),
    ]
    assert signals(*events) == []


# exclamations


@pytest.mark.parametrize(
    "text", ["Where is my order!!!", "waar blijft mijn pakket!!!!", "Seriously?!", "Echt waar!?"]
)
def test_three_exclamation_marks_or_interrobangs_are_exclamations(text):
    assert signals(user(text)) == ["exclamations"]


@pytest.mark.parametrize("text", ["Thanks!", "Bedankt!!", "Where is my order?", "Waarom??"])
def test_ordinary_punctuation_is_not_exclamations(text):
    assert signals(user(text)) == []


# repeated_fallback


def test_two_misunderstood_messages_are_repeated_fallback():
    events = [user("blorp", "nlu_fallback"), bot("Sorry?"), user("zzzt", "nlu_fallback")]
    assert signals(*events) == ["repeated_fallback"]


def test_two_misunderstood_dutch_messages_need_not_be_in_a_row():
    events = [
        user("kan ik mijn jas laten vermaken", "nlu_fallback"),
        bot("Sorry?"),
        user("hoi", "greet"),
        bot(),
        user("doen jullie aan vermaken", "nlu_fallback"),
    ]
    assert signals(*events) == ["repeated_fallback"]


def test_one_misunderstood_message_is_not_repeated_fallback():
    assert signals(user("blorp", "nlu_fallback")) == []


# levels


def test_explicit_frustration_alone_offers_a_person():
    result = score_frustration([user("this doesn't help")])
    assert result == FrustrationScore(score=60, signals=["explicit_frustration"], level="offer")


def test_explicit_frustration_with_caps_hands_off():
    result = score_frustration([user("THIS IS USELESS")])
    assert result.signals == ["explicit_frustration", "caps"]
    assert result.level == "handoff"


def test_explicit_frustration_with_a_repeated_question_hands_off():
    events = [
        user("waar is mijn pakket", "ask_order_status"),
        bot(),
        user("waar is mijn pakket, daar heb ik niks aan", "ask_order_status"),
    ]
    result = score_frustration(events)
    assert result.signals == ["explicit_frustration", "repeated_question"]
    assert result.level == "handoff"


def test_caps_alone_does_not_offer_a_person():
    result = score_frustration([user("WHERE IS MY ORDER")])
    assert result.score == 30 and result.level == "none"


def test_shouting_with_exclamations_offers_a_person():
    result = score_frustration([user("WHERE IS MY ORDER!!!")])
    assert result.signals == ["caps", "exclamations"] and result.level == "offer"


def test_signals_are_named_in_a_stable_order():
    events = [
        user("Hallo, ik heb een vraag over het retourneren van mijn jas", "nlu_fallback"),
        bot("Sorry?"),
        user("ik wil hem terugsturen", "nlu_fallback"),
        bot("Sorry?"),
        user("WAARDELOOS!!!", "express_frustration"),
    ]
    result = score_frustration(events)
    assert result.signals == [s for s in SIGNALS if s != "repeated_question"]
    assert result.score == 60 + 30 + 20 + 20 + 40 and result.level == "handoff"


def test_no_customer_messages_score_nothing():
    assert score_frustration([]) == FrustrationScore(score=0.0, signals=[], level="none")
    assert score_frustration([{"event": "session_started"}, bot("Hi!")]).level == "none"


def test_thresholds_and_weights_come_from_config():
    config = FrustrationConfig.from_dict({"weights": {"caps": 50}, "offer": 40, "handoff": 100})
    assert score_frustration([user("WHERE IS MY ORDER")], config).level == "offer"
    assert score_frustration([user("THIS IS USELESS")], config).level == "handoff"
    assert score_frustration([user("useless")], config).score == 60


# which messages count


@pytest.mark.parametrize("boundary", ["resume", "session_started", "restart"])
def test_messages_before_the_bot_took_charge_again_do_not_count(boundary):
    before = [user("blorp", "nlu_fallback"), bot("Sorry?"), user("where is my order"), bot()]
    after = [user("zzzt", "nlu_fallback"), bot("Sorry?"), user("where is my order??")]
    events = [*before, {"event": boundary, "timestamp": float(next(_clock))}, *after]
    assert signals(*before, *after) == ["repeated_question", "repeated_fallback"]
    assert signals(*events) == []


def test_frustration_before_a_hand_back_is_forgotten():
    events = [user("STUPID BOT!!!"), {"event": "resume"}, bot("I'm back."), user("my order?")]
    assert score_frustration(events).level == "none"


def test_external_events_are_not_customer_messages():
    events = [
        user("THIS IS USELESS"),
        user("EXTERNAL: EXTERNAL_handback", "EXTERNAL_handback", is_external=True),
    ]
    assert score_frustration(events).level == "handoff"
    events = [user("/EXTERNAL_handback", "EXTERNAL_handback", is_external=True)]
    assert score_frustration(events).level == "none"


# config


def test_default_config_dict_builds_the_default_config():
    assert FrustrationConfig.from_dict(DEFAULT_FRUSTRATION_CONFIG) == FrustrationConfig()
    assert FrustrationConfig.from_dict(None) == FrustrationConfig.from_dict({})


def test_missing_weights_keep_their_default():
    config = FrustrationConfig.from_dict({"weights": {"caps": 10}})
    assert config.weights["caps"] == 10
    assert config.weights["explicit_frustration"] == 60


@pytest.mark.parametrize(
    "data, message",
    [
        ({"weights": {"shouting": 10}}, "unknown signal.*'shouting'"),
        ({"weights": {"caps": -1}}, "weights.caps must be a number 0 or more"),
        ({"weights": {"caps": "high"}}, "weights.caps must be a number"),
        ({"weights": ["caps"]}, "weights must map"),
        ({"offer": 0}, "offer must be a number above 0"),
        ({"offer": 95}, r"offer \(95.0\) must not be higher than handoff \(90.0\)"),
        ({"handoff": True}, "handoff must be a number"),
        ({"caps_min_letters": 0}, "caps_min_letters must be a whole number of 1 or more"),
        ({"caps_min_letters": 2.5}, "caps_min_letters must be a whole number"),
        ({"similarity": 1.5}, "similarity must be at most 1"),
        ({"caps_ratio": 0}, "caps_ratio must be a number above 0"),
        ({"short_message_words": "3"}, "short_message_words must be a whole number"),
        ({"fallback_count": 0}, "fallback_count must be a whole number"),
        ({"fallback_intent": ""}, "fallback_intent must be a non-empty string"),
        ({"ignore_intents": "greet"}, "ignore_intents must be a list of strings"),
        ({"phrases": ["ok", 3]}, r"phrases\[1\] must be a non-empty string"),
        ({"treshold": 50}, "unknown key.*'treshold'"),
    ],
)
def test_invalid_config_says_what_is_wrong(data, message):
    with pytest.raises(ValueError, match=message):
        FrustrationConfig.from_dict(data)
