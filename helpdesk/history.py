"""A customer's earlier contacts, for the ticket page: their other tickets and follow-ups.

Another ticket or follow-up is the same customer's when, in this order:

1. both carry a *verified* customer id (a signed identity, ``customer.verified.customer_id``) and
   the ids are equal — the only match marked verified; two different verified ids are two
   different customers, whatever else they share;
2. else the email address, phone number or customer id the customer gave is the same (email
   lower-cased, phone by its digits; a follow-up's callback number or email address counts too) —
   marked unverified: anybody can type anybody's address;
3. else it is the same conversation (``conversation_id``).

The database is asked only for candidates (same conversation, or a customer text containing one of
the identifiers); each is then checked exactly. A repeat contact the assistant reported itself
(``previous_handoff`` in ``handoff.requested``) is added when no ticket here covers that handoff.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.orm import Session, sessionmaker

from handoff.privacy import Customer, identifiers, normalise_customer_id
from helpdesk.auth import display_name
from helpdesk.db import CLOSED, Ticket
from helpdesk.followups import (
    FOLLOW_UPS_KEY,
    FollowUp,
    customer_filter,
    follow_up_link,
)
from helpdesk.presentation import cause_label, is_verified, parse_time

#: How many contacts the ticket page lists.
LIMIT = 20
#: How many candidates of each kind the database hands over to be checked exactly.
CANDIDATES = 200

TICKET = "ticket"
FOLLOW_UP = "follow_up"

OUTCOME_LABELS = {
    "open": "still open",
    "done": "follow-up done",
    "not_reached": "follow-up: customer not reached",
    "no_agent_available": "nobody was available",
    "out_of_hours": "outside business hours",
    "delivery_rejected": "the helpdesk refused the handoff",
}

MATCH_LABELS = {
    "customer_id": "customer id",
    "email": "email",
    "phone": "phone number",
    "conversation_id": "conversation",
}


def outcome_label(code: str | None) -> str:
    if not code:
        return OUTCOME_LABELS["open"]
    return OUTCOME_LABELS.get(code) or cause_label(code)


@dataclass(frozen=True)
class Contact:
    """One earlier contact of the customer."""

    kind: str  # ticket | follow_up
    id: str  # ticket id, follow-up id, or (reported by the assistant) the handoff id
    when: datetime | None  # naive UTC
    reason: str
    reason_text: str
    queue: str | None
    outcome: str | None  # a ticket's close cause, "open", or a follow-up's state
    note: str | None  # the hand-back note or the follow-up's outcome note
    transcript: list[dict[str, Any]]
    matched_by: str  # customer_id | email | phone | conversation_id
    verified: bool  # matched by a verified customer id on both
    handoff_id: str | None = None
    conversation_id: str | None = None
    agent: str | None = None  # who handled it (ticket) or owns / closed it (follow-up)
    ticket_id: str | None = None  # a follow-up's ticket
    method: str | None = None  # a follow-up's callback | email
    contact: str | None = None  # a follow-up's phone number or email address
    #: From ``previous_handoff``: the assistant reported it; the helpdesk has no ticket of it.
    reported: bool = False
    customer: Mapping[str, Any] = field(default_factory=dict)

    @property
    def link(self) -> str | None:
        if self.reported:
            return None
        if self.kind == TICKET:
            return f"/tickets/{self.id}"
        return follow_up_link(self.id)

    @property
    def title(self) -> str:
        if self.kind == FOLLOW_UP:
            return "Email answer" if self.method == "email" else "Callback"
        return "Handoff" if self.reported else f"Ticket {self.id}"

    @property
    def outcome_text(self) -> str:
        return outcome_label(self.outcome)

    @property
    def matched_text(self) -> str:
        """``matched by verified customer id``, ``matched by email the customer gave —
        unverified`` or ``same conversation``."""
        if self.matched_by == "conversation_id":
            return "same conversation"
        what = MATCH_LABELS.get(self.matched_by, self.matched_by)
        if self.verified:
            return f"matched by verified {what}"
        return f"matched by {what} the customer gave — unverified"


@dataclass(frozen=True)
class _Identity:
    """What a contact says about who the customer is (normalised)."""

    values: dict[str, set[str]]
    verified_id: str | None
    conversation_id: str


def _identity(
    customer: Any, conversation_id: str, extra: Iterable[tuple[str, str]] = ()
) -> _Identity:
    values: dict[str, set[str]] = {}
    for kind, value in identifiers(customer).items():
        values.setdefault(kind, set()).add(value)
    for kind, raw in extra:
        value = identifiers({kind: raw}).get(kind)
        if value:
            values.setdefault(kind, set()).add(value)
    verified_id = None
    if isinstance(customer, Mapping) and is_verified(customer, "customer_id"):
        verified_id = normalise_customer_id(customer.get("customer_id"))
    return _Identity(values, verified_id, conversation_id)


def _match(mine: _Identity, theirs: _Identity) -> tuple[str, bool] | None:
    """(matched_by, verified), or None when the other contact is not this customer's."""
    if mine.verified_id and theirs.verified_id:
        if mine.verified_id == theirs.verified_id:
            return "customer_id", True
        return None  # two different signed-in customers
    for kind in ("email", "phone", "customer_id"):
        if mine.values.get(kind, set()) & theirs.values.get(kind, set()):
            return kind, False
    if mine.conversation_id == theirs.conversation_id:
        return "conversation_id", False
    return None


def _filter(identity: _Identity, conversation_column: Any, columns: Iterable[Any]) -> Any:
    clauses = [conversation_column == identity.conversation_id]
    # Every value of every kind: a customer may have given two addresses over time.
    for kind, values in identity.values.items():
        for value in values:
            clauses.append(customer_filter(columns, Customer(**{kind: value})))
    return sa.or_(*clauses)


