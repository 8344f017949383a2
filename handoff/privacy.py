"""Find a customer's conversations in every store and erase them; the retention period.

A conversation is kept in up to three databases (docs/PRIVACY.md):

- the Rasa tracker store (table ``events``): every turn, slots such as ``customer_email``;
- the handoff database (:mod:`handoff.store`): handoff records, the outbox with the bodies sent
  to the helpdesk (transcripts), scheduled tasks, and the customer's identifiers per handoff;
- the embedded helpdesk's database (:mod:`helpdesk.store`): tickets and what was said on them.

A customer is found by customer id, email address or phone number (:class:`Customer`), in the
slots and message metadata of the tracker store, the sender id itself, the identifiers kept
with handoffs, and the helpdesk's tickets. Every conversation found in one store is then erased
from all of them, so nothing of it is left behind in another.

Retention: a conversation whose latest activity in every store is older than
``HANDOFF_RETENTION_DAYS`` (default 90) is erased the same way; the Rasa server
(:mod:`handoff.server.tasks`) and the embedded helpdesk (:mod:`helpdesk.retention`) do it hourly.

``python -m handoff.tools.privacy_cli forget --customer anna@example.com [--dry-run]``
(``make forget``) and ``python -m handoff.tools.privacy_cli expire [--dry-run]``
(``make retention``) do it by hand. No Rasa imports: the command, the Rasa server, the action
server and the helpdesk use this module.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import jwt
import sqlalchemy as sa
from jsonschema import Draft202012Validator, FormatChecker

from handoff.settings import PROJECT_ROOT, SettingsError

RETENTION_ENV = "HANDOFF_RETENTION_DAYS"
DEFAULT_RETENTION_DAYS = 90.0
#: Rejected or expired outbox entries keep their body this long after they were queued, so an
#: operator can still send them again (``make outbox``, ``--retry``); then the body is cleared.
GIVEN_UP_KEEP_ENV = "HANDOFF_OUTBOX_KEEP_GIVEN_UP_DAYS"
DEFAULT_GIVEN_UP_KEEP_DAYS = 7.0
DAY = 86400.0

FORGET_EVENT = "customer.forget"
#: Tracker slots that identify the customer, and the contract's names for them.
CUSTOMER_SLOTS = {"customer_email": "email", "customer_id": "customer_id", "customer_phone": "phone"}
#: How many ids one ``IN (...)`` lists.
CHUNK = 500

_PHONE = re.compile(r"\+?[0-9][0-9 ()./-]{4,}[0-9]")


# -- who ---------------------------------------------------------------------------------------------


def normalise_email(value: Any) -> str | None:
    if not isinstance(value, str) or "@" not in value:
        return None
    return value.strip().lower() or None


def normalise_phone(value: Any) -> str | None:
    """The digits of a phone number (spaces, dashes and a leading + do not count); None for fewer than 6."""
    if not isinstance(value, str | int):
        return None
    digits = re.sub(r"\D", "", str(value))
    return digits if len(digits) >= 6 else None


def normalise_customer_id(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return str(value).strip() or None


NORMALISE = {"email": normalise_email, "phone": normalise_phone, "customer_id": normalise_customer_id}


def identifiers(details: Any) -> dict[str, str]:
    """The normalised ``email``, ``phone`` and ``customer_id`` of a customer object (contract form)."""
    if not isinstance(details, Mapping):
        return {}
    found = {}
    for kind, normalise in NORMALISE.items():
        value = normalise(details.get(kind))
        if value:
            found[kind] = value
    return found


@dataclass(frozen=True)
class Customer:
    """Whom to find: any of a customer id, an email address and a phone number."""

    customer_id: str | None = None
    email: str | None = None
    phone: str | None = None

    def __post_init__(self) -> None:
        if not (self.customer_id or self.email or self.phone):
            raise ValueError("give a customer id, an email address or a phone number")

    @classmethod
    def parse(cls, text: str) -> Customer:
        """Read what an operator typed: an email address, else a customer id (which may also be a
        phone number, so a number is looked for as both)."""
        text = (text or "").strip()
        if not text:
            raise ValueError("the customer is empty: give a customer id, an email address or a phone number")
        if "@" in text:
            return cls(email=normalise_email(text))
        phone = normalise_phone(text) if _PHONE.fullmatch(text) else None
        return cls(customer_id=text, phone=phone)

    @classmethod
    def from_mapping(cls, details: Mapping[str, Any]) -> Customer:
        found = identifiers(details)
        return cls(found.get("customer_id"), found.get("email"), found.get("phone"))

    def as_dict(self) -> dict[str, str]:
        return {k: v for k, v in (("customer_id", self.customer_id), ("email", self.email), ("phone", self.phone)) if v}

    def matches(self, details: Any) -> bool:
        """Whether a customer object (``email``, ``phone``, ``customer_id``) is this customer."""
        return self.matches_identifiers(identifiers(details))

    def matches_identifiers(self, found: Mapping[str, str]) -> bool:
        return any(found.get(kind) == value for kind, value in self.as_dict().items())

    def matches_value(self, kind: str, value: Any) -> bool:
        """Whether one identifier of kind ``email``/``phone``/``customer_id`` is this customer's."""
        mine = self.as_dict().get(kind)
        return mine is not None and NORMALISE[kind](value) == mine

    def needles(self) -> list[str] | None:
        """Lower-case text that a JSON document naming this customer contains, for a ``LIKE``
        pre-filter; None when no such text exists (a phone number is written in many ways)."""
        if self.phone:
            return None
        values = [v.lower() for v in (self.email, self.customer_id) if v]
        # As json.dumps writes them (ensure_ascii): what the stored JSON text holds.
        return [json.dumps(v)[1:-1] for v in values]

    def __str__(self) -> str:
        return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in self.as_dict().items())


