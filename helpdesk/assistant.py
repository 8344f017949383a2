"""Signed helpdesk → assistant requests (agent.joined, agent.message, agent.handback)."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp

from handoff.schemas import SchemaValidationError, validate_inbound
from handoff.settings import Settings
from handoff.signing import sign_headers

logger = logging.getLogger(__name__)

#: Path of the assistant's helpdesk webhook (the Rasa custom channel), after ``settings.rasa_url``.
ASSISTANT_WEBHOOK_PATH = "/webhooks/helpdesk/webhook"


@dataclass(frozen=True)
class Delivery:
    """What happened to one request to the assistant."""

    ok: bool
    status: int | None  # None when no HTTP answer came back
    message: str  # for a person: what the assistant answered, or why it could not be reached
    event_id: str


def _answer_text(raw: bytes) -> str:
    """The readable part of an error answer: its JSON message field, or the text itself."""
    text = raw.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        for key in ("message", "error", "detail", "reason"):
            if isinstance(data.get(key), str) and data[key].strip():
                text = data[key].strip()
                break
    return text[:300] + ("..." if len(text) > 300 else "")


class AssistantClient:
    """Sends agent events to ``<settings.rasa_url>/webhooks/helpdesk/webhook``, signed."""

    def __init__(self, settings: Settings, session: aiohttp.ClientSession) -> None:
        self._settings = settings
        self._session = session
        self.url = settings.rasa_url.rstrip("/") + ASSISTANT_WEBHOOK_PATH

    async def send(
        self,
        event: str,
        *,
        handoff_id: str,
        conversation_id: str,
        agent_name: str,
        **fields: Any,
    ) -> Delivery:
        """Send one event with a new ``event_id``; never raises for network or HTTP failures."""
        event_id = str(uuid.uuid4())
        body = {
            "event": event,
            "event_id": event_id,
            "handoff_id": handoff_id,
            "conversation_id": conversation_id,
            "agent": {"name": agent_name},
            **fields,
        }
        try:
            validate_inbound(body)
        except SchemaValidationError as exc:
            return Delivery(False, None, f"not sent: {exc}", event_id)

        raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        headers = sign_headers(self._settings.secret, raw, event_id)
        timeout = aiohttp.ClientTimeout(total=self._settings.delivery_timeout)
        try:
            async with self._session.post(
                self.url, data=raw, headers=headers, timeout=timeout
            ) as response:
                answer = await response.read()
                status = response.status
        except asyncio.TimeoutError:
            logger.warning("%s for handoff %s: no answer from the assistant", event, handoff_id)
            return Delivery(
                False,
                None,
                f"the assistant did not answer within {self._settings.delivery_timeout:g} s "
                "(it may still have received it; check before sending again)",
                event_id,
            )
        except aiohttp.ClientError as exc:
            logger.warning("%s for handoff %s: assistant unreachable: %s", event, handoff_id, exc)
            return Delivery(False, None, f"could not reach the assistant at {self.url}", event_id)

        logger.info("%s for handoff %s: assistant answered %s", event, handoff_id, status)
        if 200 <= status < 300:
            return Delivery(True, status, "ok", event_id)
        detail = _answer_text(answer) or "(no explanation given)"
        return Delivery(False, status, detail, event_id)
