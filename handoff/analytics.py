"""Handoff analytics: how often the assistant needs a person, why, and how the handoffs went.

The figures of ``make report`` (:mod:`handoff.tools.report`) and of the console's Reports page
(:mod:`helpdesk.reports`), computed for a period ``[since, until)`` from three databases, each
optional:

- the handoff database (:mod:`handoff.store`): tables ``handoffs`` and ``handoff_wrapups``;
- the embedded helpdesk's database: tables ``tickets``, ``ticket_wrapups`` and ``follow_ups``;
- the tracker store (Rasa's SQL tracker store): table ``events``.

A figure that needs a database (or a table) that is not there is ``None`` and listed in
:attr:`Report.unavailable` with the reason; nothing is estimated. docs/REPORTS.md says what each
figure means; the definitions below are the exact ones.

Definitions (all times UTC; a day is a UTC calendar day):

``conversations``
    Tracker-store senders (``events.sender_id``) with at least one customer message in the
    period: an event of type ``user`` whose intent does not start with ``EXTERNAL`` (those are
    triggered by the assistant itself, e.g. ``EXTERNAL_handback``). A conversation is counted on
    the day of its first customer message in the period.
``handoffs``
    Rows of ``handoffs`` created in the period, counted on the day they were created.
``handoff rate``
    Handoffs per 100 conversations; by reason (``handoffs.reason``) and by trigger intent over all
    conversations; by language over the conversations in that language. A handoff's trigger intent
    is the ``intent`` of its helpdesk ticket's ``trigger`` (matched on ``handoff_id``), or
    ``"<reason> (reason)"`` when the ticket has none or there is no ticket. A conversation's
    language is the value of its last ``language`` slot event before the end of the period, or
    the default language of handoff_rules.yml when it has none.
``offers``
    An offer is an ``action`` event in the period named ``action_offer_handoff`` or one of the
    offer responses run as an action of its own (every trigger's ``offer_response`` and
    ``confirm_response`` in handoff_rules.yml, ``utter_offer_handoff_complex`` and
    ``utter_offer_handoff_again``; see actions/escalation_actions.py and data/rules/offers.yml).
    Its answer window is the events of the same conversation after it, up to the next offer, the
    next ``session_started`` or ``restart``, whichever comes first (in the order stored).
    It is *accepted* when a handoff starts in that window (an ``action_handoff`` action or a
    ``pause`` event) before any ``action_decline_handoff``; *declined* otherwise, which is
    *said no* when ``action_decline_handoff`` ran in the window (the customer answered no) and
    *no handoff* else (ignored, or the conversation ended). The window may reach past the end of
    the period: an offer is judged by what the tracker store holds now.
``time to an agent``
    Helpdesk tickets created in the period that an agent joined: ``joined_at - created_at`` in
    seconds; p50 and p95 by the nearest-rank method (the value at rank ``ceil(p/100 * n)`` of the
    sorted durations).
``end causes``
    Handoffs created in the period by ``handoffs.end_cause``: ``customer_left`` (the customer
    gave up waiting), ``no_agent_timeout`` (nobody joined in time), ``no_agent_available``,
    ``out_of_hours``, and the others.
``follow-ups``
    Helpdesk follow-ups whose ``due_at`` is in the period: done in time (state ``done`` and
    ``closed_at <= due_at``), done late, not reached, still open.
``wrap-ups``
    Agents' wrap-ups created in the period, one per handoff: ``handoff_wrapups`` (handoff
    database, sent with the hand-back), and the helpdesk's ``ticket_wrapups`` of handoffs that
    table has none of (recorded for a ticket the assistant ended); by ``why``. *False handoffs*
    ("the bot could have answered") are those with why ``bot_misunderstood`` or
    ``missing_knowledge``. Neither table there: 0 wrap-ups, and said so.
``containment``
    Conversations of the period without a handoff created in the period, over all conversations
    of the period.

The heavy work is done in SQL (GROUP BY and counts, a per-sender MIN for conversations); day
buckets, percentiles and the offers' windows are computed in Python from compact results, so
the same queries run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from handoff import databases
from handoff.settings import SettingsError

DAY = 86400.0
DEFAULT_DAYS = 30

# Sources.
TRACKER = "tracker"
HANDOFF = "handoff"
HELPDESK = "helpdesk"
SOURCE_LABELS = {TRACKER: "tracker store", HANDOFF: "handoff database", HELPDESK: "helpdesk database"}

# Tracker events that matter here.
OFFER_ACTION = "action_offer_handoff"
HANDOFF_ACTION = "action_handoff"
DECLINE_ACTION = "action_decline_handoff"
#: Offer responses that no trigger names: the fallback offer and the re-worded second offer.
EXTRA_OFFER_RESPONSES = ("utter_offer_handoff_complex", "utter_offer_handoff_again")
SESSION_BOUNDARIES = ("session_started", "restart")
PAUSE = "pause"
EXTERNAL_PREFIX = "EXTERNAL"

# End causes reported on their own (handoff.lifecycle.EndCause).
CUSTOMER_LEFT = "customer_left"
NO_AGENT_TIMEOUT = "no_agent_timeout"
NO_AGENT_AVAILABLE = "no_agent_available"
OUT_OF_HOURS = "out_of_hours"

#: Wrap-up reasons that say the bot could have answered.
FALSE_HANDOFF_WHY = ("bot_misunderstood", "missing_knowledge")
WRAP_UP_WHY = (
    "bot_misunderstood",
    "missing_knowledge",
    "policy_needs_person",
    "customer_preference",
    "technical_failure",
    "other",
)

# The tables, as SQLAlchemy Core sees them: only the columns read here. The helpdesk's own
# models are not imported (the core does not depend on the helpdesk).
EVENTS = sa.table(
    "events",
    sa.column("id", sa.Integer),
    sa.column("sender_id", sa.String),
    sa.column("type_name", sa.String),
    sa.column("timestamp", sa.Float),
    sa.column("intent_name", sa.String),
    sa.column("action_name", sa.String),
    sa.column("data", sa.Text),
)
HANDOFFS = sa.table(
    "handoffs",
    sa.column("id", sa.String),
    sa.column("conversation_id", sa.String),
    sa.column("reason", sa.String),
    sa.column("language", sa.String),
    sa.column("end_cause", sa.String),
    sa.column("created_at", sa.Float),
)
WRAPUPS = sa.table(
    "handoff_wrapups",
    sa.column("handoff_id", sa.String),
    sa.column("why", sa.String),
    sa.column("created_at", sa.Float),
)
TICKET_WRAPUPS = sa.table(
    "ticket_wrapups",
    sa.column("ticket_pk", sa.Integer),
    sa.column("why", sa.String),
    sa.column("created_at", sa.DateTime),
)
TICKETS = sa.table(
    "tickets",
    sa.column("id", sa.Integer),
    sa.column("handoff_id", sa.String),
    sa.column("reason", sa.String),
    sa.column("trigger", sa.JSON),
    sa.column("created_at", sa.DateTime),
    sa.column("joined_at", sa.DateTime),
)
FOLLOW_UPS = sa.table(
    "follow_ups",
    sa.column("state", sa.String),
    sa.column("due_at", sa.DateTime),
    sa.column("closed_at", sa.DateTime),
)


# --- the period --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """``[since, until)``, aware UTC datetimes."""

    since: datetime
    until: datetime

    @classmethod
    def last_days(cls, days: float = DEFAULT_DAYS, now: datetime | None = None) -> Period:
        until = _aware(now or datetime.now(timezone.utc))
        return cls(until - timedelta(days=days), until)

    @classmethod
    def between(cls, since: datetime | None, until: datetime | None, days: float = DEFAULT_DAYS, now: datetime | None = None) -> Period:
        """``since``/``until`` as given; a missing end is ``days`` from the other one (``until``
        defaults to now)."""
        if since is None and until is None:
            until = now or datetime.now(timezone.utc)
        if until is None:
            until = _aware(since) + timedelta(days=days)
        until = _aware(until)
        since = _aware(since) if since is not None else until - timedelta(days=days)
        if since >= until:
            raise ValueError(f"the period is empty: {since.isoformat()} is not before {until.isoformat()}")
        return cls(since, until)

    @property
    def start(self) -> float:
        return self.since.timestamp()

    @property
    def end(self) -> float:
        return self.until.timestamp()

    @property
    def naive_since(self) -> datetime:
        return self.since.replace(tzinfo=None)

    @property
    def naive_until(self) -> datetime:
        return self.until.replace(tzinfo=None)

    def days(self) -> list[date]:
        """Every UTC day the period touches."""
        first, last = self.since.date(), (self.until - timedelta(microseconds=1)).date()
        return [first + timedelta(days=n) for n in range((last - first).days + 1)]

    def label(self) -> str:
        return f"{self.since:%Y-%m-%d %H:%M} – {self.until:%Y-%m-%d %H:%M} UTC"


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def _per_day(timestamps: Iterable[float], period: Period) -> Counter:
    """How many of ``timestamps`` fall on each UTC day (Unix time counts 86,400 s a day)."""
    first = period.days()[0]
    origin = datetime(first.year, first.month, first.day, tzinfo=timezone.utc).timestamp()
    counts = Counter(int((t - origin) // DAY) for t in timestamps)
    return Counter({first + timedelta(days=n): c for n, c in counts.items()})


# --- the figures -------------------------------------------------------------------------------


@dataclass
class Rate:
    """Handoffs of one reason, intent or language per 100 conversations."""

    key: str
    handoffs: int
    conversations: int | None
    per_100: float | None


@dataclass
class DayCount:
    day: date
    conversations: int | None
    handoffs: int | None


@dataclass
class Offers:
    made: int = 0
    accepted: int = 0
    declined: int = 0
    said_no: int = 0
    no_handoff: int = 0

    @property
    def accepted_percent(self) -> float | None:
        return _percent(self.accepted, self.made)


@dataclass
class TimeToAgent:
    tickets: int
    joined: int
    p50_seconds: float | None
    p95_seconds: float | None


@dataclass
class FollowUps:
    due: int = 0
    done_in_time: int = 0
    done_late: int = 0
    not_reached: int = 0
    open: int = 0

    @property
    def in_time_percent(self) -> float | None:
        return _percent(self.done_in_time, self.due)


@dataclass
class WrapUps:
    total: int = 0
    false_handoffs: int = 0
    by_why: dict[str, int] = field(default_factory=dict)

    @property
    def false_percent(self) -> float | None:
        return _percent(self.false_handoffs, self.total)


@dataclass
class Containment:
    conversations: int
    without_handoff: int

    @property
    def percent(self) -> float | None:
        return _percent(self.without_handoff, self.conversations)


@dataclass
class Report:
    """Every figure of one period; ``None`` where a database was missing (see ``unavailable``)."""

    period: Period
    sources: dict[str, str] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    conversations: int | None = None
    handoffs: int | None = None
    per_day: list[DayCount] = field(default_factory=list)
    handoff_rate: float | None = None
    by_reason: list[Rate] | None = None
    by_intent: list[Rate] | None = None
    by_language: list[Rate] | None = None
    offers: Offers | None = None
    time_to_agent: TimeToAgent | None = None
    end_causes: dict[str, int] | None = None
    follow_ups: FollowUps | None = None
    wrap_ups: WrapUps = field(default_factory=WrapUps)
    containment: Containment | None = None

    @property
    def gave_up(self) -> int | None:
        return None if self.end_causes is None else self.end_causes.get(CUSTOMER_LEFT, 0)

    @property
    def no_agent_timeouts(self) -> int | None:
        return None if self.end_causes is None else self.end_causes.get(NO_AGENT_TIMEOUT, 0)

    @property
    def no_agent_available(self) -> int | None:
        return None if self.end_causes is None else self.end_causes.get(NO_AGENT_AVAILABLE, 0)

    @property
    def out_of_hours(self) -> int | None:
        return None if self.end_causes is None else self.end_causes.get(OUT_OF_HOURS, 0)

    def rows(self) -> list[tuple[str, str, Any]]:
        """Every figure as ``(figure, key, value)``, the long format of the CSV; an unavailable
        figure is one row with value ``unavailable``."""
        out: list[tuple[str, str, Any]] = [
            ("period", "since", self.period.since.isoformat()),
            ("period", "until", self.period.until.isoformat()),
        ]
        for name in (TRACKER, HANDOFF, HELPDESK):
            out.append(("source", name, self.sources.get(name, "unavailable")))

        def scalar(figure: str, key: str, value: Any) -> None:
            out.append((figure, key, "unavailable" if value is None else _plain(value)))

        scalar("conversations", "total", self.conversations)
        scalar("handoffs", "total", self.handoffs)
        scalar("handoff_rate", "per_100_conversations", self.handoff_rate)
        for day in self.per_day:
            scalar("conversations_per_day", day.day.isoformat(), day.conversations)
            scalar("handoffs_per_day", day.day.isoformat(), day.handoffs)
        for figure, rates in (
            ("handoff_rate_by_reason", self.by_reason),
            ("handoff_rate_by_intent", self.by_intent),
            ("handoff_rate_by_language", self.by_language),
        ):
            if rates is None:
                scalar(figure, "all", None)
                continue
            for rate in rates:
                scalar(figure, rate.key, rate.per_100)
                scalar(figure.replace("handoff_rate", "handoffs"), rate.key, rate.handoffs)
        if self.offers is None:
            scalar("offers", "made", None)
        else:
            for key in ("made", "accepted", "declined", "said_no", "no_handoff"):
                scalar("offers", key, getattr(self.offers, key))
            scalar("offers", "accepted_percent", self.offers.accepted_percent)
        if self.time_to_agent is None:
            scalar("time_to_agent", "p50_seconds", None)
        else:
            t = self.time_to_agent
            scalar("time_to_agent", "tickets", t.tickets)
            scalar("time_to_agent", "joined", t.joined)
            scalar("time_to_agent", "p50_seconds", t.p50_seconds)
            scalar("time_to_agent", "p95_seconds", t.p95_seconds)
        scalar("gave_up", "customer_left", self.gave_up)
        scalar("no_agent", NO_AGENT_TIMEOUT, self.no_agent_timeouts)
        scalar("no_agent", NO_AGENT_AVAILABLE, self.no_agent_available)
        scalar("no_agent", OUT_OF_HOURS, self.out_of_hours)
        for cause, count in sorted((self.end_causes or {}).items()):
            scalar("end_cause", cause, count)
        if self.follow_ups is None:
            scalar("follow_ups", "due", None)
        else:
            f = self.follow_ups
            for key in ("due", "done_in_time", "done_late", "not_reached", "open"):
                scalar("follow_ups", key, getattr(f, key))
            scalar("follow_ups", "in_time_percent", f.in_time_percent)
        w = self.wrap_ups
        wrap_missing = "wrap_ups" in self.unavailable
        scalar("wrap_ups", "total", w.total)
        scalar("wrap_ups", "false_handoffs", None if wrap_missing else w.false_handoffs)
        scalar("wrap_ups", "false_percent", None if wrap_missing else w.false_percent)
        for why, count in sorted(w.by_why.items()):
            scalar("wrap_ups_by_why", why, count)
        if self.containment is None:
            scalar("containment", "percent", None)
        else:
            c = self.containment
            scalar("containment", "conversations", c.conversations)
            scalar("containment", "without_handoff", c.without_handoff)
            scalar("containment", "percent", c.percent)
        for figure, why in sorted(self.unavailable.items()):
            out.append(("unavailable", figure, why))
        return out

    def as_dict(self) -> dict[str, Any]:
        """Plain data (JSON-ready apart from dates)."""
        data = asdict(self)
        data["period"] = {"since": self.period.since.isoformat(), "until": self.period.until.isoformat()}
        return data


def _percent(part: int, whole: int | None) -> float | None:
    return None if not whole else round(100.0 * part / whole, 2)


def _plain(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 2)
    return value


def percentile(sorted_values: list[float], p: float) -> float | None:
    """Nearest rank: the value at rank ``ceil(p/100 * n)`` of ``sorted_values`` (ascending)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