def like_any(column: Any, needles: Iterable[str]) -> Any:
    """``lower(column) LIKE '%needle%'`` for any needle, with LIKE's wildcards escaped."""
    clauses = []
    for needle in needles:
        escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        clauses.append(sa.func.lower(column).like(f"%{escaped}%", escape="\\"))
    return sa.or_(*clauses)


def chunks(items: Iterable[str], size: int = CHUNK) -> Iterator[list[str]]:
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


# -- retention settings -----------------------------------------------------------------------------


def _days(name: str, default: float) -> float:
    raw = (os.environ.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be a number of days, got {raw!r}") from exc
    if not value > 0:
        raise SettingsError(f"{name} must be more than 0 days, got {raw!r}")
    return value


def retention_days() -> float:
    """``HANDOFF_RETENTION_DAYS`` (default 90): how long a conversation is kept after its last activity."""
    return _days(RETENTION_ENV, DEFAULT_RETENTION_DAYS)


def given_up_keep_days() -> float:
    """``HANDOFF_OUTBOX_KEEP_GIVEN_UP_DAYS`` (default 7): how long a rejected or expired delivery keeps its body."""
    return _days(GIVEN_UP_KEEP_ENV, DEFAULT_GIVEN_UP_KEEP_DAYS)


# -- the stores ---------------------------------------------------------------------------------------


class ConversationStore(Protocol):
    """What every store offers: find, age and erase conversations by conversation (sender) id."""

    def find_customer(self, customer: Customer) -> set[str]: ...

    def stale_conversations(self, cutoff: float) -> set[str]: ...

    def recent_among(self, conversation_ids: Iterable[str], cutoff: float) -> set[str]: ...

    def erase_conversations(self, conversation_ids: Iterable[str], dry_run: bool = False) -> dict[str, int]: ...


#: Rasa's SQL tracker store table (the columns read here).
TRACKER_EVENTS = sa.table(
    "events",
    sa.column("id", sa.Integer),
    sa.column("sender_id", sa.String),
    sa.column("type_name", sa.String),
    sa.column("timestamp", sa.Float),
    sa.column("data", sa.Text),
)


class TrackerEvents:
    """The ``events`` table of Rasa's SQL tracker store (``SQLTrackerStore`` and
    :class:`handoff.server.tracker_store.HandoffSQLTrackerStore` share it): every event of every conversation."""

    def __init__(self, engine: sa.engine.Engine) -> None:
        self.engine = engine

    def find_customer(self, customer: Customer) -> set[str]:
        """Senders whose slots (``customer_email``, ``customer_id``, ``customer_phone``) or message
        metadata (``customer``) name the customer, and the sender whose id is the customer id."""
        e = TRACKER_EVENTS.c
        slot_or_user = sa.or_(
            sa.and_(e.type_name == "slot", like_any(e.data, ['"customer_'])),
            sa.and_(e.type_name == "user", like_any(e.data, ['"customer"'])),
        )
        needles = customer.needles()
        query = sa.select(e.sender_id, e.type_name, e.data).where(slot_or_user)
        if needles:
            query = query.where(like_any(e.data, needles))
        # A signed identity (metadata.customer_identity) is a JWT: its claims are base64, out of
        # reach of LIKE, so every message carrying one is read.
        signed = sa.select(e.sender_id, e.data).where(
            e.type_name == "user", like_any(e.data, ['"customer_identity"'])
        )
        found: set[str] = set()
        with self.engine.connect() as connection:
            for sender_id, data in connection.execute(signed):
                if sender_id not in found and _identity_names(customer, data):
                    found.add(sender_id)
            if customer.customer_id:
                hit = connection.execute(
                    sa.select(e.sender_id).where(e.sender_id == customer.customer_id).limit(1)
                ).first()
                if hit:
                    found.add(hit[0])
            for sender_id, type_name, data in connection.execute(query):
                if sender_id not in found and _event_names(customer, type_name, data):
                    found.add(sender_id)
        return found

    def stale_conversations(self, cutoff: float) -> set[str]:
        e = TRACKER_EVENTS.c
        query = sa.select(e.sender_id).group_by(e.sender_id).having(sa.func.max(e.timestamp) < cutoff)
        with self.engine.connect() as connection:
            return {row[0] for row in connection.execute(query)}

    def recent_among(self, conversation_ids: Iterable[str], cutoff: float) -> set[str]:
        e = TRACKER_EVENTS.c
        recent: set[str] = set()
        with self.engine.connect() as connection:
            for batch in chunks(conversation_ids):
                query = sa.select(e.sender_id).where(e.sender_id.in_(batch), e.timestamp >= cutoff).distinct()
                recent.update(row[0] for row in connection.execute(query))
        return recent

    def erase_conversations(self, conversation_ids: Iterable[str], dry_run: bool = False) -> dict[str, int]:
        """Delete every event of these senders; the counts (of what would go, with ``dry_run``)."""
        e = TRACKER_EVENTS.c
        conversations = events = 0
        with self.engine.begin() as connection:
            for batch in chunks(sorted(set(conversation_ids))):
                counted = connection.execute(
                    sa.select(e.sender_id, sa.func.count()).where(e.sender_id.in_(batch)).group_by(e.sender_id)
                ).all()
                conversations += len(counted)
                events += sum(n for _, n in counted)
                if not dry_run:
                    connection.execute(sa.delete(TRACKER_EVENTS).where(e.sender_id.in_(batch)))
        return {"conversations": conversations, "events": events}


def _identity_names(customer: Customer, data: str | None) -> bool:
    """Whether a message's signed identity token names the customer (``sub``, ``email``). The
    signature is not checked: this finds data to erase, it does not trust it."""
    try:
        event = json.loads(data or "")
        token = event["metadata"]["customer_identity"]
        claims = jwt.decode(token, options={"verify_signature": False})
    except (ValueError, KeyError, TypeError, jwt.PyJWTError):
        return False
    if not isinstance(claims, dict):
        return False
    return customer.matches({"customer_id": claims.get("sub"), "email": claims.get("email")})


def _event_names(customer: Customer, type_name: str, data: str | None) -> bool:
    try:
        event = json.loads(data or "")
    except ValueError:
        return False
    if not isinstance(event, dict):
        return False
    if type_name == "slot":
        kind = CUSTOMER_SLOTS.get(event.get("name"))
        return kind is not None and customer.matches_value(kind, event.get("value"))
    metadata = event.get("metadata")
    return isinstance(metadata, dict) and customer.matches(metadata.get("customer"))


@dataclass
class Stores:
    """The stores to search and erase; a store that is None is left alone."""

    tracker: ConversationStore | None = None
    handoff: ConversationStore | None = None
    helpdesk: ConversationStore | None = None
    #: What to call each store in a report (e.g. its database URL without password).
    names: dict[str, str] = field(default_factory=dict)

    def items(self) -> list[tuple[str, ConversationStore]]:
        return [(n, s) for n, s in (("tracker", self.tracker), ("handoff", self.handoff), ("helpdesk", self.helpdesk)) if s is not None]


@dataclass(frozen=True)
class Erasure:
    """What was erased (or, in a dry run, would be): conversation ids and counts per store."""

    conversations: list[str]
    counts: dict[str, dict[str, int]]
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "conversation_ids": self.conversations, "erased": self.counts}

    @property
    def total(self) -> int:
        return sum(sum(c.values()) for c in self.counts.values())


