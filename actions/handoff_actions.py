"""Actions that hand the conversation to a person and take it back.

``HandoffAction`` holds the whole handoff: it builds the ``handoff.requested`` message from the
tracker, records it with an outbox entry, makes one bounded delivery attempt (so the customer hears
the expected wait without the conversation lock being held on a slow helpdesk), tells the customer
what happens next and pauses the conversation. Retries are left to the outbox worker in the Rasa
server.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import math
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.follow_up_actions import ActionSubmitFollowUp, confirm_follow_up, known_contact
from handoff import hours, lifecycle
from handoff.conversation import latest_customer_event, since_bot_took_charge
from handoff.delivery import Deliverer
from handoff.payload import build_handoff_requested
from handoff.settings import get_settings
from handoff.store import TASK_FOLLOW_UP_DEADLINE, HandoffStore, get_store
from handoff.triggers import Trigger, load_rules

logger = logging.getLogger(__name__)

FALLBACK_INTENT = "nlu_fallback"
def conversation_language(tracker: Tracker) -> str:
    language = tracker.get_slot("language")
    return language if language in ("en", "nl") else "en"


class HandoffAction(Action, metaclass=abc.ABCMeta):
    """Base class of every action that may hand the conversation to a person.

    Subclass it, give it a ``name()`` and either override :meth:`choose_trigger` (return the
    trigger from ``handoff_rules.yml`` to hand off with) or call :meth:`hand_off` from ``run``.
    rasa-sdk does not register this abstract class itself.
    """

    @abc.abstractmethod
    def name(self) -> str:
        """The action's name in the domain."""

    def choose_trigger(self, tracker: Tracker) -> tuple[Trigger, list[str]]:
        """The trigger this handoff is for and the signals behind it.

        An accepted offer hands off for what was offered; an escalation decided by the signals
        (``action_assess_turn``) for its trigger; otherwise the trigger listing the latest intent,
        and a plain request for a person when none does.
        """
        rules = load_rules()
        intent = (tracker.latest_message or {}).get("intent", {}).get("name")
        offered = tracker.get_slot("handoff_offered")
        if intent == "affirm" and offered in rules.triggers:
            return rules.get(offered), list(tracker.get_slot("escalation_signals") or [])
        escalated = tracker.get_slot("escalation_trigger")
        if tracker.get_slot("escalation") == "handoff" and escalated in rules.triggers:
            return rules.get(escalated), list(tracker.get_slot("escalation_signals") or [])
        return rules.for_intent(intent) or rules.get("customer_request"), []

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        trigger, signals = self.choose_trigger(tracker)
        return await self.hand_off(dispatcher, tracker, trigger, signals=signals)

    async def hand_off(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        trigger: Trigger,
        signals: list[str] | None = None,
        lead: dict[str, Any] | None = None,
    ) -> list[EventType]:
        """Record, announce and deliver a handoff, then pause the conversation.

        Outside the queue's business hours (``queues:`` in handoff_rules.yml), or when the helpdesk
        answers that no agent is available, the handoff is recorded and delivered (the helpdesk
        keeps the conversation) but ends at once: the customer hears so and is offered a callback
        or an email answer straight away.
        """
        settings = get_settings()
        language = conversation_language(tracker)
        try:
            queue_hours = load_rules().queue_hours(trigger.queue)
            moment = hours.now()
            closed = not queue_hours.is_open(moment)
        except Exception:
            logger.exception("could not read the business hours of queue %s; treating it as open", trigger.queue)
            closed = False
        try:
            store = get_store(settings.database_url)
            existing = await lifecycle.active_handoff(store, tracker.sender_id)
            if existing is not None:
                # Already waiting for (or talking to) a person: do not queue the customer twice.
                dispatcher.utter_message(response="utter_handoff_started")
                return paused(existing.id, tracker)
            payload = build_handoff_requested(
                conversation_id=tracker.sender_id,
                events=tracker.events,
                slots=tracker.current_slot_values(),
                trigger=trigger,
                language=language,
                signals=signals,
                lead=lead,
            )
            opened = await lifecycle.open_handoff(store, payload, settings)
        except Exception:
            logger.exception("could not record a handoff for a conversation")
            dispatcher.utter_message(response="utter_handoff_failed")
            return []
        handoff = opened.handoff
        if opened.outbox is None:  # another turn recorded one in the meantime
            dispatcher.utter_message(response="utter_handoff_started")
            return paused(handoff.id, tracker)

        logger.info(
            "handoff %s requested: reason=%s priority=%s queue=%s",
            handoff.id,
            trigger.reason,
            trigger.priority,
            trigger.queue,
        )
        if closed:
            # Delivered by the outbox worker; the ended message follows it in order.
            await lifecycle.end_handoff(store, handoff.id, lifecycle.EndCause.OUT_OF_HOURS)
            logger.info("handoff %s: queue %s is closed now; offering a follow-up", handoff.id, trigger.queue)
            dispatcher.utter_message(text=queue_hours.closed_message(moment, language))
            return await instead_of_waiting(dispatcher, store, handoff.id, tracker, settings.follow_up_wait, lead, language)
        result = await Deliverer(store, settings).deliver(opened.outbox.event_id, timeout=settings.first_delivery_wait)
        if result.status is not None and not result.delivered and result.status in lifecycle.PERMANENT_STATUSES:
            # The helpdesk refused this handoff for good: staying paused would leave the
            # customer talking to nobody.
            await lifecycle.end_handoff(store, handoff.id, lifecycle.EndCause.DELIVERY_REJECTED)
            dispatcher.utter_message(response="utter_handoff_failed")
            return []

        response = (result.response or {}) if result.delivered else {}
        available = response.get("agents_available")
        if (
            isinstance(available, int)
            and not isinstance(available, bool)
            and available == 0
            and await lifecycle.end_handoff(store, handoff.id, lifecycle.EndCause.NO_AGENT_AVAILABLE)
        ):
            ticket = response.get("ticket_id")
            await lifecycle.record_ticket(store, handoff.id, str(ticket) if ticket is not None else None, None)
            logger.info("handoff %s: the helpdesk has no agent available; offering a follow-up", handoff.id)
            dispatcher.utter_message(response="utter_handoff_nobody_available")
            return await instead_of_waiting(dispatcher, store, handoff.id, tracker, settings.follow_up_wait, lead, language)

        dispatcher.utter_message(response=trigger.response or "utter_handoff_started")
        if result.delivered:
            wait = response.get("estimated_wait_seconds")
            ticket = response.get("ticket_id")
            wait = int(wait) if isinstance(wait, (int, float)) and wait >= 0 else None
            await lifecycle.record_ticket(store, handoff.id, str(ticket) if ticket is not None else None, wait)
            if wait is not None:
                if wait < 60:
                    dispatcher.utter_message(response="utter_handoff_wait_short")
                else:
                    dispatcher.utter_message(response="utter_handoff_wait_minutes", wait_minutes=math.ceil(wait / 60))
        else:
            dispatcher.utter_message(response="utter_handoff_delayed")
        return paused(handoff.id, tracker)


