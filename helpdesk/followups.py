"""Follow-up tasks: a callback or an email answer the customer asked for instead of waiting
(``follow_up.requested``, docs/HANDOFF_CONTRACT.md), and the "Follow-ups" page where agents claim,
assign and close them.

Rules for the agents' actions (:class:`FollowUpStore`):

- anyone may claim a task nobody owns; a task someone owns is not claimed away from them;
- the owner may assign their task to a colleague; a task nobody owns may be assigned by anyone;
- closing (done / not reached) is the owner's; closing a task nobody owns claims it at once;
- a closed task does not change any more.

Each rule is one conditional ``UPDATE``, so two agents acting at once cannot both win.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.orm import Session, sessionmaker

from handoff.privacy import Customer, chunks, like_any, normalise_email, normalise_phone
from helpdesk.db import Base, ProcessedEvent, Ticket, TicketEntry, utcnow
from helpdesk.flash import FLASH_COOKIE, Flash
from helpdesk.presentation import UNVERIFIED_TEXT, VERIFIED_TEXT, is_verified, parse_time

# helpdesk.keys and helpdesk.views are imported by the page's handlers when they run, not here:
# helpdesk.keys imports helpdesk.store, which may import this module for the privacy hooks.

logger = logging.getLogger("helpdesk.follow_ups")

EVENT = "follow_up.requested"

# Follow-up states.
OPEN = "open"
DONE = "done"
NOT_REACHED = "not_reached"
OUTCOMES = (DONE, NOT_REACHED)

CALLBACK = "callback"
EMAIL = "email"
#: Which contact detail each method needs.
CONTACT_KIND = {CALLBACK: "phone", EMAIL: "email"}

ORIGIN_LABELS = {
    "no_agent_timeout": "no agent joined in time",
    "no_agent_available": "nobody was available",
    "out_of_hours": "outside business hours",
}

#: How many closed follow-ups the page lists.
CLOSED_LISTED = 50
#: The ticket entry kind of the readable line a follow-up leaves on its ticket.
ENTRY_KIND = "follow_up"
#: Flash notices of the Follow-ups page are filed under this (never a ticket id).
FLASH_PAGE = "/follow-ups"


class FollowUp(Base):
    """One follow-up task, with what the customer said before asking for it."""

    __tablename__ = "follow_ups"

    id = sa.Column(sa.Integer, primary_key=True, autoincrement=True)
    follow_up_id = sa.Column(sa.String(36), nullable=False, unique=True)
    handoff_id = sa.Column(sa.String(36), nullable=False, index=True)
    conversation_id = sa.Column(sa.String(255), nullable=False, index=True)
    ticket_id = sa.Column(sa.String(32), nullable=True)  # the handoff's ticket, if the helpdesk has it

    origin = sa.Column(sa.String(32), nullable=False)
    method = sa.Column(sa.String(16), nullable=False)  # callback | email
    contact = sa.Column(sa.String(320), nullable=False)  # the phone number or email address
    reason = sa.Column(sa.String(64), nullable=False)
    reason_text = sa.Column(sa.Text, nullable=False, default="")
    queue = sa.Column(sa.String(64), nullable=False)
    priority = sa.Column(sa.String(16), nullable=False)
    language = sa.Column(sa.String(8), nullable=False)
    customer = sa.Column(sa.JSON, nullable=False, default=dict)
    lead = sa.Column(sa.JSON, nullable=True)
    transcript = sa.Column(sa.JSON, nullable=False, default=list)
    due_at = sa.Column(sa.DateTime, nullable=False, index=True)  # naive UTC

    state = sa.Column(sa.String(16), nullable=False, default=OPEN, index=True)
    owner = sa.Column(sa.String(64), nullable=True)  # agent login
    outcome_note = sa.Column(sa.Text, nullable=True)
    created_at = sa.Column(sa.DateTime, nullable=False, default=utcnow)
    closed_at = sa.Column(sa.DateTime, nullable=True)
    closed_by = sa.Column(sa.String(64), nullable=True)

    @property
    def is_open(self) -> bool:
        return self.state == OPEN

    @property
    def origin_text(self) -> str:
        """Why the customer is not talking to a person now, in words."""
        return ORIGIN_LABELS.get(self.origin, self.origin)

    @property
    def contact_kind(self) -> str:
        """``phone`` or ``email``: what :attr:`contact` is."""
        return CONTACT_KIND.get(self.method, "phone")

    @property
    def contact_verified(self) -> bool:
        """Whether the contact detail is the customer's verified one (a signed identity); a
        number or address typed in the conversation never is."""
        kind = self.contact_kind
        customer = self.customer or {}
        if not is_verified(customer, kind):
            return False
        normalise = normalise_phone if kind == "phone" else normalise_email
        mine = normalise(self.contact)
        return mine is not None and mine == normalise(customer.get(kind))

    @property
    def contact_trust(self) -> str:
        """``verified`` or ``given by the customer, unverified``."""
        return VERIFIED_TEXT if self.contact_verified else UNVERIFIED_TEXT


# --- the webhook event ---------------------------------------------------------------------------


def _error(error: str, message: str) -> tuple[int, dict[str, Any]]:
    return 400, {"error": error, "message": message}


def _naive_utc(value: Any) -> datetime | None:
    moment = parse_time(value) if isinstance(value, str) else None
    return None if moment is None else moment.replace(tzinfo=None)


def _entry_text(method: str, contact: str) -> str:
    # Worded as the line handoff.ended's follow_up leaves, and with no other digits than the
    # number's: helpdesk.store finds a customer's number in these lines by their digits.
    if method == CALLBACK:
        return f"Call the customer back on {contact}."
    return f"Answer the customer by email at {contact}."


def record_follow_up(session: Session, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Apply a validated ``follow_up.requested`` body in the caller's transaction.

    The same ``follow_up_id`` again is answered as the first time and changes nothing. The task is
    linked to the handoff's ticket when the helpdesk has one, and the ticket gets a ``follow_up``
    line saying whom to call or write. Returns (200, ``{"follow_up_id": ...}``) or
    (400, ``{"error": ..., "message": ...}``); the caller commits (or rolls back on 400).
    """
    follow_up_id = body["follow_up_id"]
    existing = session.execute(
        sa.select(FollowUp).where(FollowUp.follow_up_id == follow_up_id)
    ).scalar_one_or_none()
    if existing is not None:
        if (existing.handoff_id, existing.conversation_id) != (
            body["handoff_id"],
            body["conversation_id"],
        ):
            return _error(
                "follow_up_mismatch", "follow_up_id belongs to another handoff or conversation"
            )
        return 200, {"follow_up_id": follow_up_id}

    method = body.get("method")
    if method not in CONTACT_KIND:
        return _error("invalid_method", f"method must be callback or email, not {method!r}")
    contact_details = body.get("contact") if isinstance(body.get("contact"), dict) else {}
    contact = contact_details.get(CONTACT_KIND[method])
    if not isinstance(contact, str) or not contact.strip():
        return _error(
            "invalid_contact", f"a {method} follow-up needs contact.{CONTACT_KIND[method]}"
        )
    contact = contact.strip()
    due_at = _naive_utc(body.get("due_at"))
    if due_at is None:
        return _error("invalid_due_at", "due_at must be an ISO 8601 date-time")

    ticket = session.execute(
        sa.select(Ticket).where(Ticket.handoff_id == body["handoff_id"])
    ).scalar_one_or_none()
    if ticket is not None and ticket.conversation_id != body["conversation_id"]:
        return _error("conversation_mismatch", "handoff_id belongs to another conversation")

    session.add(
        FollowUp(
            follow_up_id=follow_up_id,
            handoff_id=body["handoff_id"],
            conversation_id=body["conversation_id"],
            ticket_id=ticket.ticket_id if ticket is not None else None,
            origin=body["origin"],
            method=method,
            contact=contact,
            reason=body["reason"],
            reason_text=body.get("reason_text") or "",
            queue=body["queue"],
            priority=body["priority"],
            language=body["language"],
            customer=body.get("customer") or {},
            lead=body.get("lead"),
            transcript=body.get("transcript") or [],
            due_at=due_at,
            state=OPEN,
            created_at=utcnow(),
        )
    )
    if ticket is not None:
        text = _entry_text(method, contact)
        already = any(e.kind == ENTRY_KIND and e.text.startswith(text) for e in ticket.entries)
        if not already:
            session.add(
                TicketEntry(ticket=ticket, kind=ENTRY_KIND, text=text + " Task on the Follow-ups page.")
            )
    session.flush()
    return 200, {"follow_up_id": follow_up_id}


