"""Build contract payloads from a conversation's events (plain dicts, as both Rasa and rasa-sdk
serialise them), so the agent sees the whole conversation and the customer never repeats it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from handoff.conversation import current_session, is_external, latest_customer_event
from handoff.identity import METADATA_KEY as IDENTITY_METADATA_KEY
from handoff.identity import VerifiedIdentity, verify_identity
from handoff.store import new_event, utc_iso

if TYPE_CHECKING:
    from handoff.triggers import Trigger

# Slots that describe the customer, and the contract's names for them.
CUSTOMER_SLOTS = {
    "customer_name": "name",
    "customer_email": "email",
    "customer_phone": "phone",
    "customer_id": "customer_id",
}
CUSTOMER_FIELDS = ("name", "email", "phone", "customer_id")
# Message metadata keys that are the assistant's own bookkeeping, not the channel's (the identity
# token is a credential: it never goes to the helpdesk).
INTERNAL_METADATA = {
    "is_external",
    "customer",
    IDENTITY_METADATA_KEY,
    "handoff_role",
    "agent_name",
    "model_id",
    "assistant_id",
}
# Where a customer field came from (``customer.sources``): a signed identity token, what the channel
# sent as ``metadata.customer``, or what the customer told the bot (slots). Only the first is verified.
SOURCE_IDENTITY = "identity"
SOURCE_CHANNEL = "channel"
SOURCE_CONVERSATION = "conversation"
AGENT_ROLE = "agent"
MAX_METADATA_VALUE = 500


def _intent(event: Mapping[str, Any]) -> tuple[str | None, float | None]:
    intent = (event.get("parse_data") or {}).get("intent") or {}
    confidence = intent.get("confidence")
    return intent.get("name"), (round(float(confidence), 4) if confidence is not None else None)


def transcript(events: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every customer, bot and agent turn of the current session, in order."""
    turns: list[dict[str, Any]] = []
    for event in current_session(events):
        kind = event.get("event")
        text = event.get("text")
        if not text:
            continue
        timestamp = utc_iso(event.get("timestamp"))
        if kind == "user":
            if is_external(event):
                continue
            intent, confidence = _intent(event)
            turns.append(
                {"role": "customer", "text": text, "timestamp": timestamp, "intent": intent, "confidence": confidence}
            )
        elif kind == "bot":
            metadata = event.get("metadata") or {}
            turn = {"role": "agent" if metadata.get("handoff_role") == AGENT_ROLE else "bot", "text": text, "timestamp": timestamp}
            if metadata.get("agent_name"):
                turn["agent_name"] = metadata["agent_name"]
            turns.append(turn)
    return turns


def customer_details(
    slots: Mapping[str, Any],
    metadata: Mapping[str, Any] | None,
    identity: VerifiedIdentity | None = None,
) -> dict[str, Any]:
    """What is known of the customer, and for each field whether it is verified.

    A signed identity (:mod:`handoff.identity`) comes first and is the only verified source; then
    what the channel says (``metadata.customer``, e.g. set by the web chat's page) and then slots
    the bot collected, both given by the customer and unverified. The fields keep their contract
    names and values; ``verified`` maps each of them to true or false and ``sources`` to
    ``identity``, ``channel`` or ``conversation``. Nothing known gives ``{}``.
    """
    known: dict[str, Any] = {}
    sources: dict[str, str] = {}

    def add(key: str, value: Any, source: str) -> None:
        if key not in known and value not in (None, ""):
            known[key] = str(value)[:MAX_METADATA_VALUE]
            sources[key] = source

    for key, value in (identity.fields() if identity else {}).items():
        add(key, value, SOURCE_IDENTITY)
    given = (metadata or {}).get("customer")
    if isinstance(given, Mapping):
        for key in CUSTOMER_FIELDS:
            add(key, given.get(key), SOURCE_CHANNEL)
    for slot, key in CUSTOMER_SLOTS.items():
        add(key, slots.get(slot), SOURCE_CONVERSATION)
    if not known:
        return {}
    return {
        **known,
        "verified": {key: source == SOURCE_IDENTITY for key, source in sources.items()},
        "sources": sources,
    }


