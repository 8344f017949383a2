"""Check the result of `rasa test core --e2e` on tests/test_stories.yml.

Every action of every test story must be predicted exactly: a wrong action is a dialogue bug and
fails the check. The customer texts in the stories are also read by the model; a wrong intent there
is an NLU error. Rasa goes on with the story's intent after one, so the actions that follow are
still checked. NLU errors are a measured rate, as on the held-out sets: any change of the training
data moves a few messages that sit between two intents to the other side. The check fails when
more than MAX_INTENT_ERRORS of the story messages are misread, and lists each one either way.

Usage: python scripts/check_stories.py results/core [--stories tests/test_stories.yml] [--max-intent-errors N]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import yaml

#: At most this many misread customer messages in tests/test_stories.yml (about 2.5 % of them).
MAX_INTENT_ERRORS = 5

PREDICTED = re.compile(r"^\s*-\s*(intent|action|active_loop|slot_was_set)\b.*#\s*predicted:\s*(.*)$")


def story_messages(stories: Path) -> int:
    """How many customer messages (steps with text) the test stories hold."""
    doc = yaml.safe_load(stories.read_text(encoding="utf-8")) or {}
    return sum(1 for story in doc.get("stories", []) for step in story.get("steps", []) if "user" in step)


def mismatches(failed: Path) -> tuple[list[str], list[str]]:
    """The (intent, action) lines Rasa marked with `# predicted:` in failed_test_stories.yml."""
    intents: list[str] = []
    actions: list[str] = []
    story = "?"
    if not failed.exists():
        return intents, actions
    for line in failed.read_text(encoding="utf-8").splitlines():
        if line.startswith("- story:"):
            story = line[len("- story:"):].split(" (", 1)[0].strip()
            continue
        match = PREDICTED.match(line)
        if not match:
            continue
        kind = match.group(1)
        entry = f"{story}: {line.strip()}"
        (intents if kind == "intent" else actions).append(entry)
    return intents, actions


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="the --out folder of rasa test core")
    parser.add_argument("--stories", type=Path, default=Path("tests/test_stories.yml"))
    parser.add_argument("--max-intent-errors", type=int, default=MAX_INTENT_ERRORS)
    args = parser.parse_args()

    report = args.results / "story_report.json"
    if not report.exists():
        print(f"no {report}: did `rasa test core` run?", file=sys.stderr)
        return 2
    if not json.loads(report.read_text(encoding="utf-8")):
        print(f"{report} is empty: no test story was evaluated (file names must start with test_)", file=sys.stderr)
        return 2
    intents, actions = mismatches(args.results / "failed_test_stories.yml")
    total = story_messages(args.stories)
    print(f"==> test stories: {len(actions)} wrong actions; {len(intents)} of {total} customer messages misread")
    for entry in actions:
        print(f"  wrong action   {entry}")
    for entry in intents:
        print(f"  misread        {entry}")
    problems = []
    if actions:
        problems.append(f"{len(actions)} action(s) predicted wrongly: a dialogue path is broken")
    if len(intents) > args.max_intent_errors:
        problems.append(f"{len(intents)} customer messages misread (at most {args.max_intent_errors})")
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
