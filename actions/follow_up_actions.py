"""After no agent came in time: a callback number or an email address, and the helpdesk told.

``action_handoff_resume`` starts ``follow_up_form`` when a handoff ended with
``no_agent_timeout``. The customer answers with a phone number (a callback), an email address (an
email ticket) or "no"; ``action_submit_follow_up`` then sends the helpdesk ``handoff.ended``
(cause ``no_agent_timeout``) with that detail, so someone can follow up.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from handoff.leads import extract_email
from handoff.lifecycle import EndCause
from handoff.settings import get_settings
from handoff.store import get_store, new_event

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
    """Tells the helpdesk the handoff ended for lack of an agent, with the follow-up detail."""

    def name(self) -> str:
        return "action_submit_follow_up"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        contact = tracker.get_slot("follow_up_contact")
        handoff_id = tracker.get_slot("follow_up_handoff_id")
        detail = follow_up_detail(contact)
        if handoff_id:
            body = new_event(
                "handoff.ended", handoff_id, tracker.sender_id, cause=EndCause.NO_AGENT_TIMEOUT.value, follow_up=detail
            )
            try:
                store = get_store(get_settings().database_url)
                if not await asyncio.to_thread(store.enqueue_once, body):
                    logger.info("handoff %s: the helpdesk was already told it ended", handoff_id)
            except Exception:
                logger.exception("could not queue handoff.ended for handoff %s", handoff_id)
        if detail is None:
            dispatcher.utter_message(response="utter_follow_up_declined")
        elif detail["method"] == "email":
            dispatcher.utter_message(response="utter_follow_up_email", email=detail["email"])
        else:
            dispatcher.utter_message(response="utter_follow_up_callback", phone=detail["phone"])
        return [SlotSet("follow_up_contact", None), SlotSet("follow_up_handoff_id", None)]
