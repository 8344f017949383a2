"""The helpdesk's tables and database engine (SQLAlchemy 1.4).

The engine is made by :func:`create_engine_for` when the app starts, never at import time.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import declarative_base, relationship, sessionmaker
from sqlalchemy.pool import StaticPool

from handoff.triggers import PRIORITY_ORDER

Base = declarative_base()


# Ticket states. A ticket is "open" while waiting or assigned.
WAITING = "waiting"
ASSIGNED = "assigned"
CLOSED = "closed"

# Closure cause used when an agent hands the conversation back (the assistant's own causes come
# from handoff.ended).
HANDED_BACK = "handed_back"

# Agent presence. Only "available" agents (with a live session) count as able to take customers.
AVAILABLE = "available"
AWAY = "away"
OFFLINE = "offline"
PRESENCE_STATES = (AVAILABLE, AWAY, OFFLINE)

# The agent's wrap-up of a ticket (``wrap_up`` of agent.handback, docs/HANDOFF_CONTRACT.md): how it
# ended, and why a person was needed.
WRAP_UP_OUTCOMES = ("resolved", "needs_follow_up", "not_resolved")
BOT_MISUNDERSTOOD = "bot_misunderstood"
WRAP_UP_REASONS = (
    BOT_MISUNDERSTOOD,
    "missing_knowledge",
    "policy_needs_person",
    "customer_preference",
    "technical_failure",
    "other",
)


def utcnow() -> datetime:
    """Naive UTC now: SQLite keeps no time zone, so every stored time is UTC by convention."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def priority_rank(priority: str) -> int:
    """0 for urgent .. 3 for low; unknown priorities sort last."""
    try:
        return PRIORITY_ORDER.index(priority)
    except ValueError:
        return len(PRIORITY_ORDER)


class Ticket(Base):
    """One handoff as the agents see it; the whole handoff.requested payload is kept."""

    __tablename__ = "tickets"

    id = sa.Column(sa.Integer, primary_key=True, autoincrement=True)
    ticket_id = sa.Column(sa.String(32), nullable=False, unique=True)
    handoff_id = sa.Column(sa.String(36), nullable=False, unique=True)
    conversation_id = sa.Column(sa.String(255), nullable=False, index=True)

    reason = sa.Column(sa.String(64), nullable=False)
    reason_text = sa.Column(sa.Text, nullable=False, default="")
    priority = sa.Column(sa.String(16), nullable=False)
    priority_rank = sa.Column(sa.Integer, nullable=False)
    queue = sa.Column(sa.String(64), nullable=False)
    language = sa.Column(sa.String(8), nullable=False)
    customer = sa.Column(sa.JSON, nullable=False, default=dict)
    lead = sa.Column(sa.JSON, nullable=True)
    channel = sa.Column(sa.JSON, nullable=False, default=dict)
    trigger = sa.Column(sa.JSON, nullable=False, default=dict)
    transcript = sa.Column(sa.JSON, nullable=False, default=list)
    payload = sa.Column(sa.JSON, nullable=False)
    requested_at = sa.Column(sa.String(40), nullable=True)  # sent_at as the assistant wrote it

    state = sa.Column(sa.String(16), nullable=False, default=WAITING, index=True)
    agent_name = sa.Column(sa.String(200), nullable=True)
    created_at = sa.Column(sa.DateTime, nullable=False, default=utcnow)
    joined_at = sa.Column(sa.DateTime, nullable=True)
    closed_at = sa.Column(sa.DateTime, nullable=True)
    close_cause = sa.Column(sa.String(32), nullable=True)
    handback_note = sa.Column(sa.Text, nullable=True)

    entries = relationship(
        "TicketEntry",
        back_populates="ticket",
        order_by="TicketEntry.id",
        cascade="all, delete-orphan",
    )

    # Loaded with the ticket by TicketStore.get (only the ticket page shows it).
    wrap_up = relationship("TicketWrapUp", back_populates="ticket", uselist=False)

    @property
    def is_open(self) -> bool:
        return self.state != CLOSED


class TicketEntry(Base):
    """Something that happened after the handoff: a message or a change of state."""

    __tablename__ = "ticket_entries"

    id = sa.Column(sa.Integer, primary_key=True, autoincrement=True)
    ticket_pk = sa.Column(sa.Integer, sa.ForeignKey("tickets.id"), nullable=False, index=True)
    # customer / agent: a message (text); joined: author claimed the ticket (text: the colleague
    # they took it over from, if any); handback: author handed back (text: the note); ended: the
    # assistant ended the handoff (text: the cause); transfer: author moved the ticket to another
    # queue (text: JSON {"from": queue, "to": queue, "note": note}).
    kind = sa.Column(sa.String(16), nullable=False)
    author = sa.Column(sa.String(200), nullable=True)
    text = sa.Column(sa.Text, nullable=False, default="")
    timestamp = sa.Column(sa.String(40), nullable=True)  # as the sender wrote it, if any
    created_at = sa.Column(sa.DateTime, nullable=False, default=utcnow)

    ticket = relationship("Ticket", back_populates="entries")


