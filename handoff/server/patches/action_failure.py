"""A custom action that fails hands the conversation to a person (reason ``bot_failure``).

Rasa 3.6 swallows the failure of a custom action: ``MessageProcessor._run_action`` logs it, drops
the action's events and carries on, so a customer whose request needed the action server (down,
or answering 500) hears nothing at all. Rasa has no hook for that moment, so :func:`install` wraps
``RemoteAction.run``. When an action predicted by the policies fails, the wrapper hands off from
the Rasa process itself, without the action server:

- it records a ``handoff.requested`` (trigger ``bot_failure`` of ``handoff_rules.yml``, signal
  ``action_failed``, the failed action's name in ``trigger.action``) in the handoff store, with
  the same timers as any handoff, and leaves delivery to the outbox worker of this process;
- it tells the customer ``utter_handoff_technical`` in their language and returns the events
  that pause the conversation (:func:`handoff.lifecycle.pause_events`, as the action server does).

It leaves Rasa's own behaviour alone (the exception is raised again) when:

- the action server rejected the action (``ActionExecutionRejection``, a 400: a form rejecting
  an answer is part of the conversation, not a failure);
- the action is not one the policies predicted: a custom slot mapping run by
  ``action_extract_slots`` (its failure only loses slot fills, and events other than slot sets
  are dropped there), ``action_validate_slot_mappings``, or a form's ``validate_<form>`` /
  ``action_ask_<slot>`` (their events are merged into the form's);
- the conversation is already paused;
- the turn was started by the assistant itself rather than by the customer (a hand-back, the
  no-agent timeout, resuming after the customer gave up): handing off again there would give
  the conversation straight back to the helpdesk, and after a no-agent timeout would loop
  every ``HANDOFF_NO_AGENT_TIMEOUT``. The bot resumes without its closing message; the
  customer's next message that needs a failing action hands off again;
- the handoff cannot be recorded (the store fails): without a record nobody would come.

Installed by :func:`handoff.server.patches.install` (the patch ``action_failure``, switched off
with ``HANDOFF_PATCH_ACTION_FAILURE=off``). Logs carry ids and action names only, never what the customer wrote.
"""

from __future__ import annotations

import functools
import logging
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from rasa.shared.core.constants import (
    ACTION_VALIDATE_SLOT_MAPPINGS,
)
from rasa.shared.core.events import (
    Event,
    SlotSet,
)
from rasa.shared.core.trackers import EventVerbosity

from handoff import lifecycle
from handoff.conversation import is_external, latest_customer_event
from handoff.language import detect_language
from handoff.payload import build_handoff_requested
from handoff.settings import get_settings
from handoff.store import get_store
from handoff.triggers import load_rules

if TYPE_CHECKING:
    from rasa.core.actions.action import RemoteAction
    from rasa.core.channels.channel import OutputChannel
    from rasa.core.nlg import NaturalLanguageGenerator
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.trackers import DialogueStateTracker

logger = logging.getLogger(__name__)

TRIGGER = "bot_failure"
SIGNAL = "action_failed"
RESPONSE = "utter_handoff_technical"
# Said instead when the model's domain predates RESPONSE.
FALLBACK_RESPONSE = "utter_handoff_started"
LANGUAGE_SLOT = "language"
LANGUAGES = ("en", "nl")

_MARK = "_handoff_action_failure"
# Called after a handoff was recorded (the outbox worker's wake), weakly so that a closed
# broker is not kept alive.
_on_recorded: list[weakref.ref] = []


def install(on_recorded: Callable[[], None] | None = None) -> None:
    """Make failing custom actions hand the conversation off (idempotent).

    Rasa 3.6 has no hook for a failing custom action: ``MessageProcessor._run_action`` logs the
    exception and continues without the action's events, leaving the customer unanswered. So
    ``RemoteAction.run`` (the call of every custom action) is wrapped, once per process.

    Args:
        on_recorded: Called after a handoff was recorded, e.g. the outbox worker's ``wake`` so
            that ``handoff.requested`` goes out at once rather than at the next poll. Every
            callback given over several calls is kept (weakly, for bound methods).
    """
    if on_recorded is not None:
        reference = weakref.WeakMethod(on_recorded) if hasattr(on_recorded, "__self__") else _strong(on_recorded)
        _on_recorded.append(reference)
    # Imported here: rasa.core.actions loads TensorFlow, which a Rasa server has loaded anyway
    # but which would slow down every process that merely imports this module.
    from rasa.core.actions.action import ActionExecutionRejection, RemoteAction

    if getattr(RemoteAction.run, _MARK, False):
        return
    original = RemoteAction.run

    @functools.wraps(original)
    async def run(
        self: RemoteAction,
        output_channel: OutputChannel,
        nlg: NaturalLanguageGenerator,
        tracker: DialogueStateTracker,
        domain: Domain,
    ) -> list[Event]:
        try:
            return await original(self, output_channel, nlg, tracker, domain)
        except ActionExecutionRejection:
            raise
        except Exception as error:
            events = await hand_off_failed_action(self.name(), error, output_channel, nlg, tracker, domain)
            if events is None:
                raise
            return events

    setattr(run, _MARK, True)
    RemoteAction.run = run  # type: ignore[method-assign]


def uninstall() -> None:
    """Restore Rasa's own ``RemoteAction.run`` and forget the callbacks."""
    from rasa.core.actions.action import RemoteAction

    _on_recorded.clear()
    if getattr(RemoteAction.run, _MARK, False):
        RemoteAction.run = RemoteAction.run.__wrapped__  # type: ignore[attr-defined]


def installed() -> bool:
    """True when ``RemoteAction.run`` is wrapped in this process."""
    from rasa.core.actions.action import RemoteAction

    return bool(getattr(RemoteAction.run, _MARK, False))


