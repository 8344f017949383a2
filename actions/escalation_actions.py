"""Signal-based escalation: the per-turn assessment, offering a person and taking no for an answer.

``action_assess_turn`` is run by Rasa's ``action_extract_slots`` after every customer message
(it is the custom mapping of the ``language`` and ``escalation`` slots). It detects the message's
language and decides whether the signals call for a person: frustration (scored as
``handoff_rules.yml`` says), a conversation that has dragged on, or a customer back about an
issue that was left unresolved. Rules in ``data/rules/escalation.yml`` act on the ``escalation``
slot it sets, whatever the customer said.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from handoff.conversation import current_session, is_external
from handoff.frustration import (
    DEFAULT_FRUSTRATION_CONFIG,
    HANDOFF,
    OFFER,
    score_frustration,
    since_bot_took_charge,
)
from handoff.language import detect_language
from handoff.settings import get_settings
from handoff.store import get_store
from handoff.triggers import HandoffRules, Trigger, load_rules

logger = logging.getLogger(__name__)

# Intents that are not a topic of their own: they neither open nor repeat an issue.
NOT_A_TOPIC = {
    # No question (handoff/frustration.py): saying one of them twice is not asking again.
    *DEFAULT_FRUSTRATION_CONFIG["ignore_intents"],
    "request_human",
    "mention_previous_contact",
    # Commands to Rasa rather than questions.
    "session_start",
    "restart",
}
RESOLVING_INTENTS = {"thank", "goodbye"}
REPEAT_CONTACT_WINDOW_SECONDS = 14 * 24 * 3600
OFFER_ACTION = "action_offer_handoff"
DECLINE_ACTION = "action_decline_handoff"
# Said instead of an offer that would repeat the last offer of the session word for word.
OFFER_AGAIN_RESPONSE = "utter_offer_handoff_again"
# Answers to an offer; anything else ignores it.
OFFER_ANSWERS = {"affirm", "deny"}
# Added to the frustration signals when a person was offered for frustration earlier this session.
FRUSTRATED_AFTER_OFFER = "frustrated_after_offer"
# The `escalation` slot's value when the assistant asks before handing off (data/rules/escalation.yml).
CONFIRM = "confirm"


def customer_messages(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e.get("event") == "user" and not is_external(e)]


def intent_of(event: dict[str, Any] | None) -> str | None:
    return (((event or {}).get("parse_data") or {}).get("intent") or {}).get("name")


def latest_bot_action(tracker: Tracker) -> str | None:
    """The last action before the current customer message."""
    for event in reversed(tracker.events):
        if event.get("event") == "action" and event.get("name") != "action_listen":
            return event.get("name")
        if event.get("event") == "session_started":
            return None
    return None


def session_offers(session: list[dict[str, Any]]) -> list[tuple[str, bool]]:
    """The triggers a person was offered for in this session, in order, each with whether the
    customer said no to it.

    Read from the session's own events (``action_offer_handoff`` setting ``handoff_offered``,
    ``action_decline_handoff`` after it), not from the slots: the session start carries every slot
    over, and a "no" must not outlive the session it was said in.
    """
    offers: list[tuple[str, bool]] = []
    last_action = None
    for event in session:
        kind = event.get("event")
        if kind == "action":
            last_action = event.get("name")
            if last_action == DECLINE_ACTION and offers:
                offers[-1] = (offers[-1][0], True)
        elif kind == "slot" and event.get("name") == "handoff_offered" and event.get("value") and last_action == OFFER_ACTION:
            offers.append((str(event["value"]), False))
    return offers


def declined_this_session(events: list[dict[str, Any]]) -> list[str]:
    """The triggers the customer said no to in the current session, in order, without repeats."""
    declined: list[str] = []
    for trigger, said_no in session_offers(current_session(events)):
        if said_no and trigger not in declined:
            declined.append(trigger)
    return declined


class ActionAssessTurn(Action):
    """Detects the language and sets ``escalation`` when the signals call for a person."""

    def name(self) -> str:
        return "action_assess_turn"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        rules = load_rules()
        latest = tracker.latest_message or {}
        previous_language = tracker.get_slot("language")
        language = detect_language(latest.get("text") or "", previous_language, rules.language)
        events: list[EventType] = []
        if language != previous_language:
            events.append(SlotSet("language", language))
        if tracker.is_paused():
            # The customer is talking to a person: only follow their language.
            return events

        trigger, signals, level = await self.assess(tracker, rules)
        wanted = {
            "escalation": level,
            "escalation_trigger": trigger.name if trigger else None,
            "escalation_signals": signals or None,
        }
        if latest_bot_action(tracker) == OFFER_ACTION and level != HANDOFF:
            # The customer answers an offer: a yes hands off with the signals that led to it.
            del wanted["escalation_signals"]
        for slot, value in wanted.items():
            if tracker.get_slot(slot) != value:
                events.append(SlotSet(slot, value))
        return events

    async def assess(self, tracker: Tracker, rules: HandoffRules) -> tuple[Trigger | None, list[str], str | None]:
        """The trigger, its signals and the level (``offer``/``handoff``), or no escalation."""
        session = current_session(tracker.events)
        messages = customer_messages(session)
        intent = intent_of(messages[-1] if messages else None)
        first_of_session = len(messages) == 1
        # Compared with the stored issue before this message replaces it.
        # The store is synchronous (SQLAlchemy): off the action server's event loop, as everywhere.
        repeat = (
            first_of_session
            and "repeat_contact" in rules.triggers
            and await asyncio.to_thread(self._is_repeat_contact, tracker.sender_id, intent)
        )
        await asyncio.to_thread(self._remember_topic, tracker.sender_id, intent)

        if tracker.active_loop.get("name"):
            return None, [], None  # answering a form question: not a new signal
        offers = session_offers(session)
        declined = {trigger for trigger, said_no in offers if said_no}
        offered_for_frustration = any(trigger == "frustration" for trigger, _ in offers)
        if latest_bot_action(tracker) == OFFER_ACTION and (intent in OFFER_ANSWERS or not offered_for_frustration):
            return None, [], None  # answering an offer: not a new signal

        frustration = score_frustration(tracker.events, rules.frustration)
        frustrated = frustration.level in (OFFER, HANDOFF) and "frustration" in rules.triggers
        if frustrated and offered_for_frustration:
            # Offered a person for frustration earlier this session, ignored or declined, and
            # frustrated again: asking a second time would only add to it.
            return rules.get("frustration"), [*frustration.signals, FRUSTRATED_AFTER_OFFER], HANDOFF
        if frustrated and frustration.level == HANDOFF:
            return rules.get("frustration"), frustration.signals, HANDOFF

        # A matter that goes to a person at once, recognised with too little confidence: ask
        # first rather than hand off a customer who asked something else.
        immediate = rules.for_intent(intent)
        confidence = (tracker.latest_message or {}).get("intent", {}).get("confidence")
        if immediate is not None and immediate.needs_confirmation(intent, confidence):
            return immediate, ["low_confidence"], CONFIRM

        if frustrated:
            return rules.get("frustration"), frustration.signals, OFFER

        if repeat and "repeat_contact" not in declined:
            return rules.get("repeat_contact"), ["same_unresolved_issue"], OFFER

        if "timeout" in rules.triggers and "timeout" not in declined and intent not in RESOLVING_INTENTS:
            signals = self._dragged_on(tracker.events, rules)
            if signals:
                return rules.get("timeout"), signals, OFFER
        return None, [], None

    @staticmethod
    def _remember_topic(conversation_id: str, intent: str | None) -> None:
        try:
            store = get_store(get_settings().database_url)
            if intent in RESOLVING_INTENTS:
                store.note_resolved(conversation_id)
            elif intent and intent not in NOT_A_TOPIC:
                store.note_topic(conversation_id, intent)
        except Exception:  # the conversation goes on without repeat-contact memory
            logger.exception("could not store the conversation's topic")

    @staticmethod
    def _is_repeat_contact(conversation_id: str, intent: str | None) -> bool:
        try:
            store = get_store(get_settings().database_url)
            open_topic = store.open_issue(conversation_id, time.time() - REPEAT_CONTACT_WINDOW_SECONDS)
        except Exception:
            logger.exception("could not read the conversation's history")
            return False
        return open_topic is not None and (intent == open_topic or intent == "mention_previous_contact")

    @staticmethod
    def _dragged_on(events: list[dict[str, Any]], rules: HandoffRules) -> list[str]:
        messages = customer_messages(since_bot_took_charge(events))
        signals = []
        if len(messages) >= rules.timeout.max_turns:
            signals.append("many_turns")
        if messages and float(messages[-1].get("timestamp") or 0) - float(messages[0].get("timestamp") or 0) >= rules.timeout.max_minutes * 60:
            signals.append("long_conversation")
        return signals


def offered_trigger(tracker: Tracker, rules: HandoffRules) -> Trigger | None:
    """The trigger an offer is about: the assessment's, else the one listing the intent."""
    if tracker.get_slot("escalation") in (OFFER, CONFIRM) and tracker.get_slot("escalation_trigger") in rules.triggers:
        return rules.get(tracker.get_slot("escalation_trigger"))
    return rules.for_intent(intent_of({"parse_data": tracker.latest_message}))