# --- the agents' actions -------------------------------------------------------------------------


class FollowUpError(Exception):
    """An action on a follow-up that cannot be done; the message says why, for the agent."""


class FollowUpNotFound(FollowUpError, LookupError):
    def __init__(self, follow_up_id: str) -> None:
        super().__init__(f"There is no follow-up {follow_up_id}.")
        self.follow_up_id = follow_up_id


class FollowUpClosed(FollowUpError):
    def __init__(self, follow_up: FollowUp) -> None:
        super().__init__("This follow-up is already closed; nothing was changed.")
        self.follow_up = follow_up


class NotTheOwner(FollowUpError):
    def __init__(self, follow_up: FollowUp, action: str) -> None:
        super().__init__(
            f"{follow_up.owner} has this follow-up; only they can {action} it. Nothing was changed."
        )
        self.follow_up = follow_up
        self.owner = follow_up.owner


def _phone_pattern(digits: str) -> str:
    """``%3%1%6%…%``: LIKE text matched by any way of writing a number with these digits."""
    return "%" + "%".join(digits) + "%"


def customer_filter(columns: Iterable[Any], customer: Customer) -> Any:
    """A SQL pre-filter: rows whose ``columns`` (JSON or text) may name ``customer``; a superset,
    to be checked exactly in Python."""
    clauses = []
    values = [v.lower() for v in (customer.email, customer.customer_id) if v]
    needles = [json.dumps(v)[1:-1] for v in values]  # as stored JSON text writes them
    for column in columns:
        text = sa.func.lower(sa.cast(column, sa.Text))
        if needles:
            clauses.append(like_any(text, needles + values))
        digits = normalise_phone(customer.phone)
        if digits:
            clauses.append(text.like(_phone_pattern(digits)))
    return sa.or_(*clauses) if clauses else sa.false()


