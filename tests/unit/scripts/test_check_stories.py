"""scripts/check_stories.py: a wrong action always fails; misread messages fail above the limit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[3]
SCRIPT = PROJECT_ROOT / "scripts" / "check_stories.py"

STORIES = """version: "3.1"
stories:
- story: one
  steps:
  - user: hello
    intent: greet
  - action: utter_greet
  - user: bye
    intent: goodbye
  - action: utter_goodbye
"""


def run(tmp_path: Path, failed: str | None, max_errors: int = 1) -> subprocess.CompletedProcess:
    results = tmp_path / "core"
    results.mkdir()
    (results / "story_report.json").write_text(json.dumps({"accuracy": 1.0}))
    if failed is not None:
        (results / "failed_test_stories.yml").write_text(failed)
    stories = tmp_path / "stories.yml"
    stories.write_text(STORIES)
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(results), "--stories", str(stories), "--max-intent-errors", str(max_errors)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def failed_story(*steps: str) -> str:
    return 'version: "3.1"\nstories:\n- story: one (tests/test_stories.yml)\n  steps:\n' + "".join(f"  {s}\n" for s in steps)


def test_no_failed_stories_passes(tmp_path):
    done = run(tmp_path, None)
    assert done.returncode == 0, done.stderr
    assert "0 wrong actions; 0 of 2 customer messages misread" in done.stdout


def test_a_wrong_action_fails(tmp_path):
    done = run(tmp_path, failed_story("- intent: greet", "- action: utter_greet  # predicted: action_listen"))
    assert done.returncode == 1
    assert "wrong action   one: - action: utter_greet  # predicted: action_listen" in done.stdout
    assert "a dialogue path is broken" in done.stderr


def test_misread_messages_up_to_the_limit_pass_and_are_listed(tmp_path):
    done = run(tmp_path, failed_story("- intent: greet  # predicted: goodbye: hello", "- action: utter_greet"))
    assert done.returncode == 0, done.stderr
    assert "misread        one: - intent: greet  # predicted: goodbye: hello" in done.stdout


def test_misread_messages_over_the_limit_fail(tmp_path):
    done = run(
        tmp_path,
        failed_story("- intent: greet  # predicted: goodbye: hello", "- action: utter_greet",
                     "- intent: goodbye  # predicted: greet: bye", "- action: utter_goodbye"),
    )
    assert done.returncode == 1
    assert "2 customer messages misread (at most 1)" in done.stderr


def test_missing_results_is_an_error(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "nothing")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "did `rasa test core` run?" in done.stderr


def test_an_empty_story_report_is_an_error(tmp_path):
    results = tmp_path / "core"
    results.mkdir()
    (results / "story_report.json").write_text("[]")
    done = subprocess.run([sys.executable, str(SCRIPT), str(results)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "no test story was evaluated" in done.stderr
