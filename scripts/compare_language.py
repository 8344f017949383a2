"""Compare handoff/language.py's English/Dutch detection with two libraries on the project's own
short messages: accuracy and CPU time per message.

    .venv/bin/python scripts/compare_language.py [--repeat 5]

Messages: every example of tests/nlu/en.yml and nl.yml (held-out NLU sets) and of
tests/eval/written/*.yml (the independent evaluation sets), labelled by the file's language.
Each detector sees one message with no conversation context (handoff.language falls back to its
default, English, when a message does not clearly say). Candidates that are not installed are
left out with a note: lingua-language-detector (restricted to English and Dutch) and py3langid
(``set_languages(["en", "nl"])``). CPU time is process time over ``--repeat`` passes, after one
warm-up pass (models load lazily).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from handoff.language import detect_language  # noqa: E402

Detector = Callable[[str], str]


def _examples(block: str) -> list[str]:
    return [line.strip()[2:].strip() for line in block.splitlines() if line.strip().startswith("- ")]


def messages() -> list[tuple[str, str]]:
    """(text, language) of every test message, without duplicates."""
    found: dict[tuple[str, str], None] = {}
    for language in ("en", "nl"):
        nlu = yaml.safe_load((ROOT / "tests" / "nlu" / f"{language}.yml").read_text(encoding="utf-8"))
        for item in nlu.get("nlu") or []:
            for text in _examples(item.get("examples") or ""):
                found[(text, language)] = None
        written = yaml.safe_load((ROOT / "tests" / "eval" / "written" / f"{language}.yml").read_text(encoding="utf-8"))
        for entry in (written.get("sets") or {}).values():
            for text in entry.get("examples") or []:
                found[(str(text), language)] = None
    return [pair for pair in found if pair[0]]


def project() -> Detector:
    return detect_language


def lingua() -> Detector:
    from lingua import Language, LanguageDetectorBuilder

    detector = LanguageDetectorBuilder.from_languages(Language.ENGLISH, Language.DUTCH).build()
    names = {Language.ENGLISH: "en", Language.DUTCH: "nl"}

    def detect(text: str) -> str:
        found = detector.detect_language_of(text)
        return names.get(found, "en")  # None (nothing to go on): the same default as the project

    return detect


def py3langid() -> Detector:
    from py3langid import langid

    langid.set_languages(["en", "nl"])  # the module's own identifier, loaded once
    return lambda text: langid.classify(text)[0]


CANDIDATES: dict[str, tuple[Callable[[], Detector], str | None]] = {
    "handoff/language.py": (project, None),
    "lingua-language-detector": (lingua, "lingua-language-detector"),
    "py3langid": (py3langid, "py3langid"),
}


def measure(detect: Detector, corpus: list[tuple[str, str]], repeat: int) -> tuple[float, float, dict[str, float]]:
    """Accuracy, CPU microseconds per message, and accuracy per language."""
    for text, _ in corpus:  # warm-up
        detect(text)
    right = {"en": 0, "nl": 0}
    total = {"en": 0, "nl": 0}
    for text, language in corpus:
        total[language] += 1
        right[language] += detect(text) == language
    start = time.process_time()
    for _ in range(repeat):
        for text, _ in corpus:
            detect(text)
    cpu = (time.process_time() - start) / (repeat * len(corpus)) * 1e6
    by_language = {language: right[language] / total[language] for language in total}
    return sum(right.values()) / len(corpus), cpu, by_language


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed passes over the messages (default 5)")
    args = parser.parse_args(argv)
    corpus = messages()
    counts = {language: sum(1 for _, found in corpus if found == language) for language in ("en", "nl")}
    print(f"{len(corpus)} messages ({counts['en']} English, {counts['nl']} Dutch), Python {sys.version.split()[0]}")
    print()
    print(f"| {'detector':<34} | accuracy | EN     | NL     | CPU µs/message | accuracy per ms CPU |")
    print(f"|{'-' * 36}|----------|--------|--------|----------------|---------------------|")
    notes = []
    for name, (build, package) in CANDIDATES.items():
        try:
            detect = build()
        except ImportError as exc:
            notes.append(f"{name}: not installed ({exc.name})")
            continue
        label = f"{name} {metadata.version(package)}" if package else name
        accuracy, cpu, by_language = measure(detect, corpus, args.repeat)
        print(
            f"| {label:<34} | {accuracy:7.1%} | {by_language['en']:6.1%} | {by_language['nl']:6.1%} "
            f"| {cpu:14.1f} | {accuracy / (cpu / 1000):19.1f} |"
        )
    for note in notes:
        print(f"({note})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
