import pytest

from handoff.settings import PROJECT_ROOT
from handoff.tools.validate import problems
from handoff.triggers import RulesError, load_rules, parse_rules


def test_project_rules_are_valid_and_consistent_with_the_domain():
    rules = load_rules()
    assert rules.for_intent("request_human").reason == "customer_request"
    assert rules.get("bot_failure").reason == "bot_failure"
    assert problems(PROJECT_ROOT / "domain.yml", PROJECT_ROOT / "handoff_rules.yml") == []


@pytest.mark.parametrize(
    "data, message",
    [
        ({"version": 1, "triggers": {"x": {"reason": "angry", "priority": "normal", "queue": "support", "reason_text": "t"}}}, "triggers/x/reason"),
        ({"version": 1, "triggers": {"x": {"reason": "urgent", "priority": "asap", "queue": "support", "reason_text": "t"}}}, "triggers/x/priority"),
        ({"version": 1, "triggers": {"x": {"reason": "urgent", "priority": "urgent", "queue": "support"}}}, "reason_text"),
        ({"version": 2, "triggers": {}}, "version"),
        ([], "top level"),
    ],
)
def test_invalid_rules_say_where_and_what(data, message):
    with pytest.raises(RulesError, match=message):
        parse_rules(data)


def test_an_intent_may_belong_to_one_trigger_only():
    spec = {"reason": "urgent", "priority": "urgent", "queue": "support", "reason_text": "t", "intents": ["help"]}
    with pytest.raises(RulesError, match="'help' is listed by both"):
        parse_rules({"version": 1, "triggers": {"a": spec, "b": spec}})


def test_validation_names_unknown_intents_and_responses(tmp_path):
    rules = tmp_path / "rules.yml"
    rules.write_text(
        "version: 1\ntriggers:\n  x:\n    intents: [no_such_intent]\n    reason: urgent\n    priority: urgent\n"
        "    queue: support\n    reason_text: t\n    response: utter_nowhere\n"
    )
    found = problems(PROJECT_ROOT / "domain.yml", rules)
    assert any("no_such_intent" in p for p in found)
    assert any("utter_nowhere" in p for p in found)