def names_customer(follow_up: FollowUp, customer: Customer) -> bool:
    """Whether the follow-up's customer, lead answers or contact detail is ``customer``."""
    if customer.matches(follow_up.customer):
        return True
    if customer.matches_value(follow_up.contact_kind, follow_up.contact):
        return True
    lead = follow_up.lead if isinstance(follow_up.lead, dict) else {}
    answers = lead.get("answers") if isinstance(lead.get("answers"), dict) else {}
    return customer.matches(answers)


class FollowUpStore:
    """All reads and writes of follow-up tasks (synchronous; call through ``asyncio.to_thread``)."""

    def __init__(self, session_factory: sessionmaker) -> None:
        self._sessions = session_factory

    @property
    def session_factory(self) -> sessionmaker:
        return self._sessions

    # --- pages -----------------------------------------------------------------------------------

    def open_follow_ups(self) -> list[FollowUp]:
        """Open tasks, the one due first first."""
        with self._sessions() as session:
            return list(
                session.execute(
                    sa.select(FollowUp)
                    .where(FollowUp.state == OPEN)
                    .order_by(FollowUp.due_at, FollowUp.id)
                )
                .scalars()
                .all()
            )

    def recent_closed(self, limit: int = CLOSED_LISTED) -> list[FollowUp]:
        """The most recently closed tasks, newest first."""
        with self._sessions() as session:
            return list(
                session.execute(
                    sa.select(FollowUp)
                    .where(FollowUp.state != OPEN)
                    .order_by(FollowUp.closed_at.desc(), FollowUp.id.desc())
                    .limit(limit)
                )
                .scalars()
                .all()
            )

    def get(self, follow_up_id: str) -> FollowUp:
        """The task; :class:`FollowUpNotFound` if there is none."""
        with self._sessions() as session:
            return self._require(session, follow_up_id)

    def count_open(self) -> int:
        with self._sessions() as session:
            return session.execute(
                sa.select(sa.func.count(FollowUp.id)).where(FollowUp.state == OPEN)
            ).scalar_one()

    @staticmethod
    def _require(session: Session, follow_up_id: str) -> FollowUp:
        follow_up = session.execute(
            sa.select(FollowUp).where(FollowUp.follow_up_id == follow_up_id)
        ).scalar_one_or_none()
        if follow_up is None:
            raise FollowUpNotFound(follow_up_id)
        return follow_up

    def _update(self, follow_up_id: str, condition: Any, action: str, **values: Any) -> FollowUp:
        """Apply ``values`` when the task is open and ``condition`` holds; else raise why not."""
        with self._sessions() as session, session.begin():
            changed = session.execute(
                sa.update(FollowUp)
                .where(FollowUp.follow_up_id == follow_up_id, FollowUp.state == OPEN, condition)
                .values(**values)
                .execution_options(synchronize_session=False)
            ).rowcount
            follow_up = self._require(session, follow_up_id)
            session.refresh(follow_up)
            if changed:
                return follow_up
            if not follow_up.is_open:
                raise FollowUpClosed(follow_up)
            raise NotTheOwner(follow_up, action)

    def claim(self, follow_up_id: str, login: str) -> FollowUp:
        """``login`` takes a task nobody owns (claiming one's own task again changes nothing).

        Raises :class:`FollowUpNotFound`, :class:`FollowUpClosed`, or :class:`NotTheOwner` when a
        colleague has it.
        """
        return self._update(
            follow_up_id,
            sa.or_(FollowUp.owner.is_(None), FollowUp.owner == login),
            "reassign",
            owner=login,
        )

    def assign(self, follow_up_id: str, login: str, by: str) -> FollowUp:
        """``by`` gives the task to ``login``: allowed for its owner, or anyone when nobody owns
        it. (Whether ``login`` is an agent is the caller's check.)"""
        return self._update(
            follow_up_id,
            sa.or_(FollowUp.owner.is_(None), FollowUp.owner == by),
            "assign",
            owner=login,
        )

    def close(self, follow_up_id: str, login: str, outcome: str, note: str | None = None) -> FollowUp:
        """The owner (or anyone, when nobody owns it: they become its owner) closes the task as
        ``done`` or ``not_reached``, with an optional note."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, not {outcome!r}")
        return self._update(
            follow_up_id,
            sa.or_(FollowUp.owner.is_(None), FollowUp.owner == login),
            "close",
            owner=login,
            state=outcome,
            outcome_note=(note or "").strip() or None,
            closed_at=utcnow(),
            closed_by=login,
        )

    # --- privacy (handoff/privacy.py) ------------------------------------------------------------

    def find_conversations(self, customer: Customer) -> set[str]:
        """Conversations with a follow-up whose customer, lead answers or contact is ``customer``."""
        customer = Customer.from_mapping(customer.as_dict())  # normalised, however it was made
        found: set[str] = set()
        with self._sessions() as session:
            query = sa.select(FollowUp).where(
                customer_filter((FollowUp.customer, FollowUp.contact, FollowUp.lead), customer)
            )
            for follow_up in session.execute(query).scalars():
                if names_customer(follow_up, customer):
                    found.add(follow_up.conversation_id)
        return found

    #: Under the name the other stores use (:class:`handoff.privacy.ConversationStore`).
    find_customer = find_conversations

    def erase_conversations(
        self, conversation_ids: Iterable[str], dry_run: bool = False
    ) -> dict[str, int]:
        """Delete the follow-ups of these conversations and the record of the deliveries that
        made them; the counts (what would go, with ``dry_run``)."""
        counts = {"follow_ups": 0}
        with self._sessions() as session, session.begin():
            for batch in chunks(sorted(set(conversation_ids))):
                rows = session.execute(
                    sa.select(FollowUp.id, FollowUp.handoff_id).where(
                        FollowUp.conversation_id.in_(batch)
                    )
                ).all()
                if not rows:
                    continue
                counts["follow_ups"] += len(rows)
                if dry_run:
                    continue
                pks = [pk for pk, _ in rows]
                handoff_ids = sorted({handoff_id for _, handoff_id in rows})
                session.execute(
                    sa.delete(ProcessedEvent).where(
                        ProcessedEvent.event == EVENT, ProcessedEvent.handoff_id.in_(handoff_ids)
                    )
                )
                session.execute(sa.delete(FollowUp).where(FollowUp.id.in_(pks)))
        return counts

    def latest_activity(self, conversation_ids: list[str] | None = None) -> dict[str, datetime]:
        """The latest moment (created, closed) of each conversation's follow-ups, naive UTC."""
        query = sa.select(
            FollowUp.conversation_id,
            sa.func.max(FollowUp.created_at),
            sa.func.max(FollowUp.closed_at),
        ).group_by(FollowUp.conversation_id)
        latest: dict[str, datetime] = {}
        with self._sessions() as session:
            batches = [None] if conversation_ids is None else list(chunks(conversation_ids))
            for batch in batches:
                selected = query if batch is None else query.where(FollowUp.conversation_id.in_(batch))
                for conversation_id, created, closed in session.execute(selected):
                    latest[conversation_id] = max(m for m in (created, closed) if m is not None)
        return latest

    def stale_conversations(self, cutoff: float) -> set[str]:
        """Conversations whose follow-ups saw nothing since ``cutoff`` (Unix time)."""
        before = datetime.fromtimestamp(cutoff, timezone.utc).replace(tzinfo=None)
        return {c for c, moment in self.latest_activity().items() if moment < before}

    def recent_among(self, conversation_ids: Iterable[str], cutoff: float) -> set[str]:
        since = datetime.fromtimestamp(cutoff, timezone.utc).replace(tzinfo=None)
        latest = self.latest_activity(list(conversation_ids))
        return {c for c, moment in latest.items() if moment >= since}

    def expire_before(self, cutoff: datetime) -> dict[str, int]:
        """Erase the follow-ups of conversations whose follow-ups saw nothing (created, closed)
        since ``cutoff`` (naive UTC); the counts."""
        stale = {c for c, moment in self.latest_activity().items() if moment < cutoff}
        return self.erase_conversations(stale)


