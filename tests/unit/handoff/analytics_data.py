"""Known data in the three databases the handoff analytics read, and every figure it must give.

``seed(tracker_url, handoff_url, helpdesk_url)`` writes, through the real schemas (Rasa's
``SQLTrackerStore`` table, :mod:`handoff.store`, :mod:`helpdesk.db` and the follow-ups table),
conversations on known days; ``EXPECTED_7`` and ``EXPECTED_30`` are the figures of the 7 and 30
days before ``NOW``, worked out by hand from the comments below.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
SINCE_7 = NOW - timedelta(days=7)  # 2026-11-23 12:00
SINCE_30 = NOW - timedelta(days=30)  # 2026-10-31 12:00


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def ts(text: str) -> float:
    return at(text).timestamp()


def naive(text: str) -> datetime:
    return datetime.fromisoformat(text)


class Tracker:
    """Events as Rasa's SQL tracker store writes them (action_name holds a slot's name too)."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(self, sender: str, kind: str, when: str, seconds: float = 0, intent: str | None = None, name: str | None = None, **data: Any) -> None:
        moment = ts(when) + seconds
        event = {"event": kind, "timestamp": moment, **data}
        if name is not None:
            event["name"] = name
        if intent is not None:
            event["parse_data"] = {"intent": {"name": intent, "confidence": 0.9}}
        self.rows.append(
            {"sender_id": sender, "type_name": kind, "timestamp": moment, "intent_name": intent, "action_name": name, "data": json.dumps(event)}
        )

    def start(self, sender: str, when: str) -> None:
        self.add(sender, "action", when, name="action_session_start")
        self.add(sender, "session_started", when)
        self.add(sender, "action", when, 0.1, name="action_listen")

    def say(self, sender: str, when: str, seconds: float, intent: str, text: str = "hello") -> None:
        self.add(sender, "user", when, seconds, intent=intent, text=text)

    def act(self, sender: str, when: str, seconds: float, action: str, utter: str | None = None) -> None:
        self.add(sender, "action", when, seconds, name=action)
        if utter:
            self.add(sender, "bot", when, seconds + 0.01, text="...", metadata={"utter_action": utter})

    def slot(self, sender: str, when: str, seconds: float, name: str, value: Any) -> None:
        self.add(sender, "slot", when, seconds, name=name, value=value)

    def handoff(self, sender: str, when: str, seconds: float) -> None:
        self.act(sender, when, seconds, "action_handoff", "utter_handoff_started")
        self.add(sender, "pause", when, seconds + 0.1)
        self.act(sender, when, seconds + 0.2, "action_listen")