def offer_responses(rules: HandoffRules) -> set[str]:
    """Every response that offers a person or asks whether one is wanted."""
    names = {OFFER_AGAIN_RESPONSE, "utter_offer_handoff_complex"}
    for trigger in rules.triggers.values():
        names.update(name for name in (trigger.offer_response, trigger.confirm_response) if name)
    return names


def last_offer_response(events: list[dict[str, Any]], rules: HandoffRules) -> str | None:
    """The response of the last offer of a person in the current session, if any."""
    offers = offer_responses(rules)
    for event in reversed(current_session(events)):
        if event.get("event") == "bot":
            said = (event.get("metadata") or {}).get("utter_action")
            if said in offers:
                return said
    return None


class ActionOfferHandoff(Action):
    """Offers a person (softer signals), or asks whether a person is wanted (a matter for a
    person recognised with little confidence); a yes hands off, a no is respected."""

    def name(self) -> str:
        return "action_offer_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        rules = load_rules()
        trigger = offered_trigger(tracker, rules) or rules.get("complex")
        if tracker.get_slot("escalation") == CONFIRM and trigger.confirm_response:
            # "Is this about a payment problem? Shall I put you through?"
            response = trigger.confirm_response
        else:
            response = trigger.offer_response or "utter_offer_handoff_complex"
        if response == last_offer_response(tracker.events, rules):
            # A bot that says the same sentence twice in a row only adds to the frustration.
            response = OFFER_AGAIN_RESPONSE
        dispatcher.utter_message(response=response)
        return [SlotSet("handoff_offered", trigger.name)]


class ActionDeclineHandoff(Action):
    """The customer said no to a person: remember it for this session and carry on.

    The ``handoff_declined`` slot lists this session's refusals; ``action_assess_turn`` reads them
    from the session's events, so a slot carried over from an earlier session is not a refusal.
    """

    def name(self) -> str:
        return "action_decline_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        offered = tracker.get_slot("handoff_offered")
        # This session's refusals only: a "no" is not carried into the next session.
        declined = declined_this_session(tracker.events)
        if offered and offered not in declined:
            declined.append(offered)
        dispatcher.utter_message(response="utter_offer_declined")
        return [
            SlotSet("handoff_offered", None),
            SlotSet("handoff_declined", declined),
            SlotSet("escalation", None),
            SlotSet("escalation_trigger", None),
        ]
