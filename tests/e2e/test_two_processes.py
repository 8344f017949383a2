"""Two Rasa server processes sharing PostgreSQL and Redis: the handoff loop across processes.

One action server and two `rasa run` processes (A and B) started with endpoints.scaled.yml and
credentials.scaled.yml on a fresh PostgreSQL database (conversations and handoff records) and
their own Redis key prefix and socket.io channel. The customer talks to A, the helpdesk to B (and
the other way round): one tracker, one lock per conversation, each outbox entry delivered once,
and agent messages posted to B reach a socket.io customer connected to A.

PostgreSQL and Redis must be reachable (TEST_POSTGRES_URL, TEST_REDIS_URL; defaults on
127.0.0.1): without them these tests fail, they do not skip.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import psycopg2
import pytest
import redis
import requests
from sqlalchemy.engine import make_url

from handoff.conversation import is_external
from handoff.settings import PROJECT_ROOT
from handoff.store import DELIVERED, HandoffStore, new_event
from tests.scaled_stack import shared_stores_env
from tests.stack import BIN, MODEL, Stack, free_port
from tests.support import Receiver, helpdesk_event, signed

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = os.environ.get("TEST_REDIS_URL") or "redis://127.0.0.1:6379/0"
# What Rasa, python-socketio and the handoff relay log when locks, Redis or the relay go wrong.
ERROR_MARKERS = (
    "LockError",
    "Could not acquire lock",
    "Error while acquiring lock",
    "Cannot connect to lock store",
    "Cannot publish to redis",
    "Cannot receive from redis",
    "no Redis subscription",
    "handoff relay failed",
    "outbox pass failed",
)


# -- PostgreSQL and Redis ------------------------------------------------------------------------


def _libpq(url) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def postgres():
    """Makes fresh databases (``handoff_e2e_<random>``) and drops them afterwards."""
    admin_url = make_url(POSTGRES_URL)
    try:
        admin = psycopg2.connect(_libpq(admin_url), connect_timeout=5)
    except psycopg2.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {admin_url.render_as_string()}: {exc}\n"
            "These tests need PostgreSQL (CI provides it); set TEST_POSTGRES_URL to use another server.",
            pytrace=False,
        )
    admin.autocommit = True
    created: list[str] = []

    def create() -> str:
        name = f"handoff_e2e_{uuid.uuid4().hex[:12]}"
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        return admin_url.set(drivername="postgresql", database=name).render_as_string(hide_password=False)

    yield create
    with admin.cursor() as cursor:
        for name in created:
            cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
    admin.close()


@pytest.fixture(scope="module")
def redis_prefix():
    """A key prefix (letters and digits, as Rasa's lock store wants) of this run; its keys are removed."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=5, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(
            f"Redis is not reachable at {REDIS_URL}: {exc}\n"
            "These tests need Redis (CI provides it); set TEST_REDIS_URL to use another server.",
            pytrace=False,
        )
    prefix = f"e2e{uuid.uuid4().hex[:12]}"
    yield prefix
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)
    client.close()


# -- the stack -----------------------------------------------------------------------------------


class RasaProcess:
    """One of the Rasa server processes, talked to as a channel and as the helpdesk do."""

    def __init__(self, name: str, port: int) -> None:
        self.name = name
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    def say(self, sender: str, text: str) -> list[dict]:
        answer = requests.post(f"{self.url}/webhooks/rest/webhook", json={"sender": sender, "message": text}, timeout=60)
        answer.raise_for_status()
        return answer.json()

    def tracker(self, sender: str) -> dict:
        answer = requests.get(f"{self.url}/conversations/{sender}/tracker", timeout=30)
        answer.raise_for_status()
        return answer.json()

    def helpdesk_event(self, body: dict) -> requests.Response:
        raw, headers = signed(body)
        return requests.post(f"{self.url}/webhooks/helpdesk/webhook", data=raw, headers=headers, timeout=60)


