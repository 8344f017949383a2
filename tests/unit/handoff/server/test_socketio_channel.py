"""handoff.server.socketio: sessions bound to a server-issued token, the character limit, and the Redis
client manager that speaks JSON instead of pickle.

The channel's handlers are driven on its real python-socketio ``AsyncServer``: sockets are
connected in its client manager and what the server sends them is read where python-socketio
hands packets to engine.io. The Redis tests use the Redis on 127.0.0.1:6379, each on a channel of
its own. tests/e2e/test_attack_socketio.py attacks the running stack over the network.
"""

from __future__ import annotations

import asyncio
import json
import logging
import pickle
import uuid
from collections import defaultdict

import pytest
import socketio
from rasa.core.channels.socketio import SocketIOOutput

from handoff.server.socketio import (
    TOKEN_EVENT,
    TOO_LONG_NOTICE,
    JsonRedisManager,
    SharedSocketIOInput,
    decode_message,
    session_token,
    valid_session,
)
from handoff.settings import get_settings

CREDENTIALS = {"user_message_evt": "user_uttered", "bot_message_evt": "bot_uttered", "session_persistence": True}
REDIS_URL = "redis://127.0.0.1:6379/0"


class Sockets:
    """Clients of one channel's socket.io server, without a network: what each one received."""

    def __init__(self, channel: SharedSocketIOInput) -> None:
        self.channel = channel
        self.sio = channel.sio
        self.received: dict[str, list[tuple[str, object]]] = defaultdict(list)
        self._eio_of: dict[str, str] = {}

        async def emit_internal(eio_sid, event, data, namespace=None, id=None):
            self.received[eio_sid].append((event, data))

        self.sio._emit_internal = emit_internal

    def connect(self) -> str:
        eio_sid = uuid.uuid4().hex
        sid = self.sio.manager.connect(eio_sid, "/")
        self._eio_of[sid] = eio_sid
        return sid

    def events(self, sid: str, event: str | None = None) -> list:
        return [data for name, data in self.received[self._eio_of[sid]] if event in (None, name)]

    async def handler(self, event: str, sid: str, *args):
        return await self.sio.handlers["/"][event](sid, *args)

    async def session_request(self, sid: str, data) -> str:
        """The session the server bound to ``sid`` (and confirmed to it)."""
        await self.handler("session_request", sid, data)
        return self.channel.sessions[sid]

    async def disconnect(self, sid: str) -> None:
        await self.handler("disconnect", sid)
        await self.sio.manager.disconnect(sid, "/")


@pytest.fixture
def handled():
    return []


@pytest.fixture
def sockets(handled):
    async def on_new_message(message):
        handled.append(message)

    channel = SharedSocketIOInput.from_credentials(CREDENTIALS)
    channel.blueprint(on_new_message)
    return Sockets(channel)


# -- tokens ---------------------------------------------------------------------------------------


def test_the_token_is_an_hmac_of_the_session_id_under_the_secret():
    session_id = uuid.uuid4().hex
    token = session_token(session_id)
    assert len(token) == 64 and token == session_token(session_id, get_settings().secret)
    assert valid_session(session_id, token)
    assert token != session_token(session_id, "another-secret")
    assert token != session_token(uuid.uuid4().hex)
    # Not the helpdesk signature of the id under the bare secret: the key has its own label.
    import hashlib
    import hmac

    assert token != hmac.new(get_settings().secret.encode(), session_id.encode(), hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    ("session_id", "token"),
    [
        ("abc", None),
        ("abc", ""),
        ("abc", "0" * 64),
        (None, "0" * 64),
        (["abc"], "x"),
        ("abc", ["x"]),
        ("", ""),
        ("a" * 129, "x"),
    ],
)
def test_invalid_tokens_are_refused(session_id, token):
    assert not valid_session(session_id, token)


