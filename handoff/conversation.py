"""Reading a conversation's events (Rasa's tracker events as plain dicts), with no Rasa imports.

Used by the payload builder, the frustration score, the actions and the Rasa server plugins alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

SESSION_BOUNDARIES = {"session_started", "restart"}


def is_external(event: Mapping[str, Any]) -> bool:
    """True for a user event triggered from outside (``trigger_intent``, reminders)."""
    metadata = event.get("metadata") or {}
    return bool(metadata.get("is_external")) or str(event.get("text") or "").startswith("EXTERNAL: ")


def current_session(events: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The events after the last session start or restart."""
    events = list(events)
    for index in range(len(events) - 1, -1, -1):
        if events[index].get("event") in SESSION_BOUNDARIES:
            return events[index + 1 :]
    return events


def latest_customer_event(events: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The latest message the customer typed (not one triggered from outside)."""
    for event in reversed(list(events)):
        if event.get("event") == "user" and not is_external(event):
            return event
    return None
