"""Training-data candidates: customer messages the bot got wrong, as Rasa NLU examples for a
designer to check (``make review``, docs/REVIEW.md) and the console's Review page.

Three sources, read with SQLAlchemy Core:

- ``misunderstood``: handoffs an agent wrapped up as "the bot misunderstood" (table
  ``handoff_wrapups``), labelled with the intent the agent picked. The messages are taken from the
  handoff's transcript (``handoff_records``): walking back from the last customer turn before the
  handoff, turns in which the customer only asked for a person or vented (``request_human``,
  ``express_frustration``) are passed over; the first other turn is the misunderstood one, taken
  when the bot recognised another intent (or was unsure); earlier turns of the same run are taken
  while the bot kept getting them wrong (``nlu_fallback``, low confidence, or the same wrong
  intent). Wrap-ups marked "new topic" are counted, not used.
- ``fallback``: customer messages that became ``nlu_fallback`` in the tracker store; labelled with
  the best real intent the model ranked, to check.
- ``low_confidence``: customer messages whose intent confidence was below the threshold; labelled
  with the predicted intent, to check.

Every text is masked (e-mail addresses, phone numbers, order numbers, names) with placeholders
that are plain words in Rasa's YAML (``EMAIL``, ``PHONE``, ``ORDER_NUMBER``, ``NAME``: square
brackets would be entity markup), normalised (lower case, no punctuation, single spaces) and
deduplicated against each other and against the training data in data/nlu. The same text from
several sources keeps the most trusted label: an agent's over the model's.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from handoff.language import LANGUAGES, detect_language
from handoff.leads import _EMAIL_IN_TEXT, is_valid_email
from handoff.privacy import TRACKER_EVENTS
from handoff.settings import PROJECT_ROOT

DAY = 86400.0
DEFAULT_DAYS = 30
DEFAULT_THRESHOLD = 0.6
FALLBACK_INTENT = "nlu_fallback"
#: Turns recognised as one of these asked for a person or vented: they are not the message the
#: bot misunderstood, and are passed over when looking for it.
ESCALATION_INTENTS = frozenset({"request_human", "express_frustration"})
MISUNDERSTOOD_WHY = "bot_misunderstood"

# Sources, most trusted first.
MISUNDERSTOOD = "misunderstood"
FALLBACK = "fallback"
LOW_CONFIDENCE = "low_confidence"
SOURCES = (MISUNDERSTOOD, FALLBACK, LOW_CONFIDENCE)
SOURCE_LABELS = {
    MISUNDERSTOOD: "agent wrap-up: the bot misunderstood",
    FALLBACK: "nlu_fallback, to check",
    LOW_CONFIDENCE: "low confidence, to check",
}

ACCEPT = "accept"
REJECT = "reject"
DECISIONS = (ACCEPT, REJECT)

# Placeholders: plain capitalised words, which Rasa reads as text (no entity markup).
EMAIL = "EMAIL"
PHONE = "PHONE"
ORDER_NUMBER = "ORDER_NUMBER"
NAME = "NAME"

DEFAULT_NLU_DIR = PROJECT_ROOT / "data" / "nlu"

# -- masking -----------------------------------------------------------------------------------------

# A phone number as actions/follow_up_actions.py reads one: digits with spaces, dots, dashes and
# brackets, a leading + allowed, 8 to 15 digits. Taken only when it looks like one (see _phone).
_PHONE = re.compile(r"(?<![\w+#])\+?\(?\d[\d\s().-]{6,20}\d(?!\w)")
# Order numbers: "#12345", "NW-123456" (letters, a dash, digits), and any run of 5 or more digits.
_ORDER_PREFIXED = re.compile(r"(?<![\w#])(?:#\s?\d{3,}|[A-Za-z]{1,4}-\d{4,})(?![\w-])")
_DIGIT_RUN = re.compile(r"(?<![\w])\d{5,}(?![\w])")
_NAME_WORD = r"[A-ZÀ-ÖØ-Þ][^\W\d_]*(?:['-][^\W\d_]+)*"
_PARTICLE = r"(?:van|de|der|den|het|ter|ten|te|in|op|la|le|du|da|di|von|zu|'t)"
_NAME_CUE = re.compile(
    r"(?i:\b(?:my name is|my name's|name is|ik ben|ik heet|mijn naam is|naam is)\s+)"
    rf"({_NAME_WORD}(?:\s+(?:{_PARTICLE}\s+)*{_NAME_WORD}){{0,3}})"
)
_PARTICLE_WORD = re.compile(_PARTICLE, re.IGNORECASE)
_DATE = re.compile(r"\d{1,4}[-./]\d{1,2}[-./]\d{1,4}")
_PLACEHOLDER = re.compile(rf"\b(?:{EMAIL}|{PHONE}|{ORDER_NUMBER}|{NAME})\b")


def _phone(match: re.Match) -> bool:
    raw = match.group(0)
    digits = re.sub(r"\D", "", raw)
    if not 8 <= len(digits) <= 15 or _DATE.fullmatch(raw.strip()):
        return False
    # A bare run of digits is an order number unless it is written like a phone number: a +, a
    # leading 0, or groups separated by spaces, dots, dashes or brackets.
    return raw.startswith("+") or raw.lstrip("(").startswith("0") or bool(re.search(r"\D", raw))


def _name_pattern(name: str) -> re.Pattern | None:
    """Each word (2+ letters) of a known name, whole words, any case."""
    words = {w for w in re.findall(r"[^\W\d_]{2,}", name or "") if not _PARTICLE_WORD.fullmatch(w)}
    words = sorted(words, key=len, reverse=True)
    if not words:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(re.escape(w) for w in words) + r")(?!\w)", re.IGNORECASE)


def mask(text: str, names: Iterable[str] = ()) -> str:
    """``text`` with e-mail addresses, phone numbers, order numbers and names replaced by
    ``EMAIL``, ``PHONE``, ``ORDER_NUMBER`` and ``NAME``.

    Names are the customer's known ones (each of their words, any case) and capitalised words after
    "my name is", "ik ben", "mijn naam is" and the like. Phone numbers are masked before order
    numbers: a number written like a phone number (+, a leading 0, or grouped) is ``PHONE``; a bare
    run of five or more digits, "#12345" and "NW-123456" are ``ORDER_NUMBER``.
    """
    result = _EMAIL_IN_TEXT.sub(lambda m: EMAIL if is_valid_email(m.group(0)) else m.group(0), text)
    result = _ORDER_PREFIXED.sub(ORDER_NUMBER, result)
    result = _PHONE.sub(lambda m: PHONE if _phone(m) else m.group(0), result)
    result = _DIGIT_RUN.sub(ORDER_NUMBER, result)
    for name in names:
        pattern = _name_pattern(name)
        if pattern is not None:
            result = pattern.sub(NAME, result)

    def cue(match: re.Match) -> str:
        start, end = match.span(1)
        return match.group(0)[: start - match.start()] + NAME + match.group(0)[end - match.start() :]

    result = _NAME_CUE.sub(cue, result)
    # "NAME NAME" (a first and last name masked word by word) is one name.
    return re.sub(rf"\b{NAME}(?:\s+(?:{_PARTICLE}\s+)*{NAME})+\b", NAME, result)


def normalise(text: str) -> str:
    """Lower case, punctuation removed, whitespace collapsed: how duplicates are recognised."""
    kept = "".join(" " if unicodedata.category(c).startswith(("P", "S")) else c for c in text.lower())
    return " ".join(kept.split())


def example_line(text: str) -> str:
    """One line a Rasa example may hold as plain text: whitespace collapsed, control characters
    dropped, square brackets and braces (entity markup) made round brackets."""
    cleaned = "".join(c for c in text if c in "\t\n " or unicodedata.category(c)[0] != "C")
    cleaned = cleaned.translate(str.maketrans("[]{}", "()()"))
    return " ".join(cleaned.split())


def candidate_id(intent: str, language: str, text: str) -> str:
    """A stable id of a candidate: its intent, language and normalised text."""
    key = "\x1f".join((intent, language, normalise(text)))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


# -- the candidates ----------------------------------------------------------------------------------


@dataclass
class Candidate:
    """One proposed training example."""

    intent: str
    language: str
    text: str  # masked, one line
    source: str  # MISUNDERSTOOD, FALLBACK or LOW_CONFIDENCE
    predicted: str | None = None  # what the bot recognised
    confidence: float | None = None
    #: How often the same (normalised) text came up, all sources together.
    occurrences: int = 1
    sources: set[str] = field(default_factory=set)
    decision: str | None = None  # ACCEPT, REJECT or None (not decided)

    @property
    def id(self) -> str:
        return candidate_id(self.intent, self.language, self.text)

    @property
    def to_check(self) -> bool:
        """Labelled by the model, not by an agent."""
        return self.source != MISUNDERSTOOD

    @property
    def key(self) -> str:
        return normalise(self.text)


@dataclass
class Review:
    """The candidates, and what was left out and why."""

    candidates: list[Candidate] = field(default_factory=list)
    since: float = 0.0
    threshold: float = DEFAULT_THRESHOLD
    #: Messages found per source, before deduplication.
    found: Counter = field(default_factory=Counter)
    new_topic: int = 0  # misunderstood wrap-ups marked "new topic" (not used)
    without_intent: int = 0  # misunderstood wrap-ups naming no intent
    without_transcript: int = 0  # misunderstood wrap-ups whose handoff has no transcript kept
    in_training_data: int = 0  # already in data/nlu
    duplicates: int = 0  # the same text again
    rejected: int = 0  # left out: rejected on the Review page
    notes: list[str] = field(default_factory=list)

    def groups(self) -> list[tuple[str, str, list[Candidate]]]:
        """(intent, language, candidates) in intent then language order; in a group, an agent's
        labels first, then by how often the text came up."""
        grouped: dict[tuple[str, str], list[Candidate]] = defaultdict(list)
        for candidate in self.candidates:
            grouped[(candidate.intent, candidate.language)].append(candidate)
        return [
            (intent, language, sorted(items, key=_order))
            for (intent, language), items in sorted(grouped.items())
        ]

    def counts(self) -> dict[tuple[str, str, str], int]:
        """Candidates per (source, intent, language)."""
        counts: Counter = Counter((c.source, c.intent, c.language) for c in self.candidates)
        return dict(sorted(counts.items()))

    def by_source(self) -> dict[str, int]:
        counts = Counter(c.source for c in self.candidates)
        return {source: counts.get(source, 0) for source in SOURCES}

    def get(self, candidate_id_: str) -> Candidate | None:
        return next((c for c in self.candidates if c.id == candidate_id_), None)

    def apply(self, decisions: Mapping[str, str]) -> None:
        """Mark accepted candidates and leave out rejected ones."""
        kept = []
        for candidate in self.candidates:
            candidate.decision = decisions.get(candidate.id)
            if candidate.decision == REJECT:
                self.rejected += 1
            else:
                kept.append(candidate)
        self.candidates = kept


def _order(candidate: Candidate) -> tuple:
    return (SOURCES.index(candidate.source), -candidate.occurrences, candidate.key)


# -- reading the stores --------------------------------------------------------------------------------

_wrapups = sa.table(
    "handoff_wrapups",
    sa.column("handoff_id", sa.String),
    sa.column("conversation_id", sa.String),
    sa.column("why", sa.String),
    sa.column("intent", sa.String),
    sa.column("new_topic", sa.Boolean),
    sa.column("created_at", sa.Float),
)
_records = sa.table(
    "handoff_records",
    sa.column("handoff_id", sa.String),
    sa.column("conversation_id", sa.String),
    sa.column("transcript", sa.Text),
    sa.column("lead", sa.Text),
)
_handoffs = sa.table(
    "handoffs",
    sa.column("id", sa.String),
    sa.column("language", sa.String),
)
_outbox = sa.table(
    "handoff_outbox",
    sa.column("handoff_id", sa.String),
    sa.column("event_type", sa.String),
    sa.column("body", sa.Text),
)

#: Slots whose values name the customer (masked wherever they appear).
NAME_SLOTS = ("customer_name",)


@dataclass
class Turn:
    """A customer message the bot read."""

    text: str
    intent: str | None
    confidence: float | None
    ranking: list[tuple[str, float | None]] = field(default_factory=list)


def _json(text: Any) -> Any:
    if not isinstance(text, str) or not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _confidence(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _names_in(value: Any) -> list[str]:
    """Names a customer object, lead answers or slot value hold."""
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, Mapping):
        names = []
        for key in ("name", "customer_name", "contact_name"):
            if isinstance(value.get(key), str) and value[key].strip():
                names.append(value[key])
        for key in ("customer", "answers"):
            if isinstance(value.get(key), Mapping):
                names.extend(_names_in(value[key]))
        return names
    return []


def _is_command(text: str) -> bool:
    return text.lstrip().startswith("/") or text.startswith("EXTERNAL: ")


def _table_exists(engine: sa.engine.Engine, name: str) -> bool:
    return sa.inspect(engine).has_table(name)


@dataclass
class _Found:
    """A message found in a store, before masking and deduplication."""

    intent: str
    language: str
    text: str
    source: str
    names: list[str]
    predicted: str | None
    confidence: float | None


def misunderstood_turns(
    transcript: list[Mapping[str, Any]],
    intent: str,
    threshold: float = DEFAULT_THRESHOLD,
    escalation_intents: Iterable[str] = ESCALATION_INTENTS,
) -> list[Mapping[str, Any]]:
    """The customer turns of a transcript the bot got wrong, given the intent the agent says the
    message should have been (the order of the transcript; see the module's docstring)."""
    escalation = set(escalation_intents)
    turns = [t for t in transcript if isinstance(t, Mapping) and t.get("role") == "customer" and t.get("text")]
    turns = [t for t in turns if not _is_command(str(t["text"]))]

    def unsure(turn: Mapping[str, Any]) -> bool:
        confidence = _confidence(turn.get("confidence"))
        return turn.get("intent") == FALLBACK_INTENT or (confidence is not None and confidence < threshold)

    taken: list[Mapping[str, Any]] = []
    wrong: str | None = None
    for turn in reversed(turns):
        recognised = turn.get("intent")
        if not taken:
            if recognised in escalation and recognised != intent and not unsure(turn):
                continue  # the customer asked for a person: not the misunderstood message
            if recognised == intent and not unsure(turn):
                break  # the bot had it right
            taken.append(turn)
            wrong = recognised
            continue
        if recognised != intent and (unsure(turn) or recognised == wrong):
            taken.append(turn)
        else:
            break
    return list(reversed(taken))


def _misunderstood(
    engine: sa.engine.Engine, since: float, threshold: float, review: Review, tracker_names: Mapping[str, list[str]]
) -> list[_Found]:
    if not _table_exists(engine, "handoff_wrapups"):
        review.notes.append(
            "handoff database: no handoff_wrapups table (no wrap-up recorded yet): "
            "messages the bot misunderstood are left out"
        )
        return []
    w, r, h = _wrapups.c, _records.c, _handoffs.c
    query = (
        sa.select(w.handoff_id, w.conversation_id, w.intent, w.new_topic, r.transcript, r.lead, h.language)
        .select_from(
            _wrapups.outerjoin(_records, r.handoff_id == w.handoff_id).outerjoin(_handoffs, h.id == w.handoff_id)
        )
        .where(w.why == MISUNDERSTOOD_WHY, w.created_at >= since)
        .order_by(w.created_at, w.handoff_id)
    )
    found: list[_Found] = []
    with engine.connect() as connection:
        rows = connection.execute(query).all()
        requested = _requested_customers(connection, [row.handoff_id for row in rows])
    for row in rows:
        if row.new_topic:
            review.new_topic += 1
            continue
        if not row.intent:
            review.without_intent += 1
            continue
        transcript = _json(row.transcript)
        if not isinstance(transcript, list) or not transcript:
            review.without_transcript += 1
            continue
        names = _names_in(_json(row.lead)) + requested.get(row.handoff_id, []) + list(
            tracker_names.get(row.conversation_id, [])
        )
        language = row.language if row.language in LANGUAGES else None
        for turn in misunderstood_turns(transcript, row.intent, threshold):
            text = str(turn["text"])
            found.append(
                _Found(
                    intent=row.intent,
                    language=language or detect_language(text),
                    text=text,
                    source=MISUNDERSTOOD,
                    names=names,
                    predicted=turn.get("intent"),
                    confidence=_confidence(turn.get("confidence")),
                )
            )
    review.found[MISUNDERSTOOD] += len(found)
    return found


def _requested_customers(connection: sa.engine.Connection, handoff_ids: list[str]) -> dict[str, list[str]]:
    """The customer's name from each handoff's ``handoff.requested`` body, while the outbox keeps it."""
    names: dict[str, list[str]] = defaultdict(list)
    o = _outbox.c
    for start in range(0, len(handoff_ids), 500):
        batch = handoff_ids[start : start + 500]
        query = sa.select(o.handoff_id, o.body).where(
            o.handoff_id.in_(batch), o.event_type == "handoff.requested", o.body != ""
        )
        for handoff_id, body in connection.execute(query):
            document = _json(body)
            if isinstance(document, Mapping):
                names[handoff_id].extend(_names_in(document.get("customer")))
                names[handoff_id].extend(_names_in(document.get("lead")))
    return names


@dataclass
class _Conversation:
    language: str | None = None
    names: list[str] = field(default_factory=list)


def _tracker(engine: sa.engine.Engine, since: float, threshold: float, review: Review) -> tuple[list[_Found], dict[str, list[str]]]:
    """Fallback and low-confidence customer messages since ``since``, and the names each
    conversation's customer is known by (slots, message metadata)."""
    e = TRACKER_EVENTS.c
    slot_needles = ['%"language"%'] + [f'%"{slot}"%' for slot in NAME_SLOTS]
    query = (
        sa.select(e.sender_id, e.type_name, e.data)
        .where(
            e.timestamp >= since,
            sa.or_(
                e.type_name == "user",
                sa.and_(e.type_name == "slot", sa.or_(*(e.data.like(n) for n in slot_needles))),
            ),
        )
        .order_by(e.sender_id, e.timestamp, e.id)
        .execution_options(stream_results=True)
    )
    pending: list[tuple[str, Turn, dict[str, Any]]] = []
    conversations: dict[str, _Conversation] = defaultdict(_Conversation)
    found: list[_Found] = []
    last_user: dict[str, int] = {}
    with engine.connect() as connection:
        for sender_id, type_name, data in connection.execute(query):
            event = _json(data)
            if not isinstance(event, Mapping):
                continue
            conversation = conversations[sender_id]
            if type_name == "slot":
                name, value = event.get("name"), event.get("value")
                if name == "language" and value in LANGUAGES:
                    conversation.language = value
                    index = last_user.pop(sender_id, None)
                    if index is not None:  # the language detected for that message
                        pending[index][2]["language"] = value
                elif name in NAME_SLOTS and isinstance(value, str) and value.strip():
                    conversation.names.append(value)
                continue
            metadata = event.get("metadata") if isinstance(event.get("metadata"), Mapping) else {}
            conversation.names.extend(_names_in(metadata.get("customer")))
            text = str(event.get("text") or "")
            if not text.strip() or _is_command(text) or metadata.get("is_external"):
                continue
            parse = event.get("parse_data") if isinstance(event.get("parse_data"), Mapping) else {}
            intent = parse.get("intent") if isinstance(parse.get("intent"), Mapping) else {}
            ranking = [
                (str(item.get("name")), _confidence(item.get("confidence")))
                for item in parse.get("intent_ranking") or []
                if isinstance(item, Mapping) and item.get("name")
            ]
            turn = Turn(text, intent.get("name"), _confidence(intent.get("confidence")), ranking)
            fallback = turn.intent == FALLBACK_INTENT
            low = turn.confidence is not None and turn.confidence < threshold
            if not (fallback or low) or not turn.intent:
                last_user.pop(sender_id, None)
                continue
            language = metadata.get("language") if metadata.get("language") in LANGUAGES else None
            pending.append((sender_id, turn, {"language": language, "previous": conversation.language}))
            last_user[sender_id] = len(pending) - 1
    for sender_id, turn, where in pending:
        language = where["language"] or detect_language(turn.text, where["previous"])
        if turn.intent == FALLBACK_INTENT:
            best = next((name for name, _ in turn.ranking if name != FALLBACK_INTENT), None)
            source, label = FALLBACK, best or FALLBACK_INTENT
        else:
            source, label = LOW_CONFIDENCE, turn.intent
        found.append(
            _Found(
                intent=label,
                language=language,
                text=turn.text,
                source=source,
                names=conversations[sender_id].names,
                predicted=turn.intent,
                confidence=turn.confidence,
            )
        )
        review.found[source] += 1
    names = {sender: c.names for sender, c in conversations.items() if c.names}
    return found, names


# -- the training data ---------------------------------------------------------------------------------

_ANNOTATION = re.compile(r"\[([^\]]*)\](?:\([^)]*\)|\{[^}]*\})")


def training_examples(nlu_dir: str | Path = DEFAULT_NLU_DIR) -> set[str]:
    """The normalised (and masked, as candidates are) text of every intent example in the Rasa
    YAML files under ``nlu_dir``; entity markup is read as its text."""
    import yaml

    known: set[str] = set()
    for path in sorted(Path(nlu_dir).rglob("*.y*ml")):
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError):
            continue
        blocks = document.get("nlu") if isinstance(document, dict) else None
        for block in blocks or []:
            if not isinstance(block, dict) or "intent" not in block:
                continue
            examples = block.get("examples")
            texts: list[str] = []
            if isinstance(examples, str):
                texts = [line.strip()[2:] for line in examples.splitlines() if line.strip().startswith("- ")]
            elif isinstance(examples, list):
                texts = [str(item.get("text", "")) for item in examples if isinstance(item, dict)]
            for text in texts:
                plain = _ANNOTATION.sub(lambda m: m.group(1), text)
                known.add(normalise(mask(plain)))
    known.discard("")
    return known


