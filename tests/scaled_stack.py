"""The scaled deployment (handoff/tools/scaled.py) as the end-to-end test and the benchmark start it.

Rasa replicas behind haproxy on a fresh PostgreSQL database and a Redis key prefix of their own,
every port a free loopback port, a signed webhook receiver (tests/support.py) as the helpdesk; and
customers that talk to it over REST with a message id on every message, as a client that resends
after a failure does.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from handoff.server.action_server import action_token
from handoff.tools.scaled import Deployment, Topology
from tests.stack import MODEL, OPEN_HOURS_NOW, free_port
from tests.support import TEST_SECRET, helpdesk_event, signed

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = os.environ.get("TEST_REDIS_URL") or "redis://127.0.0.1:6379/0"
#: Rasa's conversation lock lifetime in these stacks: a message that was in a killed replica's
#: turn waits this long before another replica takes it (60 s in production).
LOCK_LIFETIME = 15

# Routine conversations (the benchmark's wordings: FAQ and small talk, never a handoff).
ROUTINE_SCRIPTS: list[list[str]] = [
    ["hi there", "when are you open?", "how long does delivery take?", "thanks", "do you ship to Belgium?",
     "which payment methods do you accept?", "how do I return an item?", "great, thank you", "are you a bot?", "bye"],
    ["hello", "how do I return an item?", "which payment methods do you accept?", "great, thank you",
     "where is my order?", "can I pay with PayPal?", "what do your products cost?", "ok thanks, that helps", "when are you open?", "goodbye"],
    ["good morning", "where is my order?", "do you ship to Belgium?", "ok thanks, that helps", "hoe laat zijn jullie open?",
     "how long does delivery take?", "can I send my shoes back?", "how much does shipping cost?", "thanks", "bye"],
    ["hallo", "hoe laat zijn jullie open?", "wanneer wordt mijn pakket bezorgd?", "bedankt", "hey",
     "can I pay with PayPal?", "what do your products cost?", "are you a bot?", "when are you open?", "thanks, bye"],
]  # fmt: skip
#: A conversation that hands off at its third message; what follows is relayed to the helpdesk.
HANDOFF_SCRIPT = [
    "hello",
    "where is my order?",
    "I want to talk to a person",
    "my parcel 4711 never arrived",
    "it was a blue jacket in size M",
    "I ordered it on Monday",
    "the order number is 4711",
    "I paid with PayPal",
    "it should have come on Friday",
    "thank you",
]
HANDOFF_AT = HANDOFF_SCRIPT.index("I want to talk to a person")


def shared_stores_env(database_url: str, redis_url: str, redis_prefix: str) -> dict[str, str]:
    """What endpoints.scaled.yml and credentials.scaled.yml read: the PostgreSQL tracker store and
    handoff database, and Redis (locks, stored replies, socket.io) under ``redis_prefix``."""
    from sqlalchemy.engine import make_url

    db, red = make_url(database_url), make_url(redis_url)
    return {
        "HANDOFF_DATABASE_URL": database_url,
        "POSTGRES_HOST": db.host or "127.0.0.1",
        "POSTGRES_PORT": str(db.port or 5432),
        "POSTGRES_DB": db.database or "",
        "POSTGRES_USER": db.username or "postgres",
        "POSTGRES_PASSWORD": db.password or "",
        "REDIS_HOST": red.host or "127.0.0.1",
        "REDIS_PORT": str(red.port or 6379),
        "REDIS_DB": str(red.database or 0),
        "REDIS_PASSWORD": red.password or "",
        "REDIS_KEY_PREFIX": redis_prefix,
        "SOCKETIO_REDIS_URL": redis_url,
        "SOCKETIO_REDIS_CHANNEL": f"socketio-{redis_prefix}",
    }


@contextlib.contextmanager
def postgres_database(admin_url: str = POSTGRES_URL) -> Iterator[str]:
    """A fresh database (``handoff_scaled_<random>``) on the PostgreSQL at ``admin_url``, dropped afterwards."""
    import psycopg2
    from sqlalchemy.engine import make_url

    admin = make_url(admin_url)
    connection = psycopg2.connect(admin.set(drivername="postgresql").render_as_string(hide_password=False), connect_timeout=5)
    connection.autocommit = True
    name = f"handoff_scaled_{uuid.uuid4().hex[:12]}"
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(drivername="postgresql", database=name).render_as_string(hide_password=False)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.close()


def clear_redis_prefix(prefix: str, redis_url: str = REDIS_URL) -> None:
    import redis

    client = redis.Redis.from_url(redis_url, socket_connect_timeout=5, socket_timeout=5)
    try:
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)
    finally:
        client.close()


def scaled_deployment(
    workdir: Path,
    replicas: int,
    database_url: str,
    redis_prefix: str,
    webhook_url: str,
    lock_lifetime: int = LOCK_LIFETIME,
    model: Path = MODEL,
    redis_url: str = REDIS_URL,
    **env: str,
) -> Deployment:
    """A :class:`Deployment` of ``replicas`` Rasa processes on free loopback ports (not started)."""
    topology = Topology.on_ports(
        replicas,
        ports=[free_port() for _ in range(replicas + 1)],
        rasa_port=free_port(),
        actions_port=free_port(),
        lock_lifetime=lock_lifetime,
    )
    environ = {
        **os.environ,
        "HANDOFF_ENV": "test",
        "HELPDESK_SECRET": TEST_SECRET,
        "HANDOFF_VAR_DIR": str(workdir / "var"),
        "HANDOFF_NOW": OPEN_HOURS_NOW,
        "HANDOFF_OUTBOX_POLL_INTERVAL": "0.3",
        "HELPDESK_WEBHOOK_URL": webhook_url,
        "RASA_PORT": str(topology.rasa_port),
        "ACTIONS_PORT": str(topology.actions_port),
        "RASA_URL": f"http://127.0.0.1:{topology.rasa_port}",
        "ACTIONS_URL": f"http://127.0.0.1:{topology.actions_port}/webhook",
        **shared_stores_env(database_url, redis_url, redis_prefix),
        "TICKET_LOCK_LIFETIME": str(lock_lifetime),
        "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "RASA_TELEMETRY_ENABLED": "false",
        "PYTHONUNBUFFERED": "1",
        **env,
    }
    for name in ("HELPDESK_DATABASE_URL", "RASA_AUTH_TOKEN", "RASA_TOKEN"):
        environ.pop(name, None)
    environ["ACTIONS_TOKEN"] = action_token(environ)
    (workdir / "var").mkdir(parents=True, exist_ok=True)
    return Deployment(topology, environ, workdir, model=model, with_helpdesk=False, with_webchat=False)


# -- customers -----------------------------------------------------------------------------------


@dataclass
class Customers:
    """Closed-loop REST customers through the balancer: each sends its next message when the last
    one was answered; every message has a message id and is sent again (same id) after a failure."""

    url: str
    answered: int = 0
    in_flight: int = 0
    resent: int = 0
    errors: list[str] = field(default_factory=list)
    latencies: list[tuple[float, float]] = field(default_factory=list)  # (answered at, seconds)
    replies: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    _milestones: list[tuple[int, asyncio.Event]] = field(default_factory=list)

    def when_answered(self, count: int) -> asyncio.Event:
        """An event set once ``count`` messages are answered."""
        event = asyncio.Event()
        self._milestones.append((count, event))
        if self.answered >= count:
            event.set()
        return event

    async def say(
        self, session: Any, sender: str, text: str, message_id: str | None = None, attempts: int = 1
    ) -> list[dict[str, Any]] | None:
        """Send one message (with ``message_id``, new when None); its reply, or None after
        ``attempts`` failures (a client that resends sends the same id again)."""
        import aiohttp

        message_id = message_id or uuid.uuid4().hex
        body = {"sender": sender, "message": text, "message_id": message_id}
        started = time.monotonic()
        for attempt in range(attempts):
            if attempt:
                self.resent += 1
                await asyncio.sleep(0.5)
            self.in_flight += 1
            try:
                async with session.post(f"{self.url}/webhooks/rest/webhook", json=body) as answer:
                    if answer.status == 200:
                        reply = await answer.json()
                        self.answered += 1
                        for count, event in self._milestones:
                            if self.answered >= count:
                                event.set()
                        now = time.monotonic()
                        self.latencies.append((now, now - started))
                        self.replies[(sender, message_id)] = reply
                        return reply
                    problem = f"{answer.status} {(await answer.text())[:120]}"
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            finally:
                self.in_flight -= 1
            self.errors.append(f"{sender} {text!r} attempt {attempt + 1}: {problem}")
        return None

    async def conversation(self, session: Any, sender: str, script: list[str], attempts: int = 1) -> list[str]:
        """Say every line of ``script``; the lines that got no answer."""
        return [text for text in script if await self.say(session, sender, text, attempts=attempts) is None]


def user_texts(tracker: dict[str, Any]) -> list[str]:
    """What the customer said, in order (not the intents the helpdesk channel triggered)."""
    from handoff.conversation import is_external

    return [e.get("text") for e in tracker["events"] if e["event"] == "user" and not is_external(e)]


# -- agents --------------------------------------------------------------------------------------

AGENT_TEXT = "Hello, Sanne here. I can see order 4711."


async def agent_writes(session: Any, url: str, helpdesk: Any, sender: str, answers: dict, timeout: float = 120) -> None:
    """The agent answers once the handoff arrived at ``helpdesk`` (a tests.support.Receiver): a
    signed agent.message through the balancer at ``url``, sent again with the same event_id after
    a 5xx or no answer (as the contract asks of a helpdesk). ``answers[sender]`` is the last
    (status, text); nothing when no handoff arrived within ``timeout`` seconds."""
    import aiohttp

    deadline = time.monotonic() + timeout
    while not (requested := helpdesk.events("handoff.requested", sender)):
        if time.monotonic() > deadline:
            return
        await asyncio.sleep(0.2)
    body = helpdesk_event("agent.message", requested[0]["handoff_id"], sender, text=AGENT_TEXT)
    for _ in range(3):
        raw, headers = signed(body)  # the same event_id, signed again
        try:
            async with session.post(f"{url}/webhooks/helpdesk/webhook", data=raw, headers=headers) as answer:
                answers[sender] = (answer.status, await answer.text())
                if answer.status < 500:
                    return
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            answers[sender] = (None, repr(exc))
        await asyncio.sleep(0.5)


def agent_turns(tracker: dict[str, Any]) -> list[str]:
    """What agents said in the conversation (the helpdesk channel's pushes)."""
    return [e["text"] for e in tracker["events"] if e["event"] == "bot" and (e.get("metadata") or {}).get("handoff_role") == "agent"]
