"""``python -m handoff.tools.validate``: the business-hours checks (``queues:`` of handoff_rules.yml), and the
checks of the triggers' responses, modes and rules and of the escalation intent lists, each on a
copy of the project with one thing broken."""

from __future__ import annotations

import re
import shutil

import pytest

from handoff.settings import PROJECT_ROOT
from handoff.tools.validate import (
    CODE_DIRS,
    CODE_INTENT_LISTS,
    CODE_MODES,
    RASA_DEFAULT_INTENTS,
    REQUIRED_RESPONSES,
    code_intent_lists,
    code_responses,
    main,
    problems,
    queue_problems,
)
from handoff.triggers import load_rules, parse_rules

TRIGGER = {"reason": "urgent", "priority": "urgent", "reason_text": "t"}


def queue(**overrides):
    spec = {
        "name": {"en": "customer service", "nl": "klantenservice"},
        "time_zone": "Europe/Amsterdam",
        "hours": {"mon": "09:00-17:00"},
        "closed_text": {"en": "Our {name} is closed; back {opens}.", "nl": "Onze {name} is dicht; terug {opens}."},
    }
    spec.update(overrides)
    return spec


def rules(queues, trigger_queues=("support",)):
    triggers = {f"t{i}": {**TRIGGER, "queue": name} for i, name in enumerate(trigger_queues)}
    return parse_rules({"version": 1, "triggers": triggers, "queues": queues})


def test_the_project_queues_pass():
    assert queue_problems(load_rules()) == []


def test_a_trigger_queue_without_business_hours_is_reported():
    found = queue_problems(rules({"support": queue()}, trigger_queues=("support", "billing")))
    assert found == [
        "trigger 't1': queue 'billing' has no entry in queues: (without business hours it would count as always open)"
    ]


def test_a_queue_no_trigger_names_is_fine():
    assert queue_problems(rules({"support": queue(), "supervisor": queue()})) == []


@pytest.mark.parametrize(
    "overrides, expected",
    [
        ({"closed_text": {"en": "Closed, back {opens}."}}, ["queue 'support': closed_text has no 'nl' text"]),
        ({"closed_text": {"nl": "Dicht, terug {opens}."}}, ["queue 'support': closed_text has no 'en' text"]),
        ({"name": {"en": "customer service"}}, ["queue 'support': name has no 'nl' text"]),
        (
            {"closed_text": {"en": "Our {team} is closed, back {opens}.", "nl": "Dicht tot {open}."}},
            [
                "queue 'support': closed_text 'en' uses {team}; only {name} and {opens} are filled in",
                "queue 'support': closed_text 'nl' uses {open}; only {name} and {opens} are filled in",
            ],
        ),
        (
            {"closed_text": {"en": "Closed {}, back {opens!r}.", "nl": "Dicht {{tot}} {opens}."}},
            ["queue 'support': closed_text 'en' uses {}, {opens!r}; only {name} and {opens} are filled in"],
        ),
    ],
)
def test_queue_texts_need_both_languages_and_known_placeholders(overrides, expected):
    assert queue_problems(rules({"support": queue(**overrides)})) == expected


def test_problems_include_the_queue_checks(tmp_path):
    path = tmp_path / "rules.yml"
    path.write_text(
        "version: 1\ntriggers:\n  x: {reason: urgent, priority: urgent, queue: sales, reason_text: t}\n"
        "queues:\n  support:\n    name: {en: customer service, nl: klantenservice}\n"
        "    time_zone: Europe/Amsterdam\n    hours: {mon: '09:00-17:00'}\n"
        "    closed_text: {en: 'Back {when}.'}\n"
    )
    found = problems(PROJECT_ROOT / "domain.yml", path)
    assert "rules.yml:3: trigger 'x': queue 'sales' has no entry in queues: (without business hours it would count as always open)" in found
    assert "rules.yml:9: queue 'support': closed_text has no 'nl' text" in found
    assert "rules.yml:9: queue 'support': closed_text 'en' uses {when}; only {name} and {opens} are filled in" in found


def test_a_broken_queues_section_is_one_problem_naming_queue_and_key(tmp_path):
    path = tmp_path / "rules.yml"
    path.write_text(
        "version: 1\ntriggers:\n  x: {reason: urgent, priority: urgent, queue: support, reason_text: t}\n"
        "queues:\n  support:\n    name: {en: a, nl: b}\n    time_zone: Mars/Olympus\n"
        "    hours: {mon: '09:00-17:00'}\n    closed_text: {en: a, nl: b}\n"
    )
    [found] = problems(PROJECT_ROOT / "domain.yml", path)
    assert "rules.yml: queues: support: time_zone: 'Mars/Olympus' is not a known time zone" in found


