"""The keyword backstop for explicit requests for a person, as designers write it in YAML.

An explicit request ("I want to talk to a human", "kan ik een medewerker spreken", "agent!") must
reach a person whatever the intent classifier makes of it, also when the same message first
complains about the bot. The ``explicit_request`` section of ``handoff_rules.yml`` lists, per
language, the words for a person, the verbs of reaching one, the words of wishing, whole phrases
that are a request on their own, and words and phrases that make a message something else ("travel
agent", "on sunday": a question about opening hours); a message holding one of those is left to
the classifier. Otherwise a message is an explicit request when

- it holds one of the ``phrases`` ("call me back", "wie kan ik bellen"); or
- a ``persons`` word and one of the ``verbs`` of reaching (talk, call, spreken) stand within
  ``window`` words of each other, in either order; or one of the ``wish_verbs`` (want, need, wil)
  stands at most ``close_window`` words before a ``persons`` word ("I want a human", not "I need
  an invoice for my manager"); or a ``weak_persons`` word ("someone", "iemand") and a verb of
  reaching stand within ``close_window`` words ("can someone call me", not "I want to give
  someone a gift card"); or
- one of its sentences is hardly more than a person word ("agent", "human please", "Domme
  chatbot. Medewerker nu.").

Words match whatever their case and accents, a person word also with a short ending ("agents",
"medewerkers", "collega's"), and a person word or verb of five letters or more also with one typo
("agnet", "huamn", "medwerker"), a four-letter one with two letters swapped ("tlak"); the short
words of wishing only as written. :meth:`ExplicitRequestConfig.evidence` tells whether a message
has any word for a person or for reaching one at all. Matching is linear in the length of the
message: each word is looked up in tables built once, and each person word is paired only with
the nearest verbs before and after it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
TOKEN = re.compile(r"([a-z0-9]+(?:'[a-z]+)?)|[.!?;]")
LANGUAGES = ("en", "nl")
# Longer "words" are pasted links, codes or noise: never a person or a verb, and not worth the
# typo tables.
MAX_WORD = 24
SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "window": {"type": "integer", "minimum": 1, "maximum": 12},
        "close_window": {"type": "integer", "minimum": 1, "maximum": 12},
        "unsupported_confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "short_message_words": {"type": "integer", "minimum": 1, "maximum": 8},
        **{
            key: {
                "type": "object",
                "propertyNames": {"enum": list(LANGUAGES)},
                "additionalProperties": {"type": "array", "items": {"type": "string", "minLength": 1}},
            }
            for key in ("persons", "weak_persons", "verbs", "wish_verbs", "phrases", "not_requests", "filler", "not_typos")
        },
    },
}
# A person word may carry one of these endings: "agents", "medewerkers", "collega's", "mensen".
ENDINGS = ("s", "es", "en", "n", "'s")


def normalise(text: str) -> list[str]:
    """Lowercase words without accents; apostrophes kept inside a word ("collega's")."""
    text = unicodedata.normalize("NFKD", text.lower().replace("\u2019", "'"))
    text = "".join(c for c in text if not unicodedata.combining(c))
    return WORD.findall(text)


def tokenise(text: str) -> tuple[list[str], list[int]]:
    """The words of ``text`` (as :func:`normalise`) and the word positions where a sentence ends."""
    text = unicodedata.normalize("NFKD", text.lower().replace("\u2019", "'"))
    text = "".join(c for c in text if not unicodedata.combining(c))
    tokens: list[str] = []
    ends: list[int] = []
    for found in TOKEN.finditer(text):
        if found.group(1):
            tokens.append(found.group(1))
        elif tokens and (not ends or ends[-1] != len(tokens)):
            ends.append(len(tokens))
    return tokens, ends


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


def _swaps(word: str) -> set[str]:
    return {word[:i] + word[i + 1] + word[i] + word[i + 2 :] for i in range(len(word) - 1)}


class Vocabulary:
    """One class of words (persons, verbs): exact forms, forms with a typo, short endings."""

    def __init__(self, words: Iterable[str], not_typos: Iterable[str] = (), endings: bool = False, typos: bool = True):
        self.exact: set[str] = set()
        self.typos: dict[str, str] = {}
        self.endings = endings
        self.allow_typos = typos
        self.not_typos = set(not_typos)
        for phrase in words:
            tokens = normalise(phrase)
            if len(tokens) != 1:
                continue  # several words: matched as a phrase
            word = tokens[0]
            self.exact.add(word)
        for word in self.exact:
            if len(word) >= 5:
                # Symmetric deletion: two words one edit (or one swap) apart share a deletion.
                for variant in _deletions(word) | {word}:
                    self.typos.setdefault(variant, word)
            elif len(word) == 4:
                for variant in _swaps(word):
                    self.typos.setdefault("swap:" + variant, word)

    def match(self, token: str) -> str | None:
        """The vocabulary word ``token`` stands for, or None."""
        if token in self.exact:
            return token
        if not self.allow_typos and not self.endings:
            return None
        if token in self.not_typos or len(token) > MAX_WORD or len(token) < 4:
            return None
        if self.endings:
            for ending in ENDINGS:
                stem = token[: -len(ending)]
                if token.endswith(ending) and len(stem) >= 4:
                    if stem in self.exact:
                        return stem
                    if self.allow_typos and len(stem) >= 5 and (typo := self._typo(stem)):
                        return typo  # "mederwerkers"
        if not self.allow_typos:
            return None
        return self._typo(token)

    def _typo(self, token: str) -> str | None:
        if len(token) == 4:
            return self.typos.get("swap:" + token)
        if token in self.typos:
            return self.typos[token]
        for variant in _deletions(token):
            if variant in self.exact or variant in self.typos:
                return self.typos.get(variant) or variant
        return None


KINDS = {"persons": "person", "weak_persons": "weak", "verbs": "verb", "wish_verbs": "wish", "phrases": "phrase"}


@dataclass(frozen=True)
class Match:
    """Why a message counts as an explicit request."""

    kind: str  # phrase | person_and_verb | short
    words: tuple[str, ...]


@dataclass
class ExplicitRequestConfig:
    """The ``explicit_request`` section of ``handoff_rules.yml``, all languages together."""

    window: int = 5
    close_window: int = 3
    unsupported_confidence: float = 0.5
    short_message_words: int = 3
    persons: tuple[str, ...] = ()
    weak_persons: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ()
    wish_verbs: tuple[str, ...] = ()
    phrases: tuple[str, ...] = ()
    not_requests: tuple[str, ...] = ()
    filler: tuple[str, ...] = ()
    not_typos: tuple[str, ...] = ()
    _compiled: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: dict | None) -> ExplicitRequestConfig:
        import jsonschema

        data = data or {}
        errors = sorted(jsonschema.Draft202012Validator(SCHEMA).iter_errors(data), key=lambda e: list(e.absolute_path))
        if errors:
            where = "/".join(str(p) for p in errors[0].absolute_path) or "(top level)"
            raise ValueError(f"at {where}: {errors[0].message}")

        def words(key: str) -> tuple[str, ...]:
            return tuple(w for language in (data.get(key) or {}).values() for w in language)

        return cls(
            window=int(data.get("window", 5)),
            close_window=int(data.get("close_window", 3)),
            unsupported_confidence=float(data.get("unsupported_confidence", 0.5)),
            short_message_words=int(data.get("short_message_words", 3)),
            **{
                key: words(key)
                for key in ("persons", "weak_persons", "verbs", "wish_verbs", "phrases", "not_requests", "filler", "not_typos")
            },
        )

    @property
    def empty(self) -> bool:
        return not (self.persons or self.phrases)

    def _tables(self) -> dict:
        if not self._compiled:
            multi = {}
            for key in ("persons", "weak_persons", "verbs", "wish_verbs", "phrases", "not_requests"):
                for phrase in getattr(self, key):
                    tokens = tuple(normalise(phrase))
                    if len(tokens) > 1 or key in ("phrases", "not_requests"):
                        multi.setdefault(tokens[0], []).append((tokens, key))
            for entries in multi.values():
                entries.sort(key=lambda entry: -len(entry[0]))  # longest phrase first
            self._compiled.update(
                persons=Vocabulary(self.persons, self.not_typos, endings=True),
                weak=Vocabulary(self.weak_persons, self.not_typos, endings=False),
                verbs=Vocabulary(self.verbs, self.not_typos),
                # Short everyday words ("graag", "want"): a typo of one is more often another word.
                wish=Vocabulary(self.wish_verbs, typos=False),
                filler={t for f in self.filler for t in normalise(f)},
                # The words of several-word person names ("customer service"), for typos inside
                # them; verbs are left out, so "phoned you" does not become "phone you".
                loose=Vocabulary(
                    {t for p in self.persons + self.weak_persons if len(normalise(p)) > 1 for t in normalise(p) if len(t) >= 4}
                    - {t for f in self.filler for t in normalise(f)},
                    self.not_typos,
                ),
                multi=multi,
            )
        return self._compiled

    def _marks(self, tokens: list[str]) -> list[tuple[str, str] | None]:
        """Each word as ("person" | "weak" | "verb" | "wish" | "phrase" | "blocked", word), or
        None; the later words of a phrase are ("part", phrase)."""
        tables = self._tables()
        # Phrases are compared word by word after each word is put right if it is a typo of
        # one of the section's words ("custmer servce" → "customer service").
        loose = tables["loose"]
        canonical = [loose.match(token) or token for token in tokens]
        marks: list[tuple[str, str] | None] = []
        i = 0
        while i < len(tokens):
            token = tokens[i]
            found = None
            for phrase, key in tables["multi"].get(canonical[i], ()):
                if tuple(canonical[i : i + len(phrase)]) == phrase:
                    found = (KINDS.get(key, "blocked"), " ".join(phrase), len(phrase))
                    break
            if found:
                kind, words, length = found
                marks.extend([(kind, words)] + [("part", words)] * (length - 1))
                i += length
                continue
            for kind, table in (("person", "persons"), ("weak", "weak"), ("verb", "verbs"), ("wish", "wish")):
                if (word := tables[table].match(token)) is not None:
                    marks.append((kind, word))
                    break
            else:
                marks.append(None)
            i += 1
        return marks

    def _short(self, tokens: list[str], marks: list, filler: set[str]) -> bool:
        content = [m for t, m in zip(tokens, marks, strict=True) if m is not None or t not in filler]
        words = [m for m in content if m and m[0] != "part"]
        return (
            0 < len(words) <= self.short_message_words
            and all(m and m[0] in ("person", "verb", "wish", "weak", "part") for m in content)
            and any(m[0] == "person" for m in words)
        )

    def evidence(self, text: str | None) -> bool:
        """True when ``text`` has both a word for a person (or one of the phrases) and a word of
        reaching or wishing, anywhere: the least a classifier's "request for a person" should
        rest on ("What's the plural of person?" and "call a taxi" have only one of the two)."""
        if self.empty or not text:
            return False
        kinds = {m[0] for m in self._marks(normalise(text)) if m}
        if "phrase" in kinds:
            return True
        return bool(kinds & {"person", "weak"}) and bool(kinds & {"verb", "wish"})

    def match(self, text: str | None) -> Match | None:
        """The reason ``text`` is an explicit request for a person, or None."""
        if self.empty or not text:
            return None
        tables = self._tables()
        tokens, sentence_ends = tokenise(text)
        marks = self._marks(tokens)
        if any(m and m[0] == "blocked" for m in marks):
            return None  # "travel agent", "on sunday": the classifier decides
        phrase = next((m for m in marks if m and m[0] == "phrase"), None)
        if phrase:
            return Match("phrase", (phrase[1],))

        # A verb of reaching stands before or after the person ("talk to a human", "kan ik een
        # medewerker spreken"); a wish only just before a person word ("I want a person", not
        # "my manager wants an invoice"); a weak person word only close to a verb of reaching
        # ("can someone call me", not "I want to give someone a gift card").
        # The nearest verb of reaching and wish before each word, the nearest verb after it: one
        # pass each way, so the time stays linear in the length of the message.
        last_verb = last_wish = next_verb = None
        before: list[tuple[int | None, int | None]] = []
        for k, mark in enumerate(marks):
            before.append((last_verb, last_wish))
            if mark and mark[0] == "verb":
                last_verb = k
            elif mark and mark[0] == "wish":
                last_wish = k
        for k in range(len(marks) - 1, -1, -1):
            mark = marks[k]
            if mark and mark[0] in ("person", "weak"):
                reach = self.window if mark[0] == "person" else self.close_window
                verb, wish = before[k]
                for v, limit in ((verb, reach), (next_verb, reach), (wish if mark[0] == "person" else None, self.close_window)):
                    if v is not None and abs(k - v) <= limit:
                        return Match("person_and_verb", (marks[v][1], mark[1]))  # type: ignore[index]
            if mark and mark[0] == "verb":
                next_verb = k
        # A short sentence of person words, verbs and filler only: "agent", "human please",
        # "Domme chatbot. Medewerker nu."
        start = 0
        for end in [*sentence_ends, len(tokens)]:
            if self._short(tokens[start:end], marks[start:end], tables["filler"]):
                words = tuple(m[1] for m in marks[start:end] if m and m[0] in ("person", "weak", "verb", "wish"))
                return Match("short", words)
            start = end
        return None