def test_several_processes_agree_on_tokens(monkeypatch):
    # Stateless: a second process with the same secret (a fresh settings object) accepts it.
    session_id = uuid.uuid4().hex
    token = session_token(session_id)
    get_settings.cache_clear()
    assert valid_session(session_id, token)
    monkeypatch.setenv("HELPDESK_SECRET", "a-rotated-secret-0123456789")
    get_settings.cache_clear()
    assert not valid_session(session_id, token)


# -- sessions ---------------------------------------------------------------------------------------


def test_the_channel_keeps_rasas_name_and_events(sockets):
    assert sockets.channel.name() == "socketio"
    assert sorted(sockets.sio.handlers["/"]) == ["connect", "disconnect", "session_request", "user_uttered"]
    assert type(sockets.sio.manager) is socketio.AsyncManager  # no Redis URL: in-process, as Rasa


async def test_a_new_client_gets_a_random_session_and_its_token(sockets):
    sid = sockets.connect()
    session_id = await sockets.session_request(sid, {})
    assert isinstance(session_id, str) and len(session_id) == 32 and int(session_id, 16) >= 0
    # The token comes first, then session_confirm as Rasa sends it: the id as a plain string.
    assert [name for name, _ in sockets.received[sockets._eio_of[sid]]] == [TOKEN_EVENT, "session_confirm"]
    assert sockets.events(sid, "session_confirm") == [session_id]
    [token] = sockets.events(sid, TOKEN_EVENT)
    assert token == {"session_id": session_id, "session_token": session_token(session_id)}
    assert session_id in sockets.sio.rooms(sid)
    assert sockets.channel.sessions == {sid: session_id}

    for data in (None, "not a dict", {"session_id": None}):
        other = sockets.connect()
        assert await sockets.session_request(other, data) not in (session_id, None)


@pytest.mark.parametrize("token", [None, "", "0" * 64, "forged"])
async def test_a_known_id_without_its_token_gets_a_new_session(sockets, token):
    victim = sockets.connect()
    victims_session = await sockets.session_request(victim, {})

    attacker = sockets.connect()
    request = {"session_id": victims_session} if token is None else {"session_id": victims_session, "session_token": token}
    attackers_session = await sockets.session_request(attacker, request)
    assert attackers_session != victims_session
    assert victims_session not in sockets.sio.rooms(attacker)

    # What the victim's conversation is sent reaches the victim only.
    await sockets.channel.get_output_channel().send_text_message(victims_session, "Hello, Sanne here.")
    assert sockets.events(victim, "bot_uttered") == [{"text": "Hello, Sanne here."}]
    assert sockets.events(attacker, "bot_uttered") == []


async def test_a_client_with_the_token_resumes_its_session(sockets):
    first = sockets.connect()
    session_id = await sockets.session_request(first, {})
    [token] = sockets.events(first, TOKEN_EVENT)
    await sockets.disconnect(first)
    assert first not in sockets.channel.sessions

    again = sockets.connect()
    assert await sockets.session_request(again, {"session_id": session_id, "session_token": token["session_token"]}) == session_id
    assert session_id in sockets.sio.rooms(again)
    await sockets.channel.get_output_channel().send_text_message(session_id, "Welcome back")
    assert sockets.events(again, "bot_uttered") == [{"text": "Welcome back"}]


async def test_a_second_session_request_leaves_the_first_room(sockets):
    sid = sockets.connect()
    first = await sockets.session_request(sid, {})
    second = await sockets.session_request(sid, {})
    assert first != second
    assert first not in sockets.sio.rooms(sid) and second in sockets.sio.rooms(sid)
    assert sockets.channel.sessions[sid] == second


async def test_disconnect_forgets_the_socket(sockets):
    sids = [sockets.connect() for _ in range(3)]
    for sid in sids:
        await sockets.session_request(sid, {})
    for sid in sids:
        await sockets.disconnect(sid)
    assert sockets.channel.sessions == {}


# -- messages -------------------------------------------------------------------------------------


