"""Instead of a person now: a callback number or an email address, and the helpdesk told.

``follow_up_form`` starts when a handoff ended without an agent: nobody joined in time
(``no_agent_timeout``, from ``action_handoff_resume``), the helpdesk had nobody available
(``no_agent_available``) or the queue was closed (``out_of_hours``, both from the handoff
action). The customer answers with a phone number (a callback), an email address (an email
answer) or "no"; ``action_submit_follow_up`` then sends the helpdesk ``handoff.ended`` with that
detail and, when there is one, ``follow_up.requested``: a task with the transcript and a due
time (the queue's next opening hour plus its ``follow_up_sla_hours``), which the customer hears.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from handoff import hours
from handoff.leads import extract_email
from handoff.lifecycle import FOLLOW_UP_CAUSES, EndCause
from handoff.payload import build_follow_up_requested
from handoff.settings import get_settings
from handoff.store import Handoff, HandoffStore, get_store, new_event, utc_iso
from handoff.triggers import load_rules

logger = logging.getLogger(__name__)

DECLINED = "declined"
DECLINE_INTENTS = {"deny", "goodbye", "thank"}
# A phone number: digits with spaces, dots, dashes, brackets and a leading +; 8 to 15 digits.
PHONE = re.compile(r"(?<![\w+])\+?\(?\d[\d\s().-]{6,20}\d(?!\w)")


def extract_phone(text: str) -> str | None:
    """The first phone number in ``text``, spaces and punctuation removed (a leading + kept)."""
    for match in PHONE.finditer(text or ""):
        raw = match.group(0)
        if raw.startswith("+"):
            raw = raw.replace("(0)", "")  # +31 (0)20 …: the trunk 0 is not dialled from abroad
        digits = re.sub(r"\D", "", raw)
        if 8 <= len(digits) <= 15:
            return ("+" if raw.lstrip("(").startswith("+") else "") + digits
    return None


def follow_up_detail(contact: str | None) -> dict[str, Any] | None:
    """What ``handoff.ended`` carries as ``follow_up`` for the slot's value."""
    if not contact or contact == DECLINED:
        return None
    if "@" in contact:
        return {"method": "email", "email": contact}
    return {"method": "callback", "phone": contact}


def known_contact(lead: dict[str, Any] | None) -> dict[str, Any] | None:
    """The follow-up detail a qualified lead already gave (a phone number first: sales calls
    back), so that they are not asked again; None when they gave neither."""
    lead = lead or {}
    phone = extract_phone(str(lead.get("phone") or ""))
    if phone:
        return {"method": "callback", "phone": phone}
    email = extract_email(str(lead.get("email") or ""))
    return {"method": "email", "email": email} if email else None


def confirm_follow_up(dispatcher: CollectingDispatcher, detail: dict[str, Any] | None, due: str | None) -> None:
    """Tell the customer how and (when known) by when they will hear from us."""
    if detail is None:
        dispatcher.utter_message(response="utter_follow_up_declined")
    elif detail["method"] == "email":
        if due:
            dispatcher.utter_message(response="utter_follow_up_email_due", email=detail["email"], due=due)
        else:
            dispatcher.utter_message(response="utter_follow_up_email", email=detail["email"])
    elif due:
        dispatcher.utter_message(response="utter_follow_up_callback_due", phone=detail["phone"], due=due)
    else:
        dispatcher.utter_message(response="utter_follow_up_callback", phone=detail["phone"])


class ValidateFollowUpForm(FormValidationAction):
    """Reads a phone number or an email address from the answer; "no" declines."""

    def name(self) -> str:
        return "validate_follow_up_form"

    def validate_follow_up_contact(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict
    ) -> dict[str, Any]:
        text = str(value or "")
        email = extract_email(text)
        if email:
            return {"follow_up_contact": email}
        phone = extract_phone(text)
        if phone:
            return {"follow_up_contact": phone}
        intent = ((tracker.latest_message or {}).get("intent") or {}).get("name")
        if intent in DECLINE_INTENTS:
            return {"follow_up_contact": DECLINED}
        dispatcher.utter_message(response="utter_follow_up_invalid")
        return {"follow_up_contact": None}


class ActionSubmitFollowUp(Action):
    """Tells the helpdesk the handoff ended without an agent, with the follow-up detail, and
    asks it to follow up (``follow_up.requested``) when the customer left one."""

    def name(self) -> str:
        return "action_submit_follow_up"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        contact = tracker.get_slot("follow_up_contact")
        handoff_id = tracker.get_slot("follow_up_handoff_id")
        language = tracker.get_slot("language") if tracker.get_slot("language") in ("en", "nl") else "en"
        detail = follow_up_detail(contact)
        due_phrase = None
        if handoff_id:
            try:
                store = get_store(get_settings().database_url)
                handoff = await asyncio.to_thread(store.get_handoff, handoff_id)
                if handoff is not None:
                    due_phrase = await self.tell_helpdesk(store, handoff, tracker, detail, language)
            except Exception:
                logger.exception("could not queue the follow-up of handoff %s", handoff_id)
        confirm_follow_up(dispatcher, detail, due_phrase)
        return [SlotSet("follow_up_contact", None), SlotSet("follow_up_handoff_id", None)]

    @staticmethod
    async def tell_helpdesk(
        store: HandoffStore, handoff: Handoff, tracker: Tracker, detail: dict[str, Any] | None, language: str
    ) -> str | None:
        """Queue ``handoff.ended`` (and ``follow_up.requested``); the due time as the customer
        hears it, or None when there is no follow-up."""
        cause = EndCause.read(handoff.end_cause)
        cause = cause if cause in FOLLOW_UP_CAUSES else EndCause.NO_AGENT_TIMEOUT
        ended = new_event("handoff.ended", handoff.id, tracker.sender_id, cause=cause.value, follow_up=detail)
        if not await asyncio.to_thread(store.enqueue_once, ended):
            logger.info("handoff %s: the helpdesk was already told it ended", handoff.id)
        if detail is None:
            return None
        queue_hours = load_rules().queue_hours(handoff.queue)
        moment = hours.now()
        due = queue_hours.due_at(moment)
        record = await asyncio.to_thread(store.record, handoff.id) or {}
        lead = record.get("lead")
        body = build_follow_up_requested(
            handoff_id=handoff.id,
            conversation_id=tracker.sender_id,
            events=tracker.events,
            slots=tracker.current_slot_values(),
            origin=cause.value,
            follow_up=detail,
            reason=handoff.reason,
            reason_text=record.get("reason_text"),
            queue=handoff.queue,
            priority=handoff.priority,
            language=language,
            due_at=utc_iso(due.timestamp()),
            lead=lead,
        )
        if not await asyncio.to_thread(store.enqueue_once, body):
            logger.info("handoff %s: the follow-up was already requested", handoff.id)
        return queue_hours.opens_phrase(due, language, since=moment)