def erase(stores: Stores, conversation_ids: Iterable[str], dry_run: bool = False) -> Erasure:
    """Erase these conversations from every store."""
    ids = sorted(set(conversation_ids))
    counts = {name: store.erase_conversations(ids, dry_run=dry_run) for name, store in stores.items()}
    return Erasure(ids, counts, dry_run)


def find(stores: Stores, customer: Customer) -> set[str]:
    """The conversation ids that name ``customer`` in any store."""
    found: set[str] = set()
    for _, store in stores.items():
        found |= store.find_customer(customer)
    return found


def forget(stores: Stores, customer: Customer, dry_run: bool = False) -> Erasure:
    """Find the customer's conversations in every store and erase them from every store."""
    return erase(stores, find(stores, customer), dry_run=dry_run)


def expired(stores: Stores, cutoff: float) -> set[str]:
    """Conversations with no activity since ``cutoff`` (Unix time) in any of the stores."""
    candidates: set[str] = set()
    for _, store in stores.items():
        candidates |= store.stale_conversations(cutoff)
    for _, store in stores.items():
        if not candidates:
            break
        candidates -= store.recent_among(candidates, cutoff)
    return candidates


def expire(stores: Stores, cutoff: float | None = None, dry_run: bool = False) -> Erasure:
    """Erase every conversation whose latest activity is older than ``cutoff`` (default: the
    retention period ago), and clear the bodies of given-up deliveries kept long enough."""
    now = time.time()
    cutoff = now - retention_days() * DAY if cutoff is None else cutoff
    result = erase(stores, expired(stores, cutoff), dry_run=dry_run)
    handoff = stores.handoff
    if handoff is not None and hasattr(handoff, "clear_given_up_bodies"):
        cleared = handoff.clear_given_up_bodies(now - given_up_keep_days() * DAY, dry_run=dry_run)
        result.counts["handoff"]["given_up_bodies_cleared"] = cleared
        if not dry_run:
            handoff.clear_delivered_bodies()  # cleared on delivery; this mends older databases
    return result