# -- everything together ---------------------------------------------------------------------------------


def build(found: Iterable[_Found], known: set[str], review: Review) -> None:
    """Mask, deduplicate and keep the candidates on ``review``."""
    by_key: dict[str, Candidate] = {}
    ranked = sorted(found, key=lambda f: SOURCES.index(f.source))  # stable: store order kept
    for item in ranked:
        text = example_line(mask(item.text, item.names))
        key = normalise(text)
        if not key or not normalise(_PLACEHOLDER.sub("", text)):
            continue  # nothing but placeholders (or punctuation) is no example
        if key in known:
            review.in_training_data += 1
            continue
        existing = by_key.get(key)
        if existing is not None:
            review.duplicates += 1
            existing.occurrences += 1
            existing.sources.add(item.source)
            continue
        by_key[key] = Candidate(
            intent=item.intent,
            language=item.language,
            text=text,
            source=item.source,
            predicted=item.predicted,
            confidence=item.confidence,
            sources={item.source},
        )
    review.candidates = list(by_key.values())


def collect(
    handoff_engine: sa.engine.Engine | None,
    tracker_engine: sa.engine.Engine | None,
    *,
    since: float | None = None,
    days: float = DEFAULT_DAYS,
    threshold: float = DEFAULT_THRESHOLD,
    nlu_dir: str | Path | None = DEFAULT_NLU_DIR,
    decisions: Mapping[str, str] | None = None,
    now: float | None = None,
) -> Review:
    """The training-data candidates of the last ``days`` (or since ``since``, Unix time).

    Either store may be None (left out, with a note). ``decisions`` (candidate id → ``accept`` or
    ``reject``) marks accepted candidates and leaves out rejected ones.
    """
    if not 0 < threshold <= 1:
        raise ValueError("the threshold must be more than 0 and at most 1")
    now = time.time() if now is None else now
    since = now - days * DAY if since is None else since
    review = Review(since=since, threshold=threshold)
    found: list[_Found] = []
    names: dict[str, list[str]] = {}
    if tracker_engine is None:
        review.notes.append("tracker store: not available: nlu_fallback and low-confidence messages are left out")
    elif not _table_exists(tracker_engine, "events"):
        review.notes.append("tracker store: no events table: nlu_fallback and low-confidence messages are left out")
    else:
        tracked, names = _tracker(tracker_engine, since, threshold, review)
        found.extend(tracked)
    if handoff_engine is None:
        review.notes.append("handoff database: not available: messages the bot misunderstood are left out")
    else:
        found = _misunderstood(handoff_engine, since, threshold, review, names) + found
    known = training_examples(nlu_dir) if nlu_dir is not None else set()
    build(found, known, review)
    review.apply(decisions or {})
    return review


