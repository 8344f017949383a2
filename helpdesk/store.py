"""Ticket storage: what the webhook and the agent pages do to the database.

Everything here is synchronous SQLAlchemy; the web handlers call it through ``asyncio.to_thread``
so a slow disk never blocks the event loop.
"""

from __future__ import annotations

import json
import math
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from handoff.privacy import Customer, chunks, like_any, retention_days
from helpdesk.auth import display_name
from helpdesk.db import (
    ASSIGNED,
    AVAILABLE,
    BOT_MISUNDERSTOOD,
    CLOSED,
    HANDED_BACK,
    OFFLINE,
    PRESENCE_STATES,
    WAITING,
    WRAP_UP_OUTCOMES,
    WRAP_UP_REASONS,
    AgentPresence,
    AgentSession,
    ProcessedEvent,
    Ticket,
    TicketEntry,
    TicketWrapUp,
    priority_rank,
    utcnow,
)
from helpdesk.followups import FollowUpStore, record_follow_up
from helpdesk.sessions import SESSION_IDLE_TIMEOUT

#: Average handling time used before any ticket has been handed back.
DEFAULT_HANDLING_SECONDS = 180
#: How many recent hand-backs the average handling time is taken over.
HANDLING_SAMPLE = 20
#: How many closed tickets the inbox lists.
CLOSED_LISTED = 50


_EMAIL = re.compile(r"[^\s@]+@[^\s@]+[^\s@.]")


def _naive_utc(moment: float) -> datetime:
    return datetime.fromtimestamp(moment, timezone.utc).replace(tzinfo=None)


class TicketNotFound(LookupError):
    """No ticket has that id (or handoff id)."""


class WrapUpExists(ValueError):
    """The ticket has a wrap-up already (``author`` made it)."""

    def __init__(self, ticket_id: str, author: str | None) -> None:
        super().__init__(f"ticket {ticket_id} is wrapped up already")
        self.author = author


def _wrap_up_row(wrap_up: dict[str, Any], author: str | None, note: str | None) -> TicketWrapUp:
    """A row for ``wrap_up`` (the ``wrap_up`` object of agent.handback); the intent and "new
    topic" are kept only with why ``bot_misunderstood``."""
    outcome, why = wrap_up.get("outcome"), wrap_up.get("why")
    if outcome not in WRAP_UP_OUTCOMES:
        raise ValueError(f"unknown wrap-up outcome {outcome!r}; one of: {', '.join(WRAP_UP_OUTCOMES)}")
    if why not in WRAP_UP_REASONS:
        raise ValueError(f"unknown wrap-up reason {why!r}; one of: {', '.join(WRAP_UP_REASONS)}")
    misunderstood = why == BOT_MISUNDERSTOOD
    new_topic = misunderstood and bool(wrap_up.get("new_topic"))
    return TicketWrapUp(
        outcome=outcome,
        why=why,
        intent=(wrap_up.get("intent") or None) if misunderstood and not new_topic else None,
        new_topic=new_topic,
        note=note or None,
        author=author,
        created_at=utcnow(),
    )


@dataclass(frozen=True)
class WebhookResult:
    """The answer to one webhook delivery."""

    status: int
    body: str  # JSON text, stored verbatim so a repeated delivery gets the identical answer
    duplicate: bool = False
    ticket_id: str | None = None

    @property
    def data(self) -> dict[str, Any]:
        return json.loads(self.body)


