"""Training-data candidates as a Rasa NLU file: ``python -m handoff.tools.review`` (``make review``).

Reads the handoff database (agents' wrap-ups and handoff transcripts) and the tracker store named
in endpoints.yml (nlu_fallback and low-confidence messages), masks and deduplicates the messages
(:mod:`handoff.review`), leaves out what a team lead rejected on the console's Review page and
marks what they accepted (when the helpdesk database is reachable), and writes
results/review/candidates.yml. docs/REVIEW.md says how a designer uses it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import sqlalchemy as sa

from handoff import review as core
from handoff.databases import missing_sqlite_file, shown, tracker_store_url
from handoff.settings import PROJECT_ROOT, SettingsError, load_settings

DEFAULT_OUT = PROJECT_ROOT / "results" / "review" / "candidates.yml"


def _engine(name: str, url: str | None, notes: list[str]) -> sa.engine.Engine | None:
    from handoff.store import create_db_engine

    if url is None:
        return None
    if missing_sqlite_file(url):
        notes.append(f"{name}: {shown(url)} does not exist: nothing stored there")
        return None
    return create_db_engine(url)


def load_decisions(helpdesk_url: str | None, notes: list[str]) -> dict[str, str]:
    """The Review page's decisions (candidate id → accept/reject); {} with a note when the
    helpdesk database cannot be read."""
    if helpdesk_url is None:
        return {}
    if missing_sqlite_file(helpdesk_url):
        notes.append(f"helpdesk: {shown(helpdesk_url)} does not exist: no Review page decisions")
        return {}
    from helpdesk.review import read_decisions

    try:
        return read_decisions(helpdesk_url)
    except sa.exc.SQLAlchemyError as exc:
        notes.append(f"helpdesk: {shown(helpdesk_url)} cannot be read ({type(exc).__name__}): no Review page decisions")
        return {}


def summary(review: core.Review, out: Path) -> str:
    """What was found, per source and per intent and language, and where the file is."""
    lines = [f"Training-data candidates since {_day(review.since)} (low confidence: below {review.threshold:g})"]
    found = ", ".join(f"{review.found.get(s, 0)} {s.replace('_', ' ')}" for s in core.SOURCES)
    lines.append(f"  messages found: {found}")
    kept = review.by_source()
    lines.append("  candidates: " + ", ".join(f"{kept[s]} {s.replace('_', ' ')}" for s in core.SOURCES)
                 + f" ({len(review.candidates)} in all)")
    lines.append(
        f"  left out: {review.in_training_data} already in data/nlu, {review.duplicates} repeated, "
        f"{review.rejected} rejected on the Review page, {review.new_topic} wrap-ups marked new topic, "
        f"{review.without_intent} wrap-ups without an intent, {review.without_transcript} without a transcript"
    )
    accepted = sum(1 for c in review.candidates if c.decision == core.ACCEPT)
    if accepted:
        lines.append(f"  accepted on the Review page: {accepted}")
    if review.candidates:
        lines.append(f"  {'source':<15} {'intent':<28} {'language':<8} {'count':>5}")
        for (source, intent, language), count in review.counts().items():
            lines.append(f"  {source:<15} {intent:<28} {language:<8} {count:>5}")
    lines.append(f"Written to {out}")
    return "\n".join(lines)


def _day(moment: float) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(moment))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m handoff.tools.review",
        description="Write training-data candidates (misunderstood, nlu_fallback and low-confidence "
        "customer messages) as a Rasa NLU file.",
    )
    parser.add_argument("--since", type=float, default=core.DEFAULT_DAYS, metavar="DAYS",
                        help=f"messages of the last DAYS days (default {core.DEFAULT_DAYS})")
    parser.add_argument("--threshold", type=float, default=core.DEFAULT_THRESHOLD,
                        help=f"intent confidence below which a message is a candidate (default {core.DEFAULT_THRESHOLD})")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="the file to write (default results/review/candidates.yml)")
    parser.add_argument("--nlu", type=Path, default=core.DEFAULT_NLU_DIR,
                        help="the training data to deduplicate against (default data/nlu)")
    parser.add_argument("--endpoints", type=Path, default=None,
                        help="where the tracker store is configured (default endpoints.yml)")
    parser.add_argument("--tracker-url", help="the tracker store's database URL (instead of --endpoints)")
    parser.add_argument("--database-url", help="the handoff database (default HANDOFF_DATABASE_URL)")
    parser.add_argument("--helpdesk-database-url",
                        help="the embedded helpdesk's database, for the Review page's decisions (default HELPDESK_DATABASE_URL)")
    parser.add_argument("--no-helpdesk", action="store_true", help="ignore the Review page's decisions")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    notes: list[str] = []
    try:
        if not args.since > 0:
            raise ValueError("--since must be more than 0 days")
        if not 0 < args.threshold <= 1:
            raise ValueError("--threshold must be more than 0 and at most 1")
        settings = load_settings()
        tracker_url = args.tracker_url
        if tracker_url is None:
            endpoints = args.endpoints
            if endpoints is not None and not endpoints.is_absolute():
                endpoints = Path.cwd() / endpoints
            tracker_url = tracker_store_url(endpoints)
            if tracker_url is None:
                notes.append("tracker store: endpoints.yml configures no SQL tracker store")
        handoff_url = args.database_url or settings.database_url
        helpdesk_url = None if args.no_helpdesk else (args.helpdesk_database_url or settings.helpdesk_database_url)
    except (ValueError, SettingsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    engines = []
    try:
        handoff_engine = _engine("handoff database", handoff_url, notes)
        tracker_engine = _engine("tracker store", tracker_url, notes)
        engines = [e for e in (handoff_engine, tracker_engine) if e is not None]
        decisions = load_decisions(helpdesk_url, notes)
        review = core.collect(
            handoff_engine, tracker_engine, days=args.since, threshold=args.threshold,
            nlu_dir=args.nlu, decisions=decisions,
        )
    except sa.exc.SQLAlchemyError as exc:
        print(f"error: {type(exc).__name__}: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 3
    finally:
        for engine in engines:
            engine.dispose()
    out = args.out if args.out.is_absolute() else Path.cwd() / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(core.to_yaml(review), encoding="utf-8")
    try:
        where = out.relative_to(Path.cwd())
    except ValueError:
        where = out
    print(summary(review, where))
    said = {note.split(":")[0] for note in notes}
    for note in notes + [n for n in review.notes if not (": not available" in n and n.split(":")[0] in said)]:
        print(f"  ({note})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
