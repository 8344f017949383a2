"""Words and formats the agent pages use: labels for codes, times and durations."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import jinja2

from handoff.triggers import RulesError, load_rules
from helpdesk.db import (
    ASSIGNED,
    AVAILABLE,
    AWAY,
    CLOSED,
    HANDED_BACK,
    OFFLINE,
    WAITING,
    Ticket,
    utcnow,
)

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"

REASON_LABELS = {
    "customer_request": "Customer asked for a person",
    "bot_failure": "The bot could not help",
    "frustration": "Customer is frustrated",
    "urgent": "Urgent matter",
    "sensitive": "Sensitive topic",
    "complex": "Complex question",
    "qualified_lead": "Qualified sales lead",
    "repeat_contact": "Repeat contact",
    "timeout": "Timed out",
}

CAUSE_LABELS = {
    "customer_restart": "the customer restarted the conversation",
    "session_expired": "the session expired",
    "no_agent_timeout": "no agent joined in time",
    "customer_left": "the customer left",
    HANDED_BACK: "handed back to the bot",
}

LANGUAGE_LABELS = {"en": "English", "nl": "Dutch"}


def reason_label(code: str) -> str:
    return REASON_LABELS.get(code, code)


def cause_label(code: str | None) -> str:
    return CAUSE_LABELS.get(code or "", code or "closed")


def language_label(code: str) -> str:
    return LANGUAGE_LABELS.get(code, code)


def duration(seconds: float | None) -> str:
    """``45 s``, ``3 min``, ``1 h 5 min``, ``2 d 3 h``."""
    if seconds is None:
        return ""
    seconds = max(int(seconds), 0)
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def since(moment: datetime | None) -> str:
    """How long ago a stored (naive UTC) moment was."""
    if moment is None:
        return ""
    return duration((utcnow() - moment).total_seconds())


def parse_time(value: Any) -> datetime | None:
    """A stored naive-UTC datetime, or an ISO 8601 string, as an aware UTC datetime."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value:
        text = value.strip().replace(" ", "T", 1)
        if text[-1:] in "Zz":
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return None
    else:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def clock(value: Any) -> str:
    """``14:03:27`` (UTC), or the raw value when it is not a time."""
    moment = parse_time(value)
    if moment is None:
        return "" if value is None else str(value)
    return moment.strftime("%H:%M:%S")


def full_time(value: Any) -> str:
    """``2024-05-01 14:03:27 UTC``, or the raw value when it is not a time."""
    moment = parse_time(value)
    if moment is None:
        return "" if value is None else str(value)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def show(value: Any) -> str:
    """A field value as text: scalars as they are, lists and objects as compact JSON."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def percent(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value * 100:.0f}%"
    return ""


def state_text(ticket: Ticket) -> str:
    """``waiting``, ``with Grace`` or ``closed: the customer left``."""
    if ticket.state == WAITING:
        return "waiting"
    if ticket.state == ASSIGNED:
        return f"with {ticket.agent_name}"
    if ticket.state == CLOSED:
        if ticket.close_cause == HANDED_BACK and ticket.agent_name:
            return f"closed: handed back to the bot by {ticket.agent_name}"
        return f"closed: {cause_label(ticket.close_cause)}"
    return ticket.state


def waiting_text(ticket: Ticket) -> str:
    """How long the customer has waited (or waited) for an agent."""
    if ticket.state == WAITING:
        return since(ticket.created_at)
    end = ticket.joined_at or ticket.closed_at
    if end is None:
        return ""
    return duration((end - ticket.created_at).total_seconds())


def iso(value: Any) -> str:
    """``2024-05-01T14:03:27Z``: a time the browser can read (for times that tick on the page)."""
    moment = parse_time(value)
    return "" if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


CUSTOMER_FIELDS = ("name", "email", "phone", "customer_id")
# Keys of the ticket's customer object that describe the fields rather than being one.
CUSTOMER_FLAGS = ("verified", "sources")
VERIFIED_TEXT = "verified"
UNVERIFIED_TEXT = "given by the customer, unverified"


def _label_key(customer: dict[str, Any]) -> str | None:
    for key in CUSTOMER_FIELDS:
        value = customer.get(key)
        if isinstance(value, str) and value.strip():
            return key
    return None


def customer_label(ticket: Ticket) -> str:
    """The customer's name, else their e-mail address, else ``Customer``."""
    customer = ticket.customer or {}
    key = _label_key(customer)
    return customer[key].strip() if key else "Customer"


def is_verified(customer: Any, key: str) -> bool:
    """Whether the assistant verified the customer field ``key`` (a signed identity).

    Only an explicit ``verified: {key: true}`` counts: tickets from before the flags existed, other
    assistants and anything malformed are unverified.
    """
    if not isinstance(customer, dict):
        return False
    flags = customer.get("verified")
    return isinstance(flags, dict) and flags.get(key) is True


def customer_label_verified(ticket: Ticket) -> bool:
    """Whether the field :func:`customer_label` shows is verified."""
    customer = ticket.customer or {}
    key = _label_key(customer)
    return key is not None and is_verified(customer, key)


