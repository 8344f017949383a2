"""Reading a conversation's events (Rasa's tracker events as plain dicts), with no Rasa imports.

Used by the payload builder, the frustration score, the actions and the Rasa server plugins alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

SESSION_BOUNDARIES = {"session_started", "restart"}
#: After these the bot is in charge again: a new session, a restart, a hand-back (``resume``).
BOT_TAKES_CHARGE = {*SESSION_BOUNDARIES, "resume"}


def is_external(event: Mapping[str, Any]) -> bool:
    """True for a user event triggered from outside (``trigger_intent``, reminders)."""
    metadata = event.get("metadata") or {}
    return bool(metadata.get("is_external")) or str(event.get("text") or "").startswith("EXTERNAL: ")


def after_last(events: Iterable[Mapping[str, Any]], kinds: set[str]) -> list[Mapping[str, Any]]:
    """The events after the last one whose type is in ``kinds`` (all of them when none is)."""
    events = list(events)
    for index in range(len(events) - 1, -1, -1):
        if events[index].get("event") in kinds:
            return events[index + 1 :]
    return events


def current_session(events: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The events after the last session start or restart."""
    return after_last(events, SESSION_BOUNDARIES)


def since_bot_took_charge(events: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The events after the last session start, restart or hand-back to the bot."""
    return after_last(events, BOT_TAKES_CHARGE)


def latest_customer_event(events: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The latest message the customer typed (not one triggered from outside)."""
    for event in reversed(list(events)):
        if event.get("event") == "user" and not is_external(event):
            return event
    return None