class TwoProcessStack(Stack):
    """An action server and two Rasa processes with endpoints.scaled.yml / credentials.scaled.yml."""

    def __init__(self, workdir: Path, webhook_url: str, database_url: str, redis_prefix: str) -> None:
        super().__init__(workdir, webhook_url=webhook_url)
        self.env.update(
            {
                "ACTIONS_URL": f"http://127.0.0.1:{self.actions_port}/webhook",
                **shared_stores_env(database_url, REDIS_URL, redis_prefix),
            }
        )
        self.a = RasaProcess("rasa-a", free_port())
        self.b = RasaProcess("rasa-b", free_port())

    def start(self, timeout: float = 300) -> TwoProcessStack:
        started = time.monotonic()
        self._spawn("actions", str(BIN / "python"), "-m", "handoff.server.action_server", "--port", str(self.actions_port))
        for process in (self.a, self.b):
            self._spawn(
                process.name, str(BIN / "rasa"), "run", "--enable-api", "--interface", "127.0.0.1",
                "--port", str(process.port), "--model", str(MODEL),
                "--credentials", str(PROJECT_ROOT / "credentials.scaled.yml"),
                "--endpoints", str(PROJECT_ROOT / "endpoints.scaled.yml"),
            )  # fmt: skip
        pending = {
            "actions": f"http://127.0.0.1:{self.actions_port}/health",
            self.a.name: f"{self.a.url}/status",
            self.b.name: f"{self.b.url}/status",
        }
        while pending:
            for name, url in list(pending.items()):
                if self.processes[name].poll() is not None:
                    self.stop()
                    raise RuntimeError(f"{name} exited early:\n{self.log(name)}")
                try:
                    if requests.get(url, timeout=2).status_code == 200:
                        del pending[name]
                except requests.RequestException:
                    pass
            if time.monotonic() - started > timeout:
                self.stop()
                raise RuntimeError(f"not ready in {timeout} s: {sorted(pending)}\n{self.log(next(iter(pending)))}")
            time.sleep(0.5)
        self.ready_seconds = time.monotonic() - started
        return self

    def full_log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


@pytest.fixture(scope="module")
def database_url(postgres):
    return postgres()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, helpdesk, database_url, redis_prefix):
    running = TwoProcessStack(tmp_path_factory.mktemp("two-processes"), helpdesk.url, database_url, redis_prefix)
    running.start()
    print(f"two Rasa processes and the action server ready in {running.ready_seconds:.1f} s")
    yield running
    running.stop()
    for name in ("rasa-a", "rasa-b"):
        log = running.full_log(name)
        found = [marker for marker in ERROR_MARKERS if marker in log]
        assert not found, f"{name} logged {found}:\n{log[-4000:]}"


@pytest.fixture(scope="module")
def store(database_url):
    """The shared handoff database, read from the test as a third process."""
    shared = HandoffStore(database_url)
    yield shared
    shared.close()


# -- helpers -------------------------------------------------------------------------------------

SETTLE_SECONDS = 1.5  # five outbox polls of each process: a second delivery would show by then


def assert_delivered_once(helpdesk: Receiver, store: HandoffStore, event: str, conversation_id: str) -> list[dict]:
    """Every ``event`` for the conversation reached the helpdesk once, in one attempt."""
    time.sleep(SETTLE_SECONDS)
    bodies = helpdesk.events(event, conversation_id)
    counts = Counter(body["event_id"] for body in bodies)
    assert counts and max(counts.values()) == 1, f"{event} delivered more than once: {counts}"
    for body in bodies:
        entry = store.get_event(body["event_id"])
        assert entry is not None and entry.status == DELIVERED and entry.attempts == 1, entry
    return bodies


def no_errors_in_logs(stack: TwoProcessStack) -> None:
    for name in ("rasa-a", "rasa-b"):
        log = stack.full_log(name)
        found = [marker for marker in ERROR_MARKERS if marker in log]
        assert not found, f"{name} logged {found}:\n{log[-4000:]}"


def user_texts(tracker: dict) -> list[str]:
    """What the customer said (not the intents the helpdesk channel triggered)."""
    return [e.get("text") for e in tracker["events"] if e["event"] == "user" and not is_external(e)]


