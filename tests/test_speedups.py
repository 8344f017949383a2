"""The cached check of action server answers accepts and refuses exactly what Rasa's own does."""

import jsonschema
import pytest
from rasa.core.actions.action import RemoteAction

from handoff import speedups

VALID = [
    {"events": [], "responses": []},
    {"events": [{"event": "slot", "name": "language", "value": "nl"}], "responses": [{"response": "utter_greet"}]},
    {},
]
INVALID = [
    {"events": "not a list"},
    {"responses": {"text": "hi"}},
    {"events": [{"no_event_key": 1}]},
]


@pytest.fixture
def action():
    speedups.install()
    yield RemoteAction("action_assess_turn", None)
    speedups.uninstall()


@pytest.mark.parametrize("result", VALID)
def test_valid_answers_pass(action, result):
    assert action._validate_action_result(result) is True


@pytest.mark.parametrize("result", INVALID)
def test_invalid_answers_raise_as_rasa_does(action, result):
    with pytest.raises(jsonschema.ValidationError) as cached:
        action._validate_action_result(result)
    speedups.uninstall()
    with pytest.raises(jsonschema.ValidationError) as original:
        RemoteAction("action_assess_turn", None)._validate_action_result(result)
    assert cached.value.message == original.value.message


def test_install_is_idempotent_and_reversible():
    speedups.install()
    speedups.install()
    assert RemoteAction._validate_action_result is speedups._validate_action_result
    speedups.uninstall()
    assert RemoteAction._validate_action_result is speedups._ORIGINAL


def test_rule_keys_are_parsed_once_into_the_states_rasa_reads():
    from rasa.core.policies.rule_policy import RulePolicy

    key = '[{"prev_action": {"action_name": "action_listen"}, "user": {"intent": "greet"}}, {"prev_action": {"action_name": "utter_greet"}}]'
    expected = RulePolicy._rule_key_to_state(key)
    speedups.install()
    try:
        first = RulePolicy._rule_key_to_state(key)
        assert first == expected
        assert RulePolicy._rule_key_to_state(key) is first
        # The policy calls it on instances too (self._rule_key_to_state).
        assert RulePolicy.__new__(RulePolicy)._rule_key_to_state(key) is first
    finally:
        speedups.uninstall()
    assert RulePolicy._rule_key_to_state(key) is not first
