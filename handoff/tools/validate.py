"""``python -m handoff.tools.validate``: check handoff_rules.yml against the domain.

Tells a conversation designer at once when a trigger names an intent or response the domain does
not have, when a response the handoff loop needs is missing, when a trigger's queue has no business
hours (``queues:``), or when a queue's texts lack a language or use an unknown placeholder.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from handoff.hours import PLACEHOLDERS, placeholders
from handoff.settings import PROJECT_ROOT
from handoff.triggers import HandoffRules, RulesError, load_rules, rules_path

# Responses the actions and the helpdesk channel say; the domain must define each.
REQUIRED_RESPONSES = (
    "utter_handoff_started",
    "utter_handoff_wait_minutes",
    "utter_handoff_wait_short",
    "utter_handoff_delayed",
    "utter_handoff_failed",
    "utter_handoff_agent_joined",
    "utter_handoff_back",
    "utter_rephrase",
)
REQUIRED_INTENTS = ("EXTERNAL_handback",)
# Languages every queue's customer-facing texts (queues: name, closed_text) must have.
QUEUE_LANGUAGES = ("en", "nl")


def load_domain(path: Path) -> dict:
    """Merge a domain file, or every YAML file of a domain directory, into one mapping."""
    files = sorted(path.rglob("*.yml")) if path.is_dir() else [path]
    merged: dict = {"intents": [], "responses": {}}
    for file in files:
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        for intent in data.get("intents") or []:
            merged["intents"].append(next(iter(intent)) if isinstance(intent, dict) else intent)
        merged["responses"].update(data.get("responses") or {})
    return merged


def problems(domain_path: Path, rules_file: Path) -> list[str]:
    try:
        rules = load_rules(rules_file)
    except RulesError as exc:
        return [str(exc)]
    domain = load_domain(domain_path)
    intents, responses = set(domain["intents"]), set(domain["responses"])
    found = []
    for trigger in rules.triggers.values():
        for intent in trigger.intents:
            if intent not in intents:
                found.append(f"trigger {trigger.name!r}: intent {intent!r} is not in the domain")
        for key in ("response", "offer_response", "confirm_response"):
            response = getattr(trigger, key)
            if response and response not in responses:
                found.append(f"trigger {trigger.name!r}: {key} {response!r} is not in the domain")
    found.extend(queue_problems(rules))
    for response in REQUIRED_RESPONSES:
        if response not in responses:
            found.append(f"the domain has no {response!r}, which the handoff loop says")
    for intent in REQUIRED_INTENTS:
        if intent not in intents:
            found.append(f"the domain has no intent {intent!r}, which the helpdesk hand-back triggers")
    return found


def queue_problems(rules: HandoffRules) -> list[str]:
    """Triggers whose queue has no business hours, and queue texts that miss a language or use a
    placeholder other than {name} and {opens}."""
    found = []
    for trigger in rules.triggers.values():
        if trigger.queue not in rules.queues:
            found.append(
                f"trigger {trigger.name!r}: queue {trigger.queue!r} has no entry in queues: "
                "(without business hours it would count as always open)"
            )
    for queue in rules.queues.values():
        for key, texts in (("name", dict(queue.names)), ("closed_text", dict(queue.closed_texts))):
            for language in QUEUE_LANGUAGES:
                if language not in texts:
                    found.append(f"queue {queue.queue!r}: {key} has no {language!r} text")
        for language, text in queue.closed_texts:
            unknown = sorted(placeholders(text) - PLACEHOLDERS)
            if unknown:
                names = ", ".join("{" + name + "}" for name in unknown)
                found.append(
                    f"queue {queue.queue!r}: closed_text {language!r} uses {names}; only {{name}} and {{opens}} are filled in"
                )
    return found


def main() -> int:
    domain_path = PROJECT_ROOT / "domain"
    if not domain_path.is_dir():
        domain_path = PROJECT_ROOT / "domain.yml"
    rules_file = rules_path()
    found = problems(domain_path, rules_file)
    if found:
        print(f"{rules_file.name}: {len(found)} problem(s)", file=sys.stderr)
        for line in found:
            print(f"  - {line}", file=sys.stderr)
        return 1
    print(f"{rules_file.name}: {len(load_rules(rules_file).triggers)} triggers, all consistent with the domain")
    return 0


if __name__ == "__main__":
    sys.exit(main())