# --- where the databases are --------------------------------------------------------------------

def tracker_store_url(endpoints: Path | None = None) -> str:
    """The database URL of the SQL tracker store (:func:`handoff.databases.tracker_store_url`);
    :class:`SettingsError` when the endpoints configure none."""
    url = databases.tracker_store_url(endpoints)
    if url is None:
        where = endpoints or databases.default_endpoints()
        raise SettingsError(f"{where} configures no SQL tracker store: conversations are not in a database")
    return url


shown_url = databases.shown
missing_sqlite_file = databases.missing_sqlite_file


def open_engine(url: sa.engine.URL | str | None) -> tuple[sa.engine.Engine | None, str | None]:
    """An engine for ``url``, or ``(None, why)`` when there is nothing to read there."""
    if url is None:
        return None, "not configured"
    if missing_sqlite_file(url):
        return None, f"{shown_url(url)} does not exist"
    from handoff.store import create_db_engine

    return create_db_engine(url), None


# --- computing ----------------------------------------------------------------------------------


def offer_actions(rules: Any = None) -> set[str]:
    """The actions that make an offer of a person: ``action_offer_handoff`` and every offer or
    confirming response of handoff_rules.yml (``rules``: a :class:`handoff.triggers.HandoffRules`,
    default the project's)."""
    if rules is None:
        from handoff.triggers import load_rules

        rules = load_rules()
    names = {OFFER_ACTION, *EXTRA_OFFER_RESPONSES}
    for trigger in rules.triggers.values():
        names.update(n for n in (trigger.offer_response, trigger.confirm_response) if n)
    return names


