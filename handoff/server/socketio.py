"""Rasa's socket.io channel with sessions bound to a server-issued token, a character limit, and
an optional Redis client manager that speaks JSON.

Sessions. Rasa 3.6's ``SocketIOInput`` trusts the ``session_id`` a client sends: in
``session_request`` it joins that conversation's room (and so reads the bot's and the agent's
replies), and in ``user_uttered`` it writes into that conversation. Here the server issues the
session ids:

- ``session_request`` with a ``session_id`` and a valid ``session_token`` resumes that session;
  any other request (no id, an unknown id, a wrong token) gets a new random id (uuid4 hex). The
  token is HMAC-SHA256 of the session id under a key derived from ``HELPDESK_SECRET``: stateless,
  so every Rasa process agrees, and it lives as long as that secret does.
- The server answers with ``session_token`` ``{"session_id", "session_token"}`` and then, as Rasa
  does, ``session_confirm`` with the session id as a plain string (what Rasa's own clients and the
  rasa-webchat widget read; a client that ignores ``session_token`` simply starts a new conversation
  after a reload). Only then does the socket enter the session's room.
- ``user_uttered`` is taken as the session bound to that socket. One naming another session, or
  from a socket that has no confirmed session, is refused (logged without its text).
- A ``user_uttered`` may carry a client ``message_id``: a message whose id was handled before is
  answered with the messages of that time and not run again (handoff/server/idempotency.py). The
  acknowledgement a client asks for (``{"accepted", "message_id"}``) comes when the turn is done.
- A ``user_uttered`` text longer than ``HANDOFF_MAX_MESSAGE_CHARS`` is refused before NLU; the
  socket gets a ``bot_uttered`` notice ``{"text": ..., "notice": "message_too_long",
  "max_chars": N}``. (engine.io's byte limit is set by handoff/server/limits.py.)

Several processes. Rasa creates the channel's python-socketio ``AsyncServer`` without a client
manager, so an emit only reaches sockets connected to the same process. An agent message that the
helpdesk posts to process B (``handoff.server.helpdesk_channel``) is pushed through B's output channel, and would
be lost for a customer whose socket is connected to process A. With a Redis URL the server gets
:class:`JsonRedisManager`: every emit is published on a Redis channel as JSON and each process
delivers it to the sockets (and rooms) it holds. python-socketio's own ``AsyncRedisManager``
pickles these messages, so anyone able to publish on that Redis could run code in every Rasa
process (CVE-2025-61765); this one never unpickles, and drops what is not JSON. Without a Redis URL
the sockets stay in the process, as in Rasa.

Configure it in ``credentials.yml`` in place of ``socketio:`` (same options, plus the Redis ones)::

    handoff.server.socketio.SharedSocketIOInput:
      user_message_evt: user_uttered
      bot_message_evt: bot_uttered
      session_persistence: true
      redis_url: ${SOCKETIO_REDIS_URL}     # or leave it out and set SOCKETIO_REDIS_URL
      # redis_channel: socketio            # or SOCKETIO_REDIS_CHANNEL; the same in every process

Who speaks. Every message the channel emits (``bot_uttered``) keeps Rasa's keys (``text``,
``quick_replies``, ...) and gains a ``metadata`` object that a front end can render from instead
of guessing from the text (:func:`message_metadata`): ``speaker`` (``bot`` or ``agent``),
``agent_name``, ``handoff`` (``none``, ``waiting``, ``agent``, ``ended``), ``notice`` (``handoff``,
``wait``, ``joined``, ``back``, ``no_agent``, ``cancelled``, ``failed``, ...) and ``language``
(``en`` / ``nl``). Clients that read only ``text`` (the rasa-webchat widget) see what they saw
before.

The channel keeps Rasa's name ``socketio``: the same route, the same ``input_channel`` in the
tracker, so ``output_channel=latest`` and the helpdesk channel find it as before.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import hmac
import json
import logging
import os
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import socketio
from rasa.core.channels.channel import InputChannel, UserMessage
from rasa.core.channels.socketio import SocketIOInput, SocketIOOutput
from sanic import Blueprint
from socketio.asyncio_redis_manager import RedisError

from handoff.idempotency import MESSAGE_ID_FIELD, InvalidMessageId, message_id_of
from handoff.language import LANGUAGES, detect_language
from handoff.server.idempotency import OnceHandler
from handoff.settings import get_settings
from handoff.store import ASSIGNED, Handoff, get_store
from handoff.triggers import load_rules

logger = logging.getLogger(__name__)

DEFAULT_REDIS_CHANNEL = "socketio"
# How long server start-up waits for the Redis subscription before serving sockets anyway.
SUBSCRIBE_WAIT_SECONDS = 10.0
#: Fixed label of the key that signs session ids (derived from HELPDESK_SECRET).
TOKEN_KEY_LABEL = b"handoff socket.io session token v1"
#: The event that carries a session's token to the client (before ``session_confirm``).
TOKEN_EVENT = "session_token"
#: The event that tells a client the handoff state of the session it resumed (after ``session_confirm``).
STATE_EVENT = "handoff_state"
#: Longest session id taken back from a client.
MAX_SESSION_ID_LENGTH = 128
TOO_LONG_NOTICE = "message_too_long"


# -- session tokens -------------------------------------------------------------------------------


def _token_key(secret: str) -> bytes:
    return hmac.new(secret.encode(), TOKEN_KEY_LABEL, hashlib.sha256).digest()


def session_token(session_id: str, secret: str | None = None) -> str:
    """The token that proves the server issued ``session_id`` (hex HMAC-SHA256)."""
    key = _token_key(secret if secret is not None else get_settings().secret)
    return hmac.new(key, session_id.encode(), hashlib.sha256).hexdigest()


def valid_session(session_id: Any, token: Any, secret: str | None = None) -> bool:
    """Whether ``token`` is the server's token for ``session_id``."""
    if not isinstance(session_id, str) or not isinstance(token, str):
        return False
    if not session_id or len(session_id) > MAX_SESSION_ID_LENGTH or len(token) > 128:
        return False
    return hmac.compare_digest(session_token(session_id, secret), token)