# -- the customer.forget command (helpdesk → assistant) -------------------------------------------------

SCHEMA_PATH = PROJECT_ROOT / "docs" / "schemas" / f"{FORGET_EVENT}.json"
_validator: Draft202012Validator | None = None


def is_forget_command(raw: bytes) -> bool:
    """Cheap check before parsing: only a body naming the event can be one."""
    return FORGET_EVENT.encode() in raw


def parse_forget_command(raw: bytes) -> dict[str, Any] | None:
    """The ``customer.forget`` body in ``raw``, checked against its schema; None when ``raw`` is
    another event; :class:`ValueError` saying what is wrong when it is a bad one."""
    global _validator
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ValueError("body is not valid JSON") from exc
    if not isinstance(body, dict) or body.get("event") != FORGET_EVENT:
        return None
    if _validator is None:
        schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
        Draft202012Validator.check_schema(schema)
        _validator = Draft202012Validator(schema, format_checker=FormatChecker())
    problems = []
    for error in sorted(_validator.iter_errors(body), key=lambda e: list(e.absolute_path)):
        where = ".".join(str(p) for p in error.absolute_path)
        problems.append(f"at {where}: {error.message}" if where else error.message)
    if problems:
        raise ValueError(f"{FORGET_EVENT}: " + "; ".join(problems[:5]))
    try:
        Customer.from_mapping(body["customer"])
    except ValueError as exc:
        raise ValueError(f"{FORGET_EVENT}: at customer: {exc}") from None
    return body
