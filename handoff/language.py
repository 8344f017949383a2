"""Tell English from Dutch, one short chat message at a time.

Chat messages are short, so a statistical detector has little to go on. This one adds up weighted
evidence instead: words that belong to one language only (function words and the words customers
of a webshop type), then spelling hints for words it does not know (``ij``, ``aa``/``uu``,
``-tje`` diminutives and diacritics for Dutch; ``th``, ``-tion`` and ``-ly`` for English). A message
only switches the conversation's language when one side clearly wins; greetings such as "ok" or
"hi", commands, numbers, emoji and mixed messages keep the language the conversation already has.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from handoff.config_sections import merged_section

LANGUAGES = ("en", "nl")


def _words(weight: float, words: str) -> dict[str, float]:
    return {word: weight for word in words.split()}


# Words that point to Dutch, by how surely they do. Words both languages use the same way
# ("is", "in", "we", "had", "open", "over", "door", "help", "account", "ok") are in neither list.
DUTCH_WORDS: dict[str, float] = {
    **_words(0.5, "u er al me na toe"),
    **_words(1.0, "de en op te om die dan als tot zo nu uit bij aan ze van"),
    **_words(
        1.5,
        """
        het een je voor naar met dat dit deze ook nog maar dus wie mag ga gaat
        kom komt hij zij ons onze uw jouw hun ben bent wordt worden werd ergens iets niemand
        altijd nooit vandaag morgen gisteren 's 'n
        """,
    ),
    **_words(
        2.0,
        """
        ik jij jullie niet mijn wat wel hoe wil wilt willen graag kan kunnen kun kunt waar
        wanneer waarom
        welke welk hoeveel moet moeten zou zouden heb hebt heeft hebben zijn geen niks niets
        nee ja jawel omdat toch eigenlijk nou misschien alleen hier daar erg heel veel weinig
        iemand thuis helaas inmiddels alweer nogmaals
        bedankt dank dankje dankjewel dankuwel hallo hoi goedemorgen goedemiddag goedenavond
        doei dag ziens alstublieft alsjeblieft prima goed fijn
        bestelling bestellingen besteld bestellen bestelnummer medewerker medewerkers mens
        persoon spreken praten bellen klantenservice klantendienst hulp helpen geholpen vraag
        vragen pakket levering leveren geleverd bezorging bezorgen bezorgd verzending verzonden
        verzenden retour retourneren terugsturen terugbetaling geld betalen betaling betaald
        factuur rekening prijs prijzen kosten gratis openingstijden laat vroeg winkel adres
        nummer klopt werkt begrijp snap weet denk zeg zegt vind wachten duurt lang nodig
        aankomen komen ontvangen gekregen krijg krijgen kapot stuk verkeerd maat ruilen
        annuleren opzeggen wachtwoord inloggen kwijt
        """,
    ),
    **_words(3.0, "m'n z'n 't d'r"),
}

# Words that point to English, by how surely they do.
ENGLISH_WORDS: dict[str, float] = {
    **_words(0.5, "of me"),
    **_words(1.0, "i a an to on at by or as so up out order will do does did get got has bye"),
    **_words(1.0, "yes no nope yeah any some all agent"),
    **_words(
        1.5,
        """
        the and it its my your you for from with not this that these those there here be been
        am are have would could should shall may might must just still already again also
        very much many more about into than then them they their our can need want between
        like good great
        """,
    ),
    **_words(
        2.0,
        """
        what where when why who which how whats where's what's when's it's i'm i've i'll i'd
        don't doesn't didn't can't cannot won't isn't aren't wasn't haven't hasn't
        please thanks thank thx cheers hello goodbye morning afternoon evening
        talk speak call someone somebody anyone person human representative staff employee
        customer package parcel delivery deliver delivered shipping shipped ship arrive arrived
        return returns refund refunded money pay paying paid payment invoice price prices cost
        costs free hours opening late early store address number password login wrong broken
        size exchange cancel received understand know think say said find wait waiting long
        yet often happen happened
        """,
    ),
}

# Words that say nothing about the language, so no spelling hint is drawn from them either.
NEUTRAL_WORDS = frozenset(
    """
    ok okay oké oke k hi hey hee yo help in is we was had over door open account service support
    email e-mail mail website app chat online ideal paypal klarna visa mastercard creditcard iban
    sms whatsapp webshop shop northwind bot track tracking lol haha hahaha xd oh ah eh hmm hm
    """.split()
)

DEFAULT_LANGUAGE_CONFIG: dict[str, Any] = {
    # The language of a conversation before the customer has said anything telling.
    "default": "en",
    # A message changes the language only if the winner has this much evidence (one sure word
    # scores 2, a function word 1 to 1.5), leads by `margin` and has `ratio` times the other's.
    "min_score": 1.5,
    "margin": 1.0,
    "ratio": 2.0,
    # Extra or overriding word weights, e.g. {"nl": {"zsm": 2}}.
    "words": {},
}
NUMBER_KEYS = ("min_score", "margin", "ratio")

# Every expression here runs in time linear in the message, however long one token is (a customer
# can paste 16,000 characters without a space): no unbounded quantifier is retried from each
# position of a long token. tests/unit/handoff/test_text_cost.py checks the growth.
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*|'[tsn]\b")
# An e-mail address is a whole whitespace-separated chunk with an "@" inside it. Only tried where a
# chunk starts: tried from every position, `\S+@` rescans the rest of a long token each time.
_NOISE = re.compile(r"(?<!\S)\S+@\S+|https?://\S+|www\.\S+|[@#]\w+")
_DUTCH_DIACRITICS = re.compile(r"[éèëïöüêáó]")
# Two word characters before the ending are all that `\w{2,}` ever required; the bounded form does
# not rescan the word from every position.
_DIMINUTIVE = re.compile(r"\w{2}(?:tje|pje|kje|je)s?$")
_DUTCH_PARTICIPLE = re.compile(r"^ge\w{3,}[dt]$")


@dataclass(frozen=True)
class LanguageConfig:
    """When a message is clear enough to change the conversation's language.

    Attributes:
        default: The language of a conversation before anything is known.
        min_score: Evidence the winning language needs at least (one sure word scores 2).
        margin: How much more evidence the winner needs than the other language.
        ratio: The winner's evidence must also be at least this many times the other's.
        words: Extra or overriding word weights per language, e.g. ``{"nl": {"zsm": 2}}``.
    """

    default: str = DEFAULT_LANGUAGE_CONFIG["default"]
    min_score: float = DEFAULT_LANGUAGE_CONFIG["min_score"]
    margin: float = DEFAULT_LANGUAGE_CONFIG["margin"]
    ratio: float = DEFAULT_LANGUAGE_CONFIG["ratio"]
    words: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> LanguageConfig:
        """Build a config from parsed YAML; missing keys take the defaults.

        Raises:
            ValueError: A key is unknown or a value has the wrong type or range.
        """
        merged = merged_section("language config", data, DEFAULT_LANGUAGE_CONFIG)
        default = merged["default"]
        if default not in LANGUAGES:
            raise ValueError(f"language config: default must be 'en' or 'nl', got {default!r}")
        numbers = {key: _number(f"language config: {key}", merged[key]) for key in NUMBER_KEYS}
        if numbers["ratio"] < 1:
            raise ValueError(f"language config: ratio must be at least 1, got {numbers['ratio']}")
        words = merged["words"] or {}
        if not isinstance(words, Mapping):
            raise ValueError("language config: words must map 'en'/'nl' to {word: weight}")
        checked: dict[str, dict[str, float]] = {}
        for language, table in words.items():
            if language not in LANGUAGES:
                raise ValueError(f"language config: words has unknown language {language!r}")
            if not isinstance(table, Mapping):
                raise ValueError(f"language config: words.{language} must map word to weight")
            checked[language] = {
                str(word).lower(): _number(f"language config: words.{language}.{word}", weight)
                for word, weight in table.items()
            }
        return cls(default=default, words=checked, **numbers)


def _number(where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"{where} must be a number of 0 or more, got {value!r}")
    return float(value)


def _tokens(text: str) -> list[str]:
    text = _NOISE.sub(" ", text.lower().replace("\u2019", "'").replace("`", "'"))
    return _WORD.findall(text)


def _spelling_hints(word: str) -> tuple[float, float]:
    """Evidence (Dutch, English) from the spelling of a word neither list knows."""
    dutch = english = 0.0
    if _DUTCH_DIACRITICS.search(word):
        dutch += 1.0
    if "ij" in word:
        dutch += 1.5
    if "aa" in word or "uu" in word:
        dutch += 1.0
    elif "ee" in word or "oo" in word:
        # Common in English too ("need", "book"), so only a nudge.
        dutch += 0.25
    if len(word) > 4 and _DIMINUTIVE.search(word):
        dutch += 1.5
    if _DUTCH_PARTICIPLE.match(word):
        dutch += 1.5
    if len(word) >= 5 and word.endswith("en"):
        dutch += 0.5
    if word.startswith("sch"):
        dutch += 0.5
    if "th" in word:
        english += 0.75
    if word.endswith(("tion", "tions")):
        english += 1.0
    if len(word) > 4 and word.endswith("ly"):
        english += 0.75
    return dutch, english


def language_scores(text: str, config: LanguageConfig | None = None) -> dict[str, float]:
    """The evidence for each language in ``text``, e.g. ``{"en": 0.0, "nl": 7.5}``."""
    config = config or DEFAULT_CONFIG
    extra_nl = config.words.get("nl", {})
    extra_en = config.words.get("en", {})
    dutch = english = 0.0
    for token in _tokens(text):
        known_nl = extra_nl.get(token, DUTCH_WORDS.get(token))
        known_en = extra_en.get(token, ENGLISH_WORDS.get(token))
        if known_nl is not None or known_en is not None:
            dutch += known_nl or 0.0
            english += known_en or 0.0
        elif token not in NEUTRAL_WORDS and len(token) > 2:
            hint_nl, hint_en = _spelling_hints(token)
            dutch += hint_nl
            english += hint_en
    return {"en": round(english, 2), "nl": round(dutch, 2)}


def detect_language(
    text: str, previous: str | None = None, config: LanguageConfig | None = None
) -> str:
    """The language of one customer message: ``"en"`` or ``"nl"``.

    Args:
        text: The message as the customer typed it.
        previous: The conversation's language so far; kept when the message does not clearly
            say otherwise (short or mixed messages, commands, numbers, emoji).
        config: Thresholds and extra words; the defaults when omitted.

    Returns:
        ``"en"`` or ``"nl"``.
    """
    config = config or DEFAULT_CONFIG
    fallback = previous if previous in LANGUAGES else config.default
    if not text or text.lstrip().startswith("/"):
        return fallback
    scores = language_scores(text, config)
    best = max(LANGUAGES, key=lambda language: scores[language])
    other = scores["nl" if best == "en" else "en"]
    clear = (
        scores[best] >= config.min_score
        and scores[best] - other >= config.margin
        and scores[best] >= config.ratio * other
    )
    return best if clear else fallback


DEFAULT_CONFIG = LanguageConfig()