def too_long_notice(length: int, max_chars: int) -> dict[str, Any]:
    """What a socket is told when its message is over the character limit."""
    return {
        "text": (
            f"Sorry, your message is too long ({length} characters); I can take at most {max_chars}. "
            "Please send it in shorter parts."
        ),
        "notice": TOO_LONG_NOTICE,
        "max_chars": max_chars,
    }


# -- who speaks -----------------------------------------------------------------------------------

SPEAKER_BOT = "bot"
SPEAKER_AGENT = "agent"
#: The handoff state a message is sent in: no handoff, waiting for an agent, an agent connected,
#: and the message that ends a handoff (the bot is back).
HANDOFF_NONE, HANDOFF_WAITING, HANDOFF_AGENT, HANDOFF_ENDED = "none", "waiting", "agent", "ended"
#: Responses that are handoff notices, by kind (response names, never texts).
NOTICE_KINDS: dict[str, str] = {
    "utter_handoff_started": "handoff",
    "utter_handoff_delayed": "handoff",
    "utter_handoff_technical": "handoff",
    "utter_handoff_wait_minutes": "wait",
    "utter_handoff_wait_short": "wait",
    "utter_handoff_still_waiting": "wait",
    "utter_handoff_agent_joined": "joined",
    "utter_handoff_back": "back",
    "utter_handoff_no_agent": "no_agent",
    "utter_handoff_nobody_available": "no_agent",
    "utter_handoff_cancelled": "cancelled",
    "utter_handoff_failed": "failed",
}
#: Notices said as a handoff ends (or fails to start): the bot speaks again.
ENDING_NOTICES = frozenset({"back", "no_agent", "cancelled", "failed"})
#: What the helpdesk channel and the task runner put in ``BotUttered.metadata["notice"]``.
_PUSHED_NOTICES = {"still_waiting": "wait", "agent_joined": "joined"}
#: Senders whose language the channel remembers (oldest forgotten first).
MAX_REMEMBERED_LANGUAGES = 10_000


