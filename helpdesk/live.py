"""Live updates for the agents' pages: server-sent events (``GET /events``).

Whatever changes a ticket (a webhook event, an agent's action) is published here; every open
console page holds an event stream and fetches the parts of the page that changed. The stream
carries only which ticket changed and how, never message text or customer data.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger("helpdesk.live")

#: Seconds between keep-alive comments, so proxies and browsers keep an idle stream open.
KEEPALIVE_SECONDS = 15.0
#: How long the browser waits before reconnecting a broken stream, in milliseconds.
RETRY_MILLISECONDS = 2000
_QUEUE_SIZE = 256


@dataclass(frozen=True)
class Change:
    """One change to one ticket: ``created``, ``message``, ``claimed``, ``replied`` or ``closed``."""

    kind: str
    ticket_id: str | None = None
    agent: str | None = None

    def as_sse(self) -> bytes:
        data: dict[str, Any] = {"kind": self.kind, "ticket_id": self.ticket_id}
        if self.agent:
            data["agent"] = self.agent
        return f"event: ticket\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


#: Sent to a subscriber that fell too far behind: it reloads everything instead.
RESYNC = Change("resync")


class LiveUpdates:
    """In-process publish/subscribe of :class:`Change` (the helpdesk is one process)."""

    def __init__(self) -> None:
        self._subscribers: set[asyncio.Queue[Change | None]] = set()
        self._closed = False

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def publish(self, kind: str, ticket_id: str | None = None, agent: str | None = None) -> None:
        change = Change(kind, ticket_id, agent)
        for queue in list(self._subscribers):
            try:
                queue.put_nowait(change)
            except asyncio.QueueFull:
                # A stalled page: drop what it missed and have it fetch the whole state again.
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait(RESYNC)

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[Change | None]]:
        """A queue of changes; ``None`` in it means the helpdesk is shutting down."""
        queue: asyncio.Queue[Change | None] = asyncio.Queue(maxsize=_QUEUE_SIZE)
        if self._closed:
            queue.put_nowait(None)
        self._subscribers.add(queue)
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)

    def close(self) -> None:
        """End every open stream (on shutdown, so the server does not wait for them)."""
        self._closed = True
        for queue in list(self._subscribers):
            while not queue.empty():
                queue.get_nowait()
            queue.put_nowait(None)
