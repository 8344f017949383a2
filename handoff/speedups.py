"""Less CPU per turn in the Rasa server, with the same results as Rasa's own code.

**Checking the action server's answers.** Rasa 3.6 checks every custom action's answer with ``jsonschema.validate(result, schema)``, which
first checks the *schema itself* against its meta-schema on every call. The assistant runs a
custom action on every customer message (``action_assess_turn``, a custom slot mapping), so that
repeated meta-check was the largest single cost of a turn (``make bench``: about a third of the
Rasa server's CPU per message). :func:`install` makes Rasa use one validator built once for the
same schema; valid answers pass and invalid ones raise the same ``ValidationError`` with the same
message as before.

**Reading the rules.** ``RulePolicy`` keeps each rule as a JSON text and parses it again
(``_rule_key_to_state``) for every rule, for every turn of the conversation, at every prediction:
two or three predictions per customer message over the assistant's ~100 rules. :func:`install`
parses each rule text once; the policy only reads the parsed states, never changes them.

Installed by :class:`handoff.broker.HandoffEventBroker`, which every Rasa server process loads.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import jsonschema
from rasa.core.actions.action import RemoteAction
from rasa.core.policies.rule_policy import RulePolicy

_ORIGINAL = RemoteAction._validate_action_result
_ORIGINAL_RULE_KEY_TO_STATE = RulePolicy.__dict__["_rule_key_to_state"]


@functools.lru_cache(maxsize=1)
def _validator() -> Any:
    schema = RemoteAction.action_response_format_spec()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _validate_action_result(self: RemoteAction, result: dict[str, Any]) -> bool:
    try:
        error = jsonschema.exceptions.best_match(_validator().iter_errors(result))
    except Exception:
        return _ORIGINAL(self, result)  # anything unexpected: Rasa's own check decides
    if error is None:
        return True
    return _ORIGINAL(self, result)  # invalid: raise exactly as Rasa does


@functools.lru_cache(maxsize=8192)
def _rule_key_to_state(rule_key: str) -> list[dict[str, Any]]:
    """The rule's states, parsed once per rule text (the trained model has a fixed set)."""
    return json.loads(rule_key)


def install() -> None:
    """Use the cached validator and the parsed rules (idempotent)."""
    RemoteAction._validate_action_result = _validate_action_result
    RulePolicy._rule_key_to_state = staticmethod(_rule_key_to_state)


def uninstall() -> None:
    RemoteAction._validate_action_result = _ORIGINAL
    RulePolicy._rule_key_to_state = _ORIGINAL_RULE_KEY_TO_STATE
