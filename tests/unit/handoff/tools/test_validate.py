"""``python -m handoff.tools.validate``: the business-hours checks (``queues:`` of handoff_rules.yml)."""

from __future__ import annotations

import pytest

from handoff.settings import PROJECT_ROOT
from handoff.tools.validate import main, problems, queue_problems
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
    assert "trigger 'x': queue 'sales' has no entry in queues: (without business hours it would count as always open)" in found
    assert "queue 'support': closed_text has no 'nl' text" in found
    assert "queue 'support': closed_text 'en' uses {when}; only {name} and {opens} are filled in" in found


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