def _default_language(rules: Any) -> str:
    language = getattr(rules, "language", None)
    return getattr(language, "default", None) or "en"


def _has_table(engine: sa.engine.Engine, name: str) -> bool:
    return sa.inspect(engine).has_table(name)


def compute(
    period: Period | None = None,
    *,
    handoff_engine: sa.engine.Engine | None = None,
    helpdesk_engine: sa.engine.Engine | None = None,
    tracker_engine: sa.engine.Engine | None = None,
    rules: Any = None,
    missing: dict[str, str] | None = None,
) -> Report:
    """Every figure for ``period`` (default: the last 30 days) from the engines given.

    ``missing`` says why a source is not given (shown in :attr:`Report.unavailable`);
    ``rules`` is the :class:`handoff.triggers.HandoffRules` that names the offers (default the
    project's handoff_rules.yml). Read-only: nothing is created or changed.
    """
    period = period or Period.last_days()
    if rules is None:
        from handoff.triggers import load_rules

        rules = load_rules()
    missing = dict(missing or {})
    report = Report(period)
    engines = {TRACKER: tracker_engine, HANDOFF: handoff_engine, HELPDESK: helpdesk_engine}
    tables = {TRACKER: ("events",), HANDOFF: ("handoffs",), HELPDESK: ("tickets",)}
    for name, engine in engines.items():
        if engine is None:
            missing.setdefault(name, "not configured")
            continue
        absent = [t for t in tables[name] if not _has_table(engine, t)]
        if absent:
            missing[name] = f"{shown_url(engine.url)} has no table {', '.join(absent)}"
            engines[name] = None
            continue
        report.sources[name] = shown_url(engine.url)

    def unavailable(figure: str, *needed: str) -> bool:
        gone = [n for n in needed if engines[n] is None]
        if gone:
            report.unavailable[figure] = "; ".join(f"needs the {SOURCE_LABELS[n]} ({missing[n]})" for n in gone)
        return bool(gone)

    tracker, handoff, helpdesk = engines[TRACKER], engines[HANDOFF], engines[HELPDESK]

    conversations: dict[str, float] | None = None
    languages: dict[str, str] | None = None
    if tracker is not None:
        conversations, languages, report.offers = _tracker_pass(
            tracker, period, offer_actions(rules), _default_language(rules)
        )
        report.conversations = len(conversations)
    else:
        unavailable("conversations", TRACKER)
        unavailable("offers", TRACKER)

    handoff_rows: list[tuple[str, str, str, float]] | None = None
    if handoff is not None:
        handoff_rows, grouped = _handoffs(handoff, period)
        report.handoffs = len(handoff_rows)
        causes: Counter = Counter()
        for (_reason, _language, cause), count in grouped.items():
            causes[cause or "open"] += count
        report.end_causes = dict(causes)
    else:
        for figure in ("handoffs", "end_causes"):
            unavailable(figure, HANDOFF)
    report.wrap_ups = _wrap_ups(handoff, helpdesk, period, report)

    ticket_intents: dict[str, str] = {}
    if helpdesk is not None:
        report.time_to_agent = _time_to_agent(helpdesk, period)
        ticket_intents = _ticket_intents(helpdesk, period)
        if _has_table(helpdesk, "follow_ups"):
            report.follow_ups = _follow_ups(helpdesk, period)
        else:
            report.unavailable["follow_ups"] = f"{shown_url(helpdesk.url)} has no table follow_ups"
    else:
        unavailable("time_to_agent", HELPDESK)
        unavailable("follow_ups", HELPDESK)

    # Per day.
    conv_days = _per_day(conversations.values(), period) if conversations is not None else None
    handoff_days = _per_day((row[3] for row in handoff_rows), period) if handoff_rows is not None else None
    report.per_day = [
        DayCount(
            day,
            None if conv_days is None else conv_days.get(day, 0),
            None if handoff_days is None else handoff_days.get(day, 0),
        )
        for day in period.days()
    ]

    # Rates: handoffs (handoff database) per 100 conversations (tracker store).
    if handoff_rows is not None:
        total = len(conversations) if conversations is not None else None
        report.handoff_rate = _per_100(len(handoff_rows), total)
        reasons = Counter(row[1] for row in handoff_rows)
        intents = Counter(ticket_intents.get(row[0]) or f"{row[1]} (reason)" for row in handoff_rows)
        handoff_languages = Counter(row[2] for row in handoff_rows)
        report.by_reason = _rates(reasons, lambda _key: total)
        report.by_intent = _rates(intents, lambda _key: total)
        if languages is not None:
            per_language = Counter(languages.values())
            keys = Counter({**{k: 0 for k in per_language}, **handoff_languages})
            report.by_language = _rates(keys, lambda key: per_language.get(key, 0))
        else:
            report.by_language = _rates(handoff_languages, lambda _key: None)
        if helpdesk is None:
            report.unavailable["trigger_intents"] = (
                f"the ticket's trigger intent needs the {SOURCE_LABELS[HELPDESK]} ({missing[HELPDESK]}): "
                "every handoff is listed under its reason"
            )
        if conversations is None:
            unavailable("handoff_rate", TRACKER)
            unavailable("containment", TRACKER)
        else:
            with_handoff = {row[4] for row in handoff_rows} & conversations.keys()
            report.containment = Containment(len(conversations), len(conversations) - len(with_handoff))
    else:
        unavailable("handoff_rate", HANDOFF)
        if conversations is not None:
            unavailable("containment", HANDOFF)
        else:
            unavailable("containment", TRACKER, HANDOFF)
    return report