def test_main_fails_and_lists_the_queue_problems(tmp_path, monkeypatch, capsys):
    path = tmp_path / "rules.yml"
    path.write_text("version: 1\ntriggers:\n  x: {reason: urgent, priority: urgent, queue: support, reason_text: t}\n")
    monkeypatch.setenv("HANDOFF_RULES_PATH", str(path))
    assert main() == 1
    err = capsys.readouterr().err
    assert "rules.yml: 1 problem(s)" in err
    assert "trigger 'x': queue 'support' has no entry in queues:" in err


def test_main_passes_on_the_project(monkeypatch, capsys):
    monkeypatch.delenv("HANDOFF_RULES_PATH", raising=False)
    assert main() == 0
    assert "all consistent with the domain" in capsys.readouterr().out


# --- a copy of the project with one thing broken ---------------------------------------------------


@pytest.fixture
def project(tmp_path):
    """handoff_rules.yml, domain.yml, data/rules and the code that says responses, in tmp_path."""
    for name in ("handoff_rules.yml", "domain.yml"):
        shutil.copy(PROJECT_ROOT / name, tmp_path / name)
    shutil.copytree(PROJECT_ROOT / "data" / "rules", tmp_path / "data" / "rules")
    for directory in CODE_DIRS:
        for file in (PROJECT_ROOT / directory).rglob("*.py"):
            target = tmp_path / file.relative_to(PROJECT_ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(file, target)
    return tmp_path


def check(root):
    return problems(root / "domain.yml", root / "handoff_rules.yml", root=root)


def edit(path, old, new):
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} is not once in {path.name}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def line_of(path, text, after=None):
    """The 1-based number of the first line holding ``text`` (after the first line holding ``after``)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if after in line) if after else 0
    return next(i for i, line in enumerate(lines) if i >= start and text in line) + 1


def test_the_project_copy_passes(project):
    assert check(project) == []


def test_the_project_passes():
    assert problems(PROJECT_ROOT / "domain.yml", PROJECT_ROOT / "handoff_rules.yml") == []


def test_a_trigger_response_missing_from_the_domain(project):
    rules = project / "handoff_rules.yml"
    edit(rules, "offer_response: utter_offer_handoff_complex\n", "offer_response: utter_offer_handoff_complexx\n")
    line = line_of(rules, "utter_offer_handoff_complexx")
    assert check(project) == [
        f"handoff_rules.yml:{line}: trigger 'complex': offer_response utter_offer_handoff_complexx is not a response in domain.yml"
    ]


def test_a_trigger_intent_missing_from_the_domain_and_the_rules(project):
    rules = project / "handoff_rules.yml"
    edit(rules, "intents: [out_of_scope]", "intents: [out_of_scopee]")
    line = line_of(rules, "out_of_scopee")
    assert check(project) == [
        f"handoff_rules.yml:{line}: trigger 'complex': intent out_of_scopee is not an intent in domain.yml",
        f"handoff_rules.yml:{line}: trigger 'complex' (mode offer): no rule in data/rules runs action_offer_handoff after intent out_of_scopee",
    ]


def test_a_confirm_response_without_its_dutch_variant(project):
    domain = project / "domain.yml"
    line = line_of(domain, "utter_confirm_handoff_fraud:")
    lines = domain.read_text(encoding="utf-8").splitlines(keepends=True)
    assert lines[line + 3].strip() == "value: nl"
    lines[line + 3] = lines[line + 3].replace("nl", "de")
    domain.write_text("".join(lines), encoding="utf-8")
    assert check(project) == [
        f"domain.yml:{line}: response utter_confirm_handoff_fraud (confirm_response of trigger 'fraud') has no Dutch variant "
        "(condition: slot language = nl)"
    ]


def test_a_follow_up_response_without_its_english_variant(project):
    domain = project / "domain.yml"
    line = line_of(domain, "utter_follow_up_invalid:")
    english = line_of(domain, "- text: ", after="utter_follow_up_invalid:")
    lines = domain.read_text(encoding="utf-8").splitlines(keepends=True)
    del lines[english - 1]
    domain.write_text("".join(lines), encoding="utf-8")
    said = line_of(project / "actions" / "follow_up_actions.py", '"utter_follow_up_invalid"')
    assert check(project) == [
        f"domain.yml:{line}: response utter_follow_up_invalid (said by actions/follow_up_actions.py:{said}) has no English variant "
        "(one without a condition)"
    ]


def test_a_response_the_code_says_missing_from_the_domain(project):
    edit(project / "domain.yml", "  utter_handoff_nobody_available:", "  utter_handoff_nobody_there:")
    said = line_of(project / "actions" / "handoff_actions.py", '"utter_handoff_nobody_available"')
    assert check(project) == [
        f"actions/handoff_actions.py:{said}: the code says utter_handoff_nobody_available, which is not a response in domain.yml"
    ]


def test_a_form_question_missing_from_the_domain(project):
    domain = project / "domain.yml"
    edit(domain, "  utter_ask_follow_up_contact:", "  utter_ask_follow_up_contacts:")
    line = line_of(domain, "- follow_up_contact", after="follow_up_form:")
    assert check(project) == [
        f"domain.yml:{line}: form 'follow_up_form' asks for follow_up_contact, but domain.yml has no utter_ask_follow_up_contact"
    ]


def test_an_immediate_trigger_routed_to_an_offer(project):
    sensitive = project / "data" / "rules" / "sensitive.yml"
    edit(sensitive, "- intent: report_urgent\n      - action: action_handoff", "- intent: report_urgent\n      - action: action_offer_handoff")
    at = line_of(sensitive, "- intent: report_urgent")
    trigger = line_of(project / "handoff_rules.yml", "intents: [report_urgent]")
    escalation = project / "data" / "rules" / "escalation.yml"
    found = check(project)
    assert f"handoff_rules.yml:{trigger}: trigger 'urgent' (mode immediate): no rule in data/rules runs action_handoff after intent report_urgent" in found
    assert f"data/rules/sensitive.yml:{at}: intent report_urgent runs action_offer_handoff, but trigger 'urgent' has mode immediate (action_handoff)" in found
    # Offered, not handed off at once, so the escalation lists no longer fit it.
    confirm = line_of(escalation, "- intent: report_urgent")
    assert (
        f"data/rules/escalation.yml:{confirm}: the rule for escalation: confirm lists report_urgent, which does not hand off at once, "
        "so there is nothing to confirm"
    ) in found
    assert len(found) == 5


def test_an_offer_trigger_set_to_immediate_without_changing_its_rule(project):
    rules = project / "handoff_rules.yml"
    edit(rules, "queue: support\n    mode: offer\n    offer_response: utter_offer_handoff_complex", "queue: support\n    mode: immediate\n    offer_response: utter_offer_handoff_complex")
    trigger = line_of(rules, "intents: [out_of_scope]")
    rule = line_of(project / "data" / "rules" / "offers.yml", "- intent: out_of_scope")
    assert check(project) == [
        f"handoff_rules.yml:{trigger}: trigger 'complex' (mode immediate): no rule in data/rules runs action_handoff after intent out_of_scope",
        f"data/rules/offers.yml:{rule}: intent out_of_scope runs action_offer_handoff, but trigger 'complex' has mode immediate (action_handoff)",
    ]


def test_a_trigger_intent_without_its_rule(project):
    edit(project / "data" / "rules" / "sensitive.yml", "  - rule: a bereavement\n    steps:\n      - intent: bereavement\n      - action: action_handoff\n", "")
    trigger = line_of(project / "handoff_rules.yml", "intents: [bereavement]")
    found = check(project)
    assert f"handoff_rules.yml:{trigger}: trigger 'bereavement' (mode immediate): no rule in data/rules runs action_handoff after intent bereavement" in found


def test_a_rule_that_answers_a_trigger_intent_instead_of_handing_off(project):
    sensitive = project / "data" / "rules" / "sensitive.yml"
    edit(sensitive, "- intent: complaint\n      - action: action_handoff", "- intent: complaint\n      - action: utter_anything_else")
    at = line_of(sensitive, "- intent: complaint")
    found = check(project)
    assert f"data/rules/sensitive.yml:{at}: intent complaint runs utter_anything_else, but trigger 'complaint' has mode immediate (action_handoff)" in found


def test_a_trigger_the_code_offers_set_to_immediate(project):
    rules = project / "handoff_rules.yml"
    edit(rules, "queue: support\n    mode: offer\n    offer_response: utter_offer_handoff_timeout", "queue: support\n    mode: immediate\n    offer_response: utter_offer_handoff_timeout")
    line = line_of(rules, "mode: immediate")
    assert check(project) == [
        f"handoff_rules.yml:{line}: trigger 'timeout' has mode immediate, but the actions treat it as offer "
        "(action_assess_turn offers a person when a conversation drags on)"
    ]


def test_an_escalation_list_with_an_intent_the_domain_lacks(project):
    escalation = project / "data" / "rules" / "escalation.yml"
    line = line_of(escalation, "- intent: ask_stock")
    lines = escalation.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[line - 1] = lines[line - 1].replace("ask_stock", "ask_stok")
    escalation.write_text("".join(lines), encoding="utf-8")
    rule = line_of(escalation, "- rule: the signals call for a person at once")
    assert check(project) == [
        f"data/rules/escalation.yml:{line}: the rule for escalation: handoff lists ask_stok, which is not an intent in domain.yml",
        f"data/rules/escalation.yml:{rule}: the rule for escalation: handoff does not list ask_stock "
        "(every customer intent that does not hand off at once belongs in it)",
    ]


def test_an_escalation_list_that_would_turn_a_handoff_into_an_offer(project):
    escalation = project / "data" / "rules" / "escalation.yml"
    edit(escalation, "          - intent: inform\n      - action: action_offer_handoff", "          - intent: inform\n          - intent: complaint\n      - action: action_offer_handoff")
    line = line_of(escalation, "- intent: complaint")
    assert check(project) == [
        f"data/rules/escalation.yml:{line}: the rule for escalation: offer lists complaint, which hands off at once: the signals must not change that"
    ]


def test_the_confirm_list_misses_an_intent_asked_about(project):
    escalation = project / "data" / "rules" / "escalation.yml"
    edit(escalation, "          - intent: report_fraud\n", "")
    rule = line_of(escalation, "- rule: a matter for a person, recognised with too little confidence")
    assert check(project) == [
        f"data/rules/escalation.yml:{rule}: the rule for escalation: confirm does not list report_fraud, "
        "which trigger 'fraud' asks about below its min_confidence"
    ]


def test_a_code_intent_list_with_an_intent_the_domain_lacks(project):
    code = project / "actions" / "escalation_actions.py"
    edit(code, 'RESOLVING_INTENTS = {"thank", "goodbye"}', 'RESOLVING_INTENTS = {"thanks", "goodbye"}')
    line = line_of(code, "RESOLVING_INTENTS = {")
    assert check(project) == [
        f"actions/escalation_actions.py:{line}: RESOLVING_INTENTS names thanks, which is not an intent in domain.yml"
    ]


def test_frustration_intents_with_an_intent_the_domain_lacks(project):
    rules = project / "handoff_rules.yml"
    edit(rules, "frustration:\n  weights:\n", "frustration:\n  ignore_intents: [greet, greeet]\n  weights:\n")
    line = line_of(rules, "ignore_intents: [greet, greeet]")
    assert check(project) == [f"handoff_rules.yml:{line}: frustration ignore_intents names greeet, which is not an intent in domain.yml"]


def test_a_slot_mapping_with_an_intent_the_domain_lacks(project):
    domain = project / "domain.yml"
    line = line_of(domain, "- ask_opening_hours", after="not_intent: &not_an_answer")
    lines = domain.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[line - 1] = lines[line - 1].replace("ask_opening_hours", "ask_opening_time")
    domain.write_text("".join(lines), encoding="utf-8")
    # The list is written once and repeated (*not_an_answer) for the other slots: reported once.
    assert check(project) == [
        f"domain.yml:{line}: slot 'lead_company_size': not_intent names ask_opening_time, which is not an intent in domain.yml"
    ]


def test_every_problem_is_listed_not_just_the_first(project):
    edit(project / "handoff_rules.yml", "offer_response: utter_offer_handoff_complex\n", "offer_response: utter_offer_handoff_complexx\n")
    edit(project / "actions" / "escalation_actions.py", 'RESOLVING_INTENTS = {"thank", "goodbye"}', 'RESOLVING_INTENTS = {"thanks", "goodbye"}')
    edit(project / "domain.yml", "  utter_ask_follow_up_contact:", "  utter_ask_follow_up_contacts:")
    found = check(project)
    assert len(found) == 3
    assert [p.split(":")[0] for p in found] == ["handoff_rules.yml", "domain.yml", "actions/escalation_actions.py"]


# --- the lists the checks rely on match the code ---------------------------------------------------


def test_the_rasa_default_intents_are_rasas():
    from rasa.shared.core.constants import DEFAULT_INTENTS

    assert sorted(RASA_DEFAULT_INTENTS) == sorted(DEFAULT_INTENTS)


def test_the_code_scan_finds_the_follow_up_and_handoff_responses():
    said = code_responses(PROJECT_ROOT)
    assert set(REQUIRED_RESPONSES) <= set(said)
    assert {"utter_follow_up_callback", "utter_follow_up_email", "utter_follow_up_invalid", "utter_handoff_no_agent"} <= set(said)
    assert "utter_action" not in said  # the metadata key, not a response
    # Every "utter_..." written in the code is found (a grep, independent of the scan).
    grep = {
        name
        for directory in CODE_DIRS
        for file in (PROJECT_ROOT / directory).rglob("*.py")
        for name in re.findall(r"""response=["'](utter_\w+)""", file.read_text(encoding="utf-8"))
    }
    assert grep and grep <= set(said)


def test_the_named_intent_lists_exist_in_the_code():
    constants = {constant for constant, _, _ in code_intent_lists(PROJECT_ROOT)}
    assert CODE_INTENT_LISTS <= constants
    assert {"RESOLVING_INTENTS", "DECLINE_INTENTS"} <= constants


def test_the_code_driven_triggers_are_the_projects():
    rules = load_rules()
    for name, (mode, _) in CODE_MODES.items():
        assert rules.get(name).mode == mode
