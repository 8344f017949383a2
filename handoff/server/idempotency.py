"""A customer message with a message id is handled once by the Rasa server, whichever replica gets it.

The REST channel (handoff/server/rest.py) and the socket.io channel (handoff/server/socketio.py)
hand their messages to Rasa through an :class:`OnceHandler`. A message without an id goes straight
on, as in Rasa. One with an id (``metadata["message_id"]``, put there by the channel; it also
becomes the ``message_id`` of the ``user`` event in the tracker):

1. a reply is stored for it: that reply is sent again (the REST answer, the socket.io messages) and
   nothing runs;
2. another process has claimed it and is running its turn: wait for its reply (or for its claim
   to expire, when that process died: the claim lasts as long as Rasa's conversation lock,
   ``TICKET_LOCK_LIFETIME``);
3. otherwise claim it and run the turn; the messages sent to the customer during the turn are the
   reply, kept for ``HANDOFF_MESSAGE_ID_TTL`` seconds.

A process that takes over an expired claim first looks in the tracker, under the conversation's
lock: when the dead process saved the turn before it could store the reply, the ``user`` event
with that message id is there, and the bot messages of that turn are the reply. So a message the
balancer sends again after a replica was killed mid-turn is neither lost nor handled twice. When
the turn was not saved but got as far as recording a handoff (the handoff is newer than the dead
process's claim), the turn runs again and finds that handoff; the handoff's transcript already
holds the message, so the relay (handoff/server/broker.py) does not send it to the helpdesk again
(:func:`in_transcript`).

Rasa gives up on a conversation's lock (``LockError``) when the message waited longer than the
lock's lifetime, e.g. behind a replica that died holding the lock and a turn that ran after it;
Rasa's REST channel would then answer 200 with no reply, and the message would be lost. The turn
had not started, so it is tried again (``LOCK_ATTEMPTS`` times in all).

The claims and replies live in Redis when the lock store is Redis (endpoints.scaled.yml: the same
server, database and key prefix, ``<prefix>:message:<hash>``), in the process otherwise.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import OutputChannel, UserMessage

from handoff.idempotency import (
    DONE,
    MESSAGE_ID_FIELD,
    MemoryReplyStore,
    RedisReplyStore,
    ReplyStore,
)
from handoff.settings import get_settings

logger = logging.getLogger(__name__)

#: How often a process waiting for another one's turn looks for its reply.
POLL_SECONDS = 0.1
#: Beyond the claim's lifetime, how long a waiting process waits before it takes over anyway.
CLAIM_GRACE_SECONDS = 5.0
#: How many times a message is given to Rasa when it gives up on the conversation's lock.
LOCK_ATTEMPTS = 3

_stores: dict[int, ReplyStore] = {}
_memory: MemoryReplyStore | None = None
#: (sender, message id) -> until when: messages run again whose handoff transcript already has them.
_transcribed: dict[tuple[str, str], float] = {}


def mark_in_transcript(sender_id: str, message_id: str, seconds: float) -> None:
    now = time.monotonic()
    for key in [k for k, until in _transcribed.items() if until < now]:
        del _transcribed[key]
    _transcribed[(sender_id, message_id)] = now + seconds


def in_transcript(sender_id: str, message_id: str | None) -> bool:
    """Whether the customer message ``message_id`` is run again after a replica died in its turn,
    and the handoff that turn recorded already has it in its transcript (do not relay it)."""
    if not message_id:
        return False
    until = _transcribed.get((sender_id, message_id))
    return until is not None and until >= time.monotonic()


def reply_store(lock_store: Any) -> ReplyStore:
    """The store of claims and replies that goes with Rasa's ``lock_store``: Redis (the lock store's
    client and key prefix) for a ``RedisLockStore``, this process's memory otherwise."""
    global _memory
    from rasa.core.lock_store import RedisLockStore

    if isinstance(lock_store, RedisLockStore):
        store = _stores.get(id(lock_store))
        if store is None:
            prefix = lock_store.key_prefix
            prefix = prefix[: -len("lock:")] if prefix.endswith("lock:") else prefix
            store = _stores[id(lock_store)] = RedisReplyStore(lock_store.red, f"{prefix}message:")
        return store
    if _memory is None:
        _memory = MemoryReplyStore()
    return _memory


def claim_seconds() -> float:
    """How long a claim lasts: Rasa's conversation lock lifetime (``TICKET_LOCK_LIFETIME``, 60 s)."""
    from rasa.core import lock_store

    return float(lock_store.LOCK_LIFETIME)


def message_id(message: UserMessage) -> str | None:
    metadata = message.metadata if isinstance(message.metadata, dict) else {}
    value = metadata.get(MESSAGE_ID_FIELD)
    return value if isinstance(value, str) and value else None


def reply_from_tracker(tracker: Any, message_id: str) -> list[dict[str, Any]] | None:
    """The bot messages of the turn of the ``user`` event with ``message_id``, or None when the
    tracker has no such event (the turn was never saved)."""
    from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered

    events = list(getattr(tracker, "events", None) or [])
    start = next(
        (i for i, e in enumerate(events) if isinstance(e, UserUttered) and e.message_id == message_id),
        None,
    )
    if start is None:
        return None
    reply: list[dict[str, Any]] = []
    for event in events[start + 1 :]:
        if isinstance(event, UserUttered) or (isinstance(event, ActionExecuted) and event.action_name == "action_listen"):
            break
        if isinstance(event, BotUttered):
            reply.append(event.message())
    return reply