def _per_100(count: int, total: int | None) -> float | None:
    return None if not total else round(100.0 * count / total, 2)


def _rates(counts: Counter, conversations_of: Any) -> list[Rate]:
    rates = []
    for key, count in counts.items():
        total = conversations_of(key)
        rates.append(Rate(str(key), count, total, _per_100(count, total)))
    rates.sort(key=lambda r: (-r.handoffs, r.key))
    return rates


def _customer_message(e: Any) -> Any:
    return sa.and_(
        e.type_name == "user",
        sa.or_(e.intent_name.is_(None), sa.not_(e.intent_name.like(f"{EXTERNAL_PREFIX}%"))),
    )


def _fetch(connection: sa.engine.Connection, query: Any) -> list[tuple]:
    """All rows of ``query`` as plain tuples, through the driver's cursor: hundreds of thousands of
    rows are read here, and SQLAlchemy's row objects would cost more than the query."""
    compiled = query.compile(dialect=connection.dialect, compile_kwargs={"render_postcompile": True})
    params: Any = compiled.params
    if compiled.positional:
        params = tuple(params[name] for name in compiled.positiontup)
    cursor = connection.connection.cursor()
    try:
        cursor.execute(str(compiled), params)
        return cursor.fetchall()
    finally:
        cursor.close()


