"""How long the handoff analytics take on a large history.

Seeds N conversations (default 100,000) spread over 30 days into fresh databases — the tracker
store's events as Rasa writes them, handoffs, tickets, follow-ups and wrap-ups — then times
:func:`handoff.analytics.compute` for the last 7 and 30 days and prints the figures.

    .venv/bin/python scripts/bench_report.py                       # SQLite files in a temporary folder
    .venv/bin/python scripts/bench_report.py --postgres postgresql://postgres@127.0.0.1:5432/postgres

With ``--postgres`` (an administrator's URL) the same data also goes into three fresh PostgreSQL
databases, dropped afterwards. Nothing is asserted: docs/PERFORMANCE.md records the times.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from handoff import analytics  # noqa: E402
from handoff.analytics import Period  # noqa: E402

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
BATCH = 20_000
INTENTS = ["ask_opening_hours", "order_status", "ask_returns", "ask_shipping", "greet", "thank", "affirm", "deny", "out_of_scope", "request_human"]

EVENTS = sa.Table(
    "events",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("sender_id", sa.String(255), nullable=False, index=True),
    sa.Column("type_name", sa.String(255), nullable=False),
    sa.Column("timestamp", sa.Float),
    sa.Column("intent_name", sa.String(255)),
    sa.Column("action_name", sa.String(255)),
    sa.Column("data", sa.Text),
)


def _event(sender: str, kind: str, moment: float, intent: str | None = None, name: str | None = None, **extra) -> dict:
    data = {"event": kind, "timestamp": moment, **extra}
    if name is not None:
        data["name"] = name
        if kind == "action":
            data.update(policy="RulePolicy", confidence=1.0, action_text=None, hide_rule_turn=False)
    if intent is not None:
        ranking = [{"name": n, "confidence": round(0.9 if n == intent else 0.01, 3)} for n in [intent, *INTENTS[:7]]]
        data.update(
            text=extra.get("text") or "I would like to know something about my order please",
            parse_data={"intent": ranking[0], "entities": [], "text": "…", "message_id": uuid.uuid4().hex, "metadata": {}, "intent_ranking": ranking},
            input_channel="socketio",
            message_id=uuid.uuid4().hex,
            metadata={},
        )
    return {"sender_id": sender, "type_name": kind, "timestamp": moment, "intent_name": intent, "action_name": name, "data": json.dumps(data)}


def conversation(rng: random.Random, n: int) -> tuple[list[dict], dict | None]:
    """One conversation's events, and its handoff (or None)."""
    sender = f"conv-{n:06d}"
    start = NOW.timestamp() - rng.uniform(0, 30 * 86400)
    t = start
    events: list[dict] = []

    def add(kind: str, intent: str | None = None, name: str | None = None, step: float = 1.0, **extra) -> None:
        nonlocal t
        t += step
        events.append(_event(sender, kind, t, intent, name, **extra))

    def bot(utter: str) -> None:
        add("action", name=utter, step=0.2)
        add("bot", step=0.01, text="An answer of a sentence or two.", data={"elements": None, "buttons": None}, metadata={"utter_action": utter})

    add("action", name="action_session_start", step=0)
    add("session_started", step=0)
    add("action", name="action_listen", step=0.01)
    language = "nl" if rng.random() < 0.3 else "en"
    add("user", intent="greet", step=5)
    if language == "nl":
        add("slot", name="language", step=0.1, value="nl")
    bot("utter_greet")
    add("action", name="action_listen", step=0.1)
    add("user", intent=rng.choice(INTENTS[:4]), step=20)
    roll = rng.random()
    handoff = None
    if roll < 0.15:  # an offer
        add("action", name="action_offer_handoff", step=0.3)
        add("bot", step=0.01, metadata={"utter_action": "utter_offer_handoff_complex"}, text="Shall I put you through?")
        add("slot", name="handoff_offered", step=0.01, value="complex")
        add("action", name="action_listen", step=0.1)
        if rng.random() < 0.5:
            add("user", intent="affirm", step=8)
            handoff = "complex"
        else:
            add("user", intent="deny", step=8)
            bot("action_decline_handoff")
    elif roll < 0.25:
        handoff = "customer_request"
    else:
        bot("utter_answer")
        add("action", name="action_listen", step=0.1)
        add("user", intent="thank", step=15)
        bot("utter_you_are_welcome")
    if handoff:
        add("action", name="action_handoff", step=0.3)
        add("bot", step=0.01, metadata={"utter_action": "utter_handoff_started"}, text="I am putting you through.")
        add("slot", name="handoff_id", step=0.01, value=str(uuid.uuid4()))
        add("pause", step=0.01)
        add("action", name="action_listen", step=0.01)
        return events, {"conversation_id": sender, "reason": handoff, "language": language, "created_at": t}
    add("action", name="action_listen", step=0.1)
    return events, None