def _json(data: dict[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def _error(status: int, error: str, message: str) -> WebhookResult:
    return WebhookResult(status, _json({"error": error, "message": message}))


@dataclass(frozen=True)
class WaitEstimate:
    """What the answer to ``handoff.requested`` says about the wait (docs/HANDOFF_CONTRACT.md)."""

    agents_available: int  # status available and a live session
    free_agents: int  # of those, the ones with no assigned open ticket
    queue_position: int  # 1 + waiting tickets of the same queue served first
    average_handling_seconds: float
    estimated_wait_seconds: int | None  # None when nobody is available

    def answer(self, ticket_id: str) -> dict[str, Any]:
        return {
            "ticket_id": ticket_id,
            "estimated_wait_seconds": self.estimated_wait_seconds,
            "agents_available": self.agents_available,
            "queue_position": self.queue_position,
        }


@dataclass(frozen=True)
class Presence:
    """An agent's own status and who is available now, for the console's header."""

    status: str
    available: tuple[str, ...]  # logins, sorted

    @property
    def available_count(self) -> int:
        return len(self.available)

    @property
    def available_names(self) -> list[str]:
        return [display_name(login) for login in self.available]


class TicketStore:
    """All reads and writes of tickets, entries, processed webhook deliveries and presence.

    ``idle_timeout`` (seconds) is the agent sessions' idle timeout: an available agent whose
    session was not used for that long no longer counts as available.
    """

    def __init__(
        self, session_factory: sessionmaker, idle_timeout: float = SESSION_IDLE_TIMEOUT
    ) -> None:
        self._sessions = session_factory
        self.idle_timeout = idle_timeout

    # --- webhook --------------------------------------------------------------------------------

    def process_event(self, body: dict[str, Any]) -> WebhookResult:
        """Apply one validated assistant → helpdesk message, at most once per ``event_id``.

        A successful answer is stored with the event id in the same transaction as its effects, so
        a retry (even a concurrent one) is answered from the store and changes nothing.
        Failures (e.g. unknown handoff) are not stored: a retry is evaluated again.
        """
        for attempt in range(2):
            try:
                return self._process_event_once(body)
            except IntegrityError:
                # A concurrent delivery of the same event (or handoff) committed first; the second
                # pass finds its row and answers from it.
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _process_event_once(self, body: dict[str, Any]) -> WebhookResult:
        with self._sessions() as session:
            seen = session.get(ProcessedEvent, body["event_id"])
            if seen is not None:
                ticket_id = json.loads(seen.response).get("ticket_id")
                return WebhookResult(
                    seen.status, seen.response, duplicate=True, ticket_id=ticket_id
                )

            handler = {
                "handoff.requested": self._handoff_requested,
                "conversation.message": self._conversation_message,
                "handoff.ended": self._handoff_ended,
                "follow_up.requested": self._follow_up_requested,
            }[body["event"]]
            result = handler(session, body)
            if result.status >= 300:
                session.rollback()
                return result
            session.add(
                ProcessedEvent(
                    event_id=body["event_id"],
                    event=body["event"],
                    handoff_id=body["handoff_id"],
                    status=result.status,
                    response=result.body,
                )
            )
            session.commit()
            return result

    def _handoff_requested(self, session: Session, body: dict[str, Any]) -> WebhookResult:
        ticket = self._by_handoff(session, body["handoff_id"])
        if ticket is None:
            ticket = Ticket(
                ticket_id=self._new_ticket_id(session),
                handoff_id=body["handoff_id"],
                conversation_id=body["conversation_id"],
                reason=body["reason"],
                reason_text=body["reason_text"],
                priority=body["priority"],
                priority_rank=priority_rank(body["priority"]),
                queue=body["queue"],
                language=body["language"],
                customer=body.get("customer") or {},
                lead=body.get("lead"),
                channel=body.get("channel") or {},
                trigger=body.get("trigger") or {},
                transcript=body.get("transcript") or [],
                payload=body,
                requested_at=body.get("sent_at"),
                state=WAITING,
                created_at=utcnow(),
            )
            session.add(ticket)
            session.flush()
        elif ticket.conversation_id != body["conversation_id"]:
            return _error(
                400, "conversation_mismatch", "handoff_id belongs to another conversation"
            )
        answer = self.wait_estimate(session, ticket).answer(ticket.ticket_id)
        return WebhookResult(200, _json(answer), ticket_id=ticket.ticket_id)

    def _follow_up_requested(self, session: Session, body: dict[str, Any]) -> WebhookResult:
        status, answer = record_follow_up(session, body)
        ticket = self._by_handoff(session, body["handoff_id"])
        return WebhookResult(status, _json(answer), ticket_id=ticket.ticket_id if ticket else None)

    def _conversation_message(self, session: Session, body: dict[str, Any]) -> WebhookResult:
        ticket, problem = self._ticket_for(session, body)
        if problem:
            return problem
        message = body["message"]
        session.add(
            TicketEntry(
                ticket=ticket,
                kind="customer",
                text=message.get("text", ""),
                timestamp=message.get("timestamp"),
            )
        )
        return WebhookResult(
            200, _json({"ticket_id": ticket.ticket_id}), ticket_id=ticket.ticket_id
        )

    def _handoff_ended(self, session: Session, body: dict[str, Any]) -> WebhookResult:
        ticket, problem = self._ticket_for(session, body)
        if problem:
            return problem
        cause = body["cause"]
        if ticket.state != CLOSED:
            ticket.state = CLOSED
            ticket.closed_at = utcnow()
            ticket.close_cause = cause
        session.add(TicketEntry(ticket=ticket, kind="ended", text=cause))
        follow_up = body.get("follow_up")
        if isinstance(follow_up, dict):
            # No agent came in time and the customer left a way to reach them.
            if follow_up.get("method") == "callback" and follow_up.get("phone"):
                text = f"Call the customer back on {follow_up['phone']}."
            elif follow_up.get("method") == "email" and follow_up.get("email"):
                text = f"Answer the customer by email at {follow_up['email']}."
            else:
                text = None
            if text:
                session.add(TicketEntry(ticket=ticket, kind="follow_up", text=text))
        return WebhookResult(
            200, _json({"ticket_id": ticket.ticket_id}), ticket_id=ticket.ticket_id
        )

    def _ticket_for(
        self, session: Session, body: dict[str, Any]
    ) -> tuple[Ticket | None, WebhookResult | None]:
        ticket = self._by_handoff(session, body["handoff_id"])
        if ticket is None:
            return None, _error(404, "unknown_handoff", "no ticket for this handoff_id")
        if ticket.conversation_id != body["conversation_id"]:
            return None, _error(
                400, "conversation_mismatch", "handoff_id belongs to another conversation"
            )
        return ticket, None

    @staticmethod
    def _by_handoff(session: Session, handoff_id: str) -> Ticket | None:
        return session.execute(
            sa.select(Ticket).where(Ticket.handoff_id == handoff_id)
        ).scalar_one_or_none()

    @staticmethod
    def _new_ticket_id(session: Session) -> str:
        while True:
            candidate = "HD-" + secrets.token_hex(4).upper()
            exists = session.execute(
                sa.select(Ticket.id).where(Ticket.ticket_id == candidate)
            ).first()
            if not exists:
                return candidate

    # --- waiting time ---------------------------------------------------------------------------

    def wait_estimate(
        self, session: Session, ticket: Ticket, now: datetime | None = None
    ) -> WaitEstimate:
        """The wait for ``ticket`` as the contract defines it.

        ``queue_position`` is 1 + the waiting tickets of the same queue served before it (higher
        priority, or the same priority and older). With nobody available the wait is unknown
        (None). Otherwise it is 0 when a free available agent is left for this position, else
        ``ceil((position - free agents) / available agents)`` rounds of the queue's average
        handling time.
        """
        available = self._available_logins(session, now)
        names = {display_name(login).lower() for login in available}
        busy = {
            (name or "").lower()
            for name in session.execute(
                sa.select(Ticket.agent_name).where(Ticket.state == ASSIGNED).distinct()
            ).scalars()
        }
        free = len(names - busy)
        average = self.average_handling_seconds(session, ticket.queue)
        if ticket.state != WAITING:
            # Asked again for a ticket an agent has (or had): nobody is before it.
            position = 1
            wait: int | None = 0
        else:
            position = 1 + self._ahead(session, ticket)
            if position <= free:
                wait = 0
            else:
                rounds = math.ceil((position - free) / len(available)) if available else 0
                wait = int(round(rounds * average))
        if not available:
            wait = None
        return WaitEstimate(len(available), free, position, average, wait)

    def estimate_wait(self, session: Session, ticket: Ticket) -> int | None:
        """Seconds until an agent is free for ``ticket`` (None when nobody is available)."""
        return self.wait_estimate(session, ticket).estimated_wait_seconds

    @staticmethod
    def _ahead(session: Session, ticket: Ticket) -> int:
        """Waiting tickets of the ticket's queue that are served before it."""
        return session.execute(
            sa.select(sa.func.count(Ticket.id)).where(
                Ticket.state == WAITING,
                Ticket.queue == ticket.queue,
                Ticket.id != ticket.id,
                sa.or_(
                    Ticket.priority_rank < ticket.priority_rank,
                    sa.and_(
                        Ticket.priority_rank == ticket.priority_rank,
                        sa.or_(
                            Ticket.created_at < ticket.created_at,
                            sa.and_(Ticket.created_at == ticket.created_at, Ticket.id < ticket.id),
                        ),
                    ),
                ),
            )
        ).scalar_one()

    @staticmethod
    def average_handling_seconds(session: Session, queue: str | None = None) -> float:
        """Mean time from join to hand-back over the last :data:`HANDLING_SAMPLE` handed-back
        tickets of ``queue``; of all queues when that queue has none; 180 s when there are none."""
        handed_back = (
            sa.select(Ticket.joined_at, Ticket.closed_at)
            .where(
                Ticket.close_cause == HANDED_BACK,
                Ticket.joined_at.is_not(None),
                Ticket.closed_at.is_not(None),
            )
            .order_by(Ticket.closed_at.desc(), Ticket.id.desc())
            .limit(HANDLING_SAMPLE)
        )
        rows = []
        if queue is not None:
            rows = session.execute(handed_back.where(Ticket.queue == queue)).all()
        if not rows:
            rows = session.execute(handed_back).all()
        if not rows:
            return float(DEFAULT_HANDLING_SECONDS)
        durations = [max((closed - joined).total_seconds(), 0.0) for joined, closed in rows]
        return sum(durations) / len(durations)

    # --- presence -------------------------------------------------------------------------------

    def set_presence(self, login: str, status: str, now: datetime | None = None) -> None:
        """Record that ``login`` is now ``status`` (available, away or offline)."""
        if status not in PRESENCE_STATES:
            raise ValueError(f"unknown presence {status!r}; one of: {', '.join(PRESENCE_STATES)}")
        login = login.strip().lower()
        with self._sessions() as session, session.begin():
            row = session.get(AgentPresence, login)
            if row is None:
                session.add(AgentPresence(login=login, status=status, changed_at=now or utcnow()))
            elif row.status != status:
                row.status = status
                row.changed_at = now or utcnow()

    def get_presence(self, login: str) -> str:
        """The status ``login`` chose last; ``offline`` when they never chose one."""
        with self._sessions() as session:
            row = session.get(AgentPresence, login.strip().lower())
            return row.status if row is not None else OFFLINE

    def available_logins(self, now: datetime | None = None) -> list[str]:
        """Agents available now: status available and a live session (sorted logins)."""
        with self._sessions() as session:
            return self._available_logins(session, now)

    def count_available(self, now: datetime | None = None) -> int:
        """How many agents are available now (see :meth:`available_logins`)."""
        return len(self.available_logins(now))

    def presence(self, login: str, now: datetime | None = None) -> Presence:
        """``login``'s own status and everyone available now, in one read."""
        with self._sessions() as session:
            row = session.get(AgentPresence, login.strip().lower())
            status = row.status if row is not None else OFFLINE
            return Presence(status, tuple(self._available_logins(session, now)))

    def _available_logins(self, session: Session, now: datetime | None = None) -> list[str]:
        now = now or utcnow()
        live = (
            sa.select(AgentSession.login)
            .where(AgentSession.revoked_at.is_(None))
            .where(AgentSession.expires_at > now)
            .where(AgentSession.last_seen_at > now - timedelta(seconds=self.idle_timeout))
        )
        return list(
            session.execute(
                sa.select(AgentPresence.login)
                .where(AgentPresence.status == AVAILABLE)
                .where(AgentPresence.login.in_(live))
                .order_by(AgentPresence.login)
            ).scalars()
        )

    # --- pages ----------------------------------------------------------------------------------

    def inbox(self) -> tuple[list[Ticket], list[Ticket]]:
        """Open tickets (priority, then oldest first) and the most recently closed ones."""
        with self._sessions() as session:
            open_tickets = (
                session.execute(
                    sa.select(Ticket)
                    .where(Ticket.state != CLOSED)
                    .order_by(Ticket.priority_rank, Ticket.created_at, Ticket.id)
                )
                .scalars()
                .all()
            )
            closed = (
                session.execute(
                    sa.select(Ticket)
                    .where(Ticket.state == CLOSED)
                    .order_by(Ticket.closed_at.desc(), Ticket.id.desc())
                    .limit(CLOSED_LISTED)
                )
                .scalars()
                .all()
            )
            return list(open_tickets), list(closed)

    def get(self, ticket_id: str) -> Ticket:
        """The ticket with its entries loaded; :class:`TicketNotFound` if there is none."""
        with self._sessions() as session:
            ticket = session.execute(
                sa.select(Ticket)
                .where(Ticket.ticket_id == ticket_id)
                .options(selectinload(Ticket.entries), selectinload(Ticket.wrap_up))
            ).scalar_one_or_none()
            if ticket is None:
                raise TicketNotFound(ticket_id)
            return ticket

    def count_open(self) -> int:
        with self._sessions() as session:
            return session.execute(
                sa.select(sa.func.count(Ticket.id)).where(Ticket.state != CLOSED)
            ).scalar_one()

    # --- agent actions (recorded only after the assistant accepted them) ------------------------

    def record_join(self, ticket_id: str, agent: str, took_over_from: str | None = None) -> None:
        """``agent`` claimed the ticket (from ``took_over_from`` when a colleague had it)."""
        with self._sessions() as session, session.begin():
            ticket = self._require(session, ticket_id)
            ticket.state = ASSIGNED
            ticket.agent_name = agent
            if ticket.joined_at is None:
                ticket.joined_at = utcnow()
            session.add(
                TicketEntry(ticket=ticket, kind="joined", author=agent, text=took_over_from or "")
            )

    def record_agent_message(self, ticket_id: str, agent: str, text: str) -> None:
        with self._sessions() as session, session.begin():
            ticket = self._require(session, ticket_id)
            session.add(TicketEntry(ticket=ticket, kind="agent", author=agent, text=text))

    def record_handback(
        self, ticket_id: str, agent: str, note: str | None, wrap_up: dict[str, Any] | None = None
    ) -> None:
        """``agent`` handed the ticket back, with ``note`` and the ``wrap_up`` sent with it."""
        row = _wrap_up_row(wrap_up, agent, note) if wrap_up is not None else None
        with self._sessions() as session, session.begin():
            ticket = self._require(session, ticket_id)
            if row is not None:
                existing = self._wrap_up_of(session, ticket)
                if existing is not None:
                    session.delete(existing)
                    session.flush()
                row.ticket_pk = ticket.id
                session.add(row)
            ticket.state = CLOSED
            ticket.closed_at = utcnow()
            ticket.close_cause = HANDED_BACK
            ticket.handback_note = note
            if ticket.agent_name is None:
                ticket.agent_name = agent
            session.add(TicketEntry(ticket=ticket, kind="handback", author=agent, text=note or ""))

    def record_transfer(self, ticket_id: str, agent: str, queue: str, note: str) -> None:
        """``agent`` moved the ticket to ``queue``: it waits there again, unassigned (the time it
        was first joined is kept)."""
        with self._sessions() as session, session.begin():
            ticket = self._require(session, ticket_id)
            text = _json({"from": ticket.queue, "to": queue, "note": note})
            ticket.queue = queue
            ticket.state = WAITING
            ticket.agent_name = None
            session.add(TicketEntry(ticket=ticket, kind="transfer", author=agent, text=text))

    def record_wrap_up(
        self, ticket_id: str, author: str, wrap_up: dict[str, Any], note: str | None = None
    ) -> None:
        """Keep ``author``'s wrap-up of a ticket (in the helpdesk only: nothing is sent). A ticket
        has one wrap-up: :class:`WrapUpExists` when it has one already."""
        row = _wrap_up_row(wrap_up, author, note)
        try:
            with self._sessions() as session, session.begin():
                ticket = self._require(session, ticket_id)
                existing = self._wrap_up_of(session, ticket)
                if existing is not None:
                    raise WrapUpExists(ticket_id, existing.author)
                row.ticket_pk = ticket.id
                session.add(row)
        except IntegrityError:
            # Someone wrapped it up at the same moment.
            raise WrapUpExists(ticket_id, None) from None

    def wrap_up(self, ticket_id: str) -> TicketWrapUp | None:
        """The ticket's wrap-up, if it has one; :class:`TicketNotFound` if there is no ticket."""
        with self._sessions() as session:
            return self._wrap_up_of(session, self._require(session, ticket_id))

    def wrap_ups(self, since: datetime | None = None) -> list[dict[str, Any]]:
        """Every wrap-up (made at or after ``since``, naive UTC), oldest first, with its ticket's
        ids, queue, language, reason and how the ticket was closed."""
        query = (
            sa.select(TicketWrapUp, Ticket)
            .join(Ticket, Ticket.id == TicketWrapUp.ticket_pk)
            .order_by(TicketWrapUp.created_at, TicketWrapUp.id)
        )
        if since is not None:
            query = query.where(TicketWrapUp.created_at >= since)
        with self._sessions() as session:
            return [
                {
                    "ticket_id": ticket.ticket_id,
                    "handoff_id": ticket.handoff_id,
                    "conversation_id": ticket.conversation_id,
                    "queue": ticket.queue,
                    "language": ticket.language,
                    "reason": ticket.reason,
                    "close_cause": ticket.close_cause,
                    **row.as_wrap_up(),
                    "note": row.note,
                    "author": row.author,
                    "created_at": row.created_at,
                }
                for row, ticket in session.execute(query)
            ]

    @staticmethod
    def _wrap_up_of(session: Session, ticket: Ticket) -> TicketWrapUp | None:
        return session.execute(
            sa.select(TicketWrapUp).where(TicketWrapUp.ticket_pk == ticket.id)
        ).scalar_one_or_none()

    @staticmethod
    def _require(session: Session, ticket_id: str) -> Ticket:
        ticket = session.execute(
            sa.select(Ticket).where(Ticket.ticket_id == ticket_id)
        ).scalar_one_or_none()
        if ticket is None:
            raise TicketNotFound(ticket_id)
        return ticket

    # --- privacy: finding and erasing a customer's tickets (handoff/privacy.py) -----------------

    @property
    def engine(self) -> sa.engine.Engine | None:
        return self._sessions.kw.get("bind")

    def find_customer(self, customer: Customer) -> set[str]:
        """Conversations with a ticket whose customer is ``customer``, or whose follow-up detail
        (the callback number or email address left after a no-agent timeout) is theirs."""
        found: set[str] = set()
        needles = customer.needles()
        with self._sessions() as session:
            query = sa.select(Ticket.conversation_id, Ticket.customer)
            if needles:
                query = query.where(like_any(sa.cast(Ticket.customer, sa.Text), needles))
            for conversation_id, details in session.execute(query):
                if customer.matches(details):
                    found.add(conversation_id)
            follow_ups = sa.select(Ticket.conversation_id, TicketEntry.text).join(TicketEntry.ticket).where(
                TicketEntry.kind == "follow_up"
            )
            for conversation_id, text in session.execute(follow_ups):
                emails = [m.group(0) for m in _EMAIL.finditer(text or "")]
                if any(customer.matches_value("email", e) for e in emails) or customer.matches_value("phone", text):
                    found.add(conversation_id)
        return found | self._follow_ups().find_conversations(customer)

    def _follow_ups(self) -> FollowUpStore:
        return FollowUpStore(self._sessions)

    def _latest_activity(self, conversation_ids: list[str] | None = None) -> dict[str, datetime]:
        """The latest moment anything happened on each conversation's tickets."""
        latest: dict[str, datetime] = {}

        def note(conversation_id: str, *moments: datetime | None) -> None:
            for moment in moments:
                if moment is not None and (conversation_id not in latest or moment > latest[conversation_id]):
                    latest[conversation_id] = moment

        with self._sessions() as session:
            tickets = sa.select(
                Ticket.conversation_id,
                sa.func.max(Ticket.created_at),
                sa.func.max(Ticket.joined_at),
                sa.func.max(Ticket.closed_at),
            ).group_by(Ticket.conversation_id)
            entries = (
                sa.select(Ticket.conversation_id, sa.func.max(TicketEntry.created_at))
                .join(TicketEntry.ticket)
                .group_by(Ticket.conversation_id)
            )
            batches = [None] if conversation_ids is None else list(chunks(conversation_ids))
            for batch in batches:
                for query in (tickets, entries):
                    if batch is not None:
                        query = query.where(Ticket.conversation_id.in_(batch))
                    for conversation_id, *moments in session.execute(query):
                        note(conversation_id, *moments)
        for conversation_id, moment in self._follow_ups().latest_activity(conversation_ids).items():
            note(conversation_id, moment)
        return latest

    def stale_conversations(self, cutoff: float) -> set[str]:
        """Conversations whose tickets saw nothing since ``cutoff`` (Unix time)."""
        before = _naive_utc(cutoff)
        return {c for c, moment in self._latest_activity().items() if moment < before}

    def recent_among(self, conversation_ids: Iterable[str], cutoff: float) -> set[str]:
        since = _naive_utc(cutoff)
        return {c for c, moment in self._latest_activity(list(conversation_ids)).items() if moment >= since}

    def erase_conversations(self, conversation_ids: Iterable[str], dry_run: bool = False) -> dict[str, int]:
        """Delete the tickets of these conversations with their entries, wrap-ups and the record
        of the webhook deliveries that made them; the counts (what would go, with ``dry_run``)."""
        conversation_ids = sorted(set(conversation_ids))
        counts = {"tickets": 0, "ticket_entries": 0, "ticket_wrapups": 0}
        with self._sessions() as session, session.begin():
            for batch in chunks(conversation_ids):
                rows = session.execute(
                    sa.select(Ticket.id, Ticket.handoff_id).where(Ticket.conversation_id.in_(batch))
                ).all()
                if not rows:
                    continue
                pks, handoff_ids = [r[0] for r in rows], [r[1] for r in rows]
                entries = session.execute(
                    sa.select(sa.func.count(TicketEntry.id)).where(TicketEntry.ticket_pk.in_(pks))
                ).scalar_one()
                wrap_ups = session.execute(
                    sa.select(sa.func.count(TicketWrapUp.id)).where(TicketWrapUp.ticket_pk.in_(pks))
                ).scalar_one()
                counts["tickets"] += len(pks)
                counts["ticket_entries"] += entries
                counts["ticket_wrapups"] += wrap_ups
                if dry_run:
                    continue
                session.execute(sa.delete(TicketEntry).where(TicketEntry.ticket_pk.in_(pks)))
                session.execute(sa.delete(TicketWrapUp).where(TicketWrapUp.ticket_pk.in_(pks)))
                session.execute(sa.delete(ProcessedEvent).where(ProcessedEvent.handoff_id.in_(handoff_ids)))
                session.execute(sa.delete(Ticket).where(Ticket.id.in_(pks)))
        counts.update(self._follow_ups().erase_conversations(conversation_ids, dry_run=dry_run))
        return counts

    def forget_customer(self, customer: Customer, dry_run: bool = False) -> dict[str, int]:
        """Erase every ticket of the customer's conversations (the helpdesk's own part of
        ``make forget``); the counts."""
        return self.erase_conversations(self.find_customer(customer), dry_run=dry_run)

    def expire(self, days: float | None = None, now: float | None = None) -> dict[str, int]:
        """Erase the tickets of conversations with no activity for ``days`` (default
        ``HANDOFF_RETENTION_DAYS``, 90); the counts."""
        days = retention_days() if days is None else days
        cutoff = (time.time() if now is None else now) - days * 86400
        return self.erase_conversations(self.stale_conversations(cutoff))