def _tracker_pass(
    engine: sa.engine.Engine, period: Period, offers: set[str], default_language: str
) -> tuple[dict[str, float], dict[str, str], Offers]:
    """The conversations of the period (with their first customer message), their languages and
    the offers: one sequential pass over the events that returns only the customer messages of
    the period, the ``language`` slot events and the offers of the period (no JSON is read but a
    language slot's), then the offered conversations' events looked up by the sender index."""
    e = EVENTS.c
    in_period = sa.and_(e.timestamp >= period.start, e.timestamp < period.end)
    is_language = sa.and_(e.type_name == "slot", e.action_name == "language")
    is_offer = sa.and_(e.type_name == "action", e.action_name.in_(sorted(offers)))
    query = sa.select(
        e.sender_id, e.type_name, e.timestamp, e.id, sa.case((is_language, e.data), else_=sa.null())
    ).where(
        e.timestamp < period.end,
        sa.or_(
            sa.and_(_customer_message(e), in_period),
            is_language,
            sa.and_(is_offer, in_period),
        ),
    )
    conversations: dict[str, float] = {}
    offered: set[str] = set()
    latest_language: dict[str, tuple[float, int, str | None]] = {}
    with engine.connect() as connection:
        for sender, type_name, timestamp, event_id, data in _fetch(connection, query):
            if type_name == "user":
                moment = float(timestamp)
                if moment < conversations.get(sender, math.inf):
                    conversations[sender] = moment
            elif type_name == "slot":
                key = (float(timestamp or 0), int(event_id))
                known = latest_language.get(sender)
                if known is None or key > known[:2]:
                    latest_language[sender] = (*key, data)
            else:
                offered.add(sender)
    languages = {}
    for sender in conversations:
        value = None
        if sender in latest_language:
            try:
                value = json.loads(latest_language[sender][2] or "{}").get("value")
            except (ValueError, AttributeError):
                value = None
        languages[sender] = str(value) if value else default_language
    return conversations, languages, _offers(engine, period, offers, sorted(offered))


def _offers(engine: sa.engine.Engine, period: Period, offers: set[str], senders: list[str] | None = None) -> Offers:
    """Offers made in the period and how each was answered (see the module docstring)."""
    e = EVENTS.c
    offered = (
        sa.select(e.sender_id)
        .where(e.type_name == "action", e.action_name.in_(sorted(offers)), e.timestamp >= period.start, e.timestamp < period.end)
        .distinct()
    )
    wanted = sa.or_(
        sa.and_(e.type_name == "action", e.action_name.in_(sorted(offers | {HANDOFF_ACTION, DECLINE_ACTION}))),
        e.type_name.in_((PAUSE, *SESSION_BOUNDARIES)),
    )
    columns = (e.sender_id, e.id, e.type_name, e.action_name, e.timestamp)
    if senders is None:
        queries = [sa.select(*columns).where(e.sender_id.in_(offered), wanted)]
    else:
        # The senders with an offer in the period, known already: looked up by the sender index.
        queries = [sa.select(*columns).where(e.sender_id.in_(senders[i : i + 500]), wanted) for i in range(0, len(senders), 500)]
    by_sender: dict[str, list[tuple[int, str, str | None, float | None]]] = defaultdict(list)
    with engine.connect() as connection:
        for markers in queries:
            for sender, event_id, type_name, action_name, timestamp in _fetch(connection, markers):
                by_sender[sender].append((int(event_id), type_name, action_name, timestamp))
    result = Offers()

    def settle(offer: dict[str, Any] | None, outcome: str) -> None:
        if offer is None or not offer["counted"]:
            return
        result.made += 1
        if outcome == "accepted":
            result.accepted += 1
        else:
            result.declined += 1
            if outcome == "said_no":
                result.said_no += 1
            else:
                result.no_handoff += 1

    for events in by_sender.values():
        events.sort()
        open_offer: dict[str, Any] | None = None
        for _event_id, type_name, action_name, timestamp in events:
            if type_name == "action" and action_name in offers:
                settle(open_offer, "no_handoff")
                ts = float(timestamp or 0)
                open_offer = {"counted": period.start <= ts < period.end}
            elif type_name in SESSION_BOUNDARIES:
                settle(open_offer, "no_handoff")
                open_offer = None
            elif open_offer is None:
                continue
            elif type_name == PAUSE or action_name == HANDOFF_ACTION:
                settle(open_offer, "accepted")
                open_offer = None
            elif action_name == DECLINE_ACTION:
                settle(open_offer, "said_no")
                open_offer = None
        settle(open_offer, "no_handoff")
    return result