def _strong(callback: Callable[[], None]) -> Callable[[], Callable[[], None]]:
    return lambda: callback


def _notify_recorded() -> None:
    for reference in list(_on_recorded):
        callback = reference()
        if callback is None:
            _on_recorded.remove(reference)
            continue
        try:
            callback()
        except Exception:
            logger.exception("waking the outbox worker failed")


def not_predicted_actions(domain: Domain) -> set[str]:
    """Custom actions Rasa runs on its own rather than as the policies' prediction: custom slot
    mappings (run by ``action_extract_slots``), slot mapping validation and form internals."""
    names = {ACTION_VALIDATE_SLOT_MAPPINGS}
    for slot in domain.slots:
        for mapping in slot.mappings or []:
            if mapping.get("type") == "custom" and mapping.get("action"):
                names.add(mapping["action"])
    names.update(f"validate_{form}" for form in domain.form_names)
    names.update(name for name in domain.user_actions if name.startswith("action_ask_"))
    return names


def _started_by_assistant(events: list[Mapping[str, Any]]) -> bool:
    """True when the turn's user event was triggered from outside (hand-back, timers)."""
    for event in reversed(events):
        if event.get("event") == "user":
            return is_external(event)
    return False


def choose_language(
    slots: Mapping[str, Any], events: list[Mapping[str, Any]], domain: Domain
) -> tuple[str, bool]:
    """The customer's language and whether it was detected here rather than read from the slot.

    The ``language`` slot is set by ``action_assess_turn`` on the action server; while it still
    holds its initial value (the action server may never have answered in this conversation)
    the latest customer message decides, as ``action_assess_turn`` would have.
    """
    initial = next((s.initial_value for s in domain.slots if s.name == LANGUAGE_SLOT), None)
    current = slots.get(LANGUAGE_SLOT)
    if current in LANGUAGES and current != initial:
        return current, False
    latest = latest_customer_event(events)
    previous = current if current in LANGUAGES else None
    detected = detect_language((latest or {}).get("text") or "", previous, load_rules().language)
    return detected, True


async def _announce(
    output_channel: OutputChannel, nlg: NaturalLanguageGenerator, tracker: DialogueStateTracker, language: str
) -> list[Event]:
    """``utter_handoff_technical`` in ``language``, as a bot message event."""
    from rasa.core.actions.action import create_bot_utterance

    reply_tracker = tracker.copy()
    if LANGUAGE_SLOT in reply_tracker.slots:
        reply_tracker.update(SlotSet(LANGUAGE_SLOT, language))
    for response in (RESPONSE, FALLBACK_RESPONSE):
        try:
            draft = await nlg.generate(response, reply_tracker, output_channel.name())
        except Exception:
            logger.exception("could not generate %s", response)
            continue
        if draft:
            draft["utter_action"] = response
            return [create_bot_utterance(draft)]
        logger.warning("the model's domain has no response %s", response)
    return []


async def hand_off_failed_action(
    action_name: str,
    error: Exception,
    output_channel: OutputChannel,
    nlg: NaturalLanguageGenerator,
    tracker: DialogueStateTracker,
    domain: Domain,
) -> list[Event] | None:
    """Hand the conversation off after ``action_name`` failed with ``error``.

    Returns:
        The events that answer the customer and pause the conversation, or None when Rasa's
        own handling should apply (the caller raises ``error`` again).
    """
    conversation_id = tracker.sender_id
    if tracker.is_paused() or action_name in not_predicted_actions(domain):
        return None
    state = tracker.current_state(EventVerbosity.AFTER_RESTART)
    events: list[Mapping[str, Any]] = state.get("events") or []
    slots: Mapping[str, Any] = state.get("slots") or {}
    if _started_by_assistant(events):
        logger.warning(
            "custom action %s failed (%s) in a turn the assistant started for conversation %s; not handing off",
            action_name,
            type(error).__name__,
            conversation_id,
        )
        return None

    try:
        settings = get_settings()
        language, detected = choose_language(slots, events, domain)
        payload = build_handoff_requested(
            conversation_id=conversation_id,
            events=events,
            slots=slots,
            trigger=load_rules().get(TRIGGER),
            language=language,
            signals=[SIGNAL],
        )
        payload["trigger"]["action"] = action_name
        opened = await lifecycle.open_handoff(get_store(settings.database_url), payload, settings)
        handoff_id, created = opened.handoff.id, opened.created
    except Exception as exc:
        logger.error(
            "custom action %s failed (%s) and no handoff could be recorded for conversation %s (%s)",
            action_name,
            type(error).__name__,
            conversation_id,
            type(exc).__name__,
        )
        return None

    if created:
        _notify_recorded()
        logger.warning(
            "custom action %s failed (%s); handoff %s requested for conversation %s (reason %s)",
            action_name,
            type(error).__name__,
            handoff_id,
            conversation_id,
            payload["reason"],
        )
    else:
        logger.warning(
            "custom action %s failed (%s); conversation %s paused again for its active handoff %s",
            action_name,
            type(error).__name__,
            conversation_id,
            handoff_id,
        )

    result: list[Event] = await _announce(output_channel, nlg, tracker, language)
    found = []
    if detected and LANGUAGE_SLOT in tracker.slots and slots.get(LANGUAGE_SLOT) != language:
        found.append(lifecycle.slot_event(LANGUAGE_SLOT, language))
    # The same events as a handoff the action server opens (handoff.lifecycle.pause_events).
    pause = lifecycle.pause_events(handoff_id, tracker.active_loop_name, slots, extra=found)
    return result + [Event.from_parameters(event) for event in pause]