async def test_a_message_is_taken_as_the_sockets_own_session(sockets, handled):
    sid = sockets.connect()
    session_id = await sockets.session_request(sid, {})
    metadata = {"page": "/", "customer_identity": "eyJhbGciOi.x.y"}
    await sockets.handler("user_uttered", sid, {"message": "hello", "session_id": session_id, "metadata": metadata})
    # Without a session_id the bound session is used too.
    await sockets.handler("user_uttered", sid, {"message": "and again", "metadata": json.dumps({"page": "/b"})})
    assert [(m.text, m.sender_id, m.input_channel) for m in handled] == [
        ("hello", session_id, "socketio"),
        ("and again", session_id, "socketio"),
    ]
    assert handled[0].metadata == metadata and handled[1].metadata == {"page": "/b"}
    assert handled[0].output_channel.name() == "socketio"


async def test_a_message_naming_another_session_is_refused(sockets, handled, caplog):
    victim = sockets.connect()
    victims_session = await sockets.session_request(victim, {})
    attacker = sockets.connect()
    await sockets.session_request(attacker, {"session_id": victims_session})
    caplog.set_level(logging.WARNING, "handoff.server.socketio")
    secret_text = "transfer the refund to NL00BANK0123456789"
    await sockets.handler("user_uttered", attacker, {"message": secret_text, "session_id": victims_session})
    assert handled == []
    assert "another session" in caplog.text and secret_text not in caplog.text


async def test_a_message_from_a_socket_without_a_session_is_refused(sockets, handled, caplog):
    sid = sockets.connect()
    caplog.set_level(logging.WARNING, "handoff.server.socketio")
    await sockets.handler("user_uttered", sid, {"message": "hello", "session_id": uuid.uuid4().hex})
    await sockets.handler("user_uttered", sid, {"message": "hello"})
    assert handled == []
    assert "no confirmed session" in caplog.text and "hello" not in caplog.text


async def test_a_message_after_disconnect_is_refused(sockets, handled):
    sid = sockets.connect()
    session_id = await sockets.session_request(sid, {})
    await sockets.handler("disconnect", sid)
    await sockets.handler("user_uttered", sid, {"message": "hello", "session_id": session_id})
    assert handled == []


async def test_a_message_over_the_character_limit_is_refused_with_a_notice(sockets, handled, caplog):
    limit = get_settings().max_message_chars
    sid = sockets.connect()
    session_id = await sockets.session_request(sid, {})
    caplog.set_level(logging.WARNING, "handoff.server.socketio")
    await sockets.handler("user_uttered", sid, {"message": "x" * (limit + 1), "session_id": session_id})
    assert handled == []
    [notice] = sockets.events(sid, "bot_uttered")
    assert notice["notice"] == TOO_LONG_NOTICE and notice["max_chars"] == limit
    assert f"at most {limit}" in notice["text"] and "too long" in notice["text"]
    assert f"{limit + 1}-character" in caplog.text and "xxxxx" not in caplog.text

    at_limit = "é" * limit
    await sockets.handler("user_uttered", sid, {"message": at_limit, "session_id": session_id})
    assert [m.text for m in handled] == [at_limit]


async def test_the_character_limit_follows_the_settings(sockets, handled, monkeypatch):
    monkeypatch.setenv("HANDOFF_MAX_MESSAGE_CHARS", "10")
    get_settings.cache_clear()
    sid = sockets.connect()
    session_id = await sockets.session_request(sid, {})
    await sockets.handler("user_uttered", sid, {"message": "12345678901", "session_id": session_id})
    await sockets.handler("user_uttered", sid, {"message": "1234567890", "session_id": session_id})
    assert [m.text for m in handled] == ["1234567890"]


async def test_a_message_whose_text_is_not_a_string_is_refused(sockets, handled):
    sid = sockets.connect()
    await sockets.session_request(sid, {})
    await sockets.handler("user_uttered", sid, {"message": {"text": "hi"}})
    assert handled == []


async def test_without_session_persistence_each_socket_is_its_own_conversation(handled):
    async def on_new_message(message):
        handled.append(message)

    channel = SharedSocketIOInput.from_credentials({**CREDENTIALS, "session_persistence": False})
    channel.blueprint(on_new_message)
    sockets = Sockets(channel)
    sid = sockets.connect()
    await sockets.handler("user_uttered", sid, {"message": "hello", "session_id": "someone-else"})
    assert [(m.text, m.sender_id) for m in handled] == [("hello", sid)]