# --- the page ------------------------------------------------------------------------------------

FOLLOW_UPS_KEY = web.AppKey("follow_ups", FollowUpStore)


def attach(app: web.Application, session_factory: sessionmaker) -> None:
    """Put a :class:`FollowUpStore` on ``app`` (under :data:`FOLLOW_UPS_KEY`), creating its table
    if the database was made before follow-ups existed."""
    bind = session_factory.kw.get("bind")
    if bind is not None:
        FollowUp.__table__.create(bind=bind, checkfirst=True)
    app[FOLLOW_UPS_KEY] = FollowUpStore(session_factory)


def now() -> datetime:
    """The business clock (``handoff.hours.now``, which ``HANDOFF_NOW`` may set), else real UTC."""
    try:
        hours = importlib.import_module("handoff.hours")
    except ImportError:
        return datetime.now(timezone.utc)
    clock = getattr(hours, "now", None)
    return clock() if callable(clock) else datetime.now(timezone.utc)


@dataclass(frozen=True)
class Row:
    """One open follow-up as the page shows it."""

    follow_up: FollowUp
    overdue: bool
    #: How far past due (overdue) or until due, in seconds.
    seconds: float
    owner_name: str | None


def rows(follow_ups: Iterable[FollowUp], at: datetime, names: dict[str, str]) -> list[Row]:
    """The tasks with overdue marked relative to ``at`` (aware)."""
    moment = at.astimezone(timezone.utc).replace(tzinfo=None)
    result = []
    for follow_up in follow_ups:
        delta = (moment - follow_up.due_at).total_seconds()
        owner = follow_up.owner
        result.append(
            Row(follow_up, delta > 0, abs(delta), names.get((owner or "").lower(), owner))
        )
    return result


