"""List the deliveries to the helpdesk that are stuck or were given up, and send one again.

``python -m handoff.tools.outbox_cli`` (``make outbox``) reads the outbox in ``HANDOFF_DATABASE_URL`` and prints:

- **pending** deliveries, each with its attempts, next attempt time, last error and state:
  ``retrying`` (failed at least once; the outbox worker tries again at the next attempt time),
  ``held back`` (waits for an earlier delivery of the same handoff, so the helpdesk never gets a
  customer message before its handoff), ``overdue`` (due for longer than ``--overdue`` seconds but
  nobody tried it: the outbox worker runs inside the Rasa server, is it running?) or ``queued``
  (new, about to be sent; not stuck);
- **rejected** deliveries (the helpdesk refused them for good, e.g. 400 or 404);
- **expired** deliveries (given up after ``HANDOFF_OUTBOX_MAX_ATTEMPTS`` attempts or
  ``HANDOFF_OUTBOX_EXPIRY_SECONDS``).

``--json`` prints the same as one JSON object. ``--retry EVENT_ID`` (repeatable) makes a rejected
or expired delivery pending again with the same ``event_id`` and bytes and a fresh retry budget;
the Rasa server's outbox worker sends it at its next pass.

Exit status (the monitoring-plugin convention, so a cron job or health check can use it as is):

- 0: nothing is stuck;
- 1: deliveries are being retried (retrying, held back or overdue), none given up;
- 2: deliveries were given up (rejected or expired); they count until they are sent again;
- 3: the command could not do what was asked: bad arguments, an unreachable database, or
  ``--retry`` of an event that is unknown or not rejected/expired.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from typing import Any, NoReturn

import sqlalchemy as sa

from handoff.settings import SettingsError, load_settings
from handoff.store import DELIVERED, EXPIRED, PENDING, REJECTED, HandoffStore, OutboxEvent, utc_iso

OK, RETRYING, GIVEN_UP, FAILED = 0, 1, 2, 3
STATUS_WORDS = {OK: "ok", RETRYING: "retrying", GIVEN_UP: "given_up"}
STUCK_STATES = ("retrying", "held_back", "overdue")


@dataclass(frozen=True)
class Entry:
    """An outbox entry as the command reports it."""

    event: OutboxEvent
    state: str  # retrying | held_back | overdue | queued | rejected | expired
    waits_for: str | None = None  # the earlier event_id a held-back entry waits for

    def to_json(self) -> dict[str, Any]:
        e = self.event
        return {
            "event_id": e.event_id,
            "event": e.event_type,
            "handoff_id": e.handoff_id,
            "conversation_id": e.conversation_id,
            "status": e.status,
            "state": self.state,
            "stuck": self.state != "queued",
            "attempts": e.attempts,
            "queued_at": utc_iso(e.created_at),
            "next_attempt_at": utc_iso(e.next_attempt_at) if e.status == PENDING else None,
            "last_error": e.last_error,
            "waits_for": self.waits_for,
        }


@dataclass(frozen=True)
class Report:
    """What the outbox holds that is not delivered."""

    checked_at: float
    counts: dict[str, int]
    pending: list[Entry]
    rejected: list[Entry]
    expired: list[Entry]

    @property
    def exit_status(self) -> int:
        if self.counts.get(REJECTED) or self.counts.get(EXPIRED):
            return GIVEN_UP
        if any(entry.state in STUCK_STATES for entry in self.pending):
            return RETRYING
        return OK

    def state_counts(self) -> dict[str, int]:
        counts = {state: 0 for state in (*STUCK_STATES, "queued")}
        for entry in self.pending:
            counts[entry.state] += 1
        return counts


def classify_pending(events: list[OutboxEvent], now: float, overdue_after: float) -> list[Entry]:
    """The state of each pending entry; ``events`` in queue order (as the worker sends them)."""
    first_of_handoff: dict[str, Entry] = {}
    entries = []
    for event in events:
        earlier = first_of_handoff.get(event.handoff_id)
        if event.attempts > 0:
            entry = Entry(event, "retrying")
        elif earlier is not None and earlier.state in STUCK_STATES:
            # Not tried because the worker keeps a handoff's deliveries in order.
            entry = Entry(event, "held_back", waits_for=earlier.event.event_id)
        elif event.next_attempt_at < now - overdue_after:
            entry = Entry(event, "overdue")
        else:
            entry = Entry(event, "queued")
        first_of_handoff.setdefault(event.handoff_id, entry)
        entries.append(entry)
    return entries


def build_report(store: HandoffStore, overdue_after: float = 60.0, limit: int = 100, now: float | None = None) -> Report:
    """Read the outbox: every pending entry (to tell which are stuck), up to ``limit`` given-up ones."""
    now = time.time() if now is None else now
    pending = classify_pending(store.events(statuses=(PENDING,)), now, overdue_after)
    rejected = [Entry(e, REJECTED) for e in store.events(statuses=(REJECTED,), limit=limit)]
    expired = [Entry(e, EXPIRED) for e in store.events(statuses=(EXPIRED,), limit=limit)]
    counts = {status: 0 for status in (PENDING, REJECTED, EXPIRED, DELIVERED)}
    counts.update(store.count_events())
    return Report(now, counts, pending, rejected, expired)


def _relative(moment: float, now: float) -> str:
    seconds = moment - now
    span = abs(seconds)
    text = f"{span:.0f} s" if span < 120 else f"{span / 60:.0f} min" if span < 7200 else f"{span / 3600:.1f} h"
    return f"in {text}" if seconds >= 0 else f"{text} ago"


def render_text(report: Report, database: str, webhook_url: str, limit: int) -> str:
    now = report.checked_at
    counts, states = report.counts, report.state_counts()
    lines = [
        f"Outbox {database} -> {webhook_url}",
        f"Checked at {utc_iso(now)}: {counts[PENDING]} pending ({states['retrying']} retrying, "
        f"{states['held_back']} held back, {states['overdue']} overdue, {states['queued']} queued), "
        f"{counts[REJECTED]} rejected, {counts[EXPIRED]} expired, {counts[DELIVERED]} delivered.",
    ]
    sections = [
        ("Pending", report.pending, counts[PENDING]),
        ("Rejected by the helpdesk (send one again with --retry EVENT_ID)", report.rejected, counts[REJECTED]),
        ("Expired: retries given up (send one again with --retry EVENT_ID)", report.expired, counts[EXPIRED]),
    ]
    for title, entries, total in sections:
        if not entries:
            continue
        lines += ["", f"{title}:"]
        for entry in entries[:limit]:
            e = entry.event
            when = (
                f"next attempt {utc_iso(e.next_attempt_at)} ({_relative(e.next_attempt_at, now)})"
                if e.status == PENDING
                else f"queued {utc_iso(e.created_at)} ({_relative(e.created_at, now)})"
            )
            state = entry.state.replace("_", " ")
            lines.append(
                f"  {e.event_id}  {e.event_type}  conversation {e.conversation_id}  "
                f"{e.attempts} attempt{'s' if e.attempts != 1 else ''}  {when}  [{state}]"
            )
            if entry.waits_for:
                lines.append(f"      waits for {entry.waits_for}")
            if e.last_error:
                lines.append(f"      last error: {e.last_error.splitlines()[0][:300]}")
        if total > min(len(entries), limit):
            lines.append(f"  ... and {total - min(len(entries), limit)} more")
    status = report.exit_status
    verdict = {
        OK: "nothing is stuck",
        RETRYING: f"{sum(states[s] for s in STUCK_STATES)} deliveries are stuck and being retried",
        GIVEN_UP: f"{counts[REJECTED] + counts[EXPIRED]} deliveries were given up",
    }[status]
    lines += ["", f"Status: {STATUS_WORDS[status]} (exit {status}): {verdict}."]
    return "\n".join(lines)


def retry(store: HandoffStore, event_ids: list[str], as_json: bool) -> int:
    """Make each rejected/expired event pending again; exit 0 when all were, 3 otherwise."""
    retried, errors = [], []
    for event_id in event_ids:
        before = store.get_event(event_id)
        after = store.retry_event(event_id)
        if after is not None:
            retried.append({**Entry(after, "queued").to_json(), "was": before.status if before else None})
        elif before is None:
            errors.append({"event_id": event_id, "error": "no such event in the outbox"})
        elif before.status in (REJECTED, EXPIRED) and not before.body:
            errors.append(
                {
                    "event_id": event_id,
                    "error": "its body was cleared (HANDOFF_OUTBOX_KEEP_GIVEN_UP_DAYS after it was queued): it can no longer be sent",
                }
            )
        else:
            errors.append({"event_id": event_id, "error": f"it is {before.status}, not rejected or expired"})
    if as_json:
        print(json.dumps({"retried": retried, "errors": errors}, indent=2))
    else:
        for item in retried:
            print(
                f"{item['event_id']} ({item['event']}, conversation {item['conversation_id']}) was {item['was']}, "
                "is pending again: the Rasa server's outbox worker sends it at its next pass."
            )
        for item in errors:
            print(f"{item['event_id']}: not retried: {item['error']}", file=sys.stderr)
    return FAILED if errors else OK


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # Exit 2 means "given up" here, so argument errors take 3 like every other failure.
        self.print_usage(sys.stderr)
        self.exit(FAILED, f"{self.prog}: error: {message}\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = _Parser(
        prog="python -m handoff.tools.outbox_cli",
        description="List deliveries to the helpdesk that are stuck or expired; send one again.",
        epilog="Exit status: 0 nothing stuck, 1 deliveries being retried, 2 deliveries given up "
        "(rejected or expired), 3 the command failed.",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--retry",
        metavar="EVENT_ID",
        action="append",
        default=[],
        help="make a rejected or expired delivery pending again (same event_id); may be repeated",
    )
    parser.add_argument("--database-url", help="the handoff database (default: HANDOFF_DATABASE_URL)")
    parser.add_argument(
        "--overdue",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="a pending delivery nobody has tried for this long after it was due is stuck (default 60)",
    )
    parser.add_argument("--limit", type=int, default=100, help="entries listed per section (default 100)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return FAILED
    database_url = args.database_url or settings.database_url
    shown_url = sa.engine.make_url(database_url).render_as_string(hide_password=True)
    try:
        store = HandoffStore(database_url)
        try:
            if args.retry:
                return retry(store, args.retry, args.json)
            report = build_report(store, overdue_after=args.overdue, limit=args.limit)
        finally:
            store.close()
    except sa.exc.SQLAlchemyError as exc:
        print(f"error: cannot read the outbox in {shown_url}: {exc}", file=sys.stderr)
        return FAILED

    status = report.exit_status
    if args.json:
        document = {
            "checked_at": utc_iso(report.checked_at),
            "database": shown_url,
            "webhook_url": settings.helpdesk_webhook_url,
            "status": STATUS_WORDS[status],
            "exit_status": status,
            "counts": {**report.counts, **report.state_counts()},
            "pending": [e.to_json() for e in report.pending[: args.limit]],
            "rejected": [e.to_json() for e in report.rejected],
            "expired": [e.to_json() for e in report.expired],
        }
        print(json.dumps(document, indent=2))
    else:
        print(render_text(report, shown_url, settings.helpdesk_webhook_url, args.limit))
    return status


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # the reader went away (e.g. `| head`): the output is incomplete
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(FAILED)