# -- the YAML file ---------------------------------------------------------------------------------------

_LANGUAGE_NAMES = {"en": "English", "nl": "Dutch"}


def to_yaml(review: Review, generated_at: float | None = None) -> str:
    """A Rasa NLU training data file (``version: "3.1"``) of the candidates: per intent and
    language, a block of accepted examples, one of the agents' labels and one of the model's
    labels to check, each under a comment naming them."""
    moment = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(time.time() if generated_at is None else generated_at))
    since = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(review.since))
    lines = [
        "# Training-data candidates (make review, docs/REVIEW.md). Check each line, move the good",
        "# ones into data/nlu/<language>/ and retrain. Names, e-mail addresses, phone numbers and order",
        "# numbers are masked as NAME, EMAIL, PHONE and ORDER_NUMBER.",
        f"# Generated {moment}; messages since {since}; low confidence: below {review.threshold:g}.",
        f"# {len(review.candidates)} candidates; left out: {review.in_training_data} already in the training data,",
        f"# {review.duplicates} repeated, {review.rejected} rejected on the Review page, "
        f"{review.new_topic} wrap-ups marked new topic.",
        'version: "3.1"',
    ]
    groups = review.groups()
    if not groups:
        lines.append("nlu: []")
        return "\n".join(lines) + "\n"
    lines.append("nlu:")
    for intent, language, items in groups:
        parts = [
            ("accepted on the Review page", [c for c in items if c.decision == ACCEPT]),
            (SOURCE_LABELS[MISUNDERSTOOD], [c for c in items if c.decision != ACCEPT and c.source == MISUNDERSTOOD]),
            ("model's label, to check", [c for c in items if c.decision != ACCEPT and c.to_check]),
        ]
        for label, part in parts:
            if not part:
                continue
            sources = Counter(c.source for c in part)
            detail = ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in sorted(sources.items()))
            lines.append("")
            lines.append(f"  # {intent} · {_LANGUAGE_NAMES.get(language, language)} ({language}) · {label}: {detail}")
            lines.append(f"  - intent: {intent}")
            lines.append("    examples: |")
            lines.extend(f"      - {c.text}" for c in part)
    return "\n".join(lines) + "\n"