def _agent_names(request: web.Request) -> dict[str, str]:
    from helpdesk.keys import AGENTS_KEY

    directory = request.app[AGENTS_KEY]
    names = {}
    for login in directory.logins():
        agent = directory.get(login)
        if agent is not None:
            names[login] = agent.name
    return names


async def follow_ups_page(request: web.Request) -> web.Response:
    from helpdesk.keys import FLASH_KEY
    from helpdesk.views import render

    store = request.app[FOLLOW_UPS_KEY]
    open_items = await asyncio.to_thread(store.open_follow_ups)
    closed = await asyncio.to_thread(store.recent_closed)
    at = now()
    names = _agent_names(request)
    flash_key = request.cookies.get(FLASH_COOKIE)
    flash = request.app[FLASH_KEY].pop(flash_key, FLASH_PAGE)
    response = render(
        request,
        "follow_ups.html",
        rows=rows(open_items, at, names),
        closed=closed,
        agent_names=names,
        now=at,
        flash=flash,
    )
    if flash_key and flash is not None:
        response.del_cookie(FLASH_COOKIE, path="/")
    return response


def _back(
    request: web.Request, message: str | None = None, level: str = "error", **drafts: str
) -> web.HTTPSeeOther:
    """303 to the Follow-ups page, with a one-time notice when there is one."""
    from helpdesk.keys import FLASH_KEY

    response = web.HTTPSeeOther(location="/follow-ups")
    if message is not None:
        key = request.app[FLASH_KEY].put(Flash(FLASH_PAGE, level, message, **drafts))
        response.set_cookie(FLASH_COOKIE, key, max_age=600, path="/", httponly=True, samesite="Lax")
    return response


