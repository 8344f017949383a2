"""Notice a frustrated customer before they give up, in English and in Dutch.

Each signal is a small, explainable observation about the customer's messages since the bot last
took charge of the conversation (a new session, a restart, or a hand-back from an agent). Signals
carry weights; their sum is compared with two thresholds: ``offer`` (the bot offers to bring in a
person) and ``handoff`` (the bot hands the conversation over at once). The agent later reads which
signals fired, so they are named, not just counted.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from handoff.config_sections import merged_section
from handoff.conversation import is_external, since_bot_took_charge

SIGNALS = (
    "explicit_frustration",
    "caps",
    "repeated_question",
    "shorter_messages",
    "exclamations",
    "repeated_fallback",
)
NONE, OFFER, HANDOFF = "none", "offer", "handoff"
# Events after which the bot is in charge again, so earlier messages no longer count.

# Phrases that say outright the assistant is not helping. Matched case-insensitively on whole
# words, after punctuation is removed; write them in lower case without punctuation.
FRUSTRATION_PHRASES = (
    # English
    "this doesn't help",
    "this does not help",
    "that doesn't help",
    "that does not help",
    "not helpful",
    "no help at all",
    "that's not what i asked",
    "that is not what i asked",
    "not what i asked",
    "not what i meant",
    "you don't understand",
    "you do not understand",
    "you're not listening",
    "you are not listening",
    "i already told you",
    "i already said",
    "useless",
    "pointless",
    "stupid bot",
    "dumb bot",
    "stupid",
    "ridiculous",
    "waste of time",
    "wasting my time",
    "frustrating",
    "frustrated",
    "annoying",
    "fed up",
    "makes no sense",
    "doesn't make sense",
    "terrible service",
    "what the hell",
    "wtf",
    # Dutch
    "ik begrijp het niet",
    "ik snap het niet",
    "dit helpt niet",
    "dat helpt niet",
    "helpt niks",
    "daar heb ik niks aan",
    "daar heb ik niets aan",
    "hier heb ik niks aan",
    "hier heb ik niets aan",
    "dat vroeg ik niet",
    "dat is niet wat ik vroeg",
    "niet wat ik vroeg",
    "niet wat ik bedoel",
    "je begrijpt me niet",
    "u begrijpt me niet",
    "je snapt het niet",
    "dat zei ik al",
    "heb ik al gezegd",
    "waardeloos",
    "waardeloze",
    "nutteloos",
    "stomme bot",
    "domme bot",
    "slaat nergens op",
    "belachelijk",
    "irritant",
    "frustrerend",
    "gefrustreerd",
    "ik word gek",
    "zonde van mijn tijd",
    "wat een onzin",
    "ik ben het zat",
    "ik heb er genoeg van",
    "slechte service",
)

DEFAULT_FRUSTRATION_CONFIG: dict[str, Any] = {
    # Explicit frustration alone reaches `offer`; with caps or a repeated question, `handoff`.
    # Caps alone, or any other single signal, stays below `offer`.
    "weights": {
        "explicit_frustration": 60,
        "caps": 30,
        "repeated_question": 40,
        "shorter_messages": 20,
        "exclamations": 20,
        "repeated_fallback": 40,
    },
    "offer": 50,
    "handoff": 90,
    # A message is shouting when it has at least this many letters and this share of capitals.
    "caps_min_letters": 6,
    "caps_ratio": 0.7,
    # How alike two messages must be (difflib ratio of their normalised texts) to ask the same.
    "similarity": 0.85,
    # The last of three ever shorter messages has at most this many words.
    "short_message_words": 3,
    # How many misunderstood messages make `repeated_fallback`.
    "fallback_count": 2,
    "fallback_intent": "nlu_fallback",
    "frustration_intent": "express_frustration",
    # Intents that are no question, so saying them twice is not asking again.
    "ignore_intents": [
        "greet",
        "goodbye",
        "thank",
        "affirm",
        "deny",
        "bot_challenge",
        "nlu_fallback",
        "express_frustration",
    ],
    # Extra phrases, added to FRUSTRATION_PHRASES.
    "phrases": [],
}

_NOT_WORD = re.compile(r"[^\w']+")
_EXCLAMATIONS = re.compile(r"!{3,}|\?!|!\?")


def normalise(text: str) -> str:
    """Lower case, straight apostrophes, punctuation removed and spaces collapsed."""
    text = text.lower().replace("\u2019", "'").replace("`", "'")
    return " ".join(_NOT_WORD.sub(" ", text).split())


@dataclass(frozen=True)
class FrustrationConfig:
    """Signal weights and thresholds; see ``DEFAULT_FRUSTRATION_CONFIG`` for what each means."""

    weights: Mapping[str, float] = field(
        default_factory=lambda: dict(DEFAULT_FRUSTRATION_CONFIG["weights"])
    )
    offer: float = DEFAULT_FRUSTRATION_CONFIG["offer"]
    handoff: float = DEFAULT_FRUSTRATION_CONFIG["handoff"]
    caps_min_letters: int = DEFAULT_FRUSTRATION_CONFIG["caps_min_letters"]
    caps_ratio: float = DEFAULT_FRUSTRATION_CONFIG["caps_ratio"]
    similarity: float = DEFAULT_FRUSTRATION_CONFIG["similarity"]
    short_message_words: int = DEFAULT_FRUSTRATION_CONFIG["short_message_words"]
    fallback_count: int = DEFAULT_FRUSTRATION_CONFIG["fallback_count"]
    fallback_intent: str = DEFAULT_FRUSTRATION_CONFIG["fallback_intent"]
    frustration_intent: str = DEFAULT_FRUSTRATION_CONFIG["frustration_intent"]
    ignore_intents: frozenset[str] = frozenset(DEFAULT_FRUSTRATION_CONFIG["ignore_intents"])
    phrases: tuple[str, ...] = FRUSTRATION_PHRASES

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> FrustrationConfig:
        """Build a config from parsed YAML; missing keys (and missing weights) take the defaults.

        Raises:
            ValueError: A key or signal is unknown, or a value has the wrong type or range.
        """
        merged = merged_section("frustration config", data, DEFAULT_FRUSTRATION_CONFIG)

        weights_given = merged["weights"] or {}
        if not isinstance(weights_given, Mapping):
            raise ValueError("frustration config: weights must map signal names to numbers")
        unknown = sorted(set(weights_given) - set(SIGNALS))
        if unknown:
            raise ValueError(
                f"frustration config: weights has unknown signal(s) "
                f"{', '.join(map(repr, unknown))}; signals are {', '.join(SIGNALS)}"
            )
        weights = {**DEFAULT_FRUSTRATION_CONFIG["weights"], **weights_given}
        for name, weight in weights.items():
            _number(f"weights.{name}", weight, minimum=0)

        offer = _number("offer", merged["offer"], minimum=0, above=True)
        handoff = _number("handoff", merged["handoff"], minimum=0, above=True)
        if offer > handoff:
            raise ValueError(
                f"frustration config: offer ({offer}) must not be higher than handoff ({handoff})"
            )
        caps_ratio = _number("caps_ratio", merged["caps_ratio"], minimum=0, above=True)
        similarity = _number("similarity", merged["similarity"], minimum=0, above=True)
        for key, value in (("caps_ratio", caps_ratio), ("similarity", similarity)):
            if value > 1:
                raise ValueError(f"frustration config: {key} must be at most 1, got {value}")

        return cls(
            weights={name: float(weight) for name, weight in weights.items()},
            offer=offer,
            handoff=handoff,
            caps_min_letters=_whole("caps_min_letters", merged["caps_min_letters"]),
            caps_ratio=caps_ratio,
            similarity=similarity,
            short_message_words=_whole("short_message_words", merged["short_message_words"]),
            fallback_count=_whole("fallback_count", merged["fallback_count"]),
            fallback_intent=_name("fallback_intent", merged["fallback_intent"]),
            frustration_intent=_name("frustration_intent", merged["frustration_intent"]),
            ignore_intents=frozenset(_names("ignore_intents", merged["ignore_intents"])),
            phrases=FRUSTRATION_PHRASES
            + tuple(normalise(p) for p in _names("phrases", merged["phrases"])),
        )


def _number(key: str, value: Any, minimum: float, above: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or value < minimum or (above and value == minimum):
        bound = f"above {minimum:g}" if above else f"{minimum:g} or more"
        raise ValueError(f"frustration config: {key} must be a number {bound}, got {value!r}")
    return float(value)


def _whole(key: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(
            f"frustration config: {key} must be a whole number of 1 or more, got {value!r}"
        )
    return value


def _name(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"frustration config: {key} must be a non-empty string, got {value!r}")
    return value


def _names(key: str, value: Any) -> list[str]:
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"frustration config: {key} must be a list of strings, got {value!r}")
    return [_name(f"{key}[{index}]", item) for index, item in enumerate(value)]


@dataclass(frozen=True)
class FrustrationScore:
    """How frustrated the customer seems, and why.

    Attributes:
        score: The sum of the weights of the signals that fired.
        signals: The names of those signals, in the order of ``SIGNALS``.
        level: ``"none"``, ``"offer"`` (offer a person) or ``"handoff"`` (hand off at once).
    """

    score: float
    signals: list[str] = field(default_factory=list)
    level: str = NONE


def _intent(event: Mapping[str, Any]) -> str | None:
    return ((event.get("parse_data") or {}).get("intent") or {}).get("name")


def _typed(event: Mapping[str, Any]) -> str:
    """The text the customer typed; button payloads such as ``/affirm`` are not typed text."""
    text = str(event.get("text") or "")
    return "" if text.lstrip().startswith("/") else text


def _explicit(latest: Mapping[str, Any], config: FrustrationConfig) -> bool:
    if _intent(latest) == config.frustration_intent:
        return True
    padded = f" {normalise(_typed(latest))} "
    return any(f" {phrase} " in padded for phrase in config.phrases)


def _caps(latest: Mapping[str, Any], config: FrustrationConfig) -> bool:
    letters = [c for c in _typed(latest) if c.isalpha()]
    if len(letters) < config.caps_min_letters:
        return False
    return sum(c.isupper() for c in letters) >= config.caps_ratio * len(letters)


def _repeated_question(window: Sequence[Mapping[str, Any]], config: FrustrationConfig) -> bool:
    """The latest message asks again what an earlier one asked, after the bot answered it."""
    positions = [i for i, e in enumerate(window) if e.get("event") == "user"]
    if len(positions) < 2:
        return False
    latest_index = positions[-1]
    latest = window[latest_index]
    intent = _intent(latest)
    text = normalise(_typed(latest))
    asks = intent is not None and intent not in config.ignore_intents
    comparable = len(text.split()) >= 2
    for index in positions[:-1]:
        answered = any(e.get("event") == "bot" for e in window[index + 1 : latest_index])
        if not answered:
            continue
        earlier = window[index]
        if asks and _intent(earlier) == intent:
            return True
        earlier_text = normalise(_typed(earlier))
        if comparable and earlier_text:
            if difflib.SequenceMatcher(None, earlier_text, text).ratio() >= config.similarity:
                return True
    return False


def _shorter_messages(messages: Sequence[Mapping[str, Any]], config: FrustrationConfig) -> bool:
    """The last three typed messages get strictly shorter, from a long one down to a short one."""
    typed = [text for text in (_typed(m) for m in messages) if text.strip()]
    if len(typed) < 3:
        return False
    first, second, last = (len(text.split()) for text in typed[-3:])
    return first > second > last and last <= config.short_message_words < first


def _exclamations(latest: Mapping[str, Any]) -> bool:
    return bool(_EXCLAMATIONS.search(_typed(latest)))


def _repeated_fallback(messages: Sequence[Mapping[str, Any]], config: FrustrationConfig) -> bool:
    fallbacks = sum(1 for m in messages if _intent(m) == config.fallback_intent)
    return fallbacks >= config.fallback_count


def score_frustration(
    events: Iterable[Mapping[str, Any]], config: FrustrationConfig | None = None
) -> FrustrationScore:
    """Score the customer's frustration from the conversation's events.

    Only the customer's own messages since the bot last took charge count; messages triggered
    from outside (``is_external``) are ignored.

    Args:
        events: The tracker's events as plain dicts, oldest first.
        config: Weights and thresholds; the defaults when omitted.

    Returns:
        The score, the signals that fired and the resulting level.
    """
    config = config or DEFAULT_CONFIG
    window = [
        event
        for event in since_bot_took_charge(events)
        if not (event.get("event") == "user" and is_external(event))
    ]
    messages = [e for e in window if e.get("event") == "user"]
    if not messages:
        return FrustrationScore(score=0.0, signals=[], level=NONE)
    latest = messages[-1]
    fired = {
        "explicit_frustration": _explicit(latest, config),
        "caps": _caps(latest, config),
        "repeated_question": _repeated_question(window, config),
        "shorter_messages": _shorter_messages(messages, config),
        "exclamations": _exclamations(latest),
        "repeated_fallback": _repeated_fallback(messages, config),
    }
    signals = [name for name in SIGNALS if fired[name]]
    score = round(sum(config.weights.get(name, 0.0) for name in signals), 6)
    if score >= config.handoff:
        level = HANDOFF
    elif score >= config.offer:
        level = OFFER
    else:
        level = NONE
    return FrustrationScore(score=score, signals=signals, level=level)


DEFAULT_CONFIG = FrustrationConfig.from_dict(None)