def _handoffs(engine: sa.engine.Engine, period: Period) -> tuple[list[tuple[str, str, str, float, str]], dict[tuple, int]]:
    """The handoffs of the period (id, reason, language, created_at, conversation_id) and their
    counts by (reason, language, end cause)."""
    h = HANDOFFS.c
    in_period = sa.and_(h.created_at >= period.start, h.created_at < period.end)
    rows_query = sa.select(h.id, h.reason, h.language, h.created_at, h.conversation_id).where(in_period)
    grouped_query = (
        sa.select(h.reason, h.language, h.end_cause, sa.func.count())
        .where(in_period)
        .group_by(h.reason, h.language, h.end_cause)
    )
    with engine.connect() as connection:
        rows = [(i, r, lang, float(c), conv) for i, r, lang, c, conv in connection.execute(rows_query)]
        grouped = {(r, lang, cause): n for r, lang, cause, n in connection.execute(grouped_query)}
    return rows, grouped


def _wrap_ups(handoff: sa.engine.Engine | None, helpdesk: sa.engine.Engine | None, period: Period, report: Report) -> WrapUps:
    """Wrap-ups created in the period, one per handoff: the handoff database's (sent with the
    hand-back), and the helpdesk's ``ticket_wrapups`` of handoffs it has no wrap-up of (recorded
    for a ticket the assistant ended)."""
    why_of: dict[str, str] = {}
    found = []
    if helpdesk is not None and _has_table(helpdesk, "ticket_wrapups"):
        w, t = TICKET_WRAPUPS.c, TICKETS.c
        query = (
            sa.select(t.handoff_id, w.why)
            .select_from(TICKET_WRAPUPS.join(TICKETS, t.id == w.ticket_pk))
            .where(w.created_at >= period.naive_since, w.created_at < period.naive_until)
        )
        with helpdesk.connect() as connection:
            why_of.update({str(h): str(why) for h, why in connection.execute(query)})
        found.append("ticket_wrapups")
    if handoff is not None and _has_table(handoff, "handoff_wrapups"):
        w = WRAPUPS.c
        query = sa.select(w.handoff_id, w.why).where(w.created_at >= period.start, w.created_at < period.end)
        with handoff.connect() as connection:
            why_of.update({str(h): str(why) for h, why in connection.execute(query)})
        found.append("handoff_wrapups")
    if not found:
        where = [shown_url(e.url) for e in (handoff, helpdesk) if e is not None]
        report.unavailable["wrap_ups"] = (
            f"no wrap-up table (handoff_wrapups, ticket_wrapups) in {' or '.join(where)} yet: 0 wrap-ups"
            if where
            else "needs the handoff database or the helpdesk database: 0 wrap-ups"
        )
    by_why = dict(Counter(why_of.values()))
    return WrapUps(
        total=len(why_of),
        false_handoffs=sum(n for why, n in by_why.items() if why in FALSE_HANDOFF_WHY),
        by_why=by_why,
    )


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def _time_to_agent(engine: sa.engine.Engine, period: Period) -> TimeToAgent:
    t = TICKETS.c
    in_period = sa.and_(t.created_at >= period.naive_since, t.created_at < period.naive_until)
    with engine.connect() as connection:
        total = connection.execute(sa.select(sa.func.count()).select_from(TICKETS).where(in_period)).scalar_one()
        pairs = connection.execute(
            sa.select(t.created_at, t.joined_at).where(in_period, t.joined_at.is_not(None))
        ).all()
    waits = sorted(max(0.0, (_as_datetime(j) - _as_datetime(c)).total_seconds()) for c, j in pairs)
    return TimeToAgent(total, len(waits), percentile(waits, 50), percentile(waits, 95))


def _ticket_intents(engine: sa.engine.Engine, period: Period) -> dict[str, str]:
    """The trigger intent of each ticket around the period (a ticket is made seconds after its
    handoff), by handoff id; tickets without one are left out."""
    t = TICKETS.c
    intent = t.trigger["intent"].as_string()
    query = sa.select(t.handoff_id, intent).where(
        t.created_at >= period.naive_since - timedelta(days=1),
        t.created_at < period.naive_until + timedelta(days=1),
        intent.is_not(None),
    )
    with engine.connect() as connection:
        return {handoff_id: str(name) for handoff_id, name in connection.execute(query) if name}


def _follow_ups(engine: sa.engine.Engine, period: Period) -> FollowUps:
    f = FOLLOW_UPS.c
    in_time = sa.case((sa.and_(f.closed_at.is_not(None), f.closed_at <= f.due_at), 1), else_=0)
    query = (
        sa.select(f.state, in_time, sa.func.count())
        .where(f.due_at >= period.naive_since, f.due_at < period.naive_until)
        .group_by(f.state, in_time)
    )
    result = FollowUps()
    with engine.connect() as connection:
        for state, timely, count in connection.execute(query):
            result.due += count
            if state == "done":
                if timely:
                    result.done_in_time += count
                else:
                    result.done_late += count
            elif state == "not_reached":
                result.not_reached += count
            else:
                result.open += count
    return result