def tracker_events() -> list[dict[str, Any]]:
    t = Tracker()
    # c1 (7 days): English after a Dutch start; offered a person, said yes: handed off (h1).
    t.start("c1", "2026-11-28T10:00:00")
    t.say("c1", "2026-11-28T10:00:00", 1, "greet", "hoi")
    t.slot("c1", "2026-11-28T10:00:00", 1.1, "language", "nl")
    t.say("c1", "2026-11-28T10:00:00", 10, "out_of_scope", "can you fix my roof")
    t.slot("c1", "2026-11-28T10:00:00", 10.1, "language", "en")
    t.act("c1", "2026-11-28T10:00:00", 11, "action_offer_handoff", "utter_offer_handoff_complex")
    t.slot("c1", "2026-11-28T10:00:00", 11.1, "handoff_offered", "complex")
    t.act("c1", "2026-11-28T10:00:00", 11.2, "action_listen")
    t.say("c1", "2026-11-28T10:00:00", 20, "affirm", "yes")
    t.handoff("c1", "2026-11-28T10:00:00", 21)
    # c2 (7 days, Dutch): the offer said as a response of its own; the customer says no.
    t.start("c2", "2026-11-28T11:00:00")
    t.say("c2", "2026-11-28T11:00:00", 1, "express_frustration", "dit is waardeloos")
    t.slot("c2", "2026-11-28T11:00:00", 1.1, "language", "nl")
    t.act("c2", "2026-11-28T11:00:00", 2, "utter_offer_handoff_frustration", "utter_offer_handoff_frustration")
    t.say("c2", "2026-11-28T11:00:00", 10, "deny", "nee")
    t.act("c2", "2026-11-28T11:00:00", 11, "action_decline_handoff", "utter_offer_declined")
    # c3 (7 days): an offer ignored; the handoff (h3) comes in the next session: not an acceptance.
    t.start("c3", "2026-11-29T09:00:00")
    t.say("c3", "2026-11-29T09:00:00", 1, "out_of_scope", "weather?")
    t.act("c3", "2026-11-29T09:00:00", 2, "action_offer_handoff", "utter_offer_handoff_complex")
    t.say("c3", "2026-11-29T09:00:00", 30, "ask_opening_hours", "when are you open")
    t.act("c3", "2026-11-29T09:00:00", 31, "utter_opening_hours", "utter_opening_hours")
    t.start("c3", "2026-11-29T09:59:00")
    t.say("c3", "2026-11-29T09:59:00", 1, "request_human", "a person please")
    t.handoff("c3", "2026-11-29T09:59:00", 2)
    # c4 (7 days, Dutch): handed off at once (h4), no offer.
    t.start("c4", "2026-11-29T12:00:00")
    t.say("c4", "2026-11-29T12:00:00", 1, "money_trouble", "ik kan niet betalen")
    t.slot("c4", "2026-11-29T12:00:00", 1.1, "language", "nl")
    t.handoff("c4", "2026-11-29T12:00:00", 2)
    # c5 (7 days): the bot answers; later the assistant's own EXTERNAL_ intent: contained.
    t.start("c5", "2026-11-30T08:00:00")
    t.say("c5", "2026-11-30T08:00:00", 1, "ask_opening_hours", "open?")
    t.act("c5", "2026-11-30T08:00:00", 2, "utter_opening_hours", "utter_opening_hours")
    t.say("c5", "2026-11-30T08:00:00", 60, "EXTERNAL_handback", "EXTERNAL: EXTERNAL_handback")
    # c10: customer messages long ago; only an EXTERNAL_ event in the period: not a conversation
    # of either period. Its old offer is not counted either.
    t.start("c10", "2026-10-01T10:00:00")
    t.say("c10", "2026-10-01T10:00:00", 1, "out_of_scope", "hm")
    t.act("c10", "2026-10-01T10:00:00", 2, "action_offer_handoff", "utter_offer_handoff_complex")
    t.say("c10", "2026-10-01T10:00:00", 3, "affirm", "yes")
    t.handoff("c10", "2026-10-01T10:00:00", 4)
    t.say("c10", "2026-11-29T15:00:00", 0, "EXTERNAL_handback", "EXTERNAL: EXTERNAL_handback")
    # Only in the 30 days:
    # c6: handed off (h6), joined after 600 s.
    t.start("c6", "2026-11-10T10:00:00")
    t.say("c6", "2026-11-10T10:00:00", 1, "out_of_scope", "?")
    t.handoff("c6", "2026-11-10T10:00:00", 2)
    # c7 (Dutch): handoff h7, nobody available, no ticket.
    t.start("c7", "2026-11-12T10:00:00")
    t.say("c7", "2026-11-12T10:00:00", 1, "request_human", "mens")
    t.slot("c7", "2026-11-12T10:00:00", 1.1, "language", "nl")
    t.handoff("c7", "2026-11-12T10:00:00", 2)
    # c8: offered for frustration, said yes (h8), out of hours.
    t.start("c8", "2026-11-15T10:00:00")
    t.say("c8", "2026-11-15T10:00:00", 1, "express_frustration", "useless")
    t.act("c8", "2026-11-15T10:00:00", 2, "action_offer_handoff", "utter_offer_handoff_frustration")
    t.say("c8", "2026-11-15T10:00:00", 5, "affirm", "yes")
    t.handoff("c8", "2026-11-15T10:00:00", 6)
    # c9: handed off (h9), joined after 90 s.
    t.start("c9", "2026-11-16T10:00:00")
    t.say("c9", "2026-11-16T10:00:00", 1, "out_of_scope", "?")
    t.handoff("c9", "2026-11-16T10:00:00", 2)
    return t.rows