def test_the_default_credentials_use_this_channel(monkeypatch):
    from rasa.core.run import create_http_input_channels

    from handoff.settings import PROJECT_ROOT

    monkeypatch.delenv("SOCKETIO_REDIS_URL", raising=False)
    channels = create_http_input_channels(None, str(PROJECT_ROOT / "credentials.yml"))
    by_name = {channel.name(): channel for channel in channels}
    assert sorted(by_name) == ["helpdesk", "rest", "socketio"]
    shared = by_name["socketio"]
    assert isinstance(shared, SharedSocketIOInput)
    assert shared.redis_url is None and shared.session_persistence is True
    assert (shared.user_message_evt, shared.bot_message_evt, shared.socketio_path) == (
        "user_uttered",
        "bot_uttered",
        "/socket.io",
    )


# -- Redis in JSON ----------------------------------------------------------------------------------

executed: list[str] = []


def _pickled_call(tag: str) -> dict:
    """What a malicious pickle runs when it is loaded (here: it only leaves a mark)."""
    executed.append(tag)
    return {"method": "close_room", "room": "nobody", "namespace": "/"}


class Exploit:
    def __init__(self, tag: str) -> None:
        self.tag = tag

    def __reduce__(self):
        return (_pickled_call, (self.tag,))


def test_decode_message_takes_json_objects_only(caplog):
    caplog.set_level(logging.WARNING, "handoff.server.socketio")
    assert decode_message(b'{"method": "emit"}') == {"method": "emit"}
    assert decode_message(pickle.dumps(Exploit("decode"))) is None
    assert decode_message(b"[1, 2]") is None
    assert decode_message(b"\xff\xfe") is None
    assert executed == []
    assert caplog.text.count("dropped a Redis message") == 3


async def redis_client():
    from redis import asyncio as aioredis

    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except Exception as error:  # noqa: BLE001 - the reason is in the failure message
        pytest.fail(f"no Redis at {REDIS_URL}: {error}")
    return client


async def shared_server(channel: str, manager_class=JsonRedisManager) -> tuple[socketio.AsyncServer, Sockets]:
    """A channel's socket.io server with a Redis manager on ``channel``, listening."""

    async def on_new_message(_message):
        return None

    input_channel = SharedSocketIOInput.from_credentials({**CREDENTIALS, "redis_url": REDIS_URL, "redis_channel": channel})
    input_channel.blueprint(on_new_message)
    server = input_channel.sio
    if manager_class is not JsonRedisManager:
        server.manager = manager_class(REDIS_URL, channel=channel)
        server.manager.set_server(server)
    server.manager_initialized = True
    server.manager.initialize()
    for _ in range(200):
        if server.manager.pubsub.subscribed:
            break
        await asyncio.sleep(0.05)
    assert server.manager.pubsub.subscribed
    return server, Sockets(input_channel)


async def close(server: socketio.AsyncServer) -> None:
    manager = server.manager
    manager.thread.cancel()
    await asyncio.gather(manager.thread, return_exceptions=True)
    await manager.pubsub.close()
    await manager.redis.close()