def message_metadata(message: dict[str, Any], handoff: Handoff | None, language: str | None = None) -> dict[str, Any]:
    """Who speaks in ``message`` and in which handoff state, for the front end.

    Args:
        message: What Rasa sends to the channel (``BotUttered.message()``): its ``utter_action``,
            and for pushed messages the ``handoff_role`` / ``agent_name`` / ``notice`` /
            ``language`` the helpdesk channel and the task runner set.
        handoff: The conversation's active handoff when the message is sent, or None.
        language: The conversation's language when the message does not say it.

    Returns:
        ``{"speaker", "agent_name", "handoff", "notice", "language"}``; ``agent_name``,
        ``notice`` and ``language`` are None when unknown.
    """
    role = message.get("handoff_role")
    notice = NOTICE_KINDS.get(str(message.get("utter_action") or ""))
    if notice is None and role == "notice":
        notice = _PUSHED_NOTICES.get(str(message.get("notice") or ""), message.get("notice") or None)
    agent_name = message.get("agent_name") or None
    if handoff is not None and handoff.is_active:
        state = HANDOFF_AGENT if handoff.state == ASSIGNED else HANDOFF_WAITING
        agent_name = agent_name or (handoff.agent_name if state == HANDOFF_AGENT else None)
        if notice is None and state == HANDOFF_WAITING and role is None:
            notice = "handoff"  # a trigger's own response said instead of utter_handoff_started
    elif notice in ENDING_NOTICES:
        state = HANDOFF_ENDED
    else:
        state = HANDOFF_NONE
    if notice == "joined":
        state = HANDOFF_AGENT
    said = message.get("language")
    return {
        "speaker": SPEAKER_AGENT if role == "agent" else SPEAKER_BOT,
        "agent_name": agent_name if state == HANDOFF_AGENT or role == "agent" else None,
        "handoff": state,
        "notice": notice,
        "language": said if said in LANGUAGES else (language if language in LANGUAGES else None),
    }


_SENDING: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("handoff_socketio_sending", default=None)


class HandoffSocketIOOutput(SocketIOOutput):
    """Rasa's socket.io output that adds :func:`message_metadata` as ``metadata`` to every
    ``bot_uttered`` it emits."""

    def __init__(self, sio: socketio.AsyncServer, bot_message_evt: str, channel: SharedSocketIOInput | None = None) -> None:
        super().__init__(sio, bot_message_evt)
        self.channel = channel

    async def send_response(self, recipient_id: str, message: dict[str, Any]) -> None:
        metadata = await self.metadata_for(recipient_id, message)
        token = _SENDING.set(metadata)
        try:
            await super().send_response(recipient_id, message)
        finally:
            _SENDING.reset(token)

    async def metadata_for(self, recipient_id: str, message: dict[str, Any]) -> dict[str, Any]:
        try:
            handoff = await asyncio.to_thread(get_store(get_settings().database_url).active_handoff, recipient_id)
        except Exception:  # the store briefly unavailable: the message still goes out
            logger.exception("socket.io: could not read the handoff state; sending without it")
            handoff = None
        channel = self.channel
        language = channel.language_of(recipient_id) if channel is not None else None
        if language is None and handoff is not None:
            language = handoff.language
        metadata = message_metadata(message, handoff, language)
        if channel is not None and metadata["language"]:
            channel.remember_language(recipient_id, metadata["language"])
        return metadata

    async def _send_message(self, socket_id: str, response: Any) -> None:
        metadata = _SENDING.get()
        if metadata is not None and isinstance(response, dict) and "metadata" not in response:
            response = {**response, "metadata": metadata}
        await super()._send_message(socket_id, response)


# -- Redis in JSON --------------------------------------------------------------------------------


