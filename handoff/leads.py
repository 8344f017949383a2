"""Qualify a sales lead from what the customer told the assistant, in English or in Dutch.

The parsers turn free-text answers into numbers: a company size in people, a budget in euros, a
timeline in months, an e-mail address. Scoring rules are data (``qualify_at`` plus point bands per
answer), so sales can change them without touching code.

Numbers are read the way both languages write them: a single ``.`` or ``,`` followed by exactly
three digits groups thousands ("50.000", "1,200"); otherwise it is the decimal separator ("1,5",
"2.5"); with both, the last one is the decimal separator ("1.250,50", "1,250.50"). A range
("10-50", "between 10 and 50", "tussen de 10 en 50", "2 à 3 maanden") counts as its midpoint: the
honest single estimate, neither the hopeful nor the cautious end.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# -- numbers and ranges -------------------------------------------------------------------------

# A number: not part of a longer one, and not cut short to dodge what follows it ("100%").
_NUMBER = r"(?<!\d)(?<!\d[.,])\d+(?:[.,]\d+)*(?![.,]?\d)"
# Between the two ends of a range without "between"/"tussen": "10-50", "10 to 50", "2 à 3".
_RANGE_JOIN = r"(?:-|–|—|to|tot|t/m|until|à|or|of)"

MULTIPLIERS = {
    "k": 1e3,
    "thousand": 1e3,
    "duizend": 1e3,
    "grand": 1e3,
    "ton": 1e5,  # Dutch: "een ton" is 100.000
    "m": 1e6,
    "mln": 1e6,
    "mio": 1e6,
    "million": 1e6,
    "millions": 1e6,
    "miljoen": 1e6,
    "bn": 1e9,
    "billion": 1e9,
    "miljard": 1e9,
}


def _alternatives(words: Any) -> str:
    """A regex alternation of ``words``, longest first so "mln" is not read as "m"."""
    return "|".join(sorted(map(re.escape, words), key=len, reverse=True))


def parse_number(raw: str) -> float | None:
    """A number written with English or Dutch separators, e.g. ``"50.000"`` or ``"1,5"``.

    Returns:
        The value, or None when the separators make no sense ("1.2.3", "1,2.345,6").
    """
    dots, commas = raw.count("."), raw.count(",")
    if dots and commas:
        decimal = "." if raw.rfind(".") > raw.rfind(",") else ","
        grouping = "," if decimal == "." else "."
        whole, _, fraction = raw.rpartition(decimal)
        if grouping in fraction or decimal in whole or not _grouped(whole.split(grouping)):
            return None
        return float(whole.replace(grouping, "") + "." + fraction)
    separator = "." if dots else ","
    parts = raw.split(separator)
    if len(parts) == 1:
        return float(raw)
    if len(parts) > 2:
        return float("".join(parts)) if _grouped(parts) else None
    if _grouped(parts) and parts[0] != "0":
        return float("".join(parts))
    return float(".".join(parts))


def _grouped(parts: list[str]) -> bool:
    return 1 <= len(parts[0]) <= 3 and all(len(part) == 3 for part in parts[1:])


def _ranges(value: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """Patterns for "between A and B" and for "A-B", where A and B match ``value``."""
    return (
        re.compile(rf"(?:between|tussen)(?:\s+de)?\s+{value}\s*(?:and|en|{_RANGE_JOIN})\s*{value}"),
        re.compile(rf"{value}\s*{_RANGE_JOIN}\s*{value}"),
    )


def _find_range(patterns: tuple[re.Pattern[str], ...], text: str) -> re.Match[str] | None:
    for pattern in patterns:
        found = pattern.search(text)
        if found:
            return found
    return None


def _lower(text: str) -> str:
    return " ".join(text.lower().replace("\u2019", "'").split())


def _round(value: float) -> int:
    return math.floor(value + 0.5)


# -- company size -------------------------------------------------------------------------------

ONE_PERSON = (
    "just me",
    "only me",
    "just myself",
    "myself",
    "solo",
    "one-man",
    "one man",
    "freelancer",
    "self-employed",
    "alleen ik",
    "alleen mij",
    "alleen mijzelf",
    "ikzelf",
    "ik alleen",
    "eenmanszaak",
    "zzp",
    "zzp'er",
    "zzper",
)
SIZE_WORDS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "dozen": 12,
    "twenty": 20,
    "fifty": 50,
    "hundred": 100,
    "thousand": 1000,
    "één": 1,
    "twee": 2,
    "drie": 3,
    "vier": 4,
    "vijf": 5,
    "zes": 6,
    "zeven": 7,
    "acht": 8,
    "negen": 9,
    "tien": 10,
    "dozijn": 12,
    "twintig": 20,
    "vijftig": 50,
    "honderd": 100,
    "duizend": 1000,
}
_PEOPLE = (
    r"(?:employees?|people|persons?|staff|fte|workers?|colleagues?|users?|seats?|"
    r"medewerkers?|werknemers?|mensen|personen|man|collega's|gebruikers?)"
)
_SIZE_VALUE = rf"({_NUMBER})(?:\s*(k|thousand|duizend)(?![a-z]))?"
_SIZE_RANGES = _ranges(_SIZE_VALUE)
_SIZE = re.compile(rf"{_SIZE_VALUE}(?!\s*%)(\s*\+?\s*{_PEOPLE}\b)?")
_ONE_PERSON = re.compile(rf"(?<![\w'])(?:{_alternatives(ONE_PERSON)})(?![\w'])")


def _quantity(number: str, multiplier: str | None) -> float | None:
    value = parse_number(number)
    if value is None:
        return None
    return value * MULTIPLIERS[multiplier] if multiplier else value


def parse_company_size(text: str) -> int | None:
    """How many people work at the customer's company.

    Understands "50", "about 250 employees", "250 medewerkers", "ongeveer 40 mensen", "1.200",
    "1,200", "2k", "50+", "a dozen", "just me" and "zzp'er" (both 1), and ranges ("10-50",
    "tussen de 10 en 50"), which count as their midpoint (30). When several numbers are given,
    one followed by "employees", "mensen" and the like wins over the first one.

    Returns:
        The number of people, or None when the answer holds no usable number.
    """
    lowered = _lower(text)
    found = _find_range(_SIZE_RANGES, lowered)
    if found:
        low, high = _quantity(*found.group(1, 2)), _quantity(*found.group(3, 4))
        if low is not None and high is not None:
            return _people((low + high) / 2)
    candidates = list(_SIZE.finditer(lowered))
    if candidates:
        best = next((m for m in candidates if m.group(3)), candidates[0])
        value = _quantity(best.group(1), best.group(2))
        return _people(value) if value is not None else None
    if _ONE_PERSON.search(lowered):
        return 1
    for word in re.findall(r"[^\W\d_]+", lowered):
        if word in SIZE_WORDS:
            return SIZE_WORDS[word]
    return None


def _people(value: float) -> int | None:
    if not math.isfinite(value):  # a run of thousands of digits reads as infinity
        return None
    count = _round(value)
    return count if count > 0 else None


# -- budget -------------------------------------------------------------------------------------

# Amounts written in words, rewritten to digits before the numbers are read.
_WORD_AMOUNTS = (
    (re.compile(r"\bhalf a (million|thousand)\b"), r"0.5 \1"),
    (re.compile(r"\b(?:een )?(?:half|halve) (miljoen|ton)\b"), r"0,5 \1"),
    (re.compile(r"\banderhalve? (miljoen|ton|duizend)\b"), r"1,5 \1"),
    (re.compile(r"\b(?:a|an|one|een|één) (million|miljoen|ton|thousand|duizend|grand)\b"), r"1 \1"),
)
_CURRENCY = r"(?:€|eur(?:o|os)?(?![a-z]))"
_AMOUNT_VALUE = (
    rf"({_CURRENCY}\s*)?({_NUMBER})(?:,-)?(?:\s*({_alternatives(MULTIPLIERS)})(?![a-z]))?"
)
_AMOUNT_RANGES = _ranges(_AMOUNT_VALUE)
_AMOUNT = re.compile(rf"{_AMOUNT_VALUE}(?!\s*%)(\s*{_CURRENCY})?")


def parse_budget(text: str) -> float | None:
    """The customer's budget in euros.

    Understands "about 50k", "€ 50.000", "€50,-", "50.000 euro", "EUR 12,500", "1.5 million",
    "1,5 miljoen", "10 duizend", "een ton" (100.000), "anderhalve ton", "half a million" and
    ranges ("10-20k" is 15.000). A period ("5k per month") is ignored: the amount is what counts.
    When several numbers are given, an amount with a currency or a "k"/"miljoen" wins over a bare
    number (so "our 2025 budget is 50k" is 50.000). Other currencies are not converted.

    Returns:
        The amount, or None when the answer holds no amount ("no budget yet", "geen idee").
    """
    lowered = _lower(text)
    for pattern, replacement in _WORD_AMOUNTS:
        lowered = pattern.sub(replacement, lowered)
    found = _find_range(_AMOUNT_RANGES, lowered)
    if found:
        low_multiplier = found.group(3) or found.group(6)
        low, high = _quantity(found.group(2), low_multiplier), _quantity(*found.group(5, 6))
        if low is not None and high is not None:
            return (low + high) / 2
    candidates = list(_AMOUNT.finditer(lowered))
    if not candidates:
        return None
    marked = [m for m in candidates if m.group(1) or m.group(3) or m.group(4)]
    best = (marked or candidates)[0]
    return _quantity(best.group(2), best.group(3))


# -- timeline -----------------------------------------------------------------------------------

UNIT_MONTHS = {
    "day": 1 / 30,
    "days": 1 / 30,
    "dag": 1 / 30,
    "dagen": 1 / 30,
    "week": 0.25,
    "weeks": 0.25,
    "weken": 0.25,
    "wk": 0.25,
    "month": 1.0,
    "months": 1.0,
    "maand": 1.0,
    "maanden": 1.0,
    "mnd": 1.0,
    "quarter": 3.0,
    "quarters": 3.0,
    "kwartaal": 3.0,
    "kwartalen": 3.0,
    "year": 12.0,
    "years": 12.0,
    "jaar": 12.0,
    "jaren": 12.0,
    "jr": 12.0,
}
# "this month" and "next month" both count as one month: by the end of this one, or at the
# start of the next; the same for weeks, quarters and years.
TIMELINE_WORDS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "een": 1,
    "één": 1,
    "this": 1,
    "next": 1,
    "coming": 1,
    "deze": 1,
    "dit": 1,
    "volgende": 1,
    "volgend": 1,
    "komende": 1,
    "komend": 1,
    "two": 2,
    "twee": 2,
    "couple": 2,
    "paar": 2,
    "three": 3,
    "drie": 3,
    "few": 3,
    "several": 3,
    "enkele": 3,
    "four": 4,
    "vier": 4,
    "six": 6,
    "zes": 6,
    "twelve": 12,
    "twaalf": 12,
}
_HALVES = (
    (re.compile(r"\b(?:a year and a half|one and a half years?|anderhalf jaar)\b"), "18 months"),
    (re.compile(r"\b(?:half a year|(?:een )?half jaar|halfjaar)\b"), "6 months"),
    (
        re.compile(r"\b(?:end of (?:the |this )?year|einde? (?:van )?(?:het |dit )?jaar)\b"),
        "12 months",
    ),
)
_UNIT = rf"({_alternatives(UNIT_MONTHS)})(?![a-z])"
_TIMELINE_VALUE = rf"(?:({_NUMBER})|\b({_alternatives(TIMELINE_WORDS)})\b)"
_DURATION_RANGES = tuple(
    re.compile(pattern.pattern + rf"\s*{_UNIT}") for pattern in _ranges(_TIMELINE_VALUE)
)
_DURATION = re.compile(rf"{_TIMELINE_VALUE}\s*{_UNIT}")

NO_TIMELINE = (
    "no plans",
    "no plan",
    "not yet",
    "not now",
    "not right now",
    "no rush",
    "no hurry",
    "not urgent",
    "just looking",
    "just browsing",
    "only looking",
    "looking around",
    "no idea",
    "don't know",
    "do not know",
    "not sure",
    "unsure",
    "someday",
    "some day",
    "eventually",
    "no timeline",
    "geen plannen",
    "geen plan",
    "geen haast",
    "nog niet",
    "niet nu",
    "niet direct",
    "niet dringend",
    "geen spoed",
    "geen idee",
    "weet ik niet",
    "weet ik nog niet",
    "weet niet",
    "rondkijken",
    "oriënteren",
    "orienteren",
    "ik oriënteer me",
    "ooit",
    "onbekend",
)
AS_SOON_AS_POSSIBLE = (
    "asap",
    "a.s.a.p",
    "as soon as possible",
    "immediately",
    "right away",
    "right now",
    "now",
    "today",
    "urgent",
    "urgently",
    "yesterday",
    "zo snel mogelijk",
    "zo spoedig mogelijk",
    "zsm",
    "z.s.m",
    "direct",
    "meteen",
    "per direct",
    "per omgaande",
    "nu",
    "vandaag",
    "gisteren",
    "spoed",
    "dringend",
    "onmiddellijk",
)
_NO_TIMELINE = re.compile(rf"(?<![\w'])(?:{_alternatives(NO_TIMELINE)})(?![\w'])")
_ASAP = re.compile(rf"(?<![\w'])(?:{_alternatives(AS_SOON_AS_POSSIBLE)})(?![\w'])")


def _count(number: str | None, word: str | None) -> float | None:
    return parse_number(number) if number else float(TIMELINE_WORDS[word or ""])


def parse_timeline_months(text: str) -> float | None:
    """In how many months the customer means to buy, roughly.

    A duration in days, weeks (2 weeks is 0.5), months, quarters or years, in figures or words:
    "within 3 months", "binnen 3 maanden", "2 weken", "a few weeks", "een half jaar",
    "3-6 months" (4.5). "This"/"next" week, month, quarter or year count as one of it:
    "next month"/"volgende maand" is 1, "this quarter"/"dit kwartaal" 3, "next year"/"volgend
    jaar" 12. "asap", "zo snel mogelijk", "direct" and the like are 0. A bare number ("3") is
    taken as months, the unit the answer is stored in.

    Returns:
        Months from now, or None when there is no timeline ("no plans", "geen haast",
        "just looking") or the answer cannot be read.
    """
    lowered = _lower(text)
    if re.fullmatch(_NUMBER, lowered):
        return parse_number(lowered)
    for pattern, replacement in _HALVES:
        lowered = pattern.sub(replacement, lowered)
    found = _find_range(_DURATION_RANGES, lowered)
    if found:
        low, high = _count(*found.group(1, 2)), _count(*found.group(3, 4))
        if low is not None and high is not None:
            return round((low + high) / 2 * UNIT_MONTHS[found.group(5)], 2)
    found = _DURATION.search(lowered)
    if found:
        count = _count(*found.group(1, 2))
        if count is not None:
            return round(count * UNIT_MONTHS[found.group(3)], 2)
    if _NO_TIMELINE.search(lowered):
        return None
    if _ASAP.search(lowered):
        return 0.0
    return None


def is_no_timeline(text: str) -> bool:
    """Whether the answer says there is no timeline yet ("just looking", "geen haast")."""
    return bool(_NO_TIMELINE.search(_lower(text)))


# Dates and months ("in March", "1 september", "begin maart", "next quarter") are read by
# dateparser, with the languages given so it never guesses one (nor loads a language model).
_DATEPARSER_SETTINGS = {"PREFER_DATES_FROM": "future", "RETURN_TIME_AS_PERIOD": True}
_MONTH_NAMES = (
    "january february march april june july august september october november december "
    "januari februari maart mei juni juli augustus oktober"
).split()


def parse_timeline_date(text: str, now: datetime | None = None) -> float | None:
    """Months from ``now`` until a date or month the customer names ("in March", "1 september",
    "in maart"), read by dateparser in English and Dutch.

    A lone short word that may be a first name ("Jan", "May") is not taken for a month.

    Returns:
        Months from now (0 for a date in the past), or None when the text names no date.
    """
    from dateparser.search import search_dates  # imported when needed: it loads its data on import

    now = now or datetime.now()
    settings = {**_DATEPARSER_SETTINGS, "RELATIVE_BASE": now}
    found = search_dates(text, languages=["en", "nl"], settings=settings) or []
    for said, moment in found:
        words = said.lower().split()
        if not any(c.isdigit() for c in said) and not any(w in _MONTH_NAMES for w in words):
            continue  # "Jan", "a month" (a duration is read by parse_timeline_months)
        return round(max((moment - now).days, 0) / 30.44, 2)
    return None


def read_timeline(text: str, now: datetime | None = None) -> float | None:
    """Months until the customer means to start: a period (``parse_timeline_months``) or a date
    (``parse_timeline_date``); None when the text holds neither."""
    months = parse_timeline_months(text)
    if months is None and not is_no_timeline(text):
        months = parse_timeline_date(text, now)
    return months


def is_timeline(text: str) -> bool:
    """Whether the answer is a date, a period or an honest "no timeline yet"."""
    return bool(text.strip()) and (is_no_timeline(text) or read_timeline(text) is not None)


# -- e-mail -------------------------------------------------------------------------------------

_LOCAL = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_DOMAIN = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
_EMAIL = re.compile(rf"{_LOCAL}@{_DOMAIN}")
_EMAIL_IN_TEXT = re.compile(rf"(?<![\w.!#$%&'*+/=?^`{{|}}~@-]){_LOCAL}@{_DOMAIN}(?![\w@-])")
MAX_EMAIL_LENGTH = 254


def is_valid_email(text: str) -> bool:
    """Whether ``text`` is one plausible e-mail address (surrounding spaces ignored).

    Pragmatic, not RFC 5322: a local part of the usual characters without leading, trailing or
    double dots, and a domain with a top-level domain of at least two letters. Spaces inside,
    a missing "@" or a missing top-level domain are rejected.
    """
    candidate = text.strip()
    if len(candidate) > MAX_EMAIL_LENGTH or not _EMAIL.fullmatch(candidate):
        return False
    return len(candidate.split("@")[0]) <= 64


def extract_email(text: str) -> str | None:
    """The first valid e-mail address in a message, as written, e.g. from "mail me at
    jan@example.nl." or "mijn e-mail is <Jan.de.Vries@Example.NL>".

    Returns:
        The address, or None when the message holds none.
    """
    for found in _EMAIL_IN_TEXT.finditer(text):
        if is_valid_email(found.group(0)):
            return found.group(0)
    return None


# -- names, companies, phone numbers, and everything in one message ------------------------------

_NAME_WORD = r"[^\W\d_][^\W\d_'.-]*(?:['.-][^\W\d_]+)*\.?"
_NAME_CUES = re.compile(
    r"(?:\bmy name is|\bname is|\bnaam is|\bik heet|\bmijn naam is|\bthis is|\bspeaking with|"
    r"\bje spreekt met|\bnaam:|\bname:)\s+"
    rf"((?:{_NAME_WORD})(?:\s+{_NAME_WORD}){{0,4}})",
    re.IGNORECASE,
)
# "I'm Anna de Vries" / "ik ben Jan": only a capitalised name after these, not "I'm looking".
_NAME_CUES_CAPITALISED = re.compile(
    r"(?i:\bi'?m|\bi am|\bik ben)\s+"
    r"((?:[A-Z][^\W\d_'-]*(?:['-][^\W\d_]+)*)(?:\s+(?:(?:van|de|der|den|het|ter|ten|el|al|da|di|le|la)\s+)*[A-Z][^\W\d_'-]*(?:['-][^\W\d_]+)*){0,3})"
)
# Words that end a name: "I'm Anna and we need 20 laptops", "ik heet Jan en ik wil ...".
_NAME_STOP = {"and", "en", "from", "van", "bij", "at", "of", "with", "met", "we", "our", "ons",
              "onze", "my", "mijn", "email", "e-mail", "mail", "phone", "telefoon", "budget",
              "here", "hier", "speaking"}
_NOT_NAMES = {"no", "nee", "yes", "ja", "ok", "oke", "okay", "thanks", "bedankt", "hi", "hello",
              "hallo", "hoi", "sorry", "idk", "none", "geen", "niemand", "anonymous", "anoniem"}
MAX_NAME_WORDS = 6


def is_plausible_name(text: str) -> bool:
    """Whether ``text`` can be a person's name: one to six words of letters (with ' - .), no
    digits, no e-mail address, no timeline or amount words."""
    words = text.split()
    if not 1 <= len(words) <= MAX_NAME_WORDS or len(text) > 100:
        return False
    if not all(re.fullmatch(_NAME_WORD, w) for w in words):
        return False
    lowered = _lower(text)
    if lowered in _NOT_NAMES or is_timeline(text) or parse_company_size(text) is not None:
        return False
    return not (_DURATION.search(lowered) or _ASAP.search(lowered))


def extract_name(text: str, asked: bool = False) -> str | None:
    """The customer's name: after "my name is", "ik heet", "I'm" (capitalised) and the like, or
    the whole answer when the name was asked for and the answer looks like one ("Anna de Vries").

    Returns:
        The name as written, or None.
    """
    for pattern in (_NAME_CUES, _NAME_CUES_CAPITALISED):
        found = pattern.search(text)
        if found:
            words = []
            for word in found.group(1).split():
                if word.lower().strip(".") in _NAME_STOP and words:
                    break
                words.append(word.rstrip("."))
            name = " ".join(words)
            if name and is_plausible_name(name):
                return name
    if asked:
        candidate = re.sub(r"^(?:it'?s|het is|dat is)\s+", "", text.strip(), flags=re.IGNORECASE).strip(" .!")
        if is_plausible_name(candidate):
            return candidate
    return None


_COMPANY = re.compile(
    r"(?:\b(?:company|firm|organisation|organization|business|bedrijf|organisatie|zaak)"
    r"(?:'s name)?(?:\s+(?:is|heet|called|named|genaamd))?|"
    r"\b(?:i work (?:at|for)|we are|we're|ik werk bij|wij zijn|we zijn)|\bnamens)"
    r"\s+((?:[A-Z0-9][\w&'.-]*)(?:\s+(?:[A-Z0-9&][\w&'.-]*|B\.?V\.?|N\.?V\.?|Ltd\.?|Inc\.?)){0,4})"
)


def extract_company(text: str) -> str | None:
    """The company's name after "our company is", "I work at", "bedrijf heet", "namens" and the
    like; only a capitalised name ("Acme BV"), so "we're 40 people" is not a company.

    Returns:
        The name as written, or None.
    """
    found = _COMPANY.search(text)
    if not found:
        return None
    name = found.group(1).rstrip(".,")
    if any(c.isdigit() for c in name.split()[0]) or len(name) > 100:
        return None
    return name


# A phone number: 8 to 15 digits with spaces, dots, dashes and brackets, a leading + or 0, or a
# word for a phone before it; amounts and head counts do not look like this.
_PHONE = re.compile(r"(?<![\w+])(\+|0)\(?\d[\d\s().-]{6,20}\d(?!\w)")
_PHONE_CUE = re.compile(
    r"\b(?:phone|tel|telephone|mobile|cell|call me on|number|telefoon|telefoonnummer|mobiel|"
    r"nummer|bel me op)\b[^\d+]{0,15}(\+?\(?\d[\d\s().-]{6,20}\d)(?!\w)",
    re.IGNORECASE,
)


def extract_phone_number(text: str) -> str | None:
    """A phone number written as one ("+31 6 1234 5678", "020-5550147", "phone: 612345678"),
    spaces and punctuation removed, a leading + kept.

    Returns:
        The number, or None.
    """
    for found in [*_PHONE.finditer(text), *_PHONE_CUE.finditer(text)]:
        raw = found.group(1) if found.re is _PHONE_CUE else found.group(0)
        if raw.startswith("+"):
            raw = raw.replace("(0)", "")
        digits = re.sub(r"\D", "", raw)
        if 8 <= len(digits) <= 15:
            return ("+" if raw.lstrip("(").startswith("+") else "") + digits
    return None


_BUDGET_CUE = re.compile(r"\b(?:budget|budgetten|spend|spending|besteden|uitgeven)\b")
_SIZE_CUE = re.compile(r"\b(?:company size|bedrijfsgrootte|we are|we're|we zijn|wij zijn|there are|er werken)\b")


def _marked_size(lowered: str) -> int | None:
    """A head count named as one: "50 people", "10-50 medewerkers", "just me"."""
    for pattern in _SIZE_RANGES:
        for found in pattern.finditer(lowered):
            tail = lowered[found.end():]
            if re.match(rf"\s*\+?\s*{_PEOPLE}\b", tail):
                return parse_company_size(found.group(0))
    for found in _SIZE.finditer(lowered):
        if found.group(3):
            value = _quantity(found.group(1), found.group(2))
            return _people(value) if value is not None else None
    if _ONE_PERSON.search(lowered):
        return 1
    return None


def _marked_budget(lowered: str) -> float | None:
    """An amount named as money: with € or euro, "k" or "miljoen", or after "budget"."""
    for pattern, replacement in _WORD_AMOUNTS:
        lowered = pattern.sub(replacement, lowered)
    for pattern in _AMOUNT_RANGES:
        found = pattern.search(lowered)
        if found and (found.group(1) or found.group(3) or found.group(4) or found.group(6)):
            return parse_budget(found.group(0))
    for found in _AMOUNT.finditer(lowered):
        if found.group(1) or found.group(3) or found.group(4):
            return _quantity(found.group(2), found.group(3))
    cue = _BUDGET_CUE.search(lowered)
    if cue:
        return parse_budget(lowered[cue.end():])
    return None


_TIMELINE_PHRASE = re.compile(
    rf"(?:(?:within|in|over|binnen|about|ongeveer|around|zo'?n|starting|start|beginnen|vanaf|"
    rf"from|by|voor|before|uiterlijk|the|de|het)\s+)*(?:{_DURATION.pattern}|{_DURATION_RANGES[1].pattern})"
)


def _timeline_phrase(text: str) -> str | None:
    """The words in which a message names when the customer wants to start, as written."""
    lowered = _lower(text)
    for pattern, _replacement in _HALVES:
        found = pattern.search(lowered)
        if found:
            return found.group(0)
    found = _TIMELINE_PHRASE.search(lowered)
    if found:
        return found.group(0)
    for pattern in (_NO_TIMELINE, _ASAP):
        found = pattern.search(lowered)
        if found:
            return found.group(0)
    from dateparser.search import search_dates

    for said, _moment in search_dates(text, languages=["en", "nl"], settings=_DATEPARSER_SETTINGS) or []:
        if parse_timeline_date(said) is not None:
            return said
    return None


def read_lead_details(text: str, asked: str | None = None) -> dict[str, Any]:
    """Every lead answer a message holds, in English or Dutch, whatever was asked.

    An answer to the question asked (``asked`` is ``company_size``, ``budget``, ``timeline``,
    ``name`` or ``email``) may be bare ("45", "12.000", "Anna de Vries"); any other answer is
    only taken when it says what it is ("45 people", "€ 12.000", "within 3 months", "my name is
    Anna", an e-mail address, a phone number, "our company is Acme BV"), so a number is never
    taken for the wrong question.

    Returns:
        By answer (``company_size`` in people, ``budget`` in euros, ``timeline`` as the
        customer's words, ``name``, ``email``, ``phone``, ``company``), the ones found.
    """
    lowered = _lower(text)
    email = extract_email(text)
    phone = extract_phone_number(text)
    rest = text
    for found in (email, phone):
        if found:
            rest = rest.replace(found, " ")
    rest_lowered = _lower(rest)
    details: dict[str, Any] = {}
    if email:
        details["email"] = email
    if phone:
        details["phone"] = phone
    company = extract_company(rest)
    if company:
        details["company"] = company
    name = extract_name(rest, asked=asked == "name" and not email)
    if name:
        details["name"] = name

    timeline = _timeline_phrase(rest)
    if timeline is None and asked == "timeline" and is_timeline(rest):
        timeline = rest.strip()
    if timeline is not None:
        details["timeline"] = timeline
    # Numbers that belong to the timeline are not a head count or an amount.
    numbers = rest_lowered.replace(timeline.lower(), " ") if timeline else rest_lowered
    size = _marked_size(numbers)
    if size is None and (asked == "company_size" or _SIZE_CUE.search(numbers)) and "budget" not in details:
        bare = parse_company_size(numbers) if not _marked_budget(numbers) else None
        size = bare if asked == "company_size" or (bare is not None and _SIZE_CUE.search(numbers)) else None
    if size is not None and size <= MAX_COMPANY_SIZE:
        details["company_size"] = size
    budget = _marked_budget(numbers)
    if budget is None and asked == "budget":
        budget = parse_budget(numbers)
    if budget is not None and math.isfinite(budget) and 0 <= budget <= MAX_BUDGET:
        details["budget"] = budget
    if lowered and not details and asked:
        return {}
    return details


# Sane upper bounds: the largest employers have a few million people.
MAX_COMPANY_SIZE = 10_000_000
MAX_BUDGET = 1e12


# -- scoring ------------------------------------------------------------------------------------

PARSERS: dict[str, Callable[[str], float | None]] = {
    "company_size": parse_company_size,
    "budget": parse_budget,
    "timeline_months": parse_timeline_months,
}
DEFAULT_LEAD_SCORING_CONFIG: dict[str, Any] = {
    # A lead with at least this many points is qualified and goes to sales.
    "qualify_at": 60,
    # Per answer, bands of points; the first band the value falls in counts ("min" and "max"
    # are inclusive). A missing or unreadable answer scores 0.
    "company_size": [{"min": 50, "points": 40}, {"min": 10, "points": 20}],
    "budget": [{"min": 20000, "points": 40}, {"min": 5000, "points": 20}],
    "timeline_months": [{"max": 3, "points": 20}, {"max": 12, "points": 10}],
}


@dataclass(frozen=True)
class Band:
    """Points for a value from ``min`` up to and including ``max`` (either may be open)."""

    points: int
    min: float | None = None
    max: float | None = None

    def matches(self, value: float) -> bool:
        """Whether ``value`` falls in this band."""
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


@dataclass(frozen=True)
class LeadScoringConfig:
    """When a lead is qualified: ``qualify_at`` points, earned per answer through bands."""

    qualify_at: float = DEFAULT_LEAD_SCORING_CONFIG["qualify_at"]
    bands: Mapping[str, tuple[Band, ...]] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> LeadScoringConfig:
        """Build a config from parsed YAML, e.g. ``DEFAULT_LEAD_SCORING_CONFIG``.

        A key that is left out keeps its default; to stop scoring an answer, give it an empty
        list of bands.

        Raises:
            ValueError: A key is unknown, or a band is malformed.
        """
        data = dict(data or {})
        unknown = sorted(set(data) - set(DEFAULT_LEAD_SCORING_CONFIG))
        if unknown:
            raise ValueError(
                f"lead scoring: unknown key(s) {', '.join(map(repr, unknown))}; "
                f"expected qualify_at or one of {', '.join(PARSERS)}"
            )
        merged = {**DEFAULT_LEAD_SCORING_CONFIG, **data}
        qualify_at = merged["qualify_at"]
        if not _is_number(qualify_at) or qualify_at < 0:
            raise ValueError(
                f"lead scoring: qualify_at must be a number of 0 or more, got {qualify_at!r}"
            )
        bands = {name: _bands(name, merged[name]) for name in PARSERS}
        return cls(qualify_at=qualify_at, bands=bands)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _bands(name: str, spec: Any) -> tuple[Band, ...]:
    if not isinstance(spec, list):
        raise ValueError(f"lead scoring: {name} must be a list of bands, got {spec!r}")
    bands = []
    for index, band in enumerate(spec):
        where = f"lead scoring: {name}[{index}]"
        if not isinstance(band, Mapping):
            raise ValueError(f"{where} must be a mapping with points and min and/or max")
        unknown = sorted(set(band) - {"min", "max", "points"})
        if unknown:
            raise ValueError(f"{where} has unknown key(s) {', '.join(map(repr, unknown))}")
        points = band.get("points")
        if not isinstance(points, int) or isinstance(points, bool):
            raise ValueError(f"{where}: points must be a whole number, got {points!r}")
        low, high = band.get("min"), band.get("max")
        if low is None and high is None:
            raise ValueError(f"{where} needs min, max or both")
        for key, value in (("min", low), ("max", high)):
            if value is not None and not _is_number(value):
                raise ValueError(f"{where}: {key} must be a number, got {value!r}")
        if low is not None and high is not None and low > high:
            raise ValueError(f"{where}: min ({low}) is above max ({high})")
        bands.append(Band(points=points, min=low, max=high))
    return tuple(bands)


@dataclass(frozen=True)
class LeadScore:
    """The outcome of lead qualification.

    Attributes:
        score: Total points.
        qualified: Whether the score reaches ``qualify_at``.
        breakdown: Points per scored answer, 0 for a missing or unreadable one.
        values: What each answer was read as (people, euros, months), None if nothing.
    """

    score: int
    qualified: bool
    breakdown: dict[str, int]
    values: dict[str, float | None] = field(default_factory=dict)


def _value(name: str, answer: Any) -> float | None:
    if _is_number(answer):
        return float(answer)
    if isinstance(answer, str):
        return PARSERS[name](answer)
    return None


def score_lead(answers: Mapping[str, Any], config: LeadScoringConfig | None = None) -> LeadScore:
    """Score a lead's answers against the config's bands.

    Args:
        answers: By answer name (``company_size``, ``budget``, ``timeline_months``), either the
            customer's own words ("ongeveer 40 mensen") or an already parsed number.
        config: The scoring rules; the defaults when omitted.

    Returns:
        The total, whether it qualifies, and the points and value per answer.
    """
    config = config or DEFAULT_CONFIG
    breakdown: dict[str, int] = {}
    values: dict[str, float | None] = {}
    for name, bands in config.bands.items():
        value = _value(name, answers.get(name))
        values[name] = value
        band = next((b for b in bands if b.matches(value)), None) if value is not None else None
        breakdown[name] = band.points if band else 0
    score = sum(breakdown.values())
    return LeadScore(
        score=score, qualified=score >= config.qualify_at, breakdown=breakdown, values=values
    )


DEFAULT_CONFIG = LeadScoringConfig.from_dict(None)