async def instead_of_waiting(
    dispatcher: CollectingDispatcher,
    store: HandoffStore,
    handoff_id: str,
    tracker: Tracker,
    wait: float,
    lead: dict[str, Any] | None,
    language: str,
) -> list[EventType]:
    """Nobody takes the conversation now: a lead who gave a phone number or email address is
    promised a follow-up on it at once (not asked again); anyone else is asked for one."""
    detail = known_contact(lead)
    handoff = await lifecycle.get_handoff(store, handoff_id) if detail is not None else None
    if handoff is None:
        return await offer_follow_up(store, handoff_id, tracker, wait)
    due = await ActionSubmitFollowUp.tell_helpdesk(store, handoff, tracker, detail, language)
    confirm_follow_up(dispatcher, detail, due)
    return [*_leave_pending(tracker), SlotSet("handoff_id", None)]


def _leave_pending(tracker: Tracker) -> list[EventType]:
    """Close a form in progress and forget a pending offer or escalation."""
    events: list[EventType] = []
    if tracker.active_loop.get("name"):
        events += [ActiveLoop(None), SlotSet("requested_slot", None)]
    slots = tracker.current_slot_values()
    return events + [SlotSet(slot, None) for slot in lifecycle.PENDING_SLOTS if slots.get(slot) is not None]