class JsonRedisManager(socketio.AsyncRedisManager):
    """python-socketio's ``AsyncRedisManager`` that publishes and reads JSON, never pickle.

    What python-socketio publishes (emit, callback, disconnect, close_room) is JSON-compatible as
    long as the emitted data is (Rasa sends dicts of text). A message on the channel that is not
    a JSON object is dropped with a warning.
    """

    name = "aioredis-json"

    async def _publish(self, data: Any) -> Any:
        try:
            encoded = json.dumps(data, separators=(",", ":"))
        except (TypeError, ValueError):
            logger.error("socket.io: a %r message is not JSON-serialisable; not published", _method(data))
            return None
        return await self._publish_raw(encoded)

    async def _publish_raw(self, encoded: str) -> Any:
        # AsyncRedisManager._publish with its retry, minus the pickling.
        retry = True
        while True:
            try:
                if not retry:
                    self._redis_connect()
                return await self.redis.publish(self.channel, encoded)
            except RedisError:
                if retry:
                    logger.error("socket.io: cannot publish to Redis; retrying")
                    retry = False
                else:
                    logger.error("socket.io: cannot publish to Redis; giving up")
                    return None

    async def _listen(self) -> Any:
        # python-socketio's listener tries pickle.loads on every bytes message; handing it dicts
        # only means it never gets there.
        async for raw in super()._listen():
            message = decode_message(raw)
            if message is not None:
                yield message