def seed(urls: dict[str, str], n: int, rng_seed: int = 15) -> dict[str, int]:
    """Write ``n`` conversations into the three databases; the row counts."""
    from handoff.store import Base as HandoffBase
    from handoff.store import HandoffRow
    from helpdesk.db import Ticket, init_database
    from helpdesk.followups import FollowUp

    tracker = sa.create_engine(urls["tracker"], future=True)
    handoff_db = sa.create_engine(urls["handoff"], future=True)
    helpdesk = sa.create_engine(urls["helpdesk"], future=True)
    EVENTS.metadata.create_all(tracker)
    HandoffBase.metadata.create_all(handoff_db)
    init_database(helpdesk)
    FollowUp.__table__.create(helpdesk, checkfirst=True)
    wrapups = HandoffBase.metadata.tables.get("handoff_wrapups")

    rng = random.Random(rng_seed)
    counts = {"events": 0, "handoffs": 0, "tickets": 0, "follow_ups": 0, "wrap_ups": 0}
    pending_events: list[dict] = []
    handoffs: list[dict] = []
    tickets: list[dict] = []
    follow_ups: list[dict] = []
    wraps: list[dict] = []
    causes = ["handed_back"] * 70 + ["customer_left"] * 10 + ["no_agent_timeout"] * 8 + ["no_agent_available"] * 6 + ["out_of_hours"] * 6

    def flush(force: bool = False) -> None:
        if pending_events and (force or len(pending_events) >= BATCH):
            with tracker.begin() as connection:
                connection.execute(EVENTS.insert(), pending_events)
            counts["events"] += len(pending_events)
            pending_events.clear()
        if handoffs and (force or len(handoffs) >= BATCH // 4):
            with handoff_db.begin() as connection:
                connection.execute(HandoffRow.__table__.insert(), handoffs)
                if wraps and wrapups is not None:
                    connection.execute(wrapups.insert(), wraps)
            with helpdesk.begin() as connection:
                connection.execute(Ticket.__table__.insert(), tickets)
                if follow_ups:
                    connection.execute(FollowUp.__table__.insert(), follow_ups)
            counts["handoffs"] += len(handoffs)
            counts["tickets"] += len(tickets)
            counts["follow_ups"] += len(follow_ups)
            counts["wrap_ups"] += len(wraps) if wrapups is not None else 0
            for batch in (handoffs, tickets, follow_ups, wraps):
                batch.clear()

    for i in range(n):
        events, handoff = conversation(rng, i)
        pending_events.extend(events)
        if handoff:
            handoff_id = str(uuid.uuid4())
            cause = rng.choice(causes)
            created = handoff["created_at"]
            handoffs.append(
                {
                    "id": handoff_id, "conversation_id": handoff["conversation_id"], "state": "ended", "reason": handoff["reason"],
                    "priority": "normal", "queue": "support", "language": handoff["language"], "end_cause": cause,
                    "created_at": created, "updated_at": created + 600, "ended_at": created + 600,
                }
            )
            created_at = datetime.fromtimestamp(created + 1, timezone.utc).replace(tzinfo=None)
            joined = cause == "handed_back"
            intent = "out_of_scope" if handoff["reason"] == "complex" else "request_human"
            tickets.append(
                {
                    "ticket_id": f"T-{len(handoffs)}-{i}", "handoff_id": handoff_id, "conversation_id": handoff["conversation_id"],
                    "reason": handoff["reason"], "reason_text": "", "priority": "normal", "priority_rank": 2, "queue": "support",
                    "language": handoff["language"], "customer": {}, "channel": {}, "trigger": {"intent": intent, "confidence": 0.9},
                    "transcript": [{"role": "customer", "text": "help"}] * 6, "payload": {"event": "handoff.requested"},
                    "state": "closed", "created_at": created_at,
                    "joined_at": created_at + timedelta(seconds=rng.expovariate(1 / 90)) if joined else None,
                    "closed_at": created_at + timedelta(minutes=10), "close_cause": cause,
                }
            )
            if cause in ("no_agent_timeout", "no_agent_available", "out_of_hours"):
                due = created_at + timedelta(hours=rng.uniform(2, 20))
                state = rng.choice(["done", "done", "not_reached", "open"])
                follow_ups.append(
                    {
                        "follow_up_id": str(uuid.uuid4()), "handoff_id": handoff_id, "conversation_id": handoff["conversation_id"],
                        "origin": cause, "method": "callback", "contact": "+31 6 1234 5678", "reason": handoff["reason"],
                        "reason_text": "", "queue": "support", "priority": "normal", "language": handoff["language"],
                        "customer": {}, "transcript": [], "due_at": due, "state": state, "created_at": created_at,
                        "closed_at": due + timedelta(hours=rng.uniform(-3, 2)) if state != "open" else None,
                    }
                )
            if joined and rng.random() < 0.6:
                wraps.append(
                    {
                        "handoff_id": handoff_id, "conversation_id": handoff["conversation_id"], "outcome": "resolved",
                        "why": rng.choice(analytics.WRAP_UP_WHY), "intent": None, "new_topic": False, "note": None,
                        "agent": "grace", "created_at": created + 600,
                    }
                )
        flush()
    flush(force=True)
    for engine in (tracker, handoff_db, helpdesk):
        engine.dispose()
    return counts


def measure(urls: dict[str, str], label: str) -> dict[int, float]:
    from handoff.store import create_db_engine

    engines = {name: create_db_engine(url) for name, url in urls.items()}
    times = {}
    try:
        for days in (7, 30):
            started, cpu = time.perf_counter(), time.process_time()
            report = analytics.compute(
                Period.last_days(days, now=NOW),
                tracker_engine=engines["tracker"], handoff_engine=engines["handoff"], helpdesk_engine=engines["helpdesk"],
            )
            times[days] = time.perf_counter() - started
            print(f"==> {label}, last {days} days: {times[days]:.2f} s ({time.process_time() - cpu:.2f} s of this process's CPU)")
            for line in analytics.summary_lines(report):
                print(f"    {line}")
    finally:
        for engine in engines.values():
            engine.dispose()
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--postgres", help="an administrator's PostgreSQL URL: also measure there (fresh databases, dropped afterwards)")
    parser.add_argument("--keep", help="keep the SQLite files in this folder")
    parser.add_argument("--reuse", action="store_true", help="with --keep: measure the files seeded there before, without seeding again")
    parser.add_argument("--no-sqlite", action="store_true", help="measure PostgreSQL only")
    args = parser.parse_args(argv)

    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-report-"))
    folder.mkdir(parents=True, exist_ok=True)
    urls = {name: f"sqlite:///{folder / (name + '.db')}" for name in ("tracker", "handoff", "helpdesk")}
    reuse = args.reuse and args.keep and all((folder / f"{name}.db").exists() for name in urls)
    try:
        if not args.no_sqlite:
            if not reuse:
                for name in urls:
                    (folder / f"{name}.db").unlink(missing_ok=True)
                started = time.perf_counter()
                counts = seed(urls, args.conversations)
                print(f"==> SQLite: seeded {args.conversations} conversations ({', '.join(f'{v} {k}' for k, v in counts.items())}) in {time.perf_counter() - started:.0f} s")
            measure(urls, f"SQLite, {args.conversations} conversations")
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)

    if args.postgres:
        import psycopg2

        admin_url = sa.engine.make_url(args.postgres)
        admin = psycopg2.connect(admin_url.set(drivername="postgresql").render_as_string(hide_password=False), connect_timeout=5)
        admin.autocommit = True
        names = {role: f"bench_report_{role}_{uuid.uuid4().hex[:8]}" for role in ("tracker", "handoff", "helpdesk")}
        with admin.cursor() as cursor:
            for name in names.values():
                cursor.execute(f'CREATE DATABASE "{name}"')
        try:
            pg_urls = {role: admin_url.set(database=name).render_as_string(hide_password=False) for role, name in names.items()}
            started = time.perf_counter()
            seed(pg_urls, args.conversations)
            connection = psycopg2.connect(pg_urls["tracker"])
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE events")
            connection.close()
            print(f"==> PostgreSQL: seeded in {time.perf_counter() - started:.0f} s")
            measure(pg_urls, f"PostgreSQL, {args.conversations} conversations")
        finally:
            with admin.cursor() as cursor:
                for name in names.values():
                    cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
                    cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
            admin.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
