import pytest

from handoff.language import (
    DEFAULT_LANGUAGE_CONFIG,
    LanguageConfig,
    detect_language,
    language_scores,
)

ENGLISH = [
    "I want to talk to a person",
    "where is my order",
    "thanks",
    "can I pay with iDEAL",
    "Hello, I have a question about my order",
    "When will my package arrive?",
    "I would like to speak to someone",
    "Can I talk to a human please",
    "What are your opening hours?",
    "How do I return a product?",
    "My parcel still hasn't arrived",
    "I need help with my refund",
    "Thank you so much!",
    "that's not what I asked",
    "This doesn't help at all",
    "Do you ship to Belgium?",
    "How much does shipping cost?",
    "I received the wrong size",
    "The item arrived broken",
    "Can I cancel my order?",
    "I forgot my password",
    "Which payment methods do you accept?",
    "Is it possible to pay by credit card?",
    "Good morning",
    "goodbye",
    "I'm still waiting for my money",
    "Where can I find my invoice?",
    "Are you a bot?",
    "Please connect me with an agent",
    "What's the price of the blue jacket?",
    "I don't understand",
    "Could you check the status of order 12345?",
    "I ordered something last week and nothing happened",
    "Can someone call me back?",
    "It says delivered but I didn't get anything",
    "How long does delivery take?",
    "I want my money back",
    "yes please",
    "Nothing works on your website",
    "Do you have this in stock?",
    "my address changed, can you update it",
    "why is it taking so long",
    "thanks for the quick answer",
    "Are you open on Sunday?",
]

DUTCH = [
    "Ik wil met een persoon spreken",
    "medewerker",
    "waar is mijn pakket",
    "Hoe laat zijn jullie open?",
    "Dank je wel",
    "kan ik betalen met iDEAL",
    "Hallo, ik heb een vraag over mijn bestelling",
    "Wanneer wordt mijn pakket bezorgd?",
    "Ik wil graag iemand spreken",
    "Kan ik een medewerker spreken alstublieft",
    "Wat zijn jullie openingstijden?",
    "Hoe kan ik iets retourneren?",
    "Mijn pakketje is nog steeds niet aangekomen",
    "Ik heb hulp nodig met mijn terugbetaling",
    "Bedankt!",
    "dat vroeg ik niet",
    "Dit helpt niet",
    "Leveren jullie ook in België?",
    "Wat kost de verzending?",
    "Ik heb de verkeerde maat gekregen",
    "Het artikel was kapot bij aankomst",
    "Kan ik mijn bestelling annuleren?",
    "Ik ben mijn wachtwoord kwijt",
    "Welke betaalmethodes hebben jullie?",
    "Kan ik met een creditcard betalen?",
    "Goedemorgen",
    "doei",
    "Ik wacht nog steeds op mijn geld",
    "Waar vind ik mijn factuur?",
    "Ben jij een robot?",
    "Verbind me alsjeblieft door met een medewerker",
    "Wat is de prijs van de blauwe jas?",
    "Ik begrijp het niet",
    "Kunt u de status van bestelling 12345 checken?",
    "Ik heb vorige week iets besteld en er gebeurt niks",
    "Kan iemand mij terugbellen?",
    "Er staat bezorgd maar ik heb niets ontvangen",
    "Hoe lang duurt de levering?",
    "Ik wil mijn geld terug",
    "ja graag",
    "Niks werkt op jullie website",
    "Is dit op voorraad?",
    "mijn adres is veranderd, kunnen jullie dat aanpassen",
    "waarom duurt het zo lang",
    "Hoi, ik heb een vraagje",
    "Zijn jullie zondag open?",
    "dankjewel voor het snelle antwoord",
    "Daar heb ik niks aan",
]


@pytest.mark.parametrize("text", ENGLISH)
def test_english_messages_are_english_whatever_came_before(text):
    assert detect_language(text, previous="nl") == "en"