# (id, conversation, reason, language, end cause, created)
HANDOFFS = [
    ("h1", "c1", "complex", "en", "handed_back", "2026-11-28T10:00:21"),
    ("h3", "c3", "customer_request", "en", "customer_left", "2026-11-29T09:59:02"),
    ("h4", "c4", "sensitive", "nl", "no_agent_timeout", "2026-11-29T12:00:02"),
    ("h6", "c6", "complex", "en", "handed_back", "2026-11-10T10:00:02"),
    ("h7", "c7", "customer_request", "nl", "no_agent_available", "2026-11-12T10:00:02"),
    ("h8", "c8", "frustration", "en", "out_of_hours", "2026-11-15T10:00:06"),
    ("h9", "c9", "complex", "en", "handed_back", "2026-11-16T10:00:02"),
    ("h10", "c10", "complex", "en", "handed_back", "2026-10-01T10:00:04"),
]

# (handoff, trigger, created, joined)
TICKETS = [
    ("h1", {"intent": "out_of_scope", "confidence": 0.9}, "2026-11-28T10:00:22", "2026-11-28T10:00:52"),
    ("h3", {"intent": "request_human"}, "2026-11-29T09:59:03", None),
    ("h4", {}, "2026-11-29T12:00:03", None),
    ("h6", {"intent": "out_of_scope"}, "2026-11-10T10:00:03", "2026-11-10T10:10:03"),
    ("h8", {"intent": "express_frustration"}, "2026-11-15T10:00:07", None),
    ("h9", {"intent": "out_of_scope"}, "2026-11-16T10:00:03", "2026-11-16T10:01:33"),
    ("h10", {"intent": "out_of_scope"}, "2026-10-01T10:00:05", "2026-10-01T10:00:10"),
]

# (state, due, closed)
FOLLOW_UPS = [
    ("done", "2026-11-29T12:00:00", "2026-11-29T11:00:00"),  # in time
    ("done", "2026-11-28T12:00:00", "2026-11-28T13:00:00"),  # late
    ("not_reached", "2026-11-27T12:00:00", "2026-11-27T11:00:00"),
    ("open", "2026-11-30T09:00:00", None),
    ("done", "2026-11-11T12:00:00", "2026-11-11T12:00:00"),  # 30 days only; closed at due: in time
    ("done", "2026-10-02T12:00:00", "2026-10-02T11:00:00"),  # before both periods
]

# (handoff, why, created)
WRAP_UPS = [
    ("h1", "bot_misunderstood", "2026-11-28T10:05:00"),
    ("h3", "policy_needs_person", "2026-11-29T10:05:00"),
    ("h6", "missing_knowledge", "2026-11-10T10:20:00"),
    ("h10", "bot_misunderstood", "2026-10-01T10:05:00"),
]

# The helpdesk's copies (ticket_wrapups): h1's as sent with the hand-back (the handoff database's
# counts: one wrap-up per handoff), and h9's, recorded only in the helpdesk.
TICKET_WRAP_UPS = [
    ("h1", "other", "2026-11-28T10:05:00"),
    ("h9", "customer_preference", "2026-11-16T10:10:00"),
]

EXPECTED_7: dict[str, Any] = {
    "conversations": 5,
    "handoffs": 3,
    "handoff_rate": 60.0,
    "per_day": {"2026-11-28": (2, 1), "2026-11-29": (2, 2), "2026-11-30": (1, 0)},
    "by_reason": {"complex": (1, 20.0), "customer_request": (1, 20.0), "sensitive": (1, 20.0)},
    "by_intent": {"out_of_scope": (1, 20.0), "request_human": (1, 20.0), "sensitive (reason)": (1, 20.0)},
    "by_language": {"en": (2, 3, 66.67), "nl": (1, 2, 50.0)},
    "offers": {"made": 3, "accepted": 1, "declined": 2, "said_no": 1, "no_handoff": 1},
    "time_to_agent": {"tickets": 3, "joined": 1, "p50_seconds": 30.0, "p95_seconds": 30.0},
    "end_causes": {"handed_back": 1, "customer_left": 1, "no_agent_timeout": 1},
    "gave_up": 1,
    "no_agent_timeouts": 1,
    "no_agent_available": 0,
    "out_of_hours": 0,
    "follow_ups": {"due": 4, "done_in_time": 1, "done_late": 1, "not_reached": 1, "open": 1, "in_time_percent": 25.0},
    "wrap_ups": {"total": 2, "false_handoffs": 1, "by_why": {"bot_misunderstood": 1, "policy_needs_person": 1}},
    "containment": {"conversations": 5, "without_handoff": 2, "percent": 40.0},
}

