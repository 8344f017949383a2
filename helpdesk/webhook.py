"""``POST /webhook``: assistant → helpdesk messages (handoff.requested, conversation.message,
handoff.ended), signed, validated and applied at most once per ``event_id``.
"""

from __future__ import annotations

import asyncio
import json
import logging

from aiohttp import web

from handoff.schemas import SchemaValidationError, validate_outbound
from handoff.signing import DELIVERY_HEADER, SignatureError, verify_request
from helpdesk.keys import LIVE_KEY, SETTINGS_KEY, STORE_KEY
from helpdesk.store import WebhookResult

logger = logging.getLogger("helpdesk.webhook")


#: What the agents' open pages are told about each accepted event.
_LIVE_KINDS = {
    "handoff.requested": "created",
    "conversation.message": "message",
    "handoff.ended": "closed",
    "follow_up.requested": "follow_up",
}


def _error(status: int, error: str, message: str) -> web.Response:
    return web.json_response({"error": error, "message": message}, status=status)


async def _read_limited(request: web.Request, limit: int) -> bytes | None:
    """The raw body, or None when it is larger than ``limit`` bytes."""
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _log(body: dict, result: WebhookResult) -> None:
    """One line per event: identifiers, classification and outcome; never text or customer data."""
    event = body["event"]
    parts = [event, f"handoff={body['handoff_id']}", f"ticket={result.ticket_id or '-'}"]
    if event == "handoff.requested":
        data = result.data
        wait = data.get("estimated_wait_seconds")
        parts += [
            f"reason={body['reason']}",
            f"priority={body['priority']}",
            f"queue={body['queue']}",
            f"language={body['language']}",
            "estimated_wait=" + ("-" if wait is None else f"{wait}s"),
            f"agents_available={data.get('agents_available', '-')}",
        ]
    elif event == "handoff.ended":
        parts.append(f"cause={body['cause']}")
    if result.duplicate:
        parts.append("(repeated delivery, answered from the first time)")
    elif result.status >= 300:
        parts.append(f"rejected {result.status}")
    logger.info(" ".join(parts))


async def handle_webhook(request: web.Request) -> web.Response:
    """Check size, signature, JSON and schema in that order, then apply the event."""
    settings = request.app[SETTINGS_KEY]
    raw = await _read_limited(request, settings.max_body_bytes)
    if raw is None:
        return _error(
            413, "body_too_large", f"the body is larger than {settings.max_body_bytes} bytes"
        )

    try:
        verify_request(settings.secret, request.headers, raw, settings.signature_tolerance)
    except SignatureError as exc:
        logger.warning("rejected a webhook request from %s: %s", request.remote, exc)
        return _error(401, "invalid_signature", str(exc))

    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        return _error(400, "invalid_json", f"the body is not valid JSON: {exc}")

    try:
        validate_outbound(body)
    except SchemaValidationError as exc:
        # The problems can quote the body's values (customer data): the answer says them, the log
        # line only names the event.
        event = body.get("event") if isinstance(body, dict) else None
        handoff = body.get("handoff_id") if isinstance(body, dict) else None
        logger.warning(
            "rejected a webhook body (%s, handoff=%s): %d problem(s), answered 400",
            event if isinstance(event, str) and len(event) <= 40 else "no known event",
            handoff if isinstance(handoff, str) and len(handoff) <= 40 else "-",
            len(exc.problems),
        )
        return _error(400, "invalid_body", str(exc))

    delivery = request.headers.get(DELIVERY_HEADER)
    if delivery != body["event_id"]:
        return _error(
            400,
            "delivery_mismatch",
            f"the {DELIVERY_HEADER} header must equal the body's event_id",
        )

    result = await asyncio.to_thread(request.app[STORE_KEY].process_event, body)
    _log(body, result)
    if result.status == 200 and not result.duplicate:
        request.app[LIVE_KEY].publish(_LIVE_KINDS[body["event"]], result.ticket_id)
    return web.Response(status=result.status, text=result.body, content_type="application/json")