@pytest.mark.parametrize("text", DUTCH)
def test_dutch_messages_are_dutch_whatever_came_before(text):
    assert detect_language(text, previous="en") == "nl"


def test_the_labelled_sets_are_large_enough():
    assert len(ENGLISH) >= 40 and len(DUTCH) >= 40


@pytest.mark.parametrize(
    "text",
    [
        "ok",
        "OK!",
        "hi",
        "hey",
        "/restart",
        "/greet",
        "12345",
        "0612345678",
        "👍",
        "🙂🙂",
        "",
        "   ",
        "iDEAL",
        "jan@example.nl",
        "https://northwind.example/orders/123",
        "?",
        "haha",
        "oké",
    ],
)
@pytest.mark.parametrize("previous", ["en", "nl"])
def test_short_and_neutral_messages_keep_the_previous_language(text, previous):
    assert detect_language(text, previous=previous) == previous


@pytest.mark.parametrize(
    "text",
    ["Hallo, I need help", "ja, thanks", "thanks, doei", "mijn order please"],
)
@pytest.mark.parametrize("previous", ["en", "nl"])
def test_mixed_messages_keep_the_previous_language(text, previous):
    assert detect_language(text, previous=previous) == previous


def test_without_a_previous_language_the_default_is_english():
    assert detect_language("ok") == "en"
    assert detect_language("ok", previous="de") == "en"
    assert detect_language("ok", config=LanguageConfig.from_dict({"default": "nl"})) == "nl"


def test_dutch_spelling_hints_decide_for_unknown_words():
    # None of these words are in the word lists: diminutives, ij, aa/uu, ge-...-d.
    assert detect_language("momentje", previous="en") == "nl"
    assert detect_language("verschrikkelijk", previous="en") == "nl"
    assert detect_language("gerepareerd", previous="en") == "nl"
    assert detect_language("uitstekend geïnformeerd", previous="en") == "nl"


def test_english_spelling_hints_decide_for_unknown_words():
    assert detect_language("something together", previous="nl") == "en"
    assert detect_language("information quickly", previous="nl") == "en"


def test_scores_show_the_evidence():
    scores = language_scores("Ik wil met een persoon spreken")
    assert scores["nl"] > 5 and scores["en"] == 0
    assert language_scores("ok 👍") == {"en": 0.0, "nl": 0.0}


def test_extra_words_from_config_count():
    config = LanguageConfig.from_dict({"words": {"nl": {"zsm": 2}}})
    assert detect_language("zsm", previous="en") == "en"  # unknown word: too little evidence
    assert detect_language("zsm", previous="en", config=config) == "nl"


def test_a_stricter_margin_keeps_more_messages_in_the_previous_language():
    strict = LanguageConfig.from_dict({"min_score": 5})
    assert detect_language("thanks", previous="nl") == "en"
    assert detect_language("thanks", previous="nl", config=strict) == "nl"


def test_default_config_dict_builds_the_default_config():
    assert LanguageConfig.from_dict(DEFAULT_LANGUAGE_CONFIG) == LanguageConfig.from_dict(None)
    assert LanguageConfig.from_dict({}) == LanguageConfig()


@pytest.mark.parametrize(
    "data, message",
    [
        ({"default": "de"}, "default must be 'en' or 'nl'"),
        ({"min_score": "high"}, "min_score must be a number"),
        ({"margin": -1}, "margin must be a number of 0 or more"),
        ({"ratio": 0.5}, "ratio must be at least 1"),
        ({"words": {"fr": {"merci": 1}}}, "unknown language 'fr'"),
        ({"words": {"nl": ["zsm"]}}, "words.nl must map word to weight"),
        ({"words": {"nl": {"zsm": "veel"}}}, "words.nl.zsm must be a number"),
        ({"words": ["zsm"]}, "words must map"),
        ({"treshold": 2}, "unknown key"),
    ],
)
def test_invalid_config_says_what_is_wrong(data, message):
    with pytest.raises(ValueError, match=message):
        LanguageConfig.from_dict(data)
