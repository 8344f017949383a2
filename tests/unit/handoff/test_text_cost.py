"""The text functions the actions run on customer text cost time linear in the text's length.

They run on the action server's only event loop, so a message that costs seconds holds up every
conversation. A regular expression that retries an unbounded quantifier from each position of one
long token is quadratic: ten times the text, a hundred times the work. Each test compares the cost of
a 16,000-character input with that of a 1,600-character one: linear work gives a ratio near 10,
quadratic near 100. Times are the best of several rounds, and the bound is generous, so a loaded
machine does not make the tests flaky; no test has a threshold in seconds.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest

from handoff.frustration import score_frustration
from handoff.language import detect_language
from handoff.leads import extract_email, parse_budget, parse_company_size, parse_timeline_months
from handoff.triggers import load_rules

SMALL, LARGE = 1_600, 16_000
# Linear growth is 10; quadratic is 100. Fixed costs push the ratio below 10.
MAX_RATIO = 30
ROUNDS = 7

# One long token of each kind of character the expressions treat differently, and long texts of
# repeated words, in both languages.
UNITS = {
    "letters": "a",
    "dutch_letters": "ij",
    "diminutive": "tje",
    "digits": "1",
    "number_groups": "1.",
    "punctuation": "!?",
    "at_signs": "a@",
    "address_like": "x@y.",
    "hashtags": "#a",
    "url_like": "http://",
    "dashes": "1-",
    "apostrophes": "a'",
    "accented": "é",
    "underscores": "a_",
    "english_words": "please can i talk to someone about my order ",
    "dutch_words": "ik wil graag een medewerker spreken over mijn pakketje ",
    "numbers_and_words": "10 to 50 people 20k euro 3 months ",
    "mixed_noise": "mail jan@example.nl www.x.nl #tag ",
}


def _text(unit: str, length: int) -> str:
    return (unit * (length // len(unit) + 1))[:length]


def _per_call(function: Callable[[str], object], text: str, calls: int) -> float:
    """The best time of one call over several rounds of ``calls`` calls."""
    best = float("inf")
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(calls):
            function(text)
        best = min(best, (time.perf_counter() - started) / calls)
    return best


def growth(function: Callable[[str], object], unit: str, small: int = SMALL, large: int = LARGE) -> float:
    """How many times more an input of ``large`` characters costs than one of ``small``."""
    function(_text(unit, small))  # warm caches (compiled patterns, loaded rules)
    small = _per_call(function, _text(unit, small), calls=10)
    large = _per_call(function, _text(unit, large), calls=1)
    return large / max(small, 1e-7)


RULES = load_rules()


def _conversation(text: str) -> list[dict]:
    return [
        {"event": "user", "text": "hello", "timestamp": 1.0, "parse_data": {"intent": {"name": "greet", "confidence": 0.9}}},
        {"event": "bot", "text": "Hi! How can I help?", "timestamp": 2.0},
        {"event": "user", "text": text, "timestamp": 3.0, "parse_data": {"intent": {"name": "nlu_fallback", "confidence": 0.3}}},
    ]


FUNCTIONS: dict[str, Callable[[str], object]] = {
    "detect_language": lambda text: detect_language(text, "en", RULES.language),
    "score_frustration": lambda text: score_frustration(_conversation(text), RULES.frustration),
    "explicit_request": lambda text: RULES.explicit_request.match(text),
    "explicit_request_evidence": lambda text: RULES.explicit_request.evidence(text),
    "parse_company_size": parse_company_size,
    "parse_budget": parse_budget,
    "parse_timeline_months": parse_timeline_months,
    "extract_email": extract_email,
}


@pytest.mark.parametrize("unit_name", sorted(UNITS))
@pytest.mark.parametrize("function_name", sorted(FUNCTIONS))
def test_cost_grows_linearly_with_the_text(function_name, unit_name):
    ratio = growth(FUNCTIONS[function_name], UNITS[unit_name])
    assert ratio < MAX_RATIO, f"{function_name} on {unit_name}: {LARGE} characters cost {ratio:.0f}× {SMALL}"


def test_the_measure_tells_quadratic_work_from_linear():
    """The ratio catches the kind of expression that was slow: an e-mail pattern tried from every
    position of one long token (as language detection once did)."""
    quadratic = re.compile(r"\S+@\S+")
    linear = re.compile(r"(?<!\S)\S+@\S+")
    # Ten times shorter than the other tests: quadratic work on 16,000 characters takes seconds.
    assert growth(lambda text: quadratic.sub(" ", text), "a", SMALL // 10, LARGE // 10) > MAX_RATIO
    assert growth(lambda text: linear.sub(" ", text), "a", SMALL // 10, LARGE // 10) < MAX_RATIO