def summary_lines(report: Report) -> Iterable[str]:
    """A few lines for a terminal."""

    def show(value: Any, unit: str = "") -> str:
        return "unavailable" if value is None else f"{value}{unit}"

    yield f"Period: {report.period.label()}"
    yield f"Conversations: {show(report.conversations)}; handoffs: {show(report.handoffs)}; per 100 conversations: {show(report.handoff_rate)}"
    if report.offers is not None:
        o = report.offers
        yield f"Offers: {o.made} made, {o.accepted} accepted, {o.declined} declined ({o.said_no} said no)"
    if report.time_to_agent is not None:
        t = report.time_to_agent
        yield f"Time to an agent: p50 {_duration(t.p50_seconds)}, p95 {_duration(t.p95_seconds)} ({t.joined} of {t.tickets} tickets joined)"
    yield f"Gave up: {show(report.gave_up)}; no-agent timeouts: {show(report.no_agent_timeouts)}; nobody available: {show(report.no_agent_available)}; out of hours: {show(report.out_of_hours)}"
    if report.containment is not None:
        yield f"Containment: {show(report.containment.percent, ' %')}"
    for figure, why in sorted(report.unavailable.items()):
        yield f"  unavailable: {figure}: {why}"


# --- opening the databases ----------------------------------------------------------------------


def find_tracker_url(endpoints: Path | None = None) -> tuple[sa.engine.URL | str | None, str | None]:
    """The tracker store's URL from ``endpoints`` (default the project's endpoints.yml), or
    ``(None, why)`` when it names no SQL tracker store."""
    try:
        return tracker_store_url(endpoints), None
    except SettingsError as exc:
        return None, str(exc)


def readable(engine: sa.engine.Engine) -> str | None:
    """None when ``engine`` can be connected to, else why not (one line)."""
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as exc:
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        return f"{type(exc).__name__}: {first[0] if first else ''}"
    return None


@dataclass
class Sources:
    """The three databases' engines (None: not there) and why each missing one is missing."""

    engines: dict[str, sa.engine.Engine | None] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)

    def close(self) -> None:
        for engine in self.engines.values():
            if engine is not None:
                engine.dispose()


def open_sources(urls: dict[str, sa.engine.URL | str | None], reasons: dict[str, str] | None = None) -> Sources:
    """Engines for ``{"tracker": url, "handoff": url, "helpdesk": url}``; a URL that is None or a
    SQLite file that does not exist gives no engine (``reasons`` may say why a URL is None)."""
    sources = Sources()
    for name in (TRACKER, HANDOFF, HELPDESK):
        url = urls.get(name)
        if url is not None:
            sources.urls[name] = shown_url(url)
        engine, why = open_engine(url)
        sources.engines[name] = engine
        if engine is None:
            sources.missing[name] = (reasons or {}).get(name) or why or "not configured"
    return sources


def compute_from(sources: Sources, period: Period | None = None, rules: Any = None) -> Report:
    return compute(
        period,
        tracker_engine=sources.engines.get(TRACKER),
        handoff_engine=sources.engines.get(HANDOFF),
        helpdesk_engine=sources.engines.get(HELPDESK),
        rules=rules,
        missing=sources.missing,
    )


# --- plots --------------------------------------------------------------------------------------