async def offer_follow_up(store: HandoffStore, handoff_id: str, tracker: Tracker, wait: float) -> list[EventType]:
    """The bot keeps the conversation and asks for a callback number or an email address
    (``follow_up_form``); without an answer within ``wait`` seconds the helpdesk hears the
    handoff ended without one."""
    await asyncio.to_thread(store.schedule, handoff_id, tracker.sender_id, TASK_FOLLOW_UP_DEADLINE, wait)
    return [*_leave_pending(tracker), SlotSet("handoff_id", None), SlotSet("follow_up_handoff_id", handoff_id), FollowupAction("follow_up_form")]


def paused(handoff_id: str, tracker: Tracker | None = None) -> list[EventType]:
    """Events that pause the conversation for a person (:func:`handoff.lifecycle.pause_events`)."""
    if tracker is None:
        return lifecycle.pause_events(handoff_id)
    return lifecycle.pause_events(handoff_id, tracker.active_loop.get("name"), tracker.current_slot_values())


class ActionHandoff(HandoffAction):
    """Hands off for the trigger that lists the customer's latest intent (e.g. ``request_human``)."""

    def name(self) -> str:
        return "action_handoff"


class ActionHandleFallback(HandoffAction):
    """First misunderstanding: ask to rephrase. Second one in a row: hand off (``bot_failure``)."""

    def name(self) -> str:
        return "action_handle_fallback"

    @staticmethod
    def misunderstood_twice(tracker: Tracker) -> bool:
        # Only what the customer said to the bot: not before a session start, restart or
        # hand-back (messages for the agent are parsed by NLU too, but were not for the bot).
        customer_events = [
            e for e in since_bot_took_charge(tracker.events) if e.get("event") == "user" and latest_customer_event([e]) is not None
        ]
        last_two = customer_events[-2:]
        return len(last_two) == 2 and all(
            ((e.get("parse_data") or {}).get("intent") or {}).get("name") == FALLBACK_INTENT for e in last_two
        )

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        if self.misunderstood_twice(tracker):
            return await self.hand_off(dispatcher, tracker, load_rules().get("bot_failure"))
        dispatcher.utter_message(response="utter_rephrase")
        return []


class ActionHandoffResume(Action):
    """Runs when the bot takes the conversation back, and says what fits how the handoff ended.

    An agent handed back: the bot is back and offers help. Nobody joined in time
    (``no_agent_timeout``): it apologises and asks for a callback number or an email address
    (``follow_up_form``). The customer gave up waiting (``customer_left``): it confirms the request
    is cancelled.
    """

    def name(self) -> str:
        return "action_handoff_resume"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        handoff_id = tracker.get_slot("handoff_id")
        cause = None
        if handoff_id:
            try:
                handoff = await lifecycle.get_handoff(get_store(get_settings().database_url), handoff_id)
                cause = lifecycle.EndCause.read(handoff.end_cause) if handoff else None
            except Exception:
                logger.exception("could not read handoff %s", handoff_id)
        if cause in lifecycle.FOLLOW_UP_CAUSES:
            dispatcher.utter_message(response="utter_handoff_no_agent")
            return [
                SlotSet("handoff_id", None),
                SlotSet("follow_up_handoff_id", handoff_id),
                FollowupAction("follow_up_form"),
            ]
        dispatcher.utter_message(response="utter_handoff_cancelled" if cause is lifecycle.EndCause.CUSTOMER_LEFT else "utter_handoff_back")
        return [SlotSet("handoff_id", None)]
