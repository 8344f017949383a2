"""Lead qualification: the ``lead_form`` answers, read from free text, scored by the YAML rules.

A qualified lead goes to a person in the ``sales`` queue with its answers and score; anyone else
gets a useful self-serve answer and an offer of follow-up by email.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.handoff_actions import HandoffAction
from handoff.leads import (
    extract_email,
    parse_budget,
    parse_company_size,
    parse_timeline_months,
    score_lead,
)
from handoff.triggers import load_rules

LEAD_SLOTS = ("lead_company_size", "lead_budget", "lead_timeline", "customer_name", "customer_email")


def _text(value: Any) -> str:
    return str(value or "").strip()


class ValidateLeadForm(FormValidationAction):
    """Reads numbers, amounts, timelines and email addresses from what the customer typed."""

    def name(self) -> str:
        return "validate_lead_form"

    def validate_lead_company_size(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> dict[str, Any]:
        size = parse_company_size(_text(value))
        if size is None:
            dispatcher.utter_message(response="utter_lead_invalid_company_size")
            return {"lead_company_size": None}
        return {"lead_company_size": str(size)}

    def validate_lead_budget(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> dict[str, Any]:
        budget = parse_budget(_text(value))
        if budget is None:
            dispatcher.utter_message(response="utter_lead_invalid_budget")
            return {"lead_budget": None}
        return {"lead_budget": f"{budget:.0f}"}

    def validate_lead_timeline(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> dict[str, Any]:
        text = _text(value)
        if not text:
            dispatcher.utter_message(response="utter_lead_invalid_timeline")
            return {"lead_timeline": None}
        # Any answer is accepted ("just looking" is an answer too); it is scored as read.
        return {"lead_timeline": text}

    def validate_customer_name(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> dict[str, Any]:
        name = _text(value)
        return {"customer_name": name[:100] if name else None}

    def validate_customer_email(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> dict[str, Any]:
        email = extract_email(_text(value))
        if email is None:
            dispatcher.utter_message(response="utter_lead_invalid_email")
            return {"customer_email": None}
        return {"customer_email": email}


def lead_answers(tracker: Tracker) -> dict[str, Any]:
    return {slot: tracker.get_slot(slot) for slot in LEAD_SLOTS}


class ActionSubmitLead(HandoffAction):
    """Scores the lead: qualified → a person in sales; otherwise self-serve plus email follow-up."""

    def name(self) -> str:
        return "action_submit_lead"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        rules = load_rules()
        answers = lead_answers(tracker)
        timeline = parse_timeline_months(_text(answers["lead_timeline"]))
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
            "score": score.score,
            "qualified": score.qualified,
            "breakdown": score.breakdown,
        }
        if score.qualified:
            return await self.hand_off(dispatcher, tracker, rules.get("qualified_lead"), lead=lead)
        dispatcher.utter_message(response="utter_lead_not_qualified")
        if answers["customer_email"]:
            dispatcher.utter_message(response="utter_lead_followup_by_email", customer_email=answers["customer_email"])
        return [SlotSet("requested_slot", None)]