@dataclass(frozen=True)
class CustomerField:
    """One customer detail as the console shows it."""

    key: str
    value: Any
    verified: bool

    @property
    def label(self) -> str:
        return self.key.replace("_", " ")

    @property
    def trust(self) -> str:
        """``verified`` or ``given by the customer, unverified``."""
        return VERIFIED_TEXT if self.verified else UNVERIFIED_TEXT


def customer_fields(customer: Any) -> list[CustomerField]:
    """The customer's details, the contract's fields first, each marked verified or not."""
    if not isinstance(customer, dict):
        return []
    keys = [key for key in CUSTOMER_FIELDS if customer.get(key) not in (None, "")]
    keys += [key for key in customer if key not in CUSTOMER_FIELDS and key not in CUSTOMER_FLAGS]
    return [CustomerField(str(key), customer[key], is_verified(customer, key)) for key in keys]


_BROWSERS = (
    ("Edge", r"Edg(?:e|A|iOS)?/(\d+)"),
    ("Opera", r"OPR/(\d+)"),
    ("Firefox", r"(?:Firefox|FxiOS)/(\d+)"),
    ("HeadlessChrome", r"HeadlessChrome/(\d+)"),
    ("Chrome", r"(?:Chrome|CriOS)/(\d+)"),
    ("Safari", r"Version/(\d+)[.\d]* (?:Mobile/\S+ )?Safari/"),
)
_SYSTEMS = (
    ("Android", r"Android"),
    ("iOS", r"iPhone|iPad|iPod"),
    ("Windows", r"Windows"),
    ("macOS", r"Mac OS X|Macintosh"),
    ("ChromeOS", r"CrOS"),
    ("Linux", r"Linux"),
)


def browser_label(value: Any) -> str:
    """``Chrome 126 · Windows`` for a browser's user agent; other values as they are."""
    text = show(value)
    if not isinstance(value, str) or not value.startswith("Mozilla/"):
        return text
    browser = next(
        (f"{name} {m.group(1)}" for name, pattern in _BROWSERS if (m := re.search(pattern, value))),
        None,
    )
    system = next((name for name, pattern in _SYSTEMS if re.search(pattern, value)), None)
    parts = [part for part in (browser, system) if part]
    return " · ".join(parts) if parts else text


PRESENCE_LABELS = {AVAILABLE: "Available", AWAY: "Away", OFFLINE: "Offline"}


def presence_label(status: str) -> str:
    return PRESENCE_LABELS.get(status, status)


#: Queues every helpdesk of this project has (docs/HANDOFF_CONTRACT.md), offered as transfer
#: targets even before handoff_rules.yml lists them, and listed first.
STANDARD_QUEUES = ("support", "sales", "supervisor")


@dataclass(frozen=True)
class QueueChoice:
    """A queue a ticket can be transferred to."""

    name: str  # what agent.transferred sends
    label: str  # what the agent reads


def _queue_label(name: str, hours: Any) -> str:
    try:
        label = hours.display_name("en")
    except Exception:  # the queues section is optional and may not know display names yet
        return name
    return label if isinstance(label, str) and label and label != name else name


def queue_choices() -> list[QueueChoice]:
    """The queues of handoff_rules.yml (``queues:``, else the queues its triggers name, together
    with :data:`STANDARD_QUEUES`), the standard ones first."""
    try:
        rules: Any = load_rules()
    except RulesError:
        rules = None
    queues = getattr(rules, "queues", None)
    if isinstance(queues, dict) and queues:
        found = {str(name): _queue_label(str(name), hours) for name, hours in queues.items()}
    else:
        triggers = getattr(rules, "triggers", None) or {}
        found = {trigger.queue: trigger.queue for trigger in triggers.values()}
        found.update({name: name for name in STANDARD_QUEUES if name not in found})
    names = [name for name in STANDARD_QUEUES if name in found]
    names += sorted(name for name in found if name not in STANDARD_QUEUES)
    return [QueueChoice(name, found[name]) for name in names]


def transfer_targets(ticket: Ticket) -> list[QueueChoice]:
    """Where ``ticket`` can be transferred: every queue but its own."""
    return [choice for choice in queue_choices() if choice.name != ticket.queue]


@dataclass(frozen=True)
class Transfer:
    """A transfer entry's text, read back."""

    source: str
    target: str
    note: str


def transfer_parts(text: str | None) -> Transfer:
    """The queues and note of a ``transfer`` entry (stored as JSON)."""
    try:
        data = json.loads(text or "")
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return Transfer("?", "?", text or "")
    return Transfer(str(data.get("from") or "?"), str(data.get("to") or "?"), str(data.get("note") or ""))


def make_environment() -> jinja2.Environment:
    """The template environment: HTML autoescaped, undefined names are errors."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        reason_label=reason_label,
        cause_label=cause_label,
        language_label=language_label,
        duration=duration,
        since=since,
        clock=clock,
        full_time=full_time,
        show=show,
        percent=percent,
        state_text=state_text,
        waiting_text=waiting_text,
        iso=iso,
        customer_label=customer_label,
        customer_label_verified=customer_label_verified,
        customer_fields=customer_fields,
        is_verified=is_verified,
        browser_label=browser_label,
        presence_label=presence_label,
        transfer_parts=transfer_parts,
    )
    env.globals.update(transfer_targets=transfer_targets)
    return env
