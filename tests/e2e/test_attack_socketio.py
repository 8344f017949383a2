"""Attacks on the web chat's socket.io channel of the running default stack (credentials.yml):
the Rasa server and action server on loopback, and a signed helpdesk receiver.

A customer's conversation id is no key: a second client that names it (without the token the
server issued, or with a wrong one) gets a conversation of its own, reads none of the victim's
messages and cannot write into the victim's conversation. Messages over the character limit are
refused before NLU, and a customer who comes back with the token resumes the conversation.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
import socketio

from tests.support import helpdesk_event

pytestmark = pytest.mark.e2e

#: HANDOFF_MAX_MESSAGE_CHARS's default is 5000; 16,000 ASCII characters stay under the 16 KiB
#: packet limit, so it is the character limit that refuses them.
LONG_MESSAGE_CHARS = 16_000


class Customer:
    """One socket.io client talking to Rasa's socketio channel as the web chat does."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.client = socketio.AsyncClient()
        self.bot: asyncio.Queue = asyncio.Queue()
        self.received: list[dict] = []
        self.confirmed: asyncio.Queue = asyncio.Queue()
        self.tokens: list[dict] = []
        self.session_id: str | None = None
        self.client.on("bot_uttered", self._bot_uttered)
        self.client.on("session_confirm", lambda data: self.confirmed.put_nowait(data))
        self.client.on("session_token", lambda data: self.tokens.append(data))

    def _bot_uttered(self, data: dict) -> None:
        self.received.append(data)
        self.bot.put_nowait(data)

    @property
    def token(self) -> str | None:
        return self.tokens[-1]["session_token"] if self.tokens else None

    async def open(self, request: dict | None = None) -> str:
        """Connect and ask for a session; the one the server confirmed."""
        await self.client.connect(self.url, socketio_path="/socket.io", transports=["websocket"])
        await self.client.emit("session_request", request or {})
        self.session_id = await asyncio.wait_for(self.confirmed.get(), 10)
        assert isinstance(self.session_id, str)
        assert self.tokens and self.tokens[-1]["session_id"] == self.session_id
        return self.session_id

    async def say(self, text: str, session_id: str | None = None) -> None:
        await self.client.emit(
            "user_uttered", {"message": text, "session_id": session_id or self.session_id, "metadata": {"page": "/"}}
        )

    async def next_text(self, timeout: float = 30) -> str:
        return (await asyncio.wait_for(self.bot.get(), timeout)).get("text", "")

    async def text_matching(self, predicate, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            try:
                text = await self.next_text(max(deadline - time.monotonic(), 0.01))
            except asyncio.TimeoutError:
                raise AssertionError(f"no matching message within {timeout} s; got {seen}") from None
            if predicate(text):
                return text
            seen.append(text)

    async def close(self) -> None:
        await self.client.disconnect()


def user_texts(tracker: dict) -> list[str]:
    return [e.get("text") for e in tracker["events"] if e["event"] == "user"]


async def tracker(stack, session_id: str) -> dict:
    return await asyncio.to_thread(stack.tracker, session_id)


async def test_a_second_client_with_the_victims_id_reads_and_writes_nothing_of_it(stack, helpdesk):
    victim = Customer(stack.rasa_url)
    attackers = [Customer(stack.rasa_url) for _ in range(3)]
    try:
        victims_session = await victim.open()
        assert len(victims_session) == 32 and victim.token
        await victim.say("can I talk to a real person please")
        await victim.text_matching(lambda t: "colleague" in t.lower())
        [requested] = await asyncio.to_thread(helpdesk.wait_for, "handoff.requested", victims_session)
        assert requested["channel"]["name"] == "socketio"

        # Knowing the id is not enough: no token, a wrong one, someone else's.
        stranger = Customer(stack.rasa_url)
        strangers_session = await stranger.open()
        requests = [
            {"session_id": victims_session},
            {"session_id": victims_session, "session_token": "0" * 64},
            {"session_id": victims_session, "session_token": stranger.token},
        ]
        await stranger.close()
        for attacker, request in zip(attackers, requests, strict=True):
            own = await attacker.open(request)
            assert own not in (victims_session, strangers_session)

        # The agent joins and writes to the victim: the victim reads it, the attackers nothing.
        handoff_id = requested["handoff_id"]
        joined = helpdesk_event("agent.joined", handoff_id, victims_session)
        assert (await asyncio.to_thread(stack.helpdesk_event, joined)).status_code == 200
        await victim.text_matching(lambda t: "Sanne" in t)
        reply = f"Hello, Sanne here. Your refund code is {uuid.uuid4().hex[:6]}."
        message = helpdesk_event("agent.message", handoff_id, victims_session, text=reply)
        assert (await asyncio.to_thread(stack.helpdesk_event, message)).status_code == 200
        await victim.text_matching(lambda t: t == reply)

        # Writing into the victim's conversation from an attacker's socket adds nothing to it.
        before = await tracker(stack, victims_session)
        injected = f"please send the refund to NL00BANK{uuid.uuid4().hex[:8]}"
        for attacker in attackers:
            await attacker.say(injected, session_id=victims_session)
        await asyncio.sleep(2)
        after = await tracker(stack, victims_session)
        assert injected not in user_texts(after)
        assert len(after["events"]) == len(before["events"])
        relayed = [e for e in helpdesk.events("conversation.message", victims_session) if e["message"]["text"] == injected]
        assert relayed == []
        for attacker in attackers:
            assert injected not in user_texts(await tracker(stack, attacker.session_id))

        # The victim's own next message still goes through (relayed to the agent).
        await victim.say("my order 4711 is late")
        [relayed] = await asyncio.to_thread(helpdesk.wait_for, "conversation.message", victims_session)
        assert relayed["message"]["text"] == "my order 4711 is late"

        # None of the victim's bot or agent messages reached any attacker.
        await asyncio.sleep(1)
        for attacker in attackers:
            assert attacker.received == [], attacker.received
        assert reply in [m.get("text") for m in victim.received]
    finally:
        await victim.close()
        for attacker in attackers:
            await attacker.close()


async def test_a_message_over_the_character_limit_is_refused_and_the_next_is_answered(stack):
    customer = Customer(stack.rasa_url)
    try:
        session_id = await customer.open()
        long_text = ("order 4711 " * (LONG_MESSAGE_CHARS // 11 + 1))[:LONG_MESSAGE_CHARS]
        await customer.say(long_text)
        notice = await asyncio.wait_for(customer.bot.get(), 10)
        assert notice["notice"] == "message_too_long" and notice["max_chars"] == 5000
        assert "too long" in notice["text"]
        assert user_texts(await tracker(stack, session_id)) == []

        await customer.say("hello")
        answer = await customer.next_text()
        assert answer
        events = (await tracker(stack, session_id))["events"]
        assert user_texts({"events": events}) == ["hello"]
        assert answer in [e.get("text") for e in events if e["event"] == "bot"]
    finally:
        await customer.close()


async def test_a_reconnect_with_the_token_resumes_the_conversation(stack):
    first = Customer(stack.rasa_url)
    try:
        session_id = await first.open()
        await first.say("hello")
        assert await first.next_text()
        token = first.token
    finally:
        await first.close()

    again = Customer(stack.rasa_url)
    try:
        assert await again.open({"session_id": session_id, "session_token": token}) == session_id
        assert again.token == token
        await again.say("what are your opening hours?")
        answer = await again.next_text()
        events = (await tracker(stack, session_id))["events"]
        assert user_texts({"events": events}) == ["hello", "what are your opening hours?"]
        assert answer in [e.get("text") for e in events if e["event"] == "bot"]
    finally:
        await again.close()
