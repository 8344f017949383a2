"""The handoff decision on evaluation sets the training data's authors did not write.

Each file ``tests/eval/<group>/<source>/<language>.yml`` (``public/``: public datasets and
open-source bots; ``written/``: written from a description of the shop only, without sight of
``data/nlu``) holds sets of first messages with what should happen to them:

- ``handoff``: handed to a person at once (explicit requests for a person);
- ``no_handoff``: answered, offered a person or asked to rephrase, never handed off at once
  (routine shop questions, out-of-scope requests);
- ``person``: handed off or offered a person (sensitive and urgent matters).

Every message is parsed by the trained model (the keyword backstop and the FallbackClassifier
included) as the first message of a conversation, and the assistant's first move is derived from
its intent and confidence by ``HandoffRules.first_turn`` with the ``make run`` rules: hand off,
offer (or ask whether a person is wanted), ask to rephrase, or answer. Written to ``--out``:
``handoff-eval.md`` (per language and set: the shares, and the intents behind each error),
``handoff-eval.json`` (every message with its intent, confidence and move) and
``handoff-confusion-<language>.png`` (set × predicted intent).

``--check`` exits 1 when, per language over all sets together, the recall of explicit requests is
below ``--min-recall`` or the share of routine and out-of-scope messages handed off at once is
above ``--max-false-handoff``.

Usage: python scripts/evaluate_handoff.py [--model models/handoff.tar.gz] [--sets tests/eval]
       [--out results/eval] [--check]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections import Counter, defaultdict
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MOVES = ("handoff", "offer", "rephrase", "answer")
EXPECTS = ("handoff", "no_handoff", "person")
SET_ORDER = ("explicit_request", "sensitive", "urgent", "routine", "out_of_scope")


class EvalSetError(ValueError):
    """An evaluation file that does not have the expected shape."""


def load_sets(root: Path) -> list[dict]:
    """Every evaluation file under ``root`` as {group, source, language, path, sets}."""
    files = sorted(root.glob("*/*/*.yml")) + sorted(root.glob("*/*.yml"))
    loaded = []
    for path in files:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        relative = path.relative_to(root)
        if not isinstance(data.get("sets"), dict) or data.get("language") not in ("en", "nl"):
            raise EvalSetError(f"{relative}: needs `language: en|nl` and a `sets` mapping")
        for name, spec in data["sets"].items():
            if (spec or {}).get("expect") not in EXPECTS or not isinstance(spec.get("examples"), list):
                raise EvalSetError(f"{relative}: set {name!r} needs `expect` ({', '.join(EXPECTS)}) and `examples`")
        parts = relative.parts
        loaded.append(
            {
                "group": parts[0],
                "source": parts[1] if len(parts) == 3 else parts[0],
                "language": data["language"],
                "path": str(relative),
                "sets": data["sets"],
            }
        )
    return loaded


async def parse_texts(model: Path, texts: list[str]) -> dict[str, dict]:
    from rasa.core.agent import Agent
    from rasa.utils.log_utils import configure_structlog

    configure_structlog(logging.WARNING)  # not a debug line per parsed message
    agent = Agent.load(str(model))
    parsed = {}
    for done, text in enumerate(texts, 1):
        result = await agent.parse_message(text)
        parsed[text] = {
            "intent": result["intent"]["name"],
            "confidence": round(float(result["intent"].get("confidence") or 0), 3),
            "backstop": bool(result.get("explicit_request")),
        }
        if done % 500 == 0:
            print(f"  parsed {done}/{len(texts)}", file=sys.stderr)
    return parsed


def correct(expect: str, move: str) -> bool:
    if expect == "handoff":
        return move == "handoff"
    if expect == "no_handoff":
        return move != "handoff"
    return move in ("handoff", "offer")


def evaluate(files: list[dict], parsed: dict[str, dict], rules) -> dict:
    rows = []
    for file in files:
        for set_name, spec in file["sets"].items():
            for text in spec["examples"]:
                p = parsed[str(text)]
                move = rules.first_turn(p["intent"], p["confidence"])
                rows.append(
                    {
                        "group": file["group"],
                        "source": file["source"],
                        "language": file["language"],
                        "set": set_name,
                        "expect": spec["expect"],
                        "text": str(text),
                        **p,
                        "move": move,
                        "correct": correct(spec["expect"], move),
                    }
                )
    return {"rows": rows, "tables": tables(rows), "totals": totals(rows)}


def shares(rows: list[dict]) -> dict:
    moves = Counter(r["move"] for r in rows)
    errors = Counter(r["intent"] for r in rows if not r["correct"])
    return {
        "n": len(rows),
        **{move: round(moves[move] / len(rows), 3) if rows else 0.0 for move in MOVES},
        "correct": round(sum(r["correct"] for r in rows) / len(rows), 3) if rows else 0.0,
        "error_intents": dict(errors.most_common()),
    }


def tables(rows: list[dict]) -> dict:
    grouped: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        grouped[(r["language"], r["group"], r["source"], r["set"], r["expect"])].append(r)
    return {" / ".join(key): {"key": key, **shares(value)} for key, value in sorted(grouped.items())}


def totals(rows: list[dict]) -> dict:
    """Per language: explicit-request recall, immediate false handoffs, people reached."""
    result = {}
    for language in sorted({r["language"] for r in rows}):
        mine = [r for r in rows if r["language"] == language]
        explicit = [r for r in mine if r["set"] == "explicit_request"]
        routine = [r for r in mine if r["expect"] == "no_handoff"]
        person = [r for r in mine if r["expect"] == "person"]
        result[language] = {
            "explicit_requests": len(explicit),
            "explicit_recall": round(sum(r["move"] == "handoff" for r in explicit) / len(explicit), 3) if explicit else None,
            "routine_and_out_of_scope": len(routine),
            "false_immediate_handoff": round(sum(r["move"] == "handoff" for r in routine) / len(routine), 3) if routine else None,
            "sensitive_and_urgent": len(person),
            "sensitive_reached_a_person_or_offer": round(sum(r["correct"] for r in person) / len(person), 3) if person else None,
        }
    return result


def failures(summary: dict, min_recall: float, max_false: float) -> list[str]:
    found = []
    for language, t in summary["totals"].items():
        if t["explicit_recall"] is not None and t["explicit_recall"] < min_recall:
            found.append(f"{language}: explicit-request recall {t['explicit_recall']} < {min_recall}")
        if t["false_immediate_handoff"] is not None and t["false_immediate_handoff"] > max_false:
            found.append(f"{language}: {t['false_immediate_handoff']} of routine and out-of-scope messages handed off at once (> {max_false})")
    return found


def pct(value: float) -> str:
    return f"{100 * value:.1f} %"


def markdown(summary: dict, problems: list[str]) -> str:
    lines = [
        "# The handoff decision on independent evaluation sets",
        "",
        "First message of a conversation; the move follows from the parsed intent and confidence",
        "(`HandoffRules.first_turn`). `handoff` = handed to a person at once; `offer` = a person offered",
        "or the customer asked whether they want one; `rephrase` = asked to say it differently.",
        "",
        "## Per language",
        "",
        "| language | explicit requests | handed off at once | routine + out of scope | handed off at once (false) | sensitive + urgent | handed off or offered |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for language, t in summary["totals"].items():
        def cell(value):
            return "–" if value is None else pct(value)

        lines.append(
            f"| {language} | {t['explicit_requests']} | {cell(t['explicit_recall'])} | {t['routine_and_out_of_scope']} "
            f"| {cell(t['false_immediate_handoff'])} | {t['sensitive_and_urgent']} | {cell(t['sensitive_reached_a_person_or_offer'])} |"
        )
    lines += [
        "",
        "## Per set",
        "",
        "| language | group | source | set | expect | n | handoff | offer | rephrase | answer | correct | intents behind the errors |",
        "|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for table in summary["tables"].values():
        language, group, source, set_name, expect = table["key"]
        errors = ", ".join(f"{intent} {n}" for intent, n in table["error_intents"].items()) or "–"
        lines.append(
            f"| {language} | {group} | {source} | {set_name} | {expect} | {table['n']} | {pct(table['handoff'])} "
            f"| {pct(table['offer'])} | {pct(table['rephrase'])} | {pct(table['answer'])} | {pct(table['correct'])} | {errors} |"
        )
    lines += ["", "Targets: " + ("all met" if not problems else "MISSED")]
    lines += [f"- {p}" for p in problems]
    return "\n".join(lines) + "\n"


def confusion_plot(rows: list[dict], language: str, path: Path, rules) -> None:
    """Heat map of set (rows) × predicted intent (columns), columns grouped by the move."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mine = [r for r in rows if r["language"] == language]
    sets = [s for s in SET_ORDER if any(r["set"] == s for r in mine)]
    sets += sorted({r["set"] for r in mine} - set(sets))
    order = {"handoff": 0, "offer": 1, "rephrase": 2, "answer": 3}
    intents = sorted({r["intent"] for r in mine}, key=lambda i: (order[rules.first_turn(i, 1.0)], i))
    counts = [[sum(1 for r in mine if r["set"] == s and r["intent"] == i) for i in intents] for s in sets]
    totals_per_set = [max(1, sum(row)) for row in counts]
    share = [[c / t for c in row] for row, t in zip(counts, totals_per_set, strict=True)]

    fig, ax = plt.subplots(figsize=(max(8, 0.55 * len(intents) + 3), 1.0 * len(sets) + 3))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(intents)))
    ax.set_xticklabels(intents, rotation=60, ha="right", fontsize=8)
    colours = {"handoff": "#b30000", "offer": "#b36b00", "rephrase": "#555555", "answer": "#1a6e1a"}
    for label, intent in zip(ax.get_xticklabels(), intents, strict=True):
        label.set_color(colours[rules.first_turn(intent, 1.0)])
    ax.set_yticks(range(len(sets)))
    ax.set_yticklabels([f"{s} ({t})" for s, t in zip(sets, totals_per_set, strict=True)], fontsize=9)
    for y, row in enumerate(counts):
        for x, count in enumerate(row):
            if count:
                ax.text(x, y, str(count), ha="center", va="center", fontsize=7, color="white" if share[y][x] > 0.5 else "black")
    ax.set_title(
        f"{language}: evaluation set × predicted intent (first message)\n"
        "intent colour: red hands off, orange offers, grey asks to rephrase, green answers",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "models" / "handoff.tar.gz"))
    parser.add_argument("--sets", default=str(ROOT / "tests" / "eval"))
    parser.add_argument("--out", default=str(ROOT / "results" / "eval"))
    parser.add_argument("--min-recall", type=float, default=0.95)
    parser.add_argument("--max-false-handoff", type=float, default=0.03)
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()

    from handoff.triggers import load_rules

    try:
        files = load_sets(Path(args.sets))
    except (EvalSetError, yaml.YAMLError) as exc:
        print(f"evaluation sets: {exc}", file=sys.stderr)
        return 2
    if not files:
        print(f"no evaluation sets in {args.sets}", file=sys.stderr)
        return 2
    texts = sorted({str(t) for f in files for spec in f["sets"].values() for t in spec["examples"]})
    print(f"==> parsing {len(texts)} messages from {len(files)} evaluation files", file=sys.stderr)
    parsed = asyncio.run(parse_texts(Path(args.model), texts))
    rules = load_rules()
    summary = evaluate(files, parsed, rules)
    problems = failures(summary, args.min_recall, args.max_false_handoff)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "handoff-eval.json").write_text(json.dumps({**summary, "failures": problems}, indent=2, ensure_ascii=False))
    report = markdown(summary, problems)
    (out / "handoff-eval.md").write_text(report)
    for language in summary["totals"]:
        confusion_plot(summary["rows"], language, out / f"handoff-confusion-{language}.png", rules)
    print(report)
    print(f"written: {out / 'handoff-eval.md'}, {out / 'handoff-eval.json'}, {out}/handoff-confusion-*.png")
    return 1 if args.check and problems else 0


if __name__ == "__main__":
    sys.exit(main())
