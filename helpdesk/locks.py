"""One lock per ticket, so two agents acting on the same ticket at once are served in turn.

An agent's action reads the ticket, sends an event to the assistant and records the result; two
"Claim" clicks at the same moment must not both pass the "nobody has it yet" check. The helpdesk
runs as one process, so an ``asyncio.Lock`` per ticket is enough.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class TicketLocks:
    """``async with locks.hold(ticket_id): ...``; a lock is forgotten when nobody holds or awaits it."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}

    @contextlib.asynccontextmanager
    async def hold(self, ticket_id: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(ticket_id, asyncio.Lock())
        self._users[ticket_id] = self._users.get(ticket_id, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._users[ticket_id] -= 1
            if not self._users[ticket_id]:
                del self._users[ticket_id]
                del self._locks[ticket_id]

    def __len__(self) -> int:
        return len(self._locks)