EXPECTED_30: dict[str, Any] = {
    "conversations": 9,
    "handoffs": 7,
    "handoff_rate": 77.78,
    "per_day": {
        "2026-11-10": (1, 1), "2026-11-12": (1, 1), "2026-11-15": (1, 1), "2026-11-16": (1, 1),
        "2026-11-28": (2, 1), "2026-11-29": (2, 2), "2026-11-30": (1, 0),
    },
    "by_reason": {"complex": (3, 33.33), "customer_request": (2, 22.22), "sensitive": (1, 11.11), "frustration": (1, 11.11)},
    "by_intent": {
        "out_of_scope": (3, 33.33), "request_human": (1, 11.11), "sensitive (reason)": (1, 11.11),
        "customer_request (reason)": (1, 11.11), "express_frustration": (1, 11.11),
    },
    "by_language": {"en": (5, 6, 83.33), "nl": (2, 3, 66.67)},
    "offers": {"made": 4, "accepted": 2, "declined": 2, "said_no": 1, "no_handoff": 1},
    "time_to_agent": {"tickets": 6, "joined": 3, "p50_seconds": 90.0, "p95_seconds": 600.0},
    "end_causes": {"handed_back": 3, "customer_left": 1, "no_agent_timeout": 1, "no_agent_available": 1, "out_of_hours": 1},
    "gave_up": 1,
    "no_agent_timeouts": 1,
    "no_agent_available": 1,
    "out_of_hours": 1,
    "follow_ups": {"due": 5, "done_in_time": 2, "done_late": 1, "not_reached": 1, "open": 1, "in_time_percent": 40.0},
    "wrap_ups": {
        "total": 4, "false_handoffs": 2,
        "by_why": {"bot_misunderstood": 1, "policy_needs_person": 1, "missing_knowledge": 1, "customer_preference": 1},
    },
    "containment": {"conversations": 9, "without_handoff": 2, "percent": 22.22},
}

_WRAPUPS_FALLBACK = sa.Table(
    "handoff_wrapups",
    sa.MetaData(),
    sa.Column("handoff_id", sa.String(36), primary_key=True),
    sa.Column("conversation_id", sa.String(255), nullable=False),
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("why", sa.String(32), nullable=False),
    sa.Column("intent", sa.String(255)),
    sa.Column("new_topic", sa.Boolean, nullable=False, default=False),
    sa.Column("note", sa.Text),
    sa.Column("agent", sa.String(255)),
    sa.Column("created_at", sa.Float, nullable=False),
)


def seed_tracker(url: Any) -> None:
    from rasa.core.tracker_store import SQLTrackerStore

    engine = sa.create_engine(url, future=True)
    table = SQLTrackerStore.SQLEvent.__table__
    table.metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(table.insert(), tracker_events())
    engine.dispose()


def seed_handoff(url: Any, wrap_ups: bool = True) -> None:
    from handoff.store import Base, HandoffRow

    engine = sa.create_engine(url, future=True)
    if wrap_ups:
        Base.metadata.create_all(engine)
        _WRAPUPS_FALLBACK.create(engine, checkfirst=True)
    else:
        HandoffRow.__table__.create(engine)
    conversation_of = {h[0]: h[1] for h in HANDOFFS}
    with engine.begin() as connection:
        connection.execute(
            HandoffRow.__table__.insert(),
            [
                {
                    "id": i, "conversation_id": c, "state": "ended", "reason": r, "priority": "normal",
                    "queue": "support", "language": lang, "end_cause": cause,
                    "created_at": ts(when), "updated_at": ts(when), "ended_at": ts(when) + 60,
                }
                for i, c, r, lang, cause, when in HANDOFFS
            ],
        )
        if wrap_ups:
            connection.execute(
                _WRAPUPS_FALLBACK.insert(),
                [
                    {"handoff_id": h, "conversation_id": conversation_of[h], "outcome": "resolved", "why": why, "new_topic": False, "created_at": ts(when)}
                    for h, why, when in WRAP_UPS
                ],
            )
    engine.dispose()