class _Recorder:
    """Keeps a copy of every message Rasa sends to ``output`` during one turn."""

    def __init__(self, output: OutputChannel | None) -> None:
        self.messages: list[dict[str, Any]] = []
        self.output = output
        if output is None:
            return
        send = output.send_response

        async def recording(recipient_id: str, message: dict[str, Any]) -> None:
            self.messages.append(dict(message))
            await send(recipient_id, message)

        output.send_response = recording  # type: ignore[method-assign]
        self._send = send

    def stop(self) -> None:
        if self.output is not None:
            self.output.send_response = self._send  # type: ignore[method-assign]


async def replay(output: OutputChannel | None, recipient_id: str, reply: list[dict[str, Any]]) -> None:
    """Send a stored reply to ``output`` as the turn did (REST: into the answer; socket.io: emitted)."""
    if output is None:
        return
    for message in reply:
        await output.send_response(recipient_id, dict(message))


class OnceHandler:
    """``on_new_message`` for a channel, handling each customer message id once (see the module).

    Args:
        on_new_message: what Rasa gave the channel's blueprint (runs the turn under the lock).
    """

    def __init__(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> None:
        self.on_new_message = on_new_message
        self.app: Any = None

    def bind(self, app: Any) -> None:
        """The Sanic app whose ``ctx.agent`` has the lock store and tracker store (after start-up)."""
        self.app = app

    @property
    def agent(self) -> Any:
        return getattr(getattr(self.app, "ctx", None), "agent", None)

    async def __call__(self, message: UserMessage) -> Any:
        await self.handle(message)

    async def _run_turn(self, message: UserMessage) -> None:
        """``on_new_message``, again when Rasa gave up on the lock before the turn started."""
        from rasa.core.lock_store import LockError

        for attempt in range(1, LOCK_ATTEMPTS + 1):
            try:
                await self.on_new_message(message)
                return
            except LockError:
                if attempt == LOCK_ATTEMPTS:
                    raise
                logger.warning(
                    "message %s of %s: Rasa gave up waiting for the conversation lock; trying again",
                    message.message_id,
                    message.sender_id,
                )
                await asyncio.sleep(POLL_SECONDS)

    async def handle(self, message: UserMessage) -> bool:
        """Run ``message``'s turn, or answer it with the reply of an earlier one: True then."""
        key = message_id(message)
        if key is None:
            await self._run_turn(message)
            return False
        message.message_id = key
        agent = self.agent
        store = reply_store(getattr(agent, "lock_store", None))
        sender = message.sender_id
        seconds = claim_seconds()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds + CLAIM_GRACE_SECONDS
        took_over = False
        dead_claim_at: float | None = None
        owner: str | None = None
        while True:
            seen = await asyncio.to_thread(store.get, sender, key)
            if seen is not None and seen.state == DONE:
                logger.info("customer message %s of %s was handled before: answered with its reply", key, sender)
                await replay(message.output_channel, sender, seen.reply or [])
                return True
            if seen is None:
                owner = await asyncio.to_thread(store.claim, sender, key, seconds)
                if owner is not None:
                    break
                continue
            took_over = True  # another process runs this turn, or ran it and died
            dead_claim_at = seen.claimed_at
            if loop.time() > deadline:
                logger.warning("customer message %s of %s: its claim outlived the lock; taking over", key, sender)
                break
            await asyncio.sleep(POLL_SECONDS)

        recorder = _Recorder(message.output_channel)
        try:
            if took_over and agent is not None:
                saved = await self._saved_reply(agent, sender, key)
                if saved is not None:
                    logger.info("customer message %s of %s was saved by a process that died: answered from the tracker", key, sender)
                    recorder.stop()
                    await asyncio.to_thread(store.finish, sender, key, saved, get_settings().message_id_ttl)
                    await replay(message.output_channel, sender, saved)
                    return True
                await self._note_recorded_handoff(sender, key, dead_claim_at, seconds)
            await self._run_turn(message)
        except BaseException:
            recorder.stop()
            if owner is not None:
                await asyncio.to_thread(store.release, sender, key, owner)
            raise
        recorder.stop()
        await asyncio.to_thread(store.finish, sender, key, recorder.messages, get_settings().message_id_ttl)
        return False

    async def _note_recorded_handoff(self, sender: str, key: str, claimed_at: float | None, seconds: float) -> None:
        """When the dead process's turn recorded a handoff before it died, that handoff's
        transcript has this message: the turn that runs it again must not relay it."""
        if claimed_at is None:
            return
        from handoff.store import get_store

        try:
            handoff = await asyncio.to_thread(get_store(get_settings().database_url).active_handoff, sender)
        except Exception:
            logger.exception("customer message %s of %s: could not read the handoff state", key, sender)
            return
        if handoff is not None and handoff.created_at >= claimed_at:
            logger.info("customer message %s of %s: its handoff was recorded before the replica died", key, sender)
            mark_in_transcript(sender, key, seconds * 4)

    async def _saved_reply(self, agent: Any, sender: str, key: str) -> list[dict[str, Any]] | None:
        async with agent.lock_store.lock(sender):
            tracker = await agent.tracker_store.retrieve(sender)
        return reply_from_tracker(tracker, key) if tracker is not None else None