def _clean(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return value[:MAX_METADATA_VALUE]
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    if isinstance(value, Mapping) and depth < 2:
        return {str(k)[:100]: _clean(v, depth + 1) for k, v in list(value.items())[:30]}
    if isinstance(value, (list, tuple)) and depth < 2:
        return [_clean(v, depth + 1) for v in list(value)[:30]]
    return str(value)[:MAX_METADATA_VALUE]


def channel_details(event: Mapping[str, Any] | None) -> dict[str, Any]:
    """The input channel's name plus the technical details its metadata carries."""
    if event is None:
        return {"name": "unknown"}
    details: dict[str, Any] = {"name": event.get("input_channel") or "unknown"}
    for key, value in (event.get("metadata") or {}).items():
        if key not in INTERNAL_METADATA and key != "name":
            details[str(key)[:100]] = _clean(value)
    return details


def merged_metadata(events: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The metadata of the customer's messages, later messages overriding earlier ones (a web chat
    may send who the customer is with the first message only)."""
    merged: dict[str, Any] = {}
    for event in events:
        if event.get("event") == "user" and not is_external(event):
            for key, value in (event.get("metadata") or {}).items():
                if key == "customer" and isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
                    merged[key] = {**merged[key], **value}
                else:
                    merged[key] = value
    return merged


def build_handoff_requested(
    *,
    conversation_id: str,
    events: list[Mapping[str, Any]],
    slots: Mapping[str, Any],
    trigger: Trigger,
    language: str = "en",
    signals: list[str] | None = None,
    lead: Mapping[str, Any] | None = None,
    handoff_id: str | None = None,
) -> dict[str, Any]:
    """The ``handoff.requested`` message for this conversation, per the contract."""
    session = current_session(events)
    latest = latest_customer_event(session)
    metadata = merged_metadata(session)
    intent, confidence = _intent(latest) if latest else (None, None)
    trigger_info: dict[str, Any] = {
        "name": trigger.name,
        "intent": intent,
        "confidence": confidence,
        "text": latest.get("text") if latest else None,
        "signals": list(signals or []),
    }
    if latest and ((latest.get("parse_data") or {}).get("explicit_request")) and "explicit_request" not in trigger_info["signals"]:
        # The NLU keyword backstop recognised an explicit request for a person (handoff_rules.yml).
        trigger_info["signals"].append("explicit_request")
    fields: dict[str, Any] = {
        "reason": trigger.reason,
        "reason_text": trigger.reason_text,
        "trigger": trigger_info,
        "priority": trigger.priority,
        "queue": trigger.queue,
        "language": language if language in ("en", "nl") else "en",
        "customer": customer_details(
            slots,
            metadata,
            verify_identity(metadata.get(IDENTITY_METADATA_KEY), conversation_id=conversation_id),
        ),
        "channel": channel_details({**latest, "metadata": metadata} if latest else None),
        "transcript": transcript(events),
    }
    if trigger.reason == "qualified_lead":
        fields["lead"] = dict(lead or {})
    return new_event("handoff.requested", handoff_id or str(uuid.uuid4()), conversation_id, **fields)


def known_customer(conversation_id: str, events: list[Mapping[str, Any]], slots: Mapping[str, Any]) -> dict[str, Any]:
    """What is known of the customer now, as in ``handoff.requested`` (with verified/sources)."""
    metadata = merged_metadata(current_session(events))
    identity = verify_identity(metadata.get(IDENTITY_METADATA_KEY), conversation_id=conversation_id)
    return customer_details(slots, metadata, identity)


def build_follow_up_requested(
    *,
    handoff_id: str,
    conversation_id: str,
    events: list[Mapping[str, Any]],
    slots: Mapping[str, Any],
    origin: str,
    follow_up: Mapping[str, str],
    reason: str,
    reason_text: str | None,
    queue: str,
    priority: str,
    language: str,
    due_at: str,
    lead: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``follow_up.requested`` message: the customer left a phone number or an email address
    instead of waiting for a person (``follow_up`` as in ``handoff.ended``)."""
    method = follow_up["method"]
    contact = {"phone": follow_up["phone"]} if method == "callback" else {"email": follow_up["email"]}
    fields: dict[str, Any] = {
        "follow_up_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"follow-up:{handoff_id}")),
        "origin": origin,
        "method": method,
        "contact": contact,
        "reason": reason,
        "reason_text": reason_text,
        "queue": queue,
        "priority": priority,
        "language": language if language in ("en", "nl") else "en",
        "customer": known_customer(conversation_id, events, slots),
        "due_at": due_at,
        "transcript": transcript(events),
    }
    if lead:
        fields["lead"] = dict(lead)
    return new_event("follow_up.requested", handoff_id, conversation_id, **fields)