async def _form(request: web.Request) -> tuple[str, dict[str, str]]:
    from helpdesk.views import check_same_origin

    check_same_origin(request)
    form = await request.post()
    fields = {key: str(value) for key, value in form.items() if isinstance(value, str)}
    return request.match_info["follow_up_id"], fields


async def _act(request: web.Request, action: Any, *args: Any, **drafts: str) -> FollowUp:
    try:
        return await asyncio.to_thread(action, *args)
    except FollowUpError as error:
        raise _back(request, str(error), **drafts) from None


def _agent(request: web.Request) -> Any:
    from helpdesk.views import current_agent

    return current_agent(request)


async def claim(request: web.Request) -> web.Response:
    follow_up_id, _fields = await _form(request)
    agent = _agent(request)
    follow_up = await _act(request, request.app[FOLLOW_UPS_KEY].claim, follow_up_id, agent.login)
    logger.info("%s claimed follow-up %s", agent.login, follow_up.follow_up_id)
    raise _back(request)


async def assign(request: web.Request) -> web.Response:
    from helpdesk.keys import AGENTS_KEY

    follow_up_id, fields = await _form(request)
    agent = _agent(request)
    colleague = request.app[AGENTS_KEY].get(fields.get("login", ""))
    if colleague is None:
        raise _back(request, "Choose a colleague to assign the follow-up to.")
    await _act(
        request, request.app[FOLLOW_UPS_KEY].assign, follow_up_id, colleague.login, agent.login
    )
    logger.info("%s assigned follow-up %s to %s", agent.login, follow_up_id, colleague.login)
    raise _back(request, f"Assigned to {colleague.name}.", level="info")


async def close(request: web.Request) -> web.Response:
    from helpdesk.views import MAX_TEXT

    follow_up_id, fields = await _form(request)
    agent = _agent(request)
    outcome = fields.get("outcome", "")
    note = fields.get("note", "").strip()
    # The note is kept for the row it was typed in if the close is refused.
    drafts = {"draft_text": follow_up_id, "draft_note": note}
    if outcome not in OUTCOMES:
        raise _back(request, "Choose Done or Not reached.", **drafts)
    if len(note) > MAX_TEXT:
        raise _back(
            request, f"The note is {len(note)} characters long; the limit is {MAX_TEXT}.", **drafts
        )
    store = request.app[FOLLOW_UPS_KEY]
    await _act(request, store.close, follow_up_id, agent.login, outcome, note or None, **drafts)
    logger.info("%s closed follow-up %s as %s", agent.login, follow_up_id, outcome)
    raise _back(request)


def setup(app: web.Application) -> None:
    """Add the Follow-ups page and its actions (signed-in agents only, like every other page);
    nothing when they are there already."""
    router = app.router
    if "follow_ups" in router.named_resources():
        return
    router.add_get("/follow-ups", follow_ups_page, name="follow_ups")
    router.add_post("/follow-ups/{follow_up_id}/claim", claim, name="follow_up_claim")
    router.add_post("/follow-ups/{follow_up_id}/assign", assign, name="follow_up_assign")
    router.add_post("/follow-ups/{follow_up_id}/close", close, name="follow_up_close")


def follow_up_link(follow_up_id: str) -> str:
    """Where a follow-up is listed (the page, at its row)."""
    return f"/follow-ups#follow-up-{quote(follow_up_id)}"
