"""The ``helpdesk`` input channel: where the helpdesk talks back to the assistant.

``POST /webhooks/helpdesk/webhook`` takes the signed ``agent.joined``, ``agent.message`` and
``agent.handback`` events of docs/HANDOFF_CONTRACT.md, and the signed ``customer.forget``
command, which erases a customer's conversations from the tracker store and the handoff database
(:mod:`handoff.privacy`) and answers the counts. Agent messages are kept in the tracker as
bot turns marked ``handoff_role: agent`` and pushed to the customer on the channel they last used
(where that channel can take pushes: socket.io, callback, ...). A hand-back resumes the
conversation and triggers ``EXTERNAL_handback`` so the bot picks up where the agent left off; its
optional ``wrap_up`` (the agent's wrap-up) is kept with the hand-back note, once its intent, if it
names one, is found in the model's domain.

Each ``event_id`` is done once, across every Rasa process (the shared handoff database). A process
that dies in the middle of an event leaves it unrecorded, and the balancer sends it to another
one: a message that was already pushed is found in the tracker by its ``helpdesk_event_id``
metadata (a duplicate, not pushed again), and a hand-back that ended the handoff but did not give
the conversation back to the bot is finished. An event that cannot have the conversation's lock
within its lifetime is answered 503 with ``Retry-After``: nothing of it was done, and the helpdesk
sends it again with the same ``event_id``.

Configure it in ``credentials.yml``::

    handoff.server.helpdesk_channel.HelpdeskInput:
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import (
    InputChannel,
    OutputChannel,
    UserMessage,
)
from rasa.core.lock_store import LockError
from rasa.shared.core.events import BotUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.exceptions import RasaException
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from handoff import privacy
from handoff.lifecycle import EndCause
from handoff.schemas import validate_inbound
from handoff.server import limits, patches
from handoff.server.lifecycle import language_of, output_channel_for, push, take_back
from handoff.server.tasks import TaskRunner
from handoff.server.tracker_store import sql_engine
from handoff.settings import SettingsError, get_settings
from handoff.signing import SignatureError, verify_request
from handoff.store import get_store
from handoff.triggers import load_rules

logger = logging.getLogger(__name__)

JOINED_RESPONSE = "utter_handoff_agent_joined"
TRANSFERRED_RESPONSE = "utter_handoff_transferred"
#: ``Retry-After`` of the 503 answered when the conversation's lock could not be had in time.
BUSY_RETRY_AFTER_SECONDS = 1

# The schema's "uuid" format lets through forms Python's uuid module reads (extra dashes, ...);
# ids are stored and compared as text, so only the canonical 36 characters are taken.
_CANONICAL_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def known_queues() -> set[str]:
    """The queues a conversation can be transferred to: those of handoff_rules.yml."""
    rules = load_rules()
    return set(rules.queues) | {trigger.queue for trigger in rules.triggers.values()}


def unknown_wrap_up_intent(agent: Any, wrap_up: dict[str, Any]) -> str | None:
    """What is wrong with the intent an agent's wrap-up names, when it is not one of the loaded
    model's domain (None when it is, when none is named, or when no model is loaded to ask)."""
    intent = wrap_up.get("intent")
    domain = getattr(agent, "domain", None)
    if intent is None or domain is None:
        return None
    if intent in domain.intents:
        return None
    return f"agent.handback: at wrap_up.intent: {intent[:64]!r} is not an intent of the assistant's domain"


class HandoffSettingsError(RasaException):
    """The handoff settings are unusable (e.g. the development secret outside development)."""


class BodyTooLarge(Exception):
    """A request body is larger than the configured limit."""


#: The metadata key of a pushed message that names the helpdesk event it came from.
EVENT_ID_KEY = "helpdesk_event_id"


def tagged(event: BotUttered, event_id: str) -> BotUttered:
    """``event`` with the helpdesk event's id in its metadata (see :func:`already_pushed`)."""
    event.metadata = {**(event.metadata or {}), EVENT_ID_KEY: event_id}
    return event