class TicketWrapUp(Base):
    """The agent's wrap-up of a ticket, at most one: sent with the hand-back, or recorded here
    only for a ticket the assistant ended. ``intent`` (the intent the customer's message should
    have been) and ``new_topic`` only go with why ``bot_misunderstood``."""

    __tablename__ = "ticket_wrapups"

    id = sa.Column(sa.Integer, primary_key=True, autoincrement=True)
    ticket_pk = sa.Column(
        sa.Integer, sa.ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False, unique=True
    )
    outcome = sa.Column(sa.String(32), nullable=False)
    why = sa.Column(sa.String(32), nullable=False)
    intent = sa.Column(sa.String(255), nullable=True)
    new_topic = sa.Column(sa.Boolean, nullable=False, default=False)
    note = sa.Column(sa.Text, nullable=True)
    author = sa.Column(sa.String(200), nullable=True)
    created_at = sa.Column(sa.DateTime, nullable=False, default=utcnow)

    ticket = relationship("Ticket", back_populates="wrap_up")

    def as_wrap_up(self) -> dict:
        """The ``wrap_up`` object of agent.handback."""
        return {
            "outcome": self.outcome,
            "why": self.why,
            "intent": self.intent,
            "new_topic": bool(self.new_topic),
        }


class ProcessedEvent(Base):
    """Webhook deliveries already handled, with the answer given, so a retry gets the same answer."""

    __tablename__ = "processed_events"

    event_id = sa.Column(sa.String(36), primary_key=True)
    event = sa.Column(sa.String(64), nullable=False)
    handoff_id = sa.Column(sa.String(36), nullable=False)
    status = sa.Column(sa.Integer, nullable=False)
    response = sa.Column(sa.Text, nullable=False)
    received_at = sa.Column(sa.DateTime, nullable=False, default=utcnow)


class AgentSession(Base):
    """One agent sign-in. The browser's cookie holds a random token; only its SHA-256 is stored, so
    the table cannot be replayed as cookies. A row is valid until ``expires_at``, while used within
    the idle timeout (``last_seen_at``), while ``revoked_at`` is empty and while ``fingerprint``
    still matches the agent's current password (see :mod:`helpdesk.sessions`).
    """

    __tablename__ = "agent_sessions"

    token_hash = sa.Column(sa.String(64), primary_key=True)  # hex SHA-256 of the cookie's token
    login = sa.Column(sa.String(64), nullable=False, index=True)
    fingerprint = sa.Column(sa.String(64), nullable=False)
    created_at = sa.Column(sa.DateTime, nullable=False, default=utcnow)
    last_seen_at = sa.Column(sa.DateTime, nullable=False, default=utcnow, index=True)
    expires_at = sa.Column(sa.DateTime, nullable=False, index=True)
    revoked_at = sa.Column(sa.DateTime, nullable=True)


class AgentPresence(Base):
    """What an agent chose to be: available, away or offline. No row means offline.

    Being signed in is not being available: an agent counts as available only with status
    ``available`` and a live session in ``agent_sessions`` (see :meth:`TicketStore.count_available`).
    """

    __tablename__ = "agent_presence"

    login = sa.Column(sa.String(64), primary_key=True)  # lower case, as in agent_sessions
    status = sa.Column(sa.String(16), nullable=False, default=OFFLINE)
    changed_at = sa.Column(sa.DateTime, nullable=False, default=utcnow)


def create_engine_for(database_url: str) -> Engine:
    """An engine for ``database_url``; for SQLite: usable from worker threads, WAL, busy timeout."""
    url = make_url(database_url)
    if not url.drivername.startswith("sqlite"):
        return sa.create_engine(database_url, future=True, pool_pre_ping=True)

    kwargs: dict = {"connect_args": {"check_same_thread": False, "timeout": 30}}
    in_memory = url.database in (None, "", ":memory:")
    if in_memory:
        # One shared connection, or every thread would see its own empty database.
        kwargs["poolclass"] = StaticPool
    else:
        Path(url.database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(database_url, future=True, **kwargs)

    @sa.event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine


def init_database(engine: Engine) -> sessionmaker:
    """Create missing tables and return a session factory bound to ``engine``."""
    Base.metadata.create_all(engine)
    return sessionmaker(bind=engine, future=True, expire_on_commit=False)
