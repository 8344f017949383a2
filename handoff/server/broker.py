"""Event broker that relays what the customer says during a handoff, on every channel.

While a conversation is paused Rasa still logs the customer's messages but runs no action, so
nothing forwards them by itself. An event broker sees every event of every channel, which makes it
the channel-agnostic place to do it. It also reconciles handoffs that Rasa ends silently (a
``/restart``, or a new session after inactivity) and runs the outbox worker that delivers and
retries everything queued for the helpdesk.

Configure it in ``endpoints.yml``::

    event_broker:
      type: handoff.server.broker.HandoffEventBroker
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from rasa.core.brokers.broker import EventBroker
from rasa.utils.endpoints import EndpointConfig

from handoff.conversation import is_external
from handoff.delivery import OutboxWorker
from handoff.idempotency import MESSAGE_ID_FIELD
from handoff.lifecycle import EndCause
from handoff.server import patches
from handoff.server.idempotency import in_transcript
from handoff.settings import Settings, get_settings
from handoff.store import REQUESTED, TASK_RESUME, HandoffStore, get_store, new_event, utc_iso
from handoff.triggers import load_rules

logger = logging.getLogger(__name__)

# Intents that are commands to Rasa rather than something said to the agent.
COMMAND_INTENTS = {"restart", "session_start"}
ENDING_EVENTS = {"restart": EndCause.CUSTOMER_RESTART, "session_started": EndCause.SESSION_EXPIRED}


class HandoffEventBroker(EventBroker):
    """Relays customer messages of active handoffs and reconciles handoffs Rasa ended."""

    def __init__(self, settings: Settings, store: HandoffStore, start_worker: bool = True) -> None:
        self.settings = settings
        self.store = store
        self.worker = OutboxWorker(store, settings)
        # The Rasa patches (a failing custom action hands off; the speed-ups), as the helpdesk
        # channel installs them too: whichever the configuration loads, they are in place.
        patches.install(on_recorded=self.worker.wake)
        if start_worker:
            self.worker.start()

    @classmethod
    async def from_endpoint_config(
        cls, broker_config: EndpointConfig | None, event_loop: asyncio.AbstractEventLoop | None = None
    ) -> HandoffEventBroker:
        settings = get_settings()
        return cls(settings, get_store(settings.database_url))

    def publish(self, event: dict[str, Any]) -> None:
        """Called by the tracker store for each new event (inside the conversation's turn)."""
        try:
            if self.handle(event):
                self.worker.wake()
        except Exception:
            # Never break the customer's turn; the event itself is safe in the tracker store.
            logger.exception("handoff relay failed for an event of type %s", event.get("event"))

    def handle(self, event: dict[str, Any]) -> bool:
        """Queue what ``event`` means for the helpdesk; True when something was queued."""
        kind = event.get("event")
        if kind not in ("user", *ENDING_EVENTS):
            return False
        conversation_id = event.get("sender_id")
        if not conversation_id:
            return False
        handoff = self.store.active_handoff(conversation_id)
        timestamp = float(event.get("timestamp") or 0)
        # Events up to the moment the handoff was recorded (the message that triggered it, and
        # its turn) are already in the handoff's transcript.
        if handoff is None or timestamp <= handoff.created_at:
            return False

        if kind == "user":
            intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
            if is_external(event) or intent in COMMAND_INTENTS or not event.get("text"):
                return False
            client_id = (event.get("metadata") or {}).get(MESSAGE_ID_FIELD)
            if in_transcript(conversation_id, client_id):
                return False  # its turn ran again after a replica died; the handoff already has it
            if handoff.state == REQUESTED and load_rules().waiting.gives_up(event["text"]):
                # Nobody has joined yet and the customer no longer wants to wait: the bot takes
                # the conversation back (a task, run after this turn has released its lock).
                ended = self.store.end_and_enqueue(
                    handoff.id,
                    EndCause.CUSTOMER_LEFT,
                    new_event("handoff.ended", handoff.id, conversation_id, cause=EndCause.CUSTOMER_LEFT.value),
                    task=TASK_RESUME,
                )
                if ended:
                    logger.info("handoff %s ended by the assistant: customer_left", handoff.id)
                return ended
            message = {"role": "customer", "text": event["text"], "timestamp": utc_iso(timestamp)}
            if isinstance(client_id, str) and client_id:
                message[MESSAGE_ID_FIELD] = client_id  # the channel's message id (handoff/idempotency.py)
            self.store.enqueue(new_event("conversation.message", handoff.id, conversation_id, message=message))
            return True

        cause = ENDING_EVENTS[kind]
        ended = self.store.end_and_enqueue(
            handoff.id, cause, new_event("handoff.ended", handoff.id, conversation_id, cause=cause.value)
        )
        if ended:
            logger.info("handoff %s ended by the assistant: %s", handoff.id, cause)
        return ended

    def is_ready(self) -> bool:
        return True

    async def close(self) -> None:
        await self.worker.stop()