def already_pushed(tracker: Any, event_id: str) -> bool:
    """Whether the conversation has the message of helpdesk event ``event_id`` (a replica pushed it
    and died before recording the event as done)."""
    for event in reversed(list(getattr(tracker, "events", None) or [])):
        if isinstance(event, BotUttered) and (event.metadata or {}).get(EVENT_ID_KEY) == event_id:
            return True
    return False


def _error(status: int, message: str) -> HTTPResponse:
    return response.json({"error": message}, status=status)


async def read_body(request: Request, limit: int) -> bytes:
    """The raw request body, read in chunks; :class:`BodyTooLarge` past ``limit`` bytes.

    The route streams, so an oversized body (announced by Content-Length, or sent chunked without
    one) is refused without being held in memory first.
    """
    declared = (request.headers.get("content-length") or "").strip()
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    stream = getattr(request, "stream", None)
    if stream is None or not hasattr(stream, "read"):  # a buffered request (e.g. a test client)
        raw = request.body or b""
        if len(raw) > limit:
            raise BodyTooLarge
        return raw
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await stream.read()
        if chunk is None:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)


def unstorable_text(value: Any) -> bool:
    """True when a string anywhere in ``value`` holds a lone surrogate or a NUL character.

    JSON escapes can carry both (``\\ud800``, ``\\u0000``); neither is text that a tracker store
    (PostgreSQL in particular), a channel or the helpdesk can keep faithfully.
    """
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def parse_body(raw: bytes) -> dict[str, Any]:
    """Decode, parse and check a helpdesk event; a :class:`ValueError` says what is wrong."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError("body is not valid JSON: it is not UTF-8 text") from exc
    try:
        body = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ValueError("body is not valid JSON") from exc
    body = validate_inbound(body)  # SchemaValidationError is a ValueError
    for name in ("event_id", "handoff_id"):
        if not _CANONICAL_UUID.fullmatch(body[name]):
            raise ValueError(f"{body['event']}: at {name}: not a UUID in its 36-character form")
    if unstorable_text(body):
        raise ValueError(f"{body['event']}: a string holds a NUL character or a lone surrogate")
    return body


class HelpdeskInput(InputChannel):
    """Receives the helpdesk's events for conversations that were handed off."""

    @classmethod
    def name(cls) -> str:
        return "helpdesk"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        # Read the settings now, so the server refuses to start (before it loads the model) with
        # a clear message, e.g. without HELPDESK_SECRET outside development.
        try:
            get_settings()
        except SettingsError as exc:
            raise HandoffSettingsError(str(exc)) from None
        return cls()

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        # The Rasa patches, as the event broker installs them too (idempotent): see
        # handoff/server/patches/__init__.py. Rasa builds the channels' blueprints in every
        # server process before it serves.
        patches.install()
        webhook = Blueprint("helpdesk_webhook", __name__)

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.route("/webhook", methods=["POST"], stream=True)
        async def receive(request: Request) -> HTTPResponse:
            return await self.handle(request)

        @webhook.listener("main_process_start")
        async def add_limits(app: Any, _loop: Any) -> None:
            # Limits on customers' messages for the whole server: see handoff/server/limits.py.
            limits.install(app, get_settings())

        @webhook.listener("before_server_start")
        async def limit_socketio(app: Any, _loop: Any) -> None:
            limits.limit_socketio(getattr(app.ctx, "input_channels", None), get_settings())

        @webhook.listener("after_server_start")
        async def start_tasks(app: Any, _loop: Any) -> None:
            # Durable handoff timers (no-agent timeout, wait updates): see handoff/server/tasks.py.
            app.ctx.handoff_tasks = TaskRunner(app).start()

        @webhook.listener("before_server_stop")
        async def stop_tasks(app: Any, _loop: Any) -> None:
            runner = getattr(app.ctx, "handoff_tasks", None)
            if runner is not None:
                await runner.stop()

        return webhook

    async def handle(self, request: Request) -> HTTPResponse:
        settings = get_settings()
        try:
            raw = await read_body(request, settings.max_body_bytes)
        except BodyTooLarge:
            return _error(413, f"body larger than {settings.max_body_bytes} bytes")
        try:
            verify_request(settings.secret, request.headers, raw, settings.signature_tolerance)
        except SignatureError as exc:
            logger.warning("helpdesk event refused: %s", exc)
            return _error(401, str(exc))
        if privacy.is_forget_command(raw):
            try:
                command = privacy.parse_forget_command(raw)
            except ValueError as exc:
                return _error(400, str(exc))
            if command is not None:
                return await self._forget(request, command)
        try:
            body = parse_body(raw)
        except ValueError as exc:  # SchemaValidationError included
            return _error(400, str(exc))

        if body["event"] == "agent.transferred" and body["queue"] not in known_queues():
            return _error(400, f"agent.transferred: at queue: unknown queue {body['queue'][:64]!r}; queues are: {', '.join(sorted(known_queues()))}")
        wrap_up = body.get("wrap_up") if body["event"] == "agent.handback" else None
        if wrap_up is not None:
            unknown = unknown_wrap_up_intent(request.app.ctx.agent, wrap_up)
            if unknown is not None:
                return _error(400, unknown)
        store = get_store(settings.database_url)
        event_id, handoff_id = body["event_id"], body["handoff_id"]
        conversation_id = body["conversation_id"]
        if await asyncio.to_thread(store.inbound_seen, event_id):
            return response.json({"status": "duplicate", "event_id": event_id})

        handoff = await asyncio.to_thread(store.get_handoff, handoff_id)
        agent = request.app.ctx.agent
        if handoff is None or handoff.conversation_id != conversation_id:
            return _error(404, "unknown handoff for this conversation")
        if not await agent.tracker_store.exists(conversation_id):
            return _error(404, "unknown conversation")

        try:
            async with agent.lock_store.lock(conversation_id):
                return await self._apply(request, body, store, wrap_up)
        except LockError:
            # The conversation's turns queue for its lock, and this event waited longer than the
            # lock's lifetime. Nothing of it was done: the helpdesk sends it again (same event_id).
            logger.warning("helpdesk event %s for handoff %s: the conversation stayed busy; asked to send it again", body["event"], handoff_id)
            return response.json(
                {"error": "the conversation is busy: send the same event again", "event_id": event_id},
                status=503,
                headers={"Retry-After": str(BUSY_RETRY_AFTER_SECONDS)},
            )

    async def _apply(self, request: Request, body: dict[str, Any], store: Any, wrap_up: dict[str, Any] | None) -> HTTPResponse:
        """Do what the event asks, under the conversation's lock."""
        settings = get_settings()
        agent = request.app.ctx.agent
        event_id, handoff_id = body["event_id"], body["handoff_id"]
        conversation_id = body["conversation_id"]
        # Checked again inside the lock: a concurrent retry or a restart may have won.
        if await asyncio.to_thread(store.inbound_seen, event_id):
            return response.json({"status": "duplicate", "event_id": event_id})
        kind = body["event"]
        handoff = await asyncio.to_thread(store.get_handoff, handoff_id)
        tracker = await agent.processor.get_tracker(conversation_id)
        if already_pushed(tracker, event_id):
            # A replica pushed this event's message and died before it recorded the event;
            # the balancer sent the retry here.
            await asyncio.to_thread(store.record_inbound, event_id, handoff_id, kind)
            return response.json({"status": "duplicate", "event_id": event_id})
        unfinished = kind == "agent.handback" and await self._unfinished_handback(store, handoff, tracker)
        if (handoff is None or not handoff.is_active) and not unfinished:
            cause = handoff.end_cause if handoff else None
            return _error(409, f"the handoff is not active (ended: {cause})")
        output = output_channel_for(request.app, tracker)
        agent_name = (body.get("agent") or {}).get("name") or "A colleague"
        if kind == "agent.handback":
            ended = await asyncio.to_thread(store.end_handoff, handoff_id, EndCause.HANDED_BACK)
            if not ended and not unfinished:
                return _error(409, "the handoff is not active")
            # The agent dealt with it: a later contact is not "the same unresolved issue".
            await asyncio.to_thread(store.note_resolved, conversation_id)
            await asyncio.to_thread(store.record_note, handoff_id, body.get("note"))
            if wrap_up is not None:
                await asyncio.to_thread(
                    store.record_wrap_up, handoff_id, conversation_id, wrap_up, agent_name, body.get("note")
                )
            await take_back(agent, tracker, output)
        elif kind == "agent.transferred":
            moved = await asyncio.to_thread(store.transfer, handoff_id, body["queue"], settings.no_agent_timeout)
            if moved is None:
                return _error(409, "the handoff is not active")
            notice = await self._transferred_notice(agent, tracker, output, body["queue"])
            await push(agent, tracker, output, tagged(notice, event_id))
        else:
            await asyncio.to_thread(store.mark_assigned, handoff_id, agent_name)
            if kind == "agent.joined":
                event = await self._joined_notice(agent, tracker, output, agent_name)
            else:
                event = BotUttered(
                    text=body["text"],
                    metadata={"handoff_role": "agent", "agent_name": agent_name, **language_of(tracker)},
                )
            await push(agent, tracker, output, tagged(event, event_id))
        await asyncio.to_thread(store.record_inbound, event_id, handoff_id, kind)
        logger.info("helpdesk event %s for handoff %s done", kind, handoff_id)
        return response.json({"status": "ok", "event_id": event_id})

    @staticmethod
    async def _forget(request: Request, command: dict[str, Any]) -> HTTPResponse:
        """Erase the customer's conversations from the tracker store and the handoff database,
        each under its conversation lock (a turn in progress cannot write it back); the counts.

        Nothing of the command is stored: a repeated ``event_id`` erases again whatever is found
        then (usually nothing) and answers those counts.
        """
        customer = privacy.Customer.from_mapping(command["customer"])
        dry_run = bool(command.get("dry_run"))
        agent = request.app.ctx.agent
        engine = sql_engine(agent.tracker_store)
        stores = privacy.Stores(
            tracker=privacy.TrackerEvents(engine) if engine is not None else None,
            handoff=get_store(get_settings().database_url),
        )
        found = sorted(await asyncio.to_thread(privacy.find, stores, customer))
        counts = (await asyncio.to_thread(privacy.erase, stores, [], dry_run)).counts
        for conversation_id in found:
            async with agent.lock_store.lock(conversation_id):
                part = await asyncio.to_thread(privacy.erase, stores, [conversation_id], dry_run)
            for store, numbers in part.counts.items():
                for name, number in numbers.items():
                    counts[store][name] += number
        result = privacy.Erasure(found, counts, dry_run)
        # The event id and counts only: the customer's identifiers stay out of the log.
        logger.info("customer.forget %s: %d conversations %s", command["event_id"], len(found), "found" if dry_run else "erased")
        return response.json({"status": "ok", "event_id": command["event_id"], **result.as_dict()})

    @staticmethod
    async def _transferred_notice(agent: Any, tracker: DialogueStateTracker, output: OutputChannel, queue: str) -> BotUttered:
        language = language_of(tracker).get("language") or "en"
        team = load_rules().queue_hours(queue).display_name(language if language in ("en", "nl") else "en")
        message = await agent.processor.nlg.generate(TRANSFERRED_RESPONSE, tracker, output.name(), team=team)
        text = (message or {}).get("text") or f"I'm passing your conversation on to our {team}."
        return BotUttered(
            text=text,
            metadata={"handoff_role": "notice", "notice": "transferred", "queue": queue, **language_of(tracker)},
        )

    @staticmethod
    async def _unfinished_handback(store: Any, handoff: Any, tracker: Any) -> bool:
        """Whether a replica ended this handoff as handed back and died before the bot took the
        conversation back: still paused, and no other handoff of the conversation active."""
        if handoff is None or handoff.is_active or handoff.end_cause != EndCause.HANDED_BACK.value:
            return False
        if not (hasattr(tracker, "is_paused") and tracker.is_paused()):
            return False
        return await asyncio.to_thread(store.active_handoff, handoff.conversation_id) is None

    @staticmethod
    async def _joined_notice(agent: Any, tracker: DialogueStateTracker, output: OutputChannel, agent_name: str) -> BotUttered:
        message = await agent.processor.nlg.generate(JOINED_RESPONSE, tracker, output.name(), agent_name=agent_name)
        text = (message or {}).get("text") or f"{agent_name} has joined the conversation."
        return BotUttered(
            text=text,
            metadata={"handoff_role": "notice", "notice": "agent_joined", "agent_name": agent_name, **language_of(tracker)},
        )