def seed_helpdesk(url: Any) -> None:
    from helpdesk.db import Ticket, TicketWrapUp, create_engine_for, init_database, priority_rank
    from helpdesk.followups import FollowUp

    engine = create_engine_for(str(url) if not isinstance(url, str) else url)
    sessions = init_database(engine)
    FollowUp.__table__.create(engine, checkfirst=True)
    by_id = {h[0]: h for h in HANDOFFS}
    with sessions() as session, session.begin():
        wrap_ups = {h: (why, when) for h, why, when in TICKET_WRAP_UPS}
        for n, (handoff_id, trigger, created, joined) in enumerate(TICKETS):
            _, conversation, reason, language, cause, _ = by_id[handoff_id]
            ticket = Ticket(
                ticket_id=f"T-{n}", handoff_id=handoff_id, conversation_id=conversation, reason=reason,
                priority="normal", priority_rank=priority_rank("normal"), queue="support", language=language,
                trigger=trigger, payload={}, state="closed", created_at=naive(created),
                joined_at=naive(joined) if joined else None, closed_at=naive(created) + timedelta(hours=1),
                close_cause=cause, agent_name="Grace" if joined else None,
            )
            session.add(ticket)
            if handoff_id in wrap_ups:
                why, when = wrap_ups[handoff_id]
                session.flush()
                session.add(TicketWrapUp(ticket_pk=ticket.id, outcome="resolved", why=why, new_topic=False, author="grace", created_at=naive(when)))
        for n, (state, due, closed) in enumerate(FOLLOW_UPS):
            session.add(
                FollowUp(
                    follow_up_id=f"f{n}", handoff_id=f"fh{n}", conversation_id=f"fc{n}", origin="out_of_hours",
                    method="callback", contact="+31 6 1234 5678", reason="customer_request", queue="support",
                    priority="normal", language="en", due_at=naive(due), state=state,
                    created_at=naive(due) - timedelta(hours=12), closed_at=naive(closed) if closed else None,
                )
            )
    engine.dispose()


def seed(tracker_url: Any, handoff_url: Any, helpdesk_url: Any) -> None:
    seed_tracker(tracker_url)
    seed_handoff(handoff_url)
    seed_helpdesk(helpdesk_url)


def figures(report: Any) -> dict[str, Any]:
    """The report's figures in the shape of ``EXPECTED_7`` (days without anything left out)."""
    return {
        "conversations": report.conversations,
        "handoffs": report.handoffs,
        "handoff_rate": report.handoff_rate,
        "per_day": {d.day.isoformat(): (d.conversations, d.handoffs) for d in report.per_day if d.conversations or d.handoffs},
        "by_reason": {r.key: (r.handoffs, r.per_100) for r in report.by_reason},
        "by_intent": {r.key: (r.handoffs, r.per_100) for r in report.by_intent},
        "by_language": {r.key: (r.handoffs, r.conversations, r.per_100) for r in report.by_language},
        "offers": {k: getattr(report.offers, k) for k in ("made", "accepted", "declined", "said_no", "no_handoff")},
        "time_to_agent": {k: getattr(report.time_to_agent, k) for k in ("tickets", "joined", "p50_seconds", "p95_seconds")},
        "end_causes": report.end_causes,
        "gave_up": report.gave_up,
        "no_agent_timeouts": report.no_agent_timeouts,
        "no_agent_available": report.no_agent_available,
        "out_of_hours": report.out_of_hours,
        "follow_ups": {
            **{k: getattr(report.follow_ups, k) for k in ("due", "done_in_time", "done_late", "not_reached", "open")},
            "in_time_percent": report.follow_ups.in_time_percent,
        },
        "wrap_ups": {"total": report.wrap_ups.total, "false_handoffs": report.wrap_ups.false_handoffs, "by_why": report.wrap_ups.by_why},
        "containment": {
            "conversations": report.containment.conversations,
            "without_handoff": report.containment.without_handoff,
            "percent": report.containment.percent,
        },
    }