def comparable(events: list[dict]) -> list[tuple]:
    return [(e["event"], e.get("timestamp"), e.get("text"), e.get("name")) for e in events]


# -- PostgreSQL: the store's guarantees under concurrency -----------------------------------------


def test_store_tables_created_by_several_processes_at_once(postgres):
    url = postgres()
    barrier = threading.Barrier(6)
    outcomes: list[str] = []

    def make() -> None:
        barrier.wait()
        try:
            HandoffStore(url).close()
            outcomes.append("ok")
        except Exception as exc:  # recorded, then asserted on
            outcomes.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=make) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert outcomes == ["ok"] * 6


def test_outbox_claim_is_exclusive_on_postgresql(postgres):
    url = postgres()
    workers = [HandoffStore(url) for _ in range(6)]
    try:
        entries = [
            workers[0].enqueue(new_event("conversation.message", str(uuid.uuid4()), "claims", message={"text": str(i)}))
            for i in range(10)
        ]
        for entry in entries:
            barrier = threading.Barrier(len(workers))
            won: list[bool] = []

            def claim(worker: HandoffStore, event_id: str = entry.event_id, barrier=barrier, won=won) -> None:
                barrier.wait()
                won.append(worker.claim(event_id, lease_seconds=30) is not None)

            threads = [threading.Thread(target=claim, args=(worker,)) for worker in workers]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
            assert sorted(won) == [False] * (len(workers) - 1) + [True], entry.event_id
    finally:
        for worker in workers:
            worker.close()


# -- the loop across two processes ---------------------------------------------------------------


async def test_socketio_customer_on_a_helpdesk_on_b(stack, helpdesk, store):
    import socketio

    a, b = stack.a, stack.b
    received: asyncio.Queue = asyncio.Queue()
    client = socketio.AsyncClient()
    client.on("bot_uttered", lambda data: received.put_nowait(data))
    # The server issues the session id (handoff/server/socketio.py): use the one it confirms.
    confirmed: asyncio.Queue = asyncio.Queue()
    client.on("session_confirm", confirmed.put_nowait)

    async def text_matching(predicate, timeout=30.0):
        """The first pushed text that satisfies ``predicate``, and those that came before it."""
        seen = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                data = await asyncio.wait_for(received.get(), max(deadline - time.monotonic(), 0.01))
            except asyncio.TimeoutError:
                raise AssertionError(f"no matching message within {timeout} s; got {seen}") from None
            text = data.get("text", "")
            if predicate(text):
                return text, seen
            seen.append(text)

    async def post(process: RasaProcess, body: dict) -> requests.Response:
        return await asyncio.to_thread(process.helpdesk_event, body)

    await client.connect(a.url, socketio_path="/socket.io", transports=["websocket"])
    try:
        await client.emit("session_request", {})
        session_id = await asyncio.wait_for(confirmed.get(), 10)

        # On A: the customer asks for a person.
        await client.emit("user_uttered", {"message": "can I talk to a real person please", "session_id": session_id})
        await text_matching(lambda t: "colleague" in t.lower())
        [requested] = await asyncio.to_thread(helpdesk.wait_for, "handoff.requested", session_id)
        assert requested["channel"]["name"] == "socketio"
        handoff_id = requested["handoff_id"]
        await asyncio.to_thread(assert_delivered_once, helpdesk, store, "handoff.requested", session_id)

        # On A: what the customer says now is relayed, once.
        await client.emit("user_uttered", {"message": "my order 4711 is late", "session_id": session_id})
        [relayed] = await asyncio.to_thread(helpdesk.wait_for, "conversation.message", session_id)
        assert relayed["handoff_id"] == handoff_id and relayed["message"]["text"] == "my order 4711 is late"
        await asyncio.to_thread(assert_delivered_once, helpdesk, store, "conversation.message", session_id)

        # On B: the agent joins and writes; the customer's socket is on A.
        sent_at = time.monotonic()
        assert (await post(b, helpdesk_event("agent.joined", handoff_id, session_id))).status_code == 200
        await text_matching(lambda t: "Sanne" in t)
        print(f"agent.joined on B -> socket.io customer on A: {(time.monotonic() - sent_at) * 1000:.0f} ms")
        reply = "Hello, Sanne here. I can see order 4711."
        assert (await post(b, helpdesk_event("agent.message", handoff_id, session_id, text=reply))).status_code == 200
        _, before = await text_matching(lambda t: t == reply)
        assert before == []

        # The tracker is one and the same in both processes, with the agent's turn in it.
        tracker_a = await asyncio.to_thread(a.tracker, session_id)
        tracker_b = await asyncio.to_thread(b.tracker, session_id)
        assert comparable(tracker_a["events"]) == comparable(tracker_b["events"])
        agent_turns = [e["text"] for e in tracker_a["events"] if (e.get("metadata") or {}).get("handoff_role") == "agent"]
        assert agent_turns == [reply] and tracker_a["paused"] is True

        # On B: hand-back. The bot says so on A's socket and answers the next message there.
        assert (await post(b, helpdesk_event("agent.handback", handoff_id, session_id))).status_code == 200
        await text_matching(lambda t: "anything else" in t.lower())
        await client.emit("user_uttered", {"message": "what are your opening hours?", "session_id": session_id})
        answer, _ = await text_matching(lambda t: bool(t))
        tracker = await asyncio.to_thread(a.tracker, session_id)
        assert tracker["paused"] is False
        last_user = max(i for i, e in enumerate(tracker["events"]) if e["event"] == "user")
        assert tracker["events"][last_user]["text"] == "what are your opening hours?"
        assert answer in [e.get("text") for e in tracker["events"][last_user:] if e["event"] == "bot"]
        assert len(helpdesk.events("conversation.message", session_id)) == 1, "after the hand-back nothing is relayed"
        # A repeated hand-back, now on A: the handoff is over in the shared records.
        assert (await post(a, helpdesk_event("agent.handback", handoff_id, session_id))).status_code == 409
    finally:
        await client.disconnect()
    no_errors_in_logs(stack)