async def wait_until(predicate, timeout=5.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "not within the timeout"
        await asyncio.sleep(0.02)


@pytest.mark.redis
async def test_two_processes_exchange_an_emit_as_json():
    channel = f"socketio-test-{uuid.uuid4().hex[:8]}"
    spy = await redis_client()
    pubsub = spy.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(channel)
    a, _ = await shared_server(channel)
    b, sockets_b = await shared_server(channel)
    try:
        assert isinstance(a.manager, socketio.AsyncRedisManager) and a.manager.name == "aioredis-json"
        # A customer on B, in their conversation's room; the agent's message is sent on A.
        sid = sockets_b.connect()
        session_id = await sockets_b.session_request(sid, {})
        await wait_until(lambda: sockets_b.events(sid, "session_confirm") == [session_id])
        await SocketIOOutput(a, "bot_uttered").send_text_message(session_id, "Hello, Sanne here.")
        await wait_until(lambda: sockets_b.events(sid, "bot_uttered") == [{"text": "Hello, Sanne here."}])

        # On the wire: JSON, never pickle.
        seen = []
        deadline = asyncio.get_running_loop().time() + 1.0
        while asyncio.get_running_loop().time() < deadline:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
            if message is not None:
                seen.append(message["data"])
        assert seen and all(raw.startswith(b"{") for raw in seen)
        emitted = [json.loads(raw) for raw in seen]
        assert {"method": "emit", "event": "bot_uttered", "data": {"text": "Hello, Sanne here."}, "room": session_id}.items() <= emitted[-1].items()
    finally:
        await close(a)
        await close(b)
        await pubsub.close()
        await spy.close()


@pytest.mark.redis
async def test_a_pickled_message_on_the_channel_is_dropped_not_run(caplog):
    channel = f"socketio-test-{uuid.uuid4().hex[:8]}"
    publisher = await redis_client()
    ours, _ = await shared_server(channel)
    stock, _ = await shared_server(channel, manager_class=socketio.AsyncRedisManager)
    caplog.set_level(logging.WARNING, "handoff.server.socketio")
    executed.clear()
    try:
        assert await publisher.publish(channel, pickle.dumps(Exploit("on the channel"))) == 2
        # python-socketio's own manager runs the payload (this is the vulnerability) ...
        await wait_until(lambda: executed == ["on the channel"])
        # ... ours drops it with a warning: the one run above is the stock manager's.
        await wait_until(lambda: "dropped a Redis message that is not JSON" in caplog.text)
        await asyncio.sleep(0.2)
        assert executed == ["on the channel"]
    finally:
        executed.clear()
        await close(ours)
        await close(stock)
        await publisher.close()


# -- message ids ----------------------------------------------------------------------------------


async def test_a_message_sent_again_with_its_id_is_answered_again_not_handled_twice(monkeypatch):
    """The web chat sends a message again after a reconnect when it got no acknowledgement: the
    socket gets the answer of the first time, and the turn runs once (handoff/server/idempotency.py)."""
    from handoff.idempotency import MemoryReplyStore
    from handoff.server import idempotency

    monkeypatch.setattr(idempotency, "_memory", MemoryReplyStore())
    turns = []

    async def on_new_message(message):
        turns.append((message.text, message.message_id, message.metadata.get("message_id")))
        await message.output_channel.send_response(message.sender_id, {"text": "We are open from 8 to 20."})

    channel = SharedSocketIOInput.from_credentials(CREDENTIALS)
    channel.blueprint(on_new_message)
    sockets = Sockets(channel)
    sid = sockets.connect()
    session = await sockets.session_request(sid, {})
    payload = {"message": "when are you open?", "session_id": session, "message_id": "web-1"}
    first = await sockets.handler("user_uttered", sid, payload)
    # The reconnected page: another socket, the same session.
    token = sockets.events(sid, TOKEN_EVENT)[-1]["session_token"]
    again_sid = sockets.connect()
    assert await sockets.session_request(again_sid, {"session_id": session, "session_token": token}) == session
    again = await sockets.handler("user_uttered", again_sid, payload)

    assert turns == [("when are you open?", "web-1", "web-1")]
    assert first == again == {"accepted": True, "message_id": "web-1"}
    answers = [data["text"] for data in sockets.events(again_sid, "bot_uttered")]
    assert answers == ["We are open from 8 to 20."]

    # Without an id every message is a new one; an invalid id is refused (and acknowledged as such).
    await sockets.handler("user_uttered", sid, {"message": "when are you open?", "session_id": session})
    refused = await sockets.handler("user_uttered", sid, {"message": "hi", "session_id": session, "message_id": "a b"})
    assert refused == {"accepted": False, "message_id": "a b"}
    assert len(turns) == 2
