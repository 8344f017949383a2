"""Signed helpdesk → assistant requests (agent.joined, agent.message, agent.handback).

An event that got no answer, a 5xx, 408 or 429 is sent again, signed again, with the same
``event_id`` (docs/HANDOFF_CONTRACT.md, "Status codes"): the assistant does an event once, and
answers ``duplicate`` to an event it already did. ``ATTEMPTS`` tries in all, after ``Retry-After``
or a short backoff.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp

from handoff.delivery import backoff_delay
from handoff.schemas import SchemaValidationError, validate_inbound
from handoff.settings import Settings
from handoff.signing import sign_headers

logger = logging.getLogger(__name__)

#: Path of the assistant's helpdesk webhook (the Rasa custom channel), after ``settings.rasa_url``.
ASSISTANT_WEBHOOK_PATH = "/webhooks/helpdesk/webhook"
#: How many times an event is sent when the assistant does not answer or answers a temporary failure.
ATTEMPTS = 3
#: The longest pause between two tries (the agent is waiting for the page).
RETRY_PAUSE_CAP_SECONDS = 2.0
#: Answers after which the same event is sent again.
TEMPORARY_STATUSES = frozenset({408, 429}) | frozenset(range(500, 600))


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
        delivery = Delivery(False, None, "not sent", event_id)
        for attempt in range(1, ATTEMPTS + 1):
            delivery, retry_after = await self._post(event, handoff_id, raw, event_id)
            if delivery.ok or not _temporary(delivery) or attempt == ATTEMPTS:
                break
            pause = retry_after if retry_after is not None else backoff_delay(attempt, base=0.25)
            logger.info("%s for handoff %s: sent again in %.1f s (try %d of %d)", event, handoff_id, min(pause, RETRY_PAUSE_CAP_SECONDS), attempt + 1, ATTEMPTS)
            await asyncio.sleep(min(pause, RETRY_PAUSE_CAP_SECONDS))
        if not delivery.ok and _temporary(delivery) and ATTEMPTS > 1:
            return Delivery(False, delivery.status, f"{delivery.message} (tried {ATTEMPTS} times)", event_id)
        return delivery

    async def _post(self, event: str, handoff_id: str, raw: bytes, event_id: str) -> tuple[Delivery, float | None]:
        """One signed request; what happened, and the answer's ``Retry-After`` in seconds."""
        headers = sign_headers(self._settings.secret, raw, event_id)
        timeout = aiohttp.ClientTimeout(total=self._settings.delivery_timeout)
        try:
            async with self._session.post(self.url, data=raw, headers=headers, timeout=timeout) as response:
                answer = await response.read()
                status = response.status
                retry_after = _seconds(response.headers.get("Retry-After"))
        except asyncio.TimeoutError:
            logger.warning("%s for handoff %s: no answer from the assistant", event, handoff_id)
            return Delivery(
                False,
                None,
                f"the assistant did not answer within {self._settings.delivery_timeout:g} s "
                "(it may still have received it; check before sending again)",
                event_id,
            ), None
        except aiohttp.ClientError as exc:
            logger.warning("%s for handoff %s: assistant unreachable: %s", event, handoff_id, exc)
            return Delivery(False, None, f"could not reach the assistant at {self.url}", event_id), None

        logger.info("%s for handoff %s: assistant answered %s", event, handoff_id, status)
        if 200 <= status < 300:
            return Delivery(True, status, "ok", event_id), None
        detail = _answer_text(answer) or "(no explanation given)"
        return Delivery(False, status, detail, event_id), retry_after


def _temporary(delivery: Delivery) -> bool:
    """No answer, or an answer that says to try again."""
    return delivery.status is None or delivery.status in TEMPORARY_STATUSES


def _seconds(value: str | None) -> float | None:
    """``Retry-After`` in seconds (the delay form; a date is not used)."""
    if value is None or not value.strip().isdigit():
        return None
    return float(value.strip())
