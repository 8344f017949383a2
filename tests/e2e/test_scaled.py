"""The scaled deployment under load, with a replica killed: no customer message lost or handled twice.

make run-scaled's deployment (handoff/tools/scaled.py): two Rasa replicas behind haproxy and one
action server, on a fresh PostgreSQL database and a Redis key prefix of their own
(tests/scaled_stack.py), with a signed webhook receiver as the helpdesk. Twenty customers talk to
it over REST through the balancer at once, ten messages each; five of them ask for a person at
their third message and keep writing while handed off. When a third of the messages are answered,
one replica is killed with SIGKILL. Every message carries a message id and no customer sends
anything twice: what the killed replica had in hand must be finished by the other one, through
the balancer's retry (deploy/haproxy.cfg.j2) and the stored replies (handoff/server/idempotency.py).

Skipped only when haproxy is not installed (`make haproxy`, which `make test-e2e` runs first); it
fails, rather than skips, without PostgreSQL or Redis (TEST_POSTGRES_URL, TEST_REDIS_URL).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import time
import uuid
from collections import Counter
from pathlib import Path

import aiohttp
import pytest
import requests

from tests.scaled_stack import (
    AGENT_TEXT,
    HANDOFF_AT,
    HANDOFF_SCRIPT,
    ROUTINE_SCRIPTS,
    Customers,
    agent_turns,
    agent_writes,
    clear_redis_prefix,
    postgres_database,
    scaled_deployment,
    user_texts,
)

pytestmark = [pytest.mark.e2e, pytest.mark.scaled, pytest.mark.postgres, pytest.mark.redis, pytest.mark.timeout(240)]

CONVERSATIONS = 20
HANDOFF_EVERY = 4  # conversations 0, 4, 8, 12, 16 hand off
KILL_AFTER = 1 / 3  # of the messages answered
KILLED = "rasa2"


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, helpdesk):
    if not (shutil.which("haproxy") or Path("/usr/sbin/haproxy").exists()):
        pytest.skip("haproxy is not installed and this run could not install it: `make haproxy` (Debian's package)")
    prefix = f"scaled{uuid.uuid4().hex[:12]}"
    with postgres_database() as database_url:
        running = scaled_deployment(tmp_path_factory.mktemp("scaled"), 2, database_url, prefix, helpdesk.url)
        running.start()
        print(f"2 replicas, haproxy and the action server ready in {running.ready_seconds:.1f} s")
        try:
            yield running
        finally:
            running.stop()
            clear_redis_prefix(prefix)


def plans() -> dict[str, list[str]]:
    run = uuid.uuid4().hex[:6]
    return {
        f"scaled-{run}-{n:02d}": HANDOFF_SCRIPT if n % HANDOFF_EVERY == 0 else ROUTINE_SCRIPTS[n % len(ROUTINE_SCRIPTS)]
        for n in range(CONVERSATIONS)
    }


async def drive(deployment, helpdesk, conversations: dict[str, list[str]]) -> tuple[Customers, dict]:
    """Every conversation at once through the balancer, an agent answering each handoff; kill a
    replica when a third of the messages are answered."""
    total = sum(len(script) for script in conversations.values())
    customers = Customers(deployment.url)
    started = time.monotonic()
    agent_answers: dict[str, tuple] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=150)) as session:
        talking = [asyncio.create_task(customers.conversation(session, sender, script)) for sender, script in conversations.items()]
        talking += [
            asyncio.create_task(agent_writes(session, deployment.url, helpdesk, sender, agent_answers))
            for sender, script in conversations.items()
            if script is HANDOFF_SCRIPT
        ]
        await customers.when_answered(int(total * KILL_AFTER)).wait()
        kill = {"in_flight": customers.in_flight, "answered_before": customers.answered}
        await asyncio.to_thread(deployment.kill, KILLED)
        kill["at"] = time.monotonic() - started
        kill["unanswered"] = [texts for texts in await asyncio.gather(*talking) if texts]
    kill["seconds"] = time.monotonic() - started
    kill["agent_answers"] = agent_answers
    return customers, kill


def test_killing_a_replica_mid_load_loses_no_message_and_handles_none_twice(deployment, helpdesk):
    conversations = plans()
    total = sum(len(script) for script in conversations.values())
    customers, kill = asyncio.run(drive(deployment, helpdesk, conversations))
    in_flight, unanswered = kill["in_flight"], kill["unanswered"]
    assert in_flight > 0, "the replica was killed while no message was in flight"

    # Every message answered, the first time the customer sent it.
    assert customers.errors == [] and customers.resent == 0
    assert unanswered == []
    # The agent's message of every handoff was taken (once: see the trackers below).
    handoffs = [sender for sender, script in conversations.items() if script is HANDOFF_SCRIPT]
    assert {sender: answer[0] for sender, answer in kill["agent_answers"].items()} == dict.fromkeys(handoffs, 200)

    # Each conversation holds what its customer said, each message once, in order.
    lost = duplicated = 0
    for sender, script in conversations.items():
        answer = requests.get(f"{deployment.url}/conversations/{sender}/tracker", timeout=30)
        answer.raise_for_status()
        said = Counter(user_texts(answer.json()))
        wanted = Counter(script)
        lost += sum((wanted - said).values())
        duplicated += sum((said - wanted).values())
        assert user_texts(answer.json()) == script, sender
        assert agent_turns(answer.json()) == ([AGENT_TEXT] if sender in handoffs else []), sender

    # Every handoff reached the helpdesk once, and every message written during it was relayed once.
    for sender in handoffs:
        helpdesk.wait_for("conversation.message", sender, count=len(HANDOFF_SCRIPT) - HANDOFF_AT - 1, timeout=60)
    time.sleep(1.5)  # several outbox passes of the surviving replica: a second delivery would show
    for sender in handoffs:
        requested = helpdesk.events("handoff.requested", sender)
        assert len(requested) == 1, (sender, [body["event_id"] for body in requested])
        relayed = helpdesk.events("conversation.message", sender)
        assert [body["message"]["text"] for body in relayed] == HANDOFF_SCRIPT[HANDOFF_AT + 1 :], sender
        assert len({body["event_id"] for body in relayed}) == len(relayed)
        assert all(body["message"].get("message_id") for body in relayed), "the message ids go with the relay"
    routine = set(conversations) - set(handoffs)
    assert not [body for body in helpdesk.events("handoff.requested") if body["conversation_id"] in routine]

    retried = len(re.findall(r"/\+\d+ \d+/\d+ \"POST /webhooks/rest/webhook", deployment.log("haproxy", tail=10**7)))
    survivor = deployment.log("rasa1", tail=10**7)
    print(
        f"{total} messages in {kill['seconds']:.1f} s; {KILLED} killed at {kill['at']:.1f} s with {in_flight} in flight "
        f"({kill['answered_before']} answered before); lost {lost}, duplicated {duplicated}; haproxy retried {retried} "
        f"on the other replica; answered from a stored reply {survivor.count('was handled before')}, "
        f"from the dead replica's saved turn {survivor.count('was saved by a process that died')}"
    )
    assert (lost, duplicated) == (0, 0)
