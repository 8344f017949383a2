"""Handoff triggers as conversation designers write them in ``handoff_rules.yml``.

Each trigger says which intents (or which named situation) hand off, with which reason code,
priority and queue, and what the agent reads about why. Designers edit YAML, never Python.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import jsonschema
import yaml

from handoff.explicit_request import ExplicitRequestConfig
from handoff.frustration import FrustrationConfig
from handoff.hours import HoursError, QueueHours, parse_queues
from handoff.language import LanguageConfig
from handoff.leads import LeadScoringConfig
from handoff.settings import PROJECT_ROOT

REASONS = (
    "customer_request",
    "bot_failure",
    "frustration",
    "urgent",
    "sensitive",
    "complex",
    "qualified_lead",
    "repeat_contact",
    "timeout",
)
PRIORITIES = ("low", "normal", "high", "urgent")
#: The same priorities in serving order: a waiting urgent handoff is served before an older normal one.
PRIORITY_ORDER = tuple(reversed(PRIORITIES))

MODES = ("immediate", "offer")

RULES_SCHEMA = {
    "type": "object",
    "required": ["version", "triggers"],
    "additionalProperties": False,
    "properties": {
        "version": {"const": 1},
        # Sections checked in detail by their own modules' from_dict().
        "language": {"type": "object"},
        "frustration": {"type": "object"},
        "lead_scoring": {"type": "object"},
        "explicit_request": {"type": "object"},
        "queues": {"type": "object"},
        "timeout": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "max_turns": {"type": "integer", "minimum": 1},
                "max_minutes": {"type": "number", "exclusiveMinimum": 0},
            },
        },
        "waiting": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "give_up_phrases": {
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": {"type": "string", "minLength": 2}},
                },
                "give_up_max_words": {"type": "integer", "minimum": 1},
            },
        },
        "triggers": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": "^[a-z][a-z0-9_]*$"},
            "additionalProperties": {
                "type": "object",
                "required": ["reason", "priority", "queue", "reason_text"],
                "additionalProperties": False,
                "properties": {
                    "intents": {"type": "array", "items": {"type": "string", "minLength": 1}},
                    "reason": {"enum": list(REASONS)},
                    "priority": {"enum": list(PRIORITIES)},
                    "queue": {"type": "string", "pattern": "^[a-z][a-z0-9_-]*$"},
                    "reason_text": {"type": "string", "minLength": 1},
                    "mode": {"enum": list(MODES)},
                    "response": {"type": "string", "pattern": "^utter_"},
                    "offer_response": {"type": "string", "pattern": "^utter_"},
                    "min_confidence": {"type": "number", "minimum": 0, "maximum": 1},
                    "confirm_response": {"type": "string", "pattern": "^utter_"},
                },
            },
        },
    },
}


class RulesError(ValueError):
    """``handoff_rules.yml`` is missing or does not say what it must."""


@dataclass(frozen=True)
class Trigger:
    """One way into a handoff."""

    name: str
    reason: str
    priority: str
    queue: str
    reason_text: str
    intents: tuple[str, ...] = ()
    response: str | None = None
    mode: str = "immediate"
    offer_response: str | None = None
    min_confidence: float = 0.0
    confirm_response: str | None = None

    def needs_confirmation(self, intent: str | None, confidence: float | None) -> bool:
        """True when this immediate trigger's own intent was recognised with too little
        confidence to hand off without asking the customer first."""
        return (
            self.mode == "immediate"
            and intent in self.intents
            and confidence is not None
            and confidence < self.min_confidence
        )

    def first_turn(self, intent: str | None, confidence: float | None) -> str:
        """What the assistant does when a message with this trigger's intent opens a
        conversation: ``handoff`` at once, or ``offer`` (an offer, or a confirming question)."""
        if self.mode == "offer" or self.needs_confirmation(intent, confidence):
            return "offer"
        return "handoff"


@dataclass(frozen=True)
class Timeout:
    """When a conversation has gone on too long without being solved."""

    max_turns: int = 12
    max_minutes: float = 15.0


def _normalise(text: str) -> str:
    return " ".join(re.findall(r"[\w']+", text.lower()))


@dataclass(frozen=True)
class Waiting:
    """How a customer who is waiting for a person says they no longer want one."""

    give_up_phrases: tuple[str, ...] = ()
    give_up_max_words: int = 8

    @classmethod
    def from_dict(cls, data: dict | None) -> Waiting:
        data = data or {}
        phrases = tuple(
            _normalise(phrase) for language in (data.get("give_up_phrases") or {}).values() for phrase in language
        )
        return cls(give_up_phrases=phrases, give_up_max_words=int(data.get("give_up_max_words", 8)))

    def gives_up(self, text: str | None) -> bool:
        """True for a short message that contains one of the phrases ("never mind", "laat maar")."""
        words = _normalise(text or "")
        if not words or len(words.split()) > self.give_up_max_words:
            return False
        padded = f" {words} "
        return any(f" {phrase} " in padded for phrase in self.give_up_phrases)


@dataclass(frozen=True)
class HandoffRules:
    """All triggers, looked up by name or by intent, and the tuning of the signal-based ones."""

    triggers: dict[str, Trigger] = field(default_factory=dict)
    frustration: FrustrationConfig = field(default_factory=lambda: FrustrationConfig.from_dict(None))
    lead_scoring: LeadScoringConfig = field(default_factory=lambda: LeadScoringConfig.from_dict(None))
    language: LanguageConfig = field(default_factory=lambda: LanguageConfig.from_dict(None))
    explicit_request: ExplicitRequestConfig = field(default_factory=lambda: ExplicitRequestConfig.from_dict(None))
    timeout: Timeout = field(default_factory=Timeout)
    waiting: Waiting = field(default_factory=Waiting)
    queues: dict[str, QueueHours] = field(default_factory=dict)

    def queue_hours(self, name: str) -> QueueHours:
        """The business hours of queue ``name``; always open when ``queues:`` does not list it."""
        return self.queues.get(name) or QueueHours.always_open(name)

    def get(self, name: str) -> Trigger:
        try:
            return self.triggers[name]
        except KeyError:
            raise RulesError(f"handoff_rules.yml has no trigger named {name!r}") from None

    def for_intent(self, intent: str | None) -> Trigger | None:
        for trigger in self.triggers.values():
            if intent and intent in trigger.intents:
                return trigger
        return None

    def first_turn(self, intent: str | None, confidence: float | None) -> str:
        """What the assistant does with the first message of a conversation, from its intent:
        ``handoff`` (at once), ``offer`` (offers a person or asks whether one is wanted),
        ``rephrase`` (asks to say it differently) or ``answer``. The signals that
        ``action_assess_turn`` adds (frustration, repeat contact, a long conversation) are not
        part of this decision."""
        if intent == "nlu_fallback":
            return "rephrase"
        trigger = self.for_intent(intent)
        return trigger.first_turn(intent, confidence) if trigger else "answer"

    @property
    def intents(self) -> set[str]:
        return {intent for t in self.triggers.values() for intent in t.intents}


def parse_rules(data: object, source: str = "handoff_rules.yml") -> HandoffRules:
    """Validate parsed YAML and build :class:`HandoffRules`; errors name the place and problem."""
    validator = jsonschema.Draft202012Validator(RULES_SCHEMA)
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        lines = []
        for error in errors[:10]:
            where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
            lines.append(f"  at {where}: {error.message}")
        raise RulesError(f"{source} is not valid:\n" + "\n".join(lines))
    triggers: dict[str, Trigger] = {}
    seen_intents: dict[str, str] = {}
    for name, spec in data["triggers"].items():  # type: ignore[index]
        intents = tuple(spec.get("intents", ()))
        for intent in intents:
            if intent in seen_intents:
                raise RulesError(
                    f"{source}: intent {intent!r} is listed by both {seen_intents[intent]!r} and {name!r}"
                )
            seen_intents[intent] = name
        mode = spec.get("mode", "immediate")
        if mode == "offer" and not spec.get("offer_response"):
            raise RulesError(f"{source}: trigger {name!r} offers a person, so it needs an offer_response")
        if spec.get("min_confidence") and not spec.get("confirm_response"):
            raise RulesError(f"{source}: trigger {name!r} has a min_confidence, so it needs a confirm_response")
        if spec.get("min_confidence") and mode == "offer":
            raise RulesError(f"{source}: trigger {name!r} offers a person anyway: min_confidence is for immediate triggers")
        triggers[name] = Trigger(
            name=name,
            reason=spec["reason"],
            priority=spec["priority"],
            queue=spec["queue"],
            reason_text=spec["reason_text"],
            intents=intents,
            response=spec.get("response"),
            mode=mode,
            offer_response=spec.get("offer_response"),
            min_confidence=float(spec.get("min_confidence") or 0.0),
            confirm_response=spec.get("confirm_response"),
        )
    sections = {}
    for key, config_class in (
        ("frustration", FrustrationConfig),
        ("lead_scoring", LeadScoringConfig),
        ("language", LanguageConfig),
        ("explicit_request", ExplicitRequestConfig),
    ):
        try:
            sections[key] = config_class.from_dict(data.get(key))  # type: ignore[union-attr]
        except ValueError as exc:
            raise RulesError(f"{source}: {key}: {exc}") from exc
    try:
        queues = parse_queues(data.get("queues"), source)  # type: ignore[union-attr]
    except HoursError as exc:
        raise RulesError(str(exc)) from exc
    return HandoffRules(
        triggers,
        timeout=Timeout(**(data.get("timeout") or {})),  # type: ignore[union-attr]
        waiting=Waiting.from_dict(data.get("waiting")),  # type: ignore[union-attr]
        queues=queues,
        **sections,
    )


def rules_path() -> Path:
    return Path(os.environ.get("HANDOFF_RULES_PATH") or PROJECT_ROOT / "handoff_rules.yml")


@functools.lru_cache(maxsize=4)
def _load(path: str, mtime: float) -> HandoffRules:
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except FileNotFoundError:
        raise RulesError(f"{path} not found") from None
    except yaml.YAMLError as exc:
        raise RulesError(f"{path} is not valid YAML: {exc}") from exc
    return parse_rules(data, source=Path(path).name)


def load_rules(path: Path | None = None) -> HandoffRules:
    """The rules file, re-read when it changes on disk."""
    path = path or rules_path()
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        raise RulesError(f"{path} not found") from None
    return _load(str(path), mtime)
