"""Size limits on what customers send to the Rasa server.

Rasa 3.6 sets no limit of its own: Sanic takes request bodies up to 100 MB (``REQUEST_MAX_SIZE``)
and engine.io socket.io packets up to 1 MB, and NLU time grows with the text (a 100 kB message
holds the server for seconds). This module, installed by the ``helpdesk`` channel
(handoff/server/helpdesk_channel.py) when the server starts, adds:

- channel webhooks (``POST /webhooks/<channel>/webhook``, e.g. REST): the body is refused with 413
  once it passes ``HANDOFF_MAX_MESSAGE_BYTES`` while it is read (chunked bodies too), and a JSON
  body whose ``message`` (or ``text``) is longer than ``HANDOFF_MAX_MESSAGE_CHARS`` is refused
  with 413 before NLU sees it;
- socket.io: engine.io's ``max_http_buffer_size`` is set to ``HANDOFF_MAX_MESSAGE_BYTES`` (a larger
  packet closes that socket). The character limit on socket.io messages is the channel's own
  (handoff/server/socketio.py: refused before NLU, with a notice to the socket).

The helpdesk's own webhook streams with its own limit (``HANDOFF_MAX_BODY_BYTES``); Rasa's HTTP
API (model upload, ...) keeps Sanic's limit.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from sanic import response
from sanic.request import Request
from sanic.response import HTTPResponse

from handoff.settings import Settings

logger = logging.getLogger(__name__)

#: Where Rasa mounts input channels' webhooks.
CHANNEL_WEBHOOK = re.compile(r"^/webhooks/(?P<channel>[^/]+)/webhook/?$")
#: Channels with limits of their own.
EXEMPT_CHANNELS = {"helpdesk"}
TEXT_FIELDS = ("message", "text")


def is_customer_webhook(request: Request) -> bool:
    match = CHANNEL_WEBHOOK.match(request.path)
    return bool(match) and request.method == "POST" and match.group("channel") not in EXEMPT_CHANNELS


def too_long_text(raw: bytes, max_chars: int) -> int | None:
    """The length of the body's ``message``/``text`` when it is longer than ``max_chars``."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        return None  # not JSON: the channel answers for itself
    if not isinstance(body, dict):
        return None
    for name in TEXT_FIELDS:
        value = body.get(name)
        if isinstance(value, str) and len(value) > max_chars:
            return len(value)
    return None


def install(app: Any, settings: Settings) -> None:
    """Add the limits to the Sanic ``app`` (once; before its routers are finalised)."""
    if getattr(app.ctx, "handoff_limits", False):
        return
    app.ctx.handoff_limits = True
    max_bytes, max_chars = settings.max_message_bytes, settings.max_message_chars

    @app.signal("http.routing.after")
    async def limit_body(request: Request, route: Any, kwargs: Any, handler: Any) -> None:
        # Runs after routing and before Sanic reads the body: Sanic then answers 413 itself as
        # soon as more than max_bytes arrive, without holding them.
        if request.stream is not None and is_customer_webhook(request):
            request.stream.request_max_size = max_bytes

    async def limit_text(request: Request) -> HTTPResponse | None:
        if not is_customer_webhook(request):
            return None
        length = too_long_text(request.body or b"", max_chars)
        if length is None:
            return None
        logger.warning("refused a %d-character message on %s (limit %d)", length, request.path, max_chars)
        return response.json(
            {"error": f"the message is {length} characters long; at most {max_chars} are taken"}, status=413
        )

    app.register_middleware(limit_text, "request")


def limit_socketio(input_channels: list[Any], settings: Settings) -> None:
    """Lower engine.io's packet limit of the socket.io channels that are set up."""
    for channel in input_channels or []:
        sio = getattr(channel, "sio", None)
        eio = getattr(sio, "eio", None)
        if eio is not None and hasattr(eio, "max_http_buffer_size"):
            eio.max_http_buffer_size = settings.max_message_bytes