def plots(report: Report) -> dict[str, bytes]:
    """PNG images of the report's main figures (matplotlib, Agg), by name; a figure that is
    unavailable or empty has no plot."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    images: dict[str, bytes] = {}

    def save(name: str, fig: Any) -> None:
        buffer = io.BytesIO()
        fig.tight_layout()
        fig.savefig(buffer, format="png", dpi=96)
        plt.close(fig)
        images[name] = buffer.getvalue()

    days = [d.day for d in report.per_day]
    if days and (report.conversations is not None or report.handoffs is not None):
        fig, ax = plt.subplots(figsize=(8, 3))
        if report.conversations is not None:
            ax.plot(days, [d.conversations for d in report.per_day], marker="o", label="conversations")
        if report.handoffs is not None:
            ax.plot(days, [d.handoffs for d in report.per_day], marker="o", label="handoffs")
        ax.set_title("Conversations and handoffs per day (UTC)")
        ax.legend()
        fig.autofmt_xdate()
        save("per_day", fig)

    for name, rates, title in (
        ("by_reason", report.by_reason, "Handoffs per 100 conversations, by reason"),
        ("by_intent", report.by_intent, "Handoffs per 100 conversations, by trigger intent"),
        ("by_language", report.by_language, "Handoffs per 100 conversations in the language"),
    ):
        shown = [r for r in rates or [] if r.per_100 is not None]
        if not shown:
            continue
        fig, ax = plt.subplots(figsize=(8, 0.5 + 0.35 * len(shown)))
        ax.barh([r.key for r in reversed(shown)], [r.per_100 for r in reversed(shown)], color="#4c72b0")
        ax.set_title(title)
        save(name, fig)

    if report.offers is not None and report.offers.made:
        o = report.offers
        fig, ax = plt.subplots(figsize=(6, 2.5))
        ax.barh(["no handoff", "said no", "accepted"], [o.no_handoff, o.said_no, o.accepted], color=["#999999", "#dd8452", "#55a868"])
        ax.set_title(f"Offers of a person: {o.made} made")
        save("offers", fig)

    if report.end_causes:
        causes = sorted(report.end_causes.items(), key=lambda item: -item[1])
        fig, ax = plt.subplots(figsize=(8, 0.5 + 0.35 * len(causes)))
        ax.barh([c for c, _ in reversed(causes)], [n for _, n in reversed(causes)], color="#8172b2")
        ax.set_title("How handoffs ended")
        save("end_causes", fig)
    return images


# --- tables for people ---------------------------------------------------------------------------


@dataclass
class Section:
    """One table of the report as people read it (the HTML report and the console's page)."""

    key: str
    title: str
    note: str
    headers: list[str]
    rows: list[list[Any]]
    unavailable: str | None = None


def _shown(value: Any, unit: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:g}{unit}"
    return f"{value}{unit}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 120:
        return f"{round(seconds, 1):g} s"
    return f"{seconds / 60:.1f} min"


def sections(report: Report) -> list[Section]:
    """Every figure of ``report`` as tables, in the order of docs/REPORTS.md."""
    u = report.unavailable
    out: list[Section] = []
    c = report.containment
    out.append(
        Section(
            "summary",
            "Summary",
            "Conversations: senders with a customer message in the period. Containment: those without a handoff.",
            ["Figure", "Value"],
            [
                ["Conversations", _shown(report.conversations)],
                ["Handoffs", _shown(report.handoffs)],
                ["Handoffs per 100 conversations", _shown(report.handoff_rate)],
                ["Containment (never needed a person)", "—" if c is None else f"{_shown(c.percent, ' %')} ({c.without_handoff} of {c.conversations})"],
                ["Customers who gave up waiting", _shown(report.gave_up)],
                ["No agent joined in time", _shown(report.no_agent_timeouts)],
                ["Nobody available", _shown(report.no_agent_available)],
                ["Out of hours", _shown(report.out_of_hours)],
            ],
            "; ".join(f"{k}: {u[k]}" for k in ("conversations", "handoffs", "containment") if k in u) or None,
        )
    )
    out.append(
        Section(
            "per_day",
            "Conversations and handoffs per day",
            "UTC days; a conversation counts on the day of its first customer message in the period.",
            ["Day", "Conversations", "Handoffs"],
            [[d.day.isoformat(), _shown(d.conversations), _shown(d.handoffs)] for d in report.per_day],
        )
    )
    for key, rates, title, first, note in (
        ("by_reason", report.by_reason, "Handoff rate by reason", "Reason", "Handoffs of the reason per 100 conversations."),
        (
            "by_intent",
            report.by_intent,
            "Handoff rate by trigger intent",
            "Trigger intent",
            "The intent in the ticket's trigger, or the handoff's reason when there is none; per 100 conversations.",
        ),
        ("by_language", report.by_language, "Handoff rate by language", "Language", "Handoffs in the language per 100 conversations in that language."),
    ):
        why = u.get("handoffs") or (u.get("trigger_intents") if key == "by_intent" else None)
        out.append(
            Section(
                key,
                title,
                note,
                [first, "Handoffs", "Conversations", "Per 100 conversations"],
                [[r.key, r.handoffs, _shown(r.conversations), _shown(r.per_100)] for r in rates or []],
                why,
            )
        )
    o = report.offers
    out.append(
        Section(
            "offers",
            "Offers of a person",
            "Accepted: a handoff followed before the next offer or session. Declined: no handoff (said no, or ignored).",
            ["Offers", "Count"],
            []
            if o is None
            else [
                ["Made", o.made],
                ["Accepted", f"{o.accepted} ({_shown(o.accepted_percent, ' %')})"],
                ["Declined", o.declined],
                ["… said no", o.said_no],
                ["… no handoff otherwise", o.no_handoff],
            ],
            u.get("offers"),
        )
    )
    t = report.time_to_agent
    out.append(
        Section(
            "time_to_agent",
            "Time to an agent",
            "From the ticket's arrival to an agent joining, tickets of the period an agent joined (nearest rank).",
            ["Figure", "Value"],
            []
            if t is None
            else [["Tickets", t.tickets], ["Joined by an agent", t.joined], ["p50", _duration(t.p50_seconds)], ["p95", _duration(t.p95_seconds)]],
            u.get("time_to_agent"),
        )
    )
    out.append(
        Section(
            "end_causes",
            "How handoffs ended",
            "Handoffs of the period by end cause; open: not ended yet.",
            ["End cause", "Handoffs"],
            [[cause, n] for cause, n in sorted((report.end_causes or {}).items(), key=lambda i: (-i[1], i[0]))],
            u.get("end_causes"),
        )
    )
    f = report.follow_ups
    out.append(
        Section(
            "follow_ups",
            "Follow-ups",
            "Callbacks and email answers due in the period; in time: closed as done no later than due.",
            ["Follow-ups", "Count"],
            []
            if f is None
            else [
                ["Due", f.due],
                ["Done in time", f"{f.done_in_time} ({_shown(f.in_time_percent, ' %')})"],
                ["Done late", f.done_late],
                ["Not reached", f.not_reached],
                ["Still open", f.open],
            ],
            u.get("follow_ups"),
        )
    )
    w = report.wrap_ups
    out.append(
        Section(
            "wrap_ups",
            "Hand-backs: could the bot have answered?",
            "Agents' wrap-ups of the period; false handoffs: why is bot misunderstood or missing knowledge.",
            ["Wrap-ups", "Count"],
            [["Wrap-ups", w.total], ["Bot could have answered (false handoffs)", f"{w.false_handoffs} ({_shown(w.false_percent, ' %')})"]]
            + [[f"… {why.replace('_', ' ')}", n] for why, n in sorted(w.by_why.items(), key=lambda i: (-i[1], i[0]))],
            u.get("wrap_ups"),
        )
    )
    return out
