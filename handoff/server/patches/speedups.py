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

**Finding the rules that apply.** ``RulePolicy._get_possible_keys`` checks every rule against the
current state of the conversation, then the survivors against the states before it. A rule can
only apply when its last state names the same previous action as the conversation's current state
(or names none). :func:`install` groups the rule keys by that action once per lookup and checks
only the group of the current action plus the rules that name none, with Rasa's own
``_is_rule_applicable``: the rules it skips are exactly the ones that check would refuse first.

**Reading a conversation.** ``Event.resolve_by_type`` walks every subclass of ``Event`` to find the
class of each stored event, for every event of the conversation on every read of the tracker.
:func:`install` remembers the class found for each event type.

Each is one patch of :mod:`handoff.server.patches` (``action_response_validator``,
``rule_states``, ``rule_index``, ``event_classes``), installed with the others by
:func:`handoff.server.patches.install` and turned off one by one with
``HANDOFF_PATCH_<NAME>=off`` (docs/RASA_PATCHES.md).
"""

from __future__ import annotations

import functools
import json
from typing import Any

import jsonschema
from rasa.core.actions.action import RemoteAction
from rasa.core.policies.rule_policy import RulePolicy
from rasa.shared.core.constants import PREVIOUS_ACTION, SHOULD_NOT_BE_SET
from rasa.shared.core.events import Event
from rasa.shared.nlu.constants import ACTION_NAME

_ORIGINAL = RemoteAction._validate_action_result
_ORIGINAL_RULE_KEY_TO_STATE = RulePolicy.__dict__["_rule_key_to_state"]
_ORIGINAL_GET_POSSIBLE_KEYS = RulePolicy.__dict__["_get_possible_keys"]
_ORIGINAL_RESOLVE_BY_TYPE = Event.__dict__["resolve_by_type"]


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


def _previous_action_name(state: dict[str, Any] | None) -> str | None:
    value = ((state or {}).get(PREVIOUS_ACTION) or {}).get(ACTION_NAME)
    return value if isinstance(value, str) and value and value != SHOULD_NOT_BE_SET else None


class _RuleIndex:
    """A lookup's rule keys by the previous action of their last state (None: no action named)."""

    def __init__(self, lookup: dict[str, str]) -> None:
        self.lookup = lookup  # kept, so the id it is cached under cannot be reused
        self.size = len(lookup)
        self.by_action: dict[str | None, set[str]] = {}
        for key in lookup:
            states = _rule_key_to_state(key)
            self.by_action.setdefault(_previous_action_name(states[-1] if states else None), set()).add(key)
        self.unnamed = self.by_action.pop(None, set())

    def candidates(self, current_state: dict[str, Any]) -> set[str]:
        return self.by_action.get(_previous_action_name(current_state), set()) | self.unnamed


_indexes: dict[int, _RuleIndex] = {}


def _get_possible_keys(self: RulePolicy, lookup: dict[str, str], states: list[dict[str, Any]]) -> set[str]:
    if not states:
        return set(lookup.keys())
    index = _indexes.get(id(lookup))
    if index is None or index.lookup is not lookup or index.size != len(lookup):
        index = _indexes[id(lookup)] = _RuleIndex(lookup)
    possible_keys = index.candidates(states[-1])
    for i, state in enumerate(reversed(states)):
        possible_keys = {key for key in possible_keys if self._is_rule_applicable(key, i, state)}
    return possible_keys


_event_classes: dict[str, type[Event]] = {}


def _resolve_by_type(type_name: str, default: type[Event] | None = None) -> type[Event] | None:
    found = _event_classes.get(type_name)
    if found is None:
        found = _ORIGINAL_RESOLVE_BY_TYPE.__func__(type_name, default)
        if found is not None and getattr(found, "type_name", None) == type_name:
            _event_classes[type_name] = found  # found among the subclasses, not the default
    return found


def install_action_response_validator() -> None:
    RemoteAction._validate_action_result = _validate_action_result


def uninstall_action_response_validator() -> None:
    RemoteAction._validate_action_result = _ORIGINAL


def install_rule_states() -> None:
    RulePolicy._rule_key_to_state = staticmethod(_rule_key_to_state)


def uninstall_rule_states() -> None:
    RulePolicy._rule_key_to_state = _ORIGINAL_RULE_KEY_TO_STATE


def install_rule_index() -> None:
    RulePolicy._get_possible_keys = _get_possible_keys


def uninstall_rule_index() -> None:
    RulePolicy._get_possible_keys = _ORIGINAL_GET_POSSIBLE_KEYS
    _indexes.clear()


def install_event_classes() -> None:
    Event.resolve_by_type = staticmethod(_resolve_by_type)


def uninstall_event_classes() -> None:
    Event.resolve_by_type = _ORIGINAL_RESOLVE_BY_TYPE
    _event_classes.clear()


def installed_action_response_validator() -> bool:
    return RemoteAction._validate_action_result is _validate_action_result


def installed_rule_states() -> bool:
    return RulePolicy.__dict__["_rule_key_to_state"] is not _ORIGINAL_RULE_KEY_TO_STATE


def installed_rule_index() -> bool:
    return RulePolicy.__dict__["_get_possible_keys"] is _get_possible_keys


def installed_event_classes() -> bool:
    return Event.__dict__["resolve_by_type"] is not _ORIGINAL_RESOLVE_BY_TYPE


def install() -> None:
    """All four speed-ups at once (idempotent); :func:`handoff.server.patches.install` installs
    them one by one, as their switches say."""
    install_action_response_validator()
    install_rule_states()
    install_rule_index()
    install_event_classes()


def uninstall() -> None:
    uninstall_action_response_validator()
    uninstall_rule_states()
    uninstall_rule_index()
    uninstall_event_classes()