class _AgentRef:
    """The Rasa agent of the server app, looked up when used (it is loaded after start-up)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    @property
    def tracker_store(self) -> Any:
        agent = getattr(self.app.ctx, "agent", None)
        return getattr(agent, "tracker_store", None)


def _method(data: Any) -> str | None:
    return data.get("method") if isinstance(data, dict) else None


def decode_message(raw: Any) -> dict[str, Any] | None:
    """A pub/sub message as a dict, or None (with a warning) when it is not a JSON object."""
    try:
        message = json.loads(raw)
    except (TypeError, ValueError, RecursionError):
        logger.warning("socket.io: dropped a Redis message that is not JSON (%d bytes)", len(raw or b""))
        return None
    if not isinstance(message, dict):
        logger.warning("socket.io: dropped a Redis message that is not a JSON object")
        return None
    return message


# -- the channel ----------------------------------------------------------------------------------


class SharedSocketIOInput(SocketIOInput):
    """Rasa's socket.io channel with server-issued sessions, a character limit and an optional
    Redis client manager shared by all processes."""

    def __init__(
        self,
        *args: Any,
        redis_url: str | None = None,
        redis_channel: str = DEFAULT_REDIS_CHANNEL,
        **kwargs: Any,
    ) -> None:
        """Take Rasa's ``SocketIOInput`` arguments, plus where the processes meet in Redis."""
        super().__init__(*args, **kwargs)
        self.redis_url = redis_url or None
        self.redis_channel = redis_channel or DEFAULT_REDIS_CHANNEL
        #: socket.io sid -> the session confirmed to that socket (this process's sockets only).
        self.sessions: dict[str, str] = {}
        #: session -> its conversation's language, as the language slot follows it (this process).
        self.languages: dict[str, str] = {}
        self._agent: Any = None

    def get_output_channel(self) -> HandoffSocketIOOutput | None:
        """The output for pushes (the helpdesk channel, the task runner, ``output_channel=latest``)."""
        if self.sio is None:
            return None
        return HandoffSocketIOOutput(self.sio, self.bot_message_evt, self)

    def language_of(self, sender_id: str) -> str | None:
        return self.languages.get(sender_id)

    def remember_language(self, sender_id: str, language: str) -> None:
        self.languages.pop(sender_id, None)
        self.languages[sender_id] = language
        while len(self.languages) > MAX_REMEMBERED_LANGUAGES:
            self.languages.pop(next(iter(self.languages)))

    async def follow_language(self, sender_id: str, text: str) -> None:
        """Follow the conversation's language as ``action_assess_turn`` sets the slot: this
        message's language, or the conversation's so far when it does not clearly say."""
        previous = self.languages.get(sender_id)
        if previous is None:
            previous = await self._stored_language(sender_id)
        try:
            config = load_rules().language
        except Exception:  # the rules file is checked at start-up; its defaults meanwhile
            config = None
        self.remember_language(sender_id, detect_language(text, previous, config))

    async def _stored_language(self, sender_id: str) -> str | None:
        agent = self._agent
        store = getattr(agent, "tracker_store", None)
        if store is None:
            return None
        try:
            tracker = await store.retrieve(sender_id)
        except Exception:
            logger.exception("socket.io: could not read the conversation's language")
            return None
        language = tracker.get_slot("language") if tracker is not None else None
        return language if language in LANGUAGES else None

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        """Rasa's socketio options; ``redis_url`` / ``redis_channel`` fall back to the environment
        (``SOCKETIO_REDIS_URL``, ``SOCKETIO_REDIS_CHANNEL``)."""
        credentials = credentials or {}
        channel = super().from_credentials(credentials)
        assert isinstance(channel, SharedSocketIOInput)
        channel.redis_url = credentials.get("redis_url") or os.environ.get("SOCKETIO_REDIS_URL") or None
        channel.redis_channel = (
            credentials.get("redis_channel") or os.environ.get("SOCKETIO_REDIS_CHANNEL") or DEFAULT_REDIS_CHANNEL
        )
        return channel

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """Rasa's socket.io blueprint with this channel's session and message handlers (they
        replace Rasa's: python-socketio keeps one handler per event); with a Redis URL its server
        gets the shared JSON client manager."""
        blueprint = super().blueprint(on_new_message)
        server = self.sio
        assert server is not None
        # Each customer message id handled once, across processes (handoff/server/idempotency.py).
        once = OnceHandler(on_new_message)
        self._register_handlers(server, once)

        @blueprint.listener("after_server_start")
        async def keep_agent(app: Any, _loop: Any) -> None:
            # For a conversation's language after a restart; the agent may load after this.
            self._agent = _AgentRef(app)
            once.bind(app)

        if self.redis_url:
            self._share_through_redis(server, blueprint)
        return blueprint

    # -- handlers ---------------------------------------------------------------------------------

    def _register_handlers(self, sio: socketio.AsyncServer, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> None:
        namespace = self.namespace

        async def disconnect(sid: str) -> None:
            self.sessions.pop(sid, None)
            logger.debug("socket.io: %s disconnected", sid)

        async def session_request(sid: str, data: Any) -> None:
            await self.confirm_session(sid, data)

        async def user_uttered(sid: str, data: Any) -> dict[str, Any]:
            # The acknowledgement a client asks for (socket.emit with a callback) comes once the
            # turn is done: the web chat sends a message again after a reconnect until then.
            accepted = await self.handle_user_message(sid, data, on_new_message)
            message_id = data.get(MESSAGE_ID_FIELD) if isinstance(data, dict) else None
            return {"accepted": accepted, MESSAGE_ID_FIELD: message_id if isinstance(message_id, str) else None}

        sio.on("disconnect", disconnect, namespace=namespace)
        sio.on("session_request", session_request, namespace=namespace)
        sio.on(self.user_message_evt, user_uttered, namespace=namespace)

    async def confirm_session(self, sid: str, data: Any) -> str:
        """Resume the session the client proves with its token, or issue a new one; tell the
        client (``session_token``, then ``session_confirm``) and put the socket in its room."""
        sio = self.sio
        assert sio is not None
        data = data if isinstance(data, dict) else {}
        asked = data.get("session_id")
        if valid_session(asked, data.get("session_token")):
            session_id = asked
        else:
            session_id = uuid.uuid4().hex
            if asked:
                logger.info("socket.io: %s asked for a session without its token; issued a new one", sid)
        previous = self.sessions.get(sid)
        if previous is not None and previous != session_id and self.session_persistence:
            sio.leave_room(sid, previous, namespace=self.namespace)
        self.sessions[sid] = session_id
        if self.session_persistence:
            sio.enter_room(sid, session_id, namespace=self.namespace)
        token = {"session_id": session_id, "session_token": session_token(session_id)}
        await sio.emit(TOKEN_EVENT, token, room=sid, namespace=self.namespace)
        await sio.emit("session_confirm", session_id, room=sid, namespace=self.namespace)
        logger.debug("socket.io: %s confirmed a session", sid)
        if session_id == asked:
            await sio.emit(STATE_EVENT, await self.session_state(session_id), room=sid, namespace=self.namespace)
        return session_id

    async def session_state(self, session_id: str) -> dict[str, Any]:
        """A resumed session's handoff state, as in a message's metadata (``handoff``,
        ``agent_name``, ``language``): a reloaded page shows who it is talking to."""
        try:
            handoff = await asyncio.to_thread(get_store(get_settings().database_url).active_handoff, session_id)
        except Exception:
            logger.exception("socket.io: could not read the handoff state of a resumed session")
            handoff = None
        language = self.languages.get(session_id) or await self._stored_language(session_id)
        if language:
            self.remember_language(session_id, language)
        state = message_metadata({}, handoff, language)
        return {"handoff": state["handoff"], "agent_name": state["agent_name"], "language": state["language"]}

    async def handle_user_message(
        self, sid: str, data: Any, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> bool:
        """Hand a customer's message to Rasa as the socket's own session; False when refused."""
        sio = self.sio
        assert sio is not None
        data = data if isinstance(data, dict) else {}
        bound = self.sessions.get(sid)
        if self.session_persistence:
            claimed = data.get("session_id")
            if bound is None:
                logger.warning("socket.io: refused a message from %s, which has no confirmed session", sid)
                return False
            if claimed and claimed != bound:
                logger.warning("socket.io: refused a message from %s naming another session than its own", sid)
                return False
            sender_id = bound
        else:
            sender_id = sid  # Rasa's behaviour: each socket its own conversation

        text = data.get("message", "")
        if not isinstance(text, str):
            logger.warning("socket.io: refused a message from %s whose text is not a string", sid)
            return False
        max_chars = get_settings().max_message_chars
        if len(text) > max_chars:
            logger.warning("socket.io: refused a %d-character message from %s (limit %d)", len(text), sid, max_chars)
            notice = too_long_notice(len(text), max_chars)
            notice["metadata"] = {
                "speaker": SPEAKER_BOT, "agent_name": None, "handoff": None, "notice": TOO_LONG_NOTICE,
                "language": self.languages.get(sender_id),
            }
            await sio.emit(self.bot_message_evt, notice, room=sid, namespace=self.namespace)
            return False

        metadata = data.get(self.metadata_key) or {}
        if isinstance(metadata, str):
            try:
                metadata = json.loads(metadata)
            except (ValueError, RecursionError):
                metadata = {}
        if not isinstance(metadata, dict):
            metadata = {}
        try:
            key = message_id_of(data, metadata)
        except InvalidMessageId:
            logger.warning("socket.io: refused a message from %s with an invalid message_id", sid)
            return False
        if key is not None:
            metadata = {**metadata, MESSAGE_ID_FIELD: key}
        if self.session_persistence:
            await self.follow_language(sender_id, text)
        message = UserMessage(
            text,
            HandoffSocketIOOutput(sio, self.bot_message_evt, self),
            sender_id,
            input_channel=self.name(),
            metadata=metadata,
        )
        await on_new_message(message)
        return True

    # -- Redis ------------------------------------------------------------------------------------

    def _share_through_redis(self, server: socketio.AsyncServer, blueprint: Blueprint) -> None:
        if server.manager_initialized:  # a client manager can only be swapped before first use
            raise RuntimeError("the socket.io server was used before its client manager was set")
        manager = JsonRedisManager(self.redis_url, channel=self.redis_channel)
        manager.set_server(server)
        server.manager = manager

        async def subscribe(*_: Any) -> None:
            # python-socketio starts listening on the first connection; a message published
            # before the subscription is in place (e.g. that client's session_confirm) would be
            # lost, so listen from server start-up on.
            if not server.manager_initialized:
                server.manager_initialized = True
                manager.initialize()
            deadline = asyncio.get_running_loop().time() + SUBSCRIBE_WAIT_SECONDS
            while not manager.pubsub.subscribed:
                if asyncio.get_running_loop().time() > deadline:
                    logger.error("socket.io: no Redis subscription on %r yet; pushes may be lost", self.redis_channel)
                    return
                await asyncio.sleep(0.05)
            logger.info("socket.io: sharing clients through Redis channel %r (JSON)", self.redis_channel)

        async def unsubscribe(*_: Any) -> None:
            task = getattr(manager, "thread", None)
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            await manager.pubsub.close()
            await manager.redis.close()

        blueprint.listener("after_server_start")(subscribe)
        blueprint.listener("before_server_stop")(unsubscribe)