def test_rest_messages_alternating_between_processes(stack, helpdesk, store):
    a, b = stack.a, stack.b
    sender = f"rest2-{uuid.uuid4().hex[:8]}"
    assert a.say(sender, "hello")
    assert b.say(sender, "what are your opening hours?")
    answer = a.say(sender, "I want to talk to a person")
    assert "colleague" in " ".join(m.get("text", "") for m in answer).lower(), answer
    [requested] = assert_delivered_once(helpdesk, store, "handoff.requested", sender)
    handoff_id = requested["handoff_id"]
    assert [t["text"] for t in requested["transcript"] if t["role"] == "customer"] == [
        "hello",
        "what are your opening hours?",
        "I want to talk to a person",
    ]

    # Paused, whichever process takes the message; each one relayed once, in order.
    assert b.say(sender, "my parcel never arrived") == []
    assert a.say(sender, "it was order 4711") == []
    helpdesk.wait_for("conversation.message", sender, count=2)
    relayed = assert_delivered_once(helpdesk, store, "conversation.message", sender)
    assert [r["message"]["text"] for r in relayed] == ["my parcel never arrived", "it was order 4711"]

    # The helpdesk alternates too; a retry of an event already done on A is a duplicate on B.
    assert a.helpdesk_event(helpdesk_event("agent.joined", handoff_id, sender)).status_code == 200
    message = helpdesk_event("agent.message", handoff_id, sender, text="Found it, it ships today.")
    assert b.helpdesk_event(message).status_code == 200
    repeat = a.helpdesk_event(message)
    assert repeat.status_code == 200 and repeat.json()["status"] == "duplicate"
    assert a.helpdesk_event(helpdesk_event("agent.handback", handoff_id, sender)).status_code == 200
    assert b.helpdesk_event(helpdesk_event("agent.handback", handoff_id, sender)).status_code == 409

    after = b.say(sender, "what are your opening hours?")
    assert after and all("colleague" not in m.get("text", "").lower() for m in after)

    tracker_a, tracker_b = a.tracker(sender), b.tracker(sender)
    assert comparable(tracker_a["events"]) == comparable(tracker_b["events"])
    assert user_texts(tracker_a) == [
        "hello",
        "what are your opening hours?",
        "I want to talk to a person",
        "my parcel never arrived",
        "it was order 4711",
        "what are your opening hours?",
    ]
    agent_turns = [e["text"] for e in tracker_a["events"] if (e.get("metadata") or {}).get("handoff_role") == "agent"]
    assert agent_turns == ["Found it, it ships today."]
    timestamps = [e["timestamp"] for e in tracker_a["events"]]
    assert timestamps == sorted(timestamps)
    assert len(helpdesk.events("conversation.message", sender)) == 2
    no_errors_in_logs(stack)


