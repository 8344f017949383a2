"""Handoff records, the delivery outbox and the log of processed helpdesk events (SQLAlchemy 1.4).

One database is shared by the action server (which creates handoffs) and the Rasa server (which
relays customer messages, takes helpdesk events and runs the outbox worker): a SQLite file by
default, PostgreSQL by URL in production. Nothing connects at import time.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, declarative_base, sessionmaker

from handoff.privacy import Customer, chunks, identifiers, like_any
from handoff.triggers import PRIORITY_ORDER

Base = declarative_base()

# Handoff states.
REQUESTED = "requested"  # recorded; waiting for an agent
ASSIGNED = "assigned"  # an agent joined
ENDED = "ended"  # handed back or ended by the assistant
ACTIVE_STATES = (REQUESTED, ASSIGNED)

# End causes stored under an older spelling, and today's (handoff.lifecycle.EndCause). The agent's
# hand-back was "handback" here and is "handed_back" everywhere now, as in the helpdesk's tickets;
# old rows are rewritten when a store opens the database.
RENAMED_END_CAUSES = {"handback": "handed_back"}

# Scheduled task kinds (see handoff/server/tasks.py, which runs them in the Rasa server).
TASK_NO_AGENT = "no_agent_timeout"  # nobody joined in time: the bot takes the conversation back
TASK_WAIT_UPDATE = "wait_update"  # tell a waiting customer how it goes
TASK_RESUME = "resume"  # the handoff ended without the helpdesk (customer_left): the bot takes over
TASK_FOLLOW_UP_DEADLINE = "follow_up_deadline"  # no callback number or email came: tell the helpdesk

# Outbox statuses.
PENDING = "pending"
DELIVERED = "delivered"
REJECTED = "rejected"  # the helpdesk refused it for good (e.g. 400): retrying cannot help
EXPIRED = "expired"  # gave up after the retry budget


class HandoffRow(Base):
    __tablename__ = "handoffs"

    id = sa.Column(sa.String(36), primary_key=True)
    conversation_id = sa.Column(sa.String(255), nullable=False, index=True)
    state = sa.Column(sa.String(16), nullable=False, index=True)
    reason = sa.Column(sa.String(32), nullable=False)
    priority = sa.Column(sa.String(16), nullable=False)
    queue = sa.Column(sa.String(64), nullable=False)
    language = sa.Column(sa.String(8), nullable=False)
    agent_name = sa.Column(sa.String(255))
    ticket_id = sa.Column(sa.String(255))
    estimated_wait_seconds = sa.Column(sa.Integer)
    end_cause = sa.Column(sa.String(32))
    created_at = sa.Column(sa.Float, nullable=False)
    updated_at = sa.Column(sa.Float, nullable=False)
    ended_at = sa.Column(sa.Float)


class OutboxRow(Base):
    __tablename__ = "handoff_outbox"

    seq = sa.Column(sa.Integer, primary_key=True, autoincrement=True)
    event_id = sa.Column(sa.String(36), nullable=False, unique=True)
    handoff_id = sa.Column(sa.String(36), nullable=False, index=True)
    conversation_id = sa.Column(sa.String(255), nullable=False)
    event_type = sa.Column(sa.String(64), nullable=False)
    # The exact bytes that are signed and sent, identical on every retry.
    body = sa.Column(sa.Text, nullable=False)
    status = sa.Column(sa.String(16), nullable=False, index=True)
    attempts = sa.Column(sa.Integer, nullable=False, default=0)
    next_attempt_at = sa.Column(sa.Float, nullable=False)
    lease_until = sa.Column(sa.Float)
    last_error = sa.Column(sa.Text)
    response_body = sa.Column(sa.Text)
    created_at = sa.Column(sa.Float, nullable=False)
    delivered_at = sa.Column(sa.Float)


class InboundEventRow(Base):
    __tablename__ = "handoff_inbound_events"

    event_id = sa.Column(sa.String(64), primary_key=True)
    handoff_id = sa.Column(sa.String(36), nullable=False)
    event_type = sa.Column(sa.String(64), nullable=False)
    received_at = sa.Column(sa.Float, nullable=False)


class ConversationIssueRow(Base):
    """The last topic a conversation was about, and whether it was settled (for repeat contacts)."""

    __tablename__ = "conversation_issues"

    conversation_id = sa.Column(sa.String(255), primary_key=True)
    topic = sa.Column(sa.String(128), nullable=False)
    resolved = sa.Column(sa.Boolean, nullable=False, default=False)
    updated_at = sa.Column(sa.Float, nullable=False)


class CustomerKeyRow(Base):
    """How the customer of a handoff can be identified (normalised email, phone digits, customer
    id), so that their handoffs can be found and erased after the outbox bodies are cleared."""

    __tablename__ = "handoff_customer_keys"

    id = sa.Column(sa.Integer, primary_key=True, autoincrement=True)
    handoff_id = sa.Column(sa.String(36), nullable=False, index=True)
    conversation_id = sa.Column(sa.String(255), nullable=False, index=True)
    kind = sa.Column(sa.String(16), nullable=False)  # email | phone | customer_id
    value = sa.Column(sa.String(320), nullable=False, index=True)


class HandoffRecordRow(Base):
    """What an agent should know of a handoff when the same customer comes back: the transcript
    and reason sent with it, the hand-back note, and who the customer was (normalised; a customer
    id only when it came from a signed identity). Erased with the conversation."""

    __tablename__ = "handoff_records"

    handoff_id = sa.Column(sa.String(36), primary_key=True)
    conversation_id = sa.Column(sa.String(255), nullable=False, index=True)
    reason = sa.Column(sa.String(32), nullable=False)
    reason_text = sa.Column(sa.Text)
    requested_at = sa.Column(sa.Float, nullable=False, index=True)
    transcript = sa.Column(sa.Text, nullable=False, default="[]")
    note = sa.Column(sa.Text)
    lead = sa.Column(sa.Text)  # the lead answers (JSON) of a qualified lead
    verified_customer_id = sa.Column(sa.String(320), index=True)
    email = sa.Column(sa.String(320), index=True)
    phone = sa.Column(sa.String(32), index=True)


#: What an agent's wrap-up says (``wrap_up`` of ``agent.handback``, docs/HANDOFF_CONTRACT.md).
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


class HandoffWrapUpRow(Base):
    """The agent's wrap-up of a handoff, sent with ``agent.handback``: how it ended, why a person
    was needed and, when the bot misunderstood, which intent the customer's message should have
    been (or that it is a new topic). The hand-back note is kept with it. Erased with the
    conversation."""

    __tablename__ = "handoff_wrapups"

    handoff_id = sa.Column(sa.String(36), primary_key=True)
    conversation_id = sa.Column(sa.String(255), nullable=False, index=True)
    outcome = sa.Column(sa.String(32), nullable=False)
    why = sa.Column(sa.String(32), nullable=False)
    intent = sa.Column(sa.String(255))
    new_topic = sa.Column(sa.Boolean, nullable=False, default=False)
    note = sa.Column(sa.Text)
    agent = sa.Column(sa.String(255))
    created_at = sa.Column(sa.Float, nullable=False, index=True)


class TaskRow(Base):
    """Work the assistant must do for a handoff at a given time, kept in the database so that it
    survives a restart (Rasa's reminders live in memory): the no-agent timeout, the wait update,
    resuming a conversation the customer left, the deadline for a follow-up detail."""

    __tablename__ = "handoff_tasks"

    id = sa.Column(sa.String(36), primary_key=True)
    handoff_id = sa.Column(sa.String(36), nullable=False, index=True)
    conversation_id = sa.Column(sa.String(255), nullable=False)
    kind = sa.Column(sa.String(32), nullable=False)
    due_at = sa.Column(sa.Float, nullable=False, index=True)
    lease_until = sa.Column(sa.Float)
    done_at = sa.Column(sa.Float, index=True)
    created_at = sa.Column(sa.Float, nullable=False)


@dataclass(frozen=True)
class Task:
    """A snapshot of one scheduled task."""

    id: str
    handoff_id: str
    conversation_id: str
    kind: str
    due_at: float
    lease_until: float | None
    done_at: float | None
    created_at: float

    @classmethod
    def from_row(cls, row: TaskRow) -> Task:
        return cls(**{c.name: getattr(row, c.name) for c in TaskRow.__table__.columns})


@dataclass(frozen=True)
class Handoff:
    """A snapshot of one handoff record."""

    id: str
    conversation_id: str
    state: str
    reason: str
    priority: str
    queue: str
    language: str
    agent_name: str | None
    ticket_id: str | None
    estimated_wait_seconds: int | None
    end_cause: str | None
    created_at: float
    updated_at: float
    ended_at: float | None

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_STATES

    @classmethod
    def from_row(cls, row: HandoffRow) -> Handoff:
        values = {c.name: getattr(row, c.name) for c in HandoffRow.__table__.columns}
        values["end_cause"] = RENAMED_END_CAUSES.get(values["end_cause"], values["end_cause"])
        return cls(**values)


@dataclass(frozen=True)
class OutboxEvent:
    """A snapshot of one outbox entry."""

    seq: int
    event_id: str
    handoff_id: str
    conversation_id: str
    event_type: str
    body: str
    status: str
    attempts: int
    next_attempt_at: float
    lease_until: float | None
    last_error: str | None
    response_body: str | None
    created_at: float
    delivered_at: float | None

    @classmethod
    def from_row(cls, row: OutboxRow) -> OutboxEvent:
        return cls(**{c.name: getattr(row, c.name) for c in OutboxRow.__table__.columns})


def _priority_rank(priority: str) -> int:
    return PRIORITY_ORDER.index(priority) if priority in PRIORITY_ORDER else len(PRIORITY_ORDER)


def utc_iso(timestamp: float | None = None) -> str:
    """ISO 8601 UTC with milliseconds and a ``Z``, as the contract's timestamps are written."""
    moment = datetime.fromtimestamp(time.time() if timestamp is None else timestamp, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_event(event_type: str, handoff_id: str, conversation_id: str, **fields: Any) -> dict:
    """A contract message envelope (``event``, ``event_id``, ``handoff_id``, ...) plus ``fields``."""
    body = {
        "event": event_type,
        "event_id": str(uuid.uuid4()),
        "handoff_id": handoff_id,
        "conversation_id": conversation_id,
        "sent_at": utc_iso(),
    }
    body.update(fields)
    return body


def encode(body: dict) -> str:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), sort_keys=False)