def _ticket_contact(ticket: Ticket, matched: tuple[str, bool]) -> Contact:
    if ticket.state == CLOSED:
        outcome = ticket.close_cause
    else:
        outcome = "open"
    return Contact(
        kind=TICKET,
        id=ticket.ticket_id,
        when=ticket.created_at,
        reason=ticket.reason,
        reason_text=ticket.reason_text or "",
        queue=ticket.queue,
        outcome=outcome,
        note=ticket.handback_note,
        transcript=list(ticket.transcript or []),
        matched_by=matched[0],
        verified=matched[1],
        handoff_id=ticket.handoff_id,
        conversation_id=ticket.conversation_id,
        agent=ticket.agent_name,
        customer=ticket.customer or {},
    )


def _follow_up_contact(follow_up: FollowUp, matched: tuple[str, bool]) -> Contact:
    login = follow_up.closed_by or follow_up.owner
    return Contact(
        kind=FOLLOW_UP,
        id=follow_up.follow_up_id,
        when=follow_up.created_at,
        reason=follow_up.reason,
        reason_text=follow_up.reason_text or "",
        queue=follow_up.queue,
        outcome=follow_up.state,
        note=follow_up.outcome_note,
        transcript=list(follow_up.transcript or []),
        matched_by=matched[0],
        verified=matched[1],
        handoff_id=follow_up.handoff_id,
        conversation_id=follow_up.conversation_id,
        agent=display_name(login) if login else None,
        ticket_id=follow_up.ticket_id,
        method=follow_up.method,
        contact=follow_up.contact,
        customer=follow_up.customer or {},
    )


def _reported(previous: Any) -> Contact | None:
    """The assistant's ``previous_handoff``, as a contact."""
    if not isinstance(previous, Mapping) or not isinstance(previous.get("handoff_id"), str):
        return None
    moment = parse_time(previous.get("requested_at"))
    matched_by = previous.get("matched_by")
    transcript = previous.get("transcript")
    return Contact(
        kind=TICKET,
        id=previous["handoff_id"],
        when=moment.replace(tzinfo=None) if moment else None,
        reason=str(previous.get("reason") or ""),
        reason_text=str(previous.get("reason_text") or ""),
        queue=None,
        outcome=previous.get("outcome") if isinstance(previous.get("outcome"), str) else None,
        note=previous.get("note") if isinstance(previous.get("note"), str) else None,
        transcript=[t for t in transcript if isinstance(t, Mapping)]
        if isinstance(transcript, list)
        else [],
        matched_by=matched_by if isinstance(matched_by, str) else "conversation_id",
        verified=previous.get("verified") is True,
        handoff_id=previous["handoff_id"],
        conversation_id=previous.get("conversation_id")
        if isinstance(previous.get("conversation_id"), str)
        else None,
        reported=True,
    )


def _newest_first(contact: Contact) -> tuple[datetime, str]:
    return contact.when or datetime.min, contact.id


def earlier_contacts(session: Session, ticket: Ticket, limit: int = LIMIT) -> list[Contact]:
    """The customer's other tickets and follow-ups, newest first (at most ``limit``); see the
    module's description for how they are matched. ``ticket`` itself and the follow-ups of its own
    handoff are left out (its timeline shows those)."""
    mine = _identity(ticket.customer or {}, ticket.conversation_id)
    found: list[Contact] = []

    tickets = session.execute(
        sa.select(Ticket)
        .where(Ticket.id != ticket.id, _filter(mine, Ticket.conversation_id, [Ticket.customer]))
        .order_by(Ticket.created_at.desc(), Ticket.id.desc())
        .limit(CANDIDATES)
    ).scalars()
    for other in tickets:
        matched = _match(mine, _identity(other.customer or {}, other.conversation_id))
        if matched:
            found.append(_ticket_contact(other, matched))

    follow_ups = session.execute(
        sa.select(FollowUp)
        .where(
            FollowUp.handoff_id != ticket.handoff_id,
            _filter(mine, FollowUp.conversation_id, [FollowUp.customer, FollowUp.contact]),
        )
        .order_by(FollowUp.created_at.desc(), FollowUp.id.desc())
        .limit(CANDIDATES)
    ).scalars()
    for follow_up in follow_ups:
        theirs = _identity(
            follow_up.customer or {},
            follow_up.conversation_id,
            extra=[(follow_up.contact_kind, follow_up.contact)],
        )
        matched = _match(mine, theirs)
        if matched:
            found.append(_follow_up_contact(follow_up, matched))

    payload = ticket.payload if isinstance(ticket.payload, Mapping) else {}
    reported = _reported(payload.get("previous_handoff"))
    if reported is not None and reported.handoff_id != ticket.handoff_id:
        covered = {c.handoff_id for c in found if c.kind == TICKET}
        if reported.handoff_id not in covered:
            found.append(reported)

    found.sort(key=_newest_first, reverse=True)
    return found[:limit]


def contacts_for(session_factory: sessionmaker, ticket: Ticket) -> list[Contact]:
    """:func:`earlier_contacts` in a session of its own."""
    with session_factory() as session:
        return earlier_contacts(session, ticket)


async def ticket_contacts(request: web.Request, ticket: Ticket) -> list[Contact]:
    """The ticket page's earlier contacts (the database is read in a worker thread)."""
    store = request.app[FOLLOW_UPS_KEY]
    return await asyncio.to_thread(contacts_for, store.session_factory, ticket)