def test_a_turn_on_a_holds_the_conversation_lock_for_b(stack, helpdesk):
    """B's message waits for A's turn (the handoff action waits on a slow helpdesk) to finish."""
    a, b = stack.a, stack.b
    sender = f"lock2-{uuid.uuid4().hex[:8]}"
    assert a.say(sender, "hello")
    helpdesk.delay = 1.5
    try:
        first: dict = {}
        turn = threading.Thread(target=lambda: first.update(answer=a.say(sender, "I want to talk to a person")))
        turn.start()
        time.sleep(0.4)
        second = b.say(sender, "are you still there?")
        turn.join(60)
    finally:
        helpdesk.delay = 0.0
    assert "colleague" in " ".join(m.get("text", "") for m in first["answer"]).lower()
    assert second == [], "B took the message after A's turn paused the conversation"

    events = b.tracker(sender)["events"]
    names = [(e["event"], e.get("name") or e.get("text")) for e in events]
    asked = names.index(("user", "I want to talk to a person"))
    waited = names.index(("user", "are you still there?"))
    paused = next(i for i, e in enumerate(events) if e["event"] == "pause")
    last_bot_of_first_turn = max(i for i, e in enumerate(events[:waited]) if e["event"] == "bot")
    assert asked < paused < waited and last_bot_of_first_turn > asked, names
    [relayed] = helpdesk.wait_for("conversation.message", sender)
    assert relayed["message"]["text"] == "are you still there?"
    no_errors_in_logs(stack)


def test_outbox_workers_of_both_processes_deliver_each_entry_once(stack, helpdesk, store):
    """Entries queued in the shared outbox (as the action server and the relay do) are sent by the
    workers of A and B together: every entry once, in order within its handoff."""
    conversation = f"outbox2-{uuid.uuid4().hex[:8]}"
    handoffs = [str(uuid.uuid4()) for _ in range(6)]
    queued = [
        store.enqueue(
            new_event("conversation.message", handoff_id, conversation, message={"role": "customer", "text": f"{n}"})
        )
        for n in range(5)
        for handoff_id in handoffs
    ]
    helpdesk.delay = 0.05
    try:
        helpdesk.wait_for("conversation.message", conversation, count=len(queued), timeout=60)
    finally:
        helpdesk.delay = 0.0
    bodies = assert_delivered_once(helpdesk, store, "conversation.message", conversation)
    assert sorted(body["event_id"] for body in bodies) == sorted(entry.event_id for entry in queued)
    for handoff_id in handoffs:
        texts = [body["message"]["text"] for body in bodies if body["handoff_id"] == handoff_id]
        assert texts == ["0", "1", "2", "3", "4"], (handoff_id, texts)

    # Both processes' workers took part (each logs what it delivered).
    wanted = {entry.event_id for entry in queued}
    delivered_by = {}
    for name in ("rasa-a", "rasa-b"):
        lines = [line for line in stack.full_log(name).splitlines() if "delivered conversation.message" in line]
        delivered_by[name] = {word for line in lines for word in line.split() if word in wanted}
    print({name: len(ids) for name, ids in delivered_by.items()})
    assert delivered_by["rasa-a"] | delivered_by["rasa-b"] == wanted
    assert not delivered_by["rasa-a"] & delivered_by["rasa-b"]
    assert delivered_by["rasa-a"] and delivered_by["rasa-b"], {k: len(v) for k, v in delivered_by.items()}