def create_db_engine(url: str | sa.engine.URL, future: bool = True) -> sa.engine.Engine:
    """An engine for ``url``; SQLite gets WAL and a busy timeout so several processes can share it.

    A SQLite file keeps its connections in a pool (SQLAlchemy 1.4 opens a new one for every
    session otherwise, and runs the pragmas each time): the Rasa server reads and writes a
    conversation several times per customer message.
    """
    url = sa.engine.make_url(url)
    if url.get_backend_name() == "sqlite":
        in_file = url.database not in (None, "", ":memory:")
        engine = sa.create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            poolclass=sa.pool.QueuePool if in_file else None,
            future=future,
        )

        @sa_event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # pragma: no cover - trivial
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True, future=future)


_handoffs = HandoffRow.__table__
_ACTIVE_HANDOFF = (
    sa.select(_handoffs)
    .where(_handoffs.c.conversation_id == sa.bindparam("conversation_id"), _handoffs.c.state.in_(ACTIVE_STATES))
    .order_by(_handoffs.c.created_at.desc())
    .limit(1)
)


class HandoffStore:
    """Repository for handoff records, outbox entries and processed inbound event ids."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.engine = create_db_engine(database_url)
        for attempt in range(5):
            try:
                Base.metadata.create_all(self.engine)
                break
            except (sa.exc.OperationalError, sa.exc.IntegrityError, sa.exc.ProgrammingError):
                # Another process created the tables between the check and the CREATE (PostgreSQL
                # says so with a unique violation on pg_type or "relation already exists"): the
                # next check finds them. Anything else fails again and is raised.
                if attempt == 4:
                    raise
                time.sleep(0.1 * (attempt + 1))
        self._rename_end_causes()
        self._sessions = sessionmaker(self.engine, expire_on_commit=False, future=True)

    def _rename_end_causes(self) -> None:
        """Rewrite end causes stored under an older spelling (idempotent; nothing else changes)."""
        with self.engine.begin() as connection:
            for old, new in RENAMED_END_CAUSES.items():
                connection.execute(
                    _handoffs.update().where(_handoffs.c.end_cause == old).values(end_cause=new)
                )

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions() as session, session.begin():
            yield session

    # -- handoffs ---------------------------------------------------------------------------

    def create_handoff(
        self, payload: dict, now: float | None = None, tasks: dict[str, float] | None = None
    ) -> tuple[Handoff, OutboxEvent]:
        """Record a new handoff from its ``handoff.requested`` payload and queue that payload.

        ``tasks`` maps task kinds to seconds from now (e.g. the no-agent timeout); they are
        scheduled in the same transaction.
        """
        now = time.time() if now is None else now
        row = HandoffRow(
            id=payload["handoff_id"],
            conversation_id=payload["conversation_id"],
            state=REQUESTED,
            reason=payload["reason"],
            priority=payload["priority"],
            queue=payload["queue"],
            language=payload.get("language", "en"),
            created_at=now,
            updated_at=now,
        )
        with self.session() as session:
            previous = self._previous_handoff(session, payload)
            if previous is not None:
                payload["previous_handoff"] = previous
            session.add(row)
            session.add(self._record(payload, now))
            outbox = self._add_outbox(session, payload, now)
            for kind, delay in (tasks or {}).items():
                self._add_task(session, payload["handoff_id"], payload["conversation_id"], kind, now + delay, now)
        return Handoff.from_row(row), OutboxEvent.from_row(outbox)

    @staticmethod
    def _keys(customer: Any) -> dict[str, str]:
        """How a customer object can be matched: a customer id only when it is verified."""
        keys = identifiers(customer)
        verified = (customer or {}).get("verified") if isinstance(customer, dict) else None
        if not (isinstance(verified, dict) and verified.get("customer_id") is True):
            keys.pop("customer_id", None)
        return keys

    def _record(self, payload: dict, now: float) -> HandoffRecordRow:
        keys = self._keys(payload.get("customer"))
        return HandoffRecordRow(
            handoff_id=payload["handoff_id"],
            conversation_id=payload["conversation_id"],
            reason=payload["reason"],
            reason_text=payload.get("reason_text"),
            requested_at=now,
            transcript=json.dumps(payload.get("transcript") or [], ensure_ascii=False),
            lead=json.dumps(payload["lead"], ensure_ascii=False) if payload.get("lead") else None,
            verified_customer_id=(keys.get("customer_id") or "")[:320] or None,
            email=(keys.get("email") or "")[:320] or None,
            phone=(keys.get("phone") or "")[:32] or None,
        )

    def _previous_handoff(self, session: Session, payload: dict) -> dict | None:
        """The latest earlier handoff of this customer, for ``previous_handoff``: matched by a
        verified customer id, else the email or phone the customer gave, else the conversation."""
        keys = self._keys(payload.get("customer"))
        matches = [
            ("customer_id", HandoffRecordRow.verified_customer_id, keys.get("customer_id")),
            ("email", HandoffRecordRow.email, keys.get("email")),
            ("phone", HandoffRecordRow.phone, keys.get("phone")),
            ("conversation_id", HandoffRecordRow.conversation_id, payload["conversation_id"]),
        ]
        for matched_by, column, value in matches:
            if not value:
                continue
            found = (
                session.query(HandoffRecordRow, HandoffRow.end_cause)
                .outerjoin(HandoffRow, HandoffRow.id == HandoffRecordRow.handoff_id)
                .filter(column == value, HandoffRecordRow.handoff_id != payload["handoff_id"])
                .order_by(HandoffRecordRow.requested_at.desc())
                .first()
            )
            if found is None:
                continue
            record, outcome = found
            try:
                transcript = json.loads(record.transcript or "[]")
            except ValueError:
                transcript = []
            return {
                "handoff_id": record.handoff_id,
                "conversation_id": record.conversation_id,
                "requested_at": utc_iso(record.requested_at),
                "reason": record.reason,
                "reason_text": record.reason_text,
                "outcome": outcome,
                "note": record.note,
                "matched_by": matched_by,
                "verified": matched_by == "customer_id",
                "transcript": transcript,
            }
        return None

    def record(self, handoff_id: str) -> dict[str, Any] | None:
        """The handoff's record (reason, reason_text, note, lead, when it was requested), if kept."""
        with self.session() as session:
            row = session.get(HandoffRecordRow, handoff_id)
            if row is None:
                return None
            return {
                "reason": row.reason,
                "reason_text": row.reason_text,
                "note": row.note,
                "requested_at": row.requested_at,
                "lead": json.loads(row.lead) if row.lead else None,
            }

    def record_note(self, handoff_id: str, note: str | None) -> None:
        """Keep the agent's hand-back note with the handoff's record (for a later contact)."""
        with self.session() as session:
            session.query(HandoffRecordRow).filter(HandoffRecordRow.handoff_id == handoff_id).update(
                {"note": note}, synchronize_session=False
            )

    def record_wrap_up(
        self,
        handoff_id: str,
        conversation_id: str,
        wrap_up: dict[str, Any],
        agent: str | None,
        note: str | None = None,
        now: float | None = None,
    ) -> None:
        """Keep the agent's wrap-up of a handoff (``wrap_up`` of ``agent.handback``, already
        checked against its schema); a second one for the same handoff replaces the first. The
        intent and "new topic" are kept only with why ``bot_misunderstood`` (the intent not with a
        new topic): they mean nothing otherwise."""
        outcome, why = wrap_up.get("outcome"), wrap_up.get("why")
        if outcome not in WRAP_UP_OUTCOMES:
            raise ValueError(f"unknown wrap-up outcome {outcome!r}; one of: {', '.join(WRAP_UP_OUTCOMES)}")
        if why not in WRAP_UP_REASONS:
            raise ValueError(f"unknown wrap-up reason {why!r}; one of: {', '.join(WRAP_UP_REASONS)}")
        misunderstood = why == BOT_MISUNDERSTOOD
        new_topic = misunderstood and bool(wrap_up.get("new_topic"))
        values = {
            "conversation_id": conversation_id,
            "outcome": outcome,
            "why": why,
            "intent": (wrap_up.get("intent") or None) if misunderstood and not new_topic else None,
            "new_topic": new_topic,
            "note": note,
            "agent": agent,
            "created_at": time.time() if now is None else now,
        }
        with self.session() as session:
            row = session.get(HandoffWrapUpRow, handoff_id)
            if row is None:
                session.add(HandoffWrapUpRow(handoff_id=handoff_id, **values))
            else:
                for name, value in values.items():
                    setattr(row, name, value)

    def wrap_ups(self, since: float | None = None) -> list[dict[str, Any]]:
        """The agents' wrap-ups (of those made at or after ``since``, Unix time), oldest first."""
        columns = [c.name for c in HandoffWrapUpRow.__table__.columns]
        with self.session() as session:
            query = session.query(HandoffWrapUpRow)
            if since is not None:
                query = query.filter(HandoffWrapUpRow.created_at >= since)
            rows = query.order_by(HandoffWrapUpRow.created_at, HandoffWrapUpRow.handoff_id)
            return [{name: getattr(row, name) for name in columns} for row in rows]

    def transfer(self, handoff_id: str, queue: str, no_agent_timeout: float | None = None) -> Handoff | None:
        """Move an active handoff to ``queue``, waiting for an agent there again (and, with
        ``no_agent_timeout``, a new no-agent timer); None when it is not active."""
        now = time.time()
        with self.session() as session:
            row = session.get(HandoffRow, handoff_id, with_for_update=True)
            if row is None or row.state not in ACTIVE_STATES:
                return None
            row.queue, row.state, row.agent_name, row.updated_at = queue, REQUESTED, None, now
            if no_agent_timeout is not None:
                self._add_task(session, row.id, row.conversation_id, TASK_NO_AGENT, now + no_agent_timeout, now)
            session.flush()
            return Handoff.from_row(row)

    def get_handoff(self, handoff_id: str) -> Handoff | None:
        with self.session() as session:
            row = session.get(HandoffRow, handoff_id)
            return Handoff.from_row(row) if row else None

    def active_handoff(self, conversation_id: str) -> Handoff | None:
        """The conversation's handoff that has not ended, if any (the newest one).

        The relay asks this for every customer message, so it is one prepared Core statement on
        a pooled connection rather than an ORM query in a transaction.
        """
        with self.engine.connect() as connection:
            row = connection.execute(_ACTIVE_HANDOFF, {"conversation_id": conversation_id}).first()
        return Handoff.from_row(row) if row else None

    def handoffs(self, conversation_id: str | None = None) -> list[Handoff]:
        with self.session() as session:
            query = session.query(HandoffRow)
            if conversation_id is not None:
                query = query.filter(HandoffRow.conversation_id == conversation_id)
            return [Handoff.from_row(r) for r in query.order_by(HandoffRow.created_at)]

    def mark_assigned(self, handoff_id: str, agent_name: str) -> bool:
        """Note that an agent joined; False when the handoff is not active."""
        with self.session() as session:
            updated = (
                session.query(HandoffRow)
                .filter(HandoffRow.id == handoff_id, HandoffRow.state.in_(ACTIVE_STATES))
                .update(
                    {"state": ASSIGNED, "agent_name": agent_name, "updated_at": time.time()},
                    synchronize_session=False,
                )
            )
            return updated == 1

    def end_handoff(self, handoff_id: str, cause: str) -> bool:
        """End an active handoff; False when it had already ended (only one caller wins)."""
        with self.session() as session:
            return self._end(session, handoff_id, cause, time.time())

    @staticmethod
    def _end(session: Session, handoff_id: str, cause: str, now: float) -> bool:
        """Mark an active handoff ended; False when it had already ended (only one caller wins)."""
        updated = (
            session.query(HandoffRow)
            .filter(HandoffRow.id == handoff_id, HandoffRow.state.in_(ACTIVE_STATES))
            .update(
                {"state": ENDED, "end_cause": str(cause), "ended_at": now, "updated_at": now},
                synchronize_session=False,
            )
        )
        return updated == 1

    def record_ticket(self, handoff_id: str, ticket_id: str | None, wait_seconds: int | None) -> None:
        with self.session() as session:
            session.query(HandoffRow).filter(HandoffRow.id == handoff_id).update(
                {
                    "ticket_id": ticket_id,
                    "estimated_wait_seconds": wait_seconds,
                    "updated_at": time.time(),
                },
                synchronize_session=False,
            )

    # -- outbox -----------------------------------------------------------------------------

    def _add_outbox(self, session: Session, body: dict, now: float) -> OutboxRow:
        self._add_customer_keys(session, body)
        row = OutboxRow(
            event_id=body["event_id"],
            handoff_id=body["handoff_id"],
            conversation_id=body["conversation_id"],
            event_type=body["event"],
            body=encode(body),
            status=PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        session.add(row)
        session.flush()
        return row

    @staticmethod
    def _add_customer_keys(session: Session, body: dict) -> None:
        """Keep who the customer is (``customer``, or the ``follow_up`` detail of a ``handoff.ended``)."""
        found: dict[tuple[str, str], None] = {}
        for details in (body.get("customer"), body.get("follow_up"), body.get("contact")):
            for kind, value in identifiers(details).items():
                found[(kind, value[:320])] = None
        for kind, value in found:
            session.add(
                CustomerKeyRow(
                    handoff_id=body["handoff_id"], conversation_id=body["conversation_id"], kind=kind, value=value
                )
            )

    def enqueue(self, body: dict) -> OutboxEvent:
        """Queue a contract message for delivery (it is sent by the outbox worker)."""
        with self.session() as session:
            return OutboxEvent.from_row(self._add_outbox(session, body, time.time()))

    def end_and_enqueue(self, handoff_id: str, cause: str, body: dict, task: str | None = None) -> bool:
        """End the handoff and queue ``body`` in one transaction, with a ``task`` due now when
        given; False if the handoff had already ended (only one caller wins)."""
        now = time.time()
        with self.session() as session:
            if not self._end(session, handoff_id, cause, now):
                return False
            self._add_outbox(session, body, now)
            if task is not None:
                self._add_task(session, handoff_id, body["conversation_id"], task, now, now)
            return True

    def get_event(self, event_id: str) -> OutboxEvent | None:
        with self.session() as session:
            row = session.query(OutboxRow).filter(OutboxRow.event_id == event_id).first()
            return OutboxEvent.from_row(row) if row else None

    def pending_events(self, limit: int = 500) -> list[OutboxEvent]:
        """Pending entries in the order they were queued."""
        with self.session() as session:
            rows = (
                session.query(OutboxRow)
                .filter(OutboxRow.status == PENDING)
                .order_by(OutboxRow.seq)
                .limit(limit)
            )
            return [OutboxEvent.from_row(r) for r in rows]

    def events(
        self,
        handoff_id: str | None = None,
        statuses: tuple[str, ...] | None = None,
        limit: int | None = None,
    ) -> list[OutboxEvent]:
        """Outbox entries in the order they were queued, optionally of one handoff or status."""
        with self.session() as session:
            query = session.query(OutboxRow)
            if handoff_id is not None:
                query = query.filter(OutboxRow.handoff_id == handoff_id)
            if statuses:
                query = query.filter(OutboxRow.status.in_(statuses))
            query = query.order_by(OutboxRow.seq)
            if limit is not None:
                query = query.limit(limit)
            return [OutboxEvent.from_row(r) for r in query]

    def count_events(self) -> dict[str, int]:
        """How many outbox entries there are of each status (statuses with none are left out)."""
        with self.session() as session:
            rows = session.query(OutboxRow.status, sa.func.count(OutboxRow.seq)).group_by(OutboxRow.status)
            return {status: count for status, count in rows}

    def retry_event(self, event_id: str, now: float | None = None) -> OutboxEvent | None:
        """Make a rejected or expired entry pending again; None when it is neither, or when its
        body was cleared (``HANDOFF_OUTBOX_KEEP_GIVEN_UP_DAYS`` after it was queued).

        The entry keeps its ``event_id`` and its bytes (so ``sent_at`` still says when it was first
        sent) and gets a fresh retry budget: no attempts counted, queued again ``now``. The last
        error stays until the next attempt replaces it.
        """
        now = time.time() if now is None else now
        with self.session() as session:
            updated = (
                session.query(OutboxRow)
                .filter(OutboxRow.event_id == event_id, OutboxRow.status.in_((REJECTED, EXPIRED)))
                .filter(OutboxRow.body != "")  # cleared after HANDOFF_OUTBOX_KEEP_GIVEN_UP_DAYS
                .update(
                    {
                        "status": PENDING,
                        "attempts": 0,
                        "next_attempt_at": now,
                        "lease_until": None,
                        "created_at": now,
                    },
                    synchronize_session=False,
                )
            )
            if updated != 1:
                return None
            row = session.query(OutboxRow).filter(OutboxRow.event_id == event_id).one()
            return OutboxEvent.from_row(row)

    def claim(self, event_id: str, lease_seconds: float, now: float | None = None) -> OutboxEvent | None:
        """Take the lease on a pending entry so no other worker sends it meanwhile."""
        now = time.time() if now is None else now
        with self.session() as session:
            updated = (
                session.query(OutboxRow)
                .filter(OutboxRow.event_id == event_id, OutboxRow.status == PENDING)
                .filter(sa.or_(OutboxRow.lease_until.is_(None), OutboxRow.lease_until < now))
                .update({"lease_until": now + lease_seconds}, synchronize_session=False)
            )
            if updated != 1:
                return None
            row = session.query(OutboxRow).filter(OutboxRow.event_id == event_id).one()
            return OutboxEvent.from_row(row)

    def mark_delivered(self, event_id: str, response_body: str | None) -> None:
        now = time.time()
        with self.session() as session:
            session.query(OutboxRow).filter(OutboxRow.event_id == event_id).update(
                {
                    "status": DELIVERED,
                    # The helpdesk has it: the record of the delivery stays, the transcript does not.
                    "body": "",
                    "attempts": OutboxRow.attempts + 1,
                    "delivered_at": now,
                    "lease_until": None,
                    "last_error": None,
                    "response_body": response_body,
                },
                synchronize_session=False,
            )

    def mark_failed(self, event_id: str, error: str, next_attempt_at: float, final_status: str | None = None) -> None:
        """Count a failed attempt; with ``final_status`` (rejected/expired) stop retrying."""
        values: dict[str, Any] = {
            "attempts": OutboxRow.attempts + 1,
            "lease_until": None,
            "last_error": error[:2000],
            "next_attempt_at": next_attempt_at,
        }
        if final_status:
            values["status"] = final_status
        with self.session() as session:
            session.query(OutboxRow).filter(OutboxRow.event_id == event_id).update(
                values, synchronize_session=False
            )

    def has_event(self, handoff_id: str, event_type: str) -> bool:
        """Whether a message of this type was ever queued for the handoff."""
        with self.session() as session:
            query = session.query(OutboxRow.seq).filter(
                OutboxRow.handoff_id == handoff_id, OutboxRow.event_type == event_type
            )
            return session.query(query.exists()).scalar()

    def enqueue_once(self, body: dict) -> bool:
        """Queue ``body`` unless a message of its type was already queued for its handoff."""
        with self.session() as session:
            exists = (
                session.query(OutboxRow.seq)
                .filter(OutboxRow.handoff_id == body["handoff_id"], OutboxRow.event_type == body["event"])
                .first()
            )
            if exists is not None:
                return False
            self._add_outbox(session, body, time.time())
            return True

    # -- scheduled tasks -----------------------------------------------------------------------

    @staticmethod
    def _add_task(
        session: Session, handoff_id: str, conversation_id: str, kind: str, due_at: float, now: float
    ) -> TaskRow:
        row = TaskRow(
            id=str(uuid.uuid4()),
            handoff_id=handoff_id,
            conversation_id=conversation_id,
            kind=kind,
            due_at=due_at,
            created_at=now,
        )
        session.add(row)
        return row

    def schedule(self, handoff_id: str, conversation_id: str, kind: str, delay: float) -> Task:
        """Schedule a task ``delay`` seconds from now."""
        now = time.time()
        with self.session() as session:
            row = self._add_task(session, handoff_id, conversation_id, kind, now + delay, now)
            session.flush()
            return Task.from_row(row)

    def due_tasks(self, now: float | None = None, limit: int = 100) -> list[Task]:
        """Tasks that are due, not done and not leased by another worker, oldest first."""
        now = time.time() if now is None else now
        with self.session() as session:
            rows = (
                session.query(TaskRow)
                .filter(TaskRow.done_at.is_(None), TaskRow.due_at <= now)
                .filter(sa.or_(TaskRow.lease_until.is_(None), TaskRow.lease_until < now))
                .order_by(TaskRow.due_at)
                .limit(limit)
            )
            return [Task.from_row(r) for r in rows]

    def claim_task(self, task_id: str, lease_seconds: float, now: float | None = None) -> Task | None:
        """Take the lease on a due task so no other process runs it meanwhile."""
        now = time.time() if now is None else now
        with self.session() as session:
            updated = (
                session.query(TaskRow)
                .filter(TaskRow.id == task_id, TaskRow.done_at.is_(None))
                .filter(sa.or_(TaskRow.lease_until.is_(None), TaskRow.lease_until < now))
                .update({"lease_until": now + lease_seconds}, synchronize_session=False)
            )
            if updated != 1:
                return None
            return Task.from_row(session.get(TaskRow, task_id))

    def complete_task(self, task_id: str) -> None:
        with self.session() as session:
            session.query(TaskRow).filter(TaskRow.id == task_id).update(
                {"done_at": time.time(), "lease_until": None}, synchronize_session=False
            )

    def release_task(self, task_id: str, retry_in: float) -> None:
        """Give a task that failed another go later."""
        with self.session() as session:
            session.query(TaskRow).filter(TaskRow.id == task_id).update(
                {"lease_until": None, "due_at": time.time() + retry_in}, synchronize_session=False
            )

    def tasks(self, handoff_id: str) -> list[Task]:
        with self.session() as session:
            rows = session.query(TaskRow).filter(TaskRow.handoff_id == handoff_id).order_by(TaskRow.due_at)
            return [Task.from_row(r) for r in rows]

    def waiting_ahead(self, handoff: Handoff) -> int:
        """How many handoffs of the same queue still wait for an agent and will be served first:
        a higher priority, or the same priority and requested earlier."""
        rank = _priority_rank(handoff.priority)
        higher = [p for p in PRIORITY_ORDER if _priority_rank(p) < rank]
        with self.session() as session:
            return (
                session.query(HandoffRow)
                .filter(
                    HandoffRow.queue == handoff.queue,
                    HandoffRow.state == REQUESTED,
                    HandoffRow.id != handoff.id,
                    sa.or_(
                        HandoffRow.priority.in_(higher),
                        sa.and_(HandoffRow.priority == handoff.priority, HandoffRow.created_at < handoff.created_at),
                    ),
                )
                .count()
            )

    # -- conversation issues (repeat contacts) ---------------------------------------------------

    def note_topic(self, conversation_id: str, topic: str) -> None:
        """Remember what the conversation is about now; it is unresolved until said otherwise."""
        with self.session() as session:
            row = session.get(ConversationIssueRow, conversation_id)
            if row is None:
                session.add(ConversationIssueRow(conversation_id=conversation_id, topic=topic, resolved=False, updated_at=time.time()))
            else:
                row.topic, row.resolved, row.updated_at = topic, False, time.time()

    def note_resolved(self, conversation_id: str) -> None:
        with self.session() as session:
            row = session.get(ConversationIssueRow, conversation_id)
            if row is not None and not row.resolved:
                row.resolved, row.updated_at = True, time.time()

    def open_issue(self, conversation_id: str, newer_than: float) -> str | None:
        """The unresolved topic of this conversation, if it was raised after ``newer_than``."""
        with self.session() as session:
            row = session.get(ConversationIssueRow, conversation_id)
            if row is None or row.resolved or row.updated_at < newer_than:
                return None
            return row.topic

    # -- inbound helpdesk events ----------------------------------------------------------------

    def inbound_seen(self, event_id: str) -> bool:
        with self.session() as session:
            return session.get(InboundEventRow, event_id) is not None

    def record_inbound(self, event_id: str, handoff_id: str, event_type: str) -> bool:
        """Remember a processed helpdesk event; False when it was already recorded."""
        try:
            with self.session() as session:
                session.add(
                    InboundEventRow(
                        event_id=event_id,
                        handoff_id=handoff_id,
                        event_type=event_type,
                        received_at=time.time(),
                    )
                )
            return True
        except IntegrityError:
            return False


    # -- privacy: finding and erasing a customer's conversations (handoff/privacy.py) -------------

    def find_customer(self, customer: Customer) -> set[str]:
        """Conversations whose handoffs name the customer: the identifiers kept with each handoff,
        and the bodies still in the outbox (pending or given-up ones, or older records)."""
        wanted = [(kind, value) for kind, value in customer.as_dict().items()]
        found: set[str] = set()
        with self.session() as session:
            keys = session.query(CustomerKeyRow.conversation_id).filter(
                sa.or_(*(sa.and_(CustomerKeyRow.kind == k, CustomerKeyRow.value == v) for k, v in wanted))
            )
            found.update(row[0] for row in keys.distinct())
            query = session.query(OutboxRow.conversation_id, OutboxRow.body).filter(
                OutboxRow.event_type.in_(("handoff.requested", "handoff.ended", "follow_up.requested")), OutboxRow.body != ""
            )
            needles = customer.needles()
            if needles:
                query = query.filter(like_any(OutboxRow.body, needles))
            for conversation_id, body in query.yield_per(200):
                if conversation_id in found:
                    continue
                try:
                    data = json.loads(body)
                except ValueError:
                    continue
                if any(customer.matches(data.get(key)) for key in ("customer", "follow_up", "contact")):
                    found.add(conversation_id)
        return found

    def stale_conversations(self, cutoff: float) -> set[str]:
        """Conversations whose handoff records, outbox entries and topic all date from before ``cutoff``."""
        stale: set[str] = set()
        with self.session() as session:
            for column, table_id in (
                (HandoffRow.updated_at, HandoffRow.conversation_id),
                (OutboxRow.created_at, OutboxRow.conversation_id),
                (ConversationIssueRow.updated_at, ConversationIssueRow.conversation_id),
            ):
                rows = session.query(table_id).group_by(table_id).having(sa.func.max(column) < cutoff)
                stale.update(row[0] for row in rows)
        return stale

    def recent_among(self, conversation_ids: Iterable[str], cutoff: float) -> set[str]:
        """Those of ``conversation_ids`` with anything in this store since ``cutoff`` (or due later)."""
        recent: set[str] = set()
        with self.session() as session:
            for batch in chunks(conversation_ids):
                for column, conversation in (
                    (HandoffRow.updated_at, HandoffRow.conversation_id),
                    (OutboxRow.created_at, OutboxRow.conversation_id),
                    (OutboxRow.delivered_at, OutboxRow.conversation_id),
                    (TaskRow.due_at, TaskRow.conversation_id),
                    (ConversationIssueRow.updated_at, ConversationIssueRow.conversation_id),
                ):
                    rows = session.query(conversation).filter(conversation.in_(batch), column >= cutoff).distinct()
                    recent.update(row[0] for row in rows)
        return recent

    def erase_conversations(self, conversation_ids: Iterable[str], dry_run: bool = False) -> dict[str, int]:
        """Delete the handoffs of these conversations with their outbox entries, tasks, processed
        helpdesk events, customer identifiers, topics, records and the agents' wrap-ups; the counts
        (what would go, with ``dry_run``)."""
        counts = {"handoffs": 0, "outbox": 0, "tasks": 0, "inbound_events": 0, "topics": 0, "records": 0, "wrapups": 0}
        with self.session() as session:
            for batch in chunks(sorted(set(conversation_ids))):
                handoff_ids = [r[0] for r in session.query(HandoffRow.id).filter(HandoffRow.conversation_id.in_(batch))]
                queries = {
                    "handoffs": session.query(HandoffRow).filter(HandoffRow.conversation_id.in_(batch)),
                    "outbox": session.query(OutboxRow).filter(OutboxRow.conversation_id.in_(batch)),
                    "tasks": session.query(TaskRow).filter(TaskRow.conversation_id.in_(batch)),
                    "inbound_events": session.query(InboundEventRow).filter(InboundEventRow.handoff_id.in_(handoff_ids)),
                    "topics": session.query(ConversationIssueRow).filter(ConversationIssueRow.conversation_id.in_(batch)),
                    None: session.query(CustomerKeyRow).filter(CustomerKeyRow.conversation_id.in_(batch)),
                    "records": session.query(HandoffRecordRow).filter(HandoffRecordRow.conversation_id.in_(batch)),
                    "wrapups": session.query(HandoffWrapUpRow).filter(HandoffWrapUpRow.conversation_id.in_(batch)),
                }
                for name, query in queries.items():
                    if dry_run:
                        if name is not None:
                            counts[name] += query.count()
                        continue
                    deleted = query.delete(synchronize_session=False)
                    if name is not None:
                        counts[name] += deleted
        return counts

    def clear_given_up_bodies(self, queued_before: float, dry_run: bool = False) -> int:
        """Clear the body of rejected and expired entries queued before ``queued_before`` (they
        can no longer be sent again); the record of the delivery stays. How many."""
        with self.session() as session:
            query = session.query(OutboxRow).filter(
                OutboxRow.status.in_((REJECTED, EXPIRED)), OutboxRow.created_at < queued_before, OutboxRow.body != ""
            )
            if dry_run:
                return query.count()
            return query.update({"body": ""}, synchronize_session=False)

    def clear_delivered_bodies(self) -> int:
        """Clear the body of every delivered entry (done on delivery; this mends older databases)."""
        with self.session() as session:
            return (
                session.query(OutboxRow)
                .filter(OutboxRow.status == DELIVERED, OutboxRow.body != "")
                .update({"body": ""}, synchronize_session=False)
            )


_stores: dict[str, HandoffStore] = {}


def get_store(database_url: str | None = None) -> HandoffStore:
    """The process-wide store for ``database_url`` (default: the settings'), made on first use."""
    if database_url is None:
        from handoff.settings import get_settings

        database_url = get_settings().database_url
    store = _stores.get(database_url)
    if store is None:
        store = _stores[database_url] = HandoffStore(database_url)
    return store
