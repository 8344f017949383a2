"""One-time notices shown after a redirect (e.g. "the assistant answered 409 ...").

The notice and the agent's unsent draft stay in memory; the browser only holds a random key in a
cookie. A notice is shown once, on the next page of the same ticket.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

FLASH_COOKIE = "helpdesk_flash"
_TTL_SECONDS = 600
_MAX_ENTRIES = 1000


@dataclass(frozen=True)
class Flash:
    """A notice for one ticket page, with whatever the agent had typed."""

    ticket_id: str
    level: str  # "error" or "info"
    message: str
    draft_text: str = ""
    draft_note: str = ""
    created: float = field(default_factory=time.monotonic)


class FlashStore:
    """In-memory notices by random key; old ones expire after ten minutes."""

    def __init__(self) -> None:
        self._items: dict[str, Flash] = {}

    def put(self, flash: Flash) -> str:
        self._expire()
        key = secrets.token_urlsafe(16)
        self._items[key] = flash
        return key

    def pop(self, key: str | None, ticket_id: str) -> Flash | None:
        """The notice under ``key`` if it belongs to ``ticket_id`` (then it is forgotten)."""
        self._expire()
        if not key:
            return None
        flash = self._items.get(key)
        if flash is None or flash.ticket_id != ticket_id:
            return None
        del self._items[key]
        return flash

    def _expire(self) -> None:
        cutoff = time.monotonic() - _TTL_SECONDS
        for key in [k for k, f in self._items.items() if f.created < cutoff]:
            del self._items[key]
        while len(self._items) >= _MAX_ENTRIES:
            del self._items[next(iter(self._items))]
