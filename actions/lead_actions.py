"""Lead qualification: the ``lead_form`` answers, read from free text, scored by the YAML rules.

A qualified lead goes to a person in the ``sales`` queue with its answers and score; anyone else
gets a useful self-serve answer (and no promise of a follow-up nobody sends).
"""

from __future__ import annotations

import math
from typing import Any

from rasa_sdk import FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.handoff_actions import HandoffAction
from handoff.leads import (
    MAX_BUDGET,
    MAX_COMPANY_SIZE,
    extract_email,
    extract_name,
    is_timeline,
    parse_budget,
    parse_company_size,
    read_lead_details,
    read_timeline,
    score_lead,
)
from handoff.triggers import load_rules

LEAD_SLOTS = ("lead_company_size", "lead_budget", "lead_timeline", "customer_name", "customer_email")
# What read_lead_details calls each answer, by slot; phone and company are not asked for, but kept
# when given.
DETAIL_OF_SLOT = {
    "lead_company_size": "company_size",
    "lead_budget": "budget",
    "lead_timeline": "timeline",
    "customer_name": "name",
    "customer_email": "email",
    "customer_phone": "phone",
    "lead_company": "company",
}
NOT_ASKED = ("customer_phone", "lead_company")
# A question about the shop during the form answers no question of the form (domain.yml, not_intent).
NOT_AN_ANSWER = {
    "ask_opening_hours",
    "ask_delivery",
    "ask_returns",
    "ask_payment_methods",
    "ask_order_status",
    "ask_prices",
    "bot_challenge",
    "request_human",
}


def _text(value: Any) -> str:
    return str(value or "").strip()


def _slot_value(detail: str, value: Any) -> str:
    if detail == "company_size":
        return str(int(value))
    if detail == "budget":
        return f"{value:.0f}"
    return str(value)


def details_in_message(tracker: Tracker) -> dict[str, str]:
    """Every lead answer the latest message holds, by slot, whatever the form asked: a customer
    may answer out of order, give everything at once, or correct an answer ("no, 60 people")."""
    latest = tracker.latest_message or {}
    if ((latest.get("intent") or {}).get("name")) in NOT_AN_ANSWER:
        return {}
    asked = DETAIL_OF_SLOT.get(tracker.get_slot("requested_slot") or "")
    details = read_lead_details(_text(latest.get("text")), asked)
    return {slot: _slot_value(detail, details[detail]) for slot, detail in DETAIL_OF_SLOT.items() if detail in details}


class ValidateLeadForm(FormValidationAction):
    """Reads every answer a message holds, checks each for what it is, and says what it could
    not read.

    Each message is read for all of the form's answers (``read_lead_details``), so the form
    only asks for what is still missing and a later answer corrects an earlier one. The text
    Rasa puts in the asked slot (``from_text``) is then checked for what it must be: a number of
    people, an amount, a date or period, a name, an e-mail address. An answer that cannot be
    read is refused with a short explanation, unless the message answered something else.
    """

    def name(self) -> str:
        return "validate_lead_form"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        events = await super().run(dispatcher, tracker, domain)
        # The phone number and company are kept when given, though the form does not ask them.
        extra = details_in_message(tracker)
        return events + [SlotSet(slot, extra[slot]) for slot in NOT_ASKED if slot in extra]

    async def get_extraction_events(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        events = await super().get_extraction_events(dispatcher, tracker, domain)
        found = details_in_message(tracker)
        return events + [SlotSet(slot, value) for slot, value in found.items() if slot in LEAD_SLOTS]

    @staticmethod
    def _refuse(slot: str, response: str, dispatcher: CollectingDispatcher, tracker: Tracker) -> dict[str, Any]:
        """No value for ``slot``; say so when it was the question asked and the message answered
        nothing else (then the form simply asks what is still missing)."""
        answered_else = any(s != slot for s in details_in_message(tracker) if s in LEAD_SLOTS)
        if tracker.get_slot("requested_slot") in (slot, None) and not answered_else:
            dispatcher.utter_message(response=response)
        return {slot: None}

    def validate_lead_company_size(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> dict[str, Any]:
        size = parse_company_size(_text(value))
        if size is None or size > MAX_COMPANY_SIZE:
            return self._refuse("lead_company_size", "utter_lead_invalid_company_size", dispatcher, tracker)
        return {"lead_company_size": str(size)}

    def validate_lead_budget(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> dict[str, Any]:
        budget = parse_budget(_text(value))
        if budget is None or not math.isfinite(budget) or not 0 <= budget <= MAX_BUDGET:
            return self._refuse("lead_budget", "utter_lead_invalid_budget", dispatcher, tracker)
        return {"lead_budget": f"{budget:.0f}"}

    def validate_lead_timeline(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> dict[str, Any]:
        text = _text(value)
        # A date or a period, or an honest "just looking"; it is scored as read.
        if not is_timeline(text):
            return self._refuse("lead_timeline", "utter_lead_invalid_timeline", dispatcher, tracker)
        return {"lead_timeline": text[:200]}

    def validate_customer_name(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> dict[str, Any]:
        name = extract_name(_text(value), asked=True)
        if name is None:
            return self._refuse("customer_name", "utter_lead_invalid_name", dispatcher, tracker)
        return {"customer_name": name[:100]}

    def validate_customer_email(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> dict[str, Any]:
        email = extract_email(_text(value))
        if email is None:
            return self._refuse("customer_email", "utter_lead_invalid_email", dispatcher, tracker)
        return {"customer_email": email}


def lead_answers(tracker: Tracker) -> dict[str, Any]:
    return {slot: tracker.get_slot(slot) for slot in LEAD_SLOTS}


class ActionSubmitLead(HandoffAction):
    """Scores the lead: qualified → a person in sales; otherwise a self-serve answer."""

    def name(self) -> str:
        return "action_submit_lead"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        rules = load_rules()
        answers = lead_answers(tracker)
        timeline = read_timeline(_text(answers["lead_timeline"]))
        score = score_lead(
            {
                "company_size": answers["lead_company_size"],
                "budget": answers["lead_budget"],
                "timeline_months": timeline,
            },
            rules.lead_scoring,
        )
        lead = {
            "company_size": int(answers["lead_company_size"]) if answers["lead_company_size"] else None,
            "budget_eur": float(answers["lead_budget"]) if answers["lead_budget"] else None,
            "timeline": answers["lead_timeline"],
            "timeline_months": timeline,
            "name": answers["customer_name"],
            "email": answers["customer_email"],
            "phone": tracker.get_slot("customer_phone"),
            "company": tracker.get_slot("lead_company"),
            "score": score.score,
            "qualified": score.qualified,
            "breakdown": score.breakdown,
        }
        if score.qualified:
            return await self.hand_off(dispatcher, tracker, rules.get("qualified_lead"), lead=lead)
        # Nothing is promised that nobody does: the helpdesk contract has no follow-up for a
        # conversation without a handoff, so the answer points to self-service only.
        dispatcher.utter_message(response="utter_lead_not_qualified")
        return [SlotSet("requested_slot", None)]
