"""The ``helpdesk`` input channel: where the helpdesk talks back to the assistant.

``POST /webhooks/helpdesk/webhook`` takes the signed ``agent.joined``, ``agent.message`` and
``agent.handback`` events of docs/HANDOFF_CONTRACT.md. Agent messages are kept in the tracker as
bot turns marked ``handoff_role: agent`` and pushed to the customer on the channel they last used
(where that channel can take pushes: socket.io, callback, ...). A hand-back resumes the
conversation and triggers ``EXTERNAL_handback`` so the bot picks up where the agent left off.

Configure it in ``credentials.yml``::

    handoff.channel.HelpdeskInput:
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import (
    InputChannel,
    OutputChannel,
    UserMessage,
)
from rasa.shared.core.events import BotUttered
from rasa.shared.core.trackers import DialogueStateTracker
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from handoff.schemas import SchemaValidationError, validate_inbound
from handoff.settings import get_settings
from handoff.signing import SignatureError, verify_request
from handoff.store import get_store
from handoff.tasks import TaskRunner, output_channel_for, resume

logger = logging.getLogger(__name__)

JOINED_RESPONSE = "utter_handoff_agent_joined"


def _error(status: int, message: str) -> HTTPResponse:
    return response.json({"error": message}, status=status)


class HelpdeskInput(InputChannel):
    """Receives the helpdesk's events for conversations that were handed off."""

    @classmethod
    def name(cls) -> str:
        return "helpdesk"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        return cls()

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = Blueprint("helpdesk_webhook", __name__)

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            return await self.handle(request)

        @webhook.listener("after_server_start")
        async def start_tasks(app: Any, _loop: Any) -> None:
            # Durable handoff timers (no-agent timeout, wait updates): see handoff/tasks.py.
            app.ctx.handoff_tasks = TaskRunner(app).start()

        @webhook.listener("before_server_stop")
        async def stop_tasks(app: Any, _loop: Any) -> None:
            runner = getattr(app.ctx, "handoff_tasks", None)
            if runner is not None:
                await runner.stop()

        return webhook

    async def handle(self, request: Request) -> HTTPResponse:
        settings = get_settings()
        raw = request.body or b""
        if len(raw) > settings.max_body_bytes:
            return _error(413, f"body larger than {settings.max_body_bytes} bytes")
        try:
            verify_request(settings.secret, request.headers, raw, settings.signature_tolerance)
        except SignatureError as exc:
            logger.warning("helpdesk event refused: %s", exc)
            return _error(401, str(exc))
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return _error(400, "body is not valid JSON")
        try:
            body = validate_inbound(body)
        except SchemaValidationError as exc:
            return _error(400, str(exc))

        store = get_store(settings.database_url)
        event_id, handoff_id = body["event_id"], body["handoff_id"]
        conversation_id = body["conversation_id"]
        if store.inbound_seen(event_id):
            return response.json({"status": "duplicate", "event_id": event_id})

        handoff = store.get_handoff(handoff_id)
        agent = request.app.ctx.agent
        if handoff is None or handoff.conversation_id != conversation_id:
            return _error(404, "unknown handoff for this conversation")
        if not await agent.tracker_store.exists(conversation_id):
            return _error(404, "unknown conversation")

        async with agent.lock_store.lock(conversation_id):
            # Checked again inside the lock: a concurrent retry or a restart may have won.
            if store.inbound_seen(event_id):
                return response.json({"status": "duplicate", "event_id": event_id})
            handoff = store.get_handoff(handoff_id)
            if handoff is None or not handoff.is_active:
                cause = handoff.end_cause if handoff else None
                return _error(409, f"the handoff is not active (ended: {cause})")
            tracker = await agent.processor.get_tracker(conversation_id)
            output = output_channel_for(request.app, tracker)
            agent_name = (body.get("agent") or {}).get("name") or "A colleague"
            kind = body["event"]
            if kind == "agent.handback":
                if not store.end_handoff(handoff_id, "handback"):
                    return _error(409, "the handoff is not active")
                await resume(agent, tracker, output)
            else:
                store.mark_assigned(handoff_id, agent_name)
                if kind == "agent.joined":
                    event = await self._joined_notice(agent, tracker, output, agent_name)
                else:
                    event = BotUttered(
                        text=body["text"],
                        metadata={"handoff_role": "agent", "agent_name": agent_name},
                    )
                tracker.update(event)
                await agent.processor.execute_side_effects([event], tracker, output)
                await agent.processor.save_tracker(tracker)
            store.record_inbound(event_id, handoff_id, kind)
        logger.info("helpdesk event %s for handoff %s done", kind, handoff_id)
        return response.json({"status": "ok", "event_id": event_id})

    @staticmethod
    async def _joined_notice(agent: Any, tracker: DialogueStateTracker, output: OutputChannel, agent_name: str) -> BotUttered:
        message = await agent.processor.nlg.generate(JOINED_RESPONSE, tracker, output.name(), agent_name=agent_name)
        text = (message or {}).get("text") or f"{agent_name} has joined the conversation."
        return BotUttered(text=text, metadata={"handoff_role": "notice", "agent_name": agent_name})
