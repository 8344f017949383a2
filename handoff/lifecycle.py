"""A handoff's life: how it opens (record it, pause the conversation), how it ends, why.

The action server (:mod:`actions.handoff_actions`) and the Rasa server (a failing custom action,
:mod:`handoff.server.patches.action_failure`) both open handoffs with :func:`open_handoff` and
return :func:`pause_events`; the Rasa server ends them with one of :class:`EndCause` and takes
the conversation back with :mod:`handoff.server.lifecycle`. No Rasa imports: the events are
Rasa's event dicts, which rasa_sdk returns as they are and Rasa reads with
``Event.from_parameters``.

The store is synchronous (SQLAlchemy); the functions here run it in a worker thread, so that an
event loop (the action server's, the Rasa server's) never waits on the database.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from handoff.settings import Settings
from handoff.store import (
    RENAMED_END_CAUSES,
    TASK_NO_AGENT,
    TASK_WAIT_UPDATE,
    Handoff,
    HandoffStore,
    OutboxEvent,
)


class EndCause(str, enum.Enum):
    """Why a handoff ended, as stored in ``handoffs.end_cause`` and sent in ``handoff.ended``."""

    HANDED_BACK = "handed_back"  # the agent handed the conversation back (agent.handback)
    CUSTOMER_RESTART = "customer_restart"  # the customer typed /restart during the handoff
    SESSION_EXPIRED = "session_expired"  # Rasa started a new session after inactivity
    NO_AGENT_TIMEOUT = "no_agent_timeout"  # nobody joined within HANDOFF_NO_AGENT_TIMEOUT
    CUSTOMER_LEFT = "customer_left"  # the customer gave up waiting
    DELIVERY_REJECTED = "delivery_rejected"  # the helpdesk refused handoff.requested for good
    NO_AGENT_AVAILABLE = "no_agent_available"  # the helpdesk answered agents_available: 0
    OUT_OF_HOURS = "out_of_hours"  # the queue's business hours are closed (handoff_rules.yml)

    def __str__(self) -> str:
        return self.value

    @classmethod
    def _missing_(cls, value: object) -> EndCause | None:
        # An older spelling still found in a database that was not migrated yet.
        renamed = RENAMED_END_CAUSES.get(value) if isinstance(value, str) else None
        return cls(renamed) if renamed is not None else None

    @classmethod
    def read(cls, value: str | None) -> EndCause | None:
        """The cause of a stored value; None for no cause or one this version does not know."""
        if value is None:
            return None
        try:
            return cls(value)
        except ValueError:
            return None


#: Ends after which the customer is offered a callback or an email answer (follow_up_form).
FOLLOW_UP_CAUSES = frozenset({EndCause.NO_AGENT_TIMEOUT, EndCause.NO_AGENT_AVAILABLE, EndCause.OUT_OF_HOURS})

#: Helpdesk answers that refuse a message for good: retrying cannot help.
PERMANENT_STATUSES = frozenset({400, 404, 410, 413, 422})

#: Slots of an offer or escalation in progress: the person takes it from here.
PENDING_SLOTS = ("handoff_offered", "escalation", "escalation_trigger")
HANDOFF_SLOT = "handoff_id"
REQUESTED_SLOT = "requested_slot"
LISTEN_ACTION = "action_listen"


@dataclass(frozen=True)
class Opened:
    """The handoff :func:`open_handoff` found or recorded."""

    handoff: Handoff
    outbox: OutboxEvent | None  # the queued handoff.requested; None for an existing handoff
    created: bool


def timers(settings: Settings) -> dict[str, float]:
    """The tasks every new handoff schedules, with their delays in seconds."""
    tasks = {TASK_NO_AGENT: settings.no_agent_timeout}
    if settings.wait_update_after < settings.no_agent_timeout:
        tasks[TASK_WAIT_UPDATE] = settings.wait_update_after
    return tasks


def _open(store: HandoffStore, payload: dict[str, Any], settings: Settings) -> Opened:
    existing = store.active_handoff(payload["conversation_id"])
    if existing is not None:
        return Opened(existing, None, False)
    handoff, outbox = store.create_handoff(payload, tasks=timers(settings))
    return Opened(handoff, outbox, True)


async def open_handoff(store: HandoffStore, payload: dict[str, Any], settings: Settings) -> Opened:
    """Record the handoff of ``payload`` (a ``handoff.requested``) with its outbox entry and
    timers, or find the conversation's active one: a customer is never queued twice."""
    return await asyncio.to_thread(_open, store, payload, settings)


async def active_handoff(store: HandoffStore, conversation_id: str) -> Handoff | None:
    """The conversation's handoff waiting for or talking to a person, if any."""
    return await asyncio.to_thread(store.active_handoff, conversation_id)


async def get_handoff(store: HandoffStore, handoff_id: str) -> Handoff | None:
    return await asyncio.to_thread(store.get_handoff, handoff_id)


async def end_handoff(store: HandoffStore, handoff_id: str, cause: EndCause) -> bool:
    """End an active handoff for ``cause``; False when it had already ended."""
    return await asyncio.to_thread(store.end_handoff, handoff_id, cause)


async def record_ticket(store: HandoffStore, handoff_id: str, ticket_id: str | None, wait: int | None) -> None:
    await asyncio.to_thread(store.record_ticket, handoff_id, ticket_id, wait)


def pause_events(
    handoff_id: str, active_loop: str | None = None, slots: Mapping[str, Any] | None = None, extra: Iterable[dict] = ()
) -> list[dict[str, Any]]:
    """The events that hand the conversation to a person: the handoff's id, ``extra`` (e.g. the
    language found), no form or pending offer left to resume afterwards, then the pause.

    The closing ``action_listen`` ends the bot's turn as Rasa's own loop would have (a paused
    conversation stops predicting before it gets there). Without it Rasa's default rules, which
    only fire after ``action_listen``, would ignore a customer's ``/restart`` during the handoff.
    """
    slots = slots or {}
    events = [slot_event(HANDOFF_SLOT, handoff_id), *extra]
    if active_loop:
        events += [{"event": "active_loop", "name": None, "timestamp": None}, slot_event(REQUESTED_SLOT, None)]
    events += [slot_event(slot, None) for slot in PENDING_SLOTS if slots.get(slot) is not None]
    return [
        *events,
        {"event": "pause", "timestamp": None},
        {"event": "action", "name": LISTEN_ACTION, "policy": None, "confidence": None, "timestamp": None},
    ]


def slot_event(name: str, value: Any) -> dict[str, Any]:
    return {"event": "slot", "timestamp": None, "name": name, "value": value}
