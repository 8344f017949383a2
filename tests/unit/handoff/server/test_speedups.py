"""The cached check of action server answers accepts and refuses exactly what Rasa's own does."""

import json

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rasa.core.actions.action import RemoteAction

from handoff.server.patches import speedups

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


# -- the rule index gives exactly the keys Rasa's own _get_possible_keys gives --------------------

ACTIONS = ["action_listen", "utter_greet", "action_handoff", SHOULD_NOT_BE_SET_VALUE := "should_not_be_set"]
rule_states = st.fixed_dictionaries(
    {},
    optional={
        "prev_action": st.one_of(
            st.fixed_dictionaries({"action_name": st.sampled_from(ACTIONS)}),
            st.fixed_dictionaries({"action_text": st.sampled_from(["Hi!", "Bye"])}),
        ),
        "user": st.fixed_dictionaries({"intent": st.sampled_from(["greet", "request_human", "deny"])}),
        "slots": st.fixed_dictionaries({"escalation": st.sampled_from([(1.0, 0.0), (0.0, 1.0), SHOULD_NOT_BE_SET_VALUE])}),
        "active_loop": st.fixed_dictionaries({"name": st.sampled_from(["lead_form", SHOULD_NOT_BE_SET_VALUE])}),
    },
)
conversation_states = st.lists(rule_states, min_size=0, max_size=5)
lookups = st.dictionaries(
    st.lists(rule_states, min_size=1, max_size=3).map(json.dumps), st.sampled_from(["utter_greet", "action_listen"]), max_size=40
)


@settings(max_examples=400, deadline=None)
@given(lookup=lookups, states=conversation_states)
def test_rule_index_finds_the_same_keys_as_rasa(lookup, states):
    from rasa.core.policies.rule_policy import RulePolicy

    policy = RulePolicy.__new__(RulePolicy)
    expected = RulePolicy._get_possible_keys(policy, lookup, states)
    speedups.install()
    try:
        assert RulePolicy._get_possible_keys(policy, lookup, states) == expected
        assert policy._get_possible_keys(lookup, states) == expected  # cached index
    finally:
        speedups.uninstall()


def test_event_classes_are_found_as_rasa_finds_them():
    from rasa.shared.core.events import ActionExecuted, Event, UserUttered
    from rasa.shared.utils.common import all_subclasses

    names = sorted({cls.type_name for cls in all_subclasses(Event) if isinstance(getattr(cls, "type_name", None), str)})
    expected = {name: Event.resolve_by_type(name) for name in names}
    speedups.install()
    try:
        for _ in range(2):  # found, then remembered
            assert {name: Event.resolve_by_type(name) for name in names} == expected
        assert Event.resolve_by_type("user") is UserUttered
        assert Event.resolve_by_type("no_such_event", ActionExecuted) is ActionExecuted
        assert Event.resolve_by_type("topic") is None
        with pytest.raises(ValueError, match="Unknown event name"):
            Event.resolve_by_type("no_such_event")
        assert Event.from_parameters({"event": "action", "name": "utter_greet"}) == ActionExecuted("utter_greet")
    finally:
        speedups.uninstall()
