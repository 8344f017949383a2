"""handoff.server.lock_store: the conversation lock in Redis when a holder dies or processes race.

Each store instance below has its own Redis connection, as each Rasa replica has.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from pathlib import Path

import pytest
import yaml
from rasa.core.lock_store import LockError, LockStore, RedisLockStore
from rasa.utils.endpoints import EndpointConfig
from sqlalchemy.engine import make_url

from handoff.server import idempotency
from handoff.server.lock_store import HandoffRedisLockStore

pytestmark = pytest.mark.redis

REDIS = make_url(os.environ.get("TEST_REDIS_URL") or "redis://127.0.0.1:6379/0")
ROOT = Path(__file__).resolve().parents[4]


def redis_kwargs(prefix: str) -> dict:
    return {
        "host": REDIS.host or "127.0.0.1",
        "port": REDIS.port or 6379,
        "db": int(REDIS.database or 0),
        "password": REDIS.password,
        "key_prefix": prefix,
    }


@pytest.fixture
def prefix():
    name = "locktest" + uuid.uuid4().hex[:10]
    yield name
    store = RedisLockStore(**redis_kwargs(name))
    for key in store.red.scan_iter(f"{name}:*"):
        store.red.delete(key)


def replica(prefix: str, kind: type[RedisLockStore] = HandoffRedisLockStore) -> RedisLockStore:
    """A lock store as one Rasa process has it: its own connection to the shared Redis."""
    return kind(**redis_kwargs(prefix))


async def acquire_after_dead_holder(store: RedisLockStore, other: RedisLockStore) -> float:
    """``other`` takes a ticket (1 s lifetime) and dies holding it; 50 ms later ``store`` waits
    for the lock with Rasa's default look every second. The seconds until ``store`` has it."""
    other.issue_ticket("anna", 1.0)
    await asyncio.sleep(0.05)
    started = time.monotonic()
    async with store.lock("anna", 1.0, 1):
        return time.monotonic() - started


async def test_a_turn_waiting_behind_a_dead_holder_runs_once_that_ticket_expires(prefix):
    waited = await asyncio.wait_for(
        acquire_after_dead_holder(replica(prefix), replica(prefix)), timeout=10
    )
    assert 0.9 < waited < 2.5
    assert replica(prefix).get_lock("anna") is None, "the lock is gone once its turn is over"


async def test_rasas_redis_lock_store_waits_forever_in_the_same_case(prefix):
    # Why the project has its own: the waiter's ticket, taken while the dead one was held, expires
    # before it looks again, and Rasa then waits for a lock that nobody deletes.
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(
            acquire_after_dead_holder(replica(prefix, RedisLockStore), replica(prefix)), timeout=4
        )


async def test_tickets_are_kept_alive_while_their_processes_wait_longer_than_the_lifetime(prefix):
    # Three processes queue for the lock (1 s lifetime): the last one waits 1.4 s in all, longer
    # than its ticket would last from the moment it was taken, and still gets its turn, after the
    # others. The second one's turn starts 0.8 s after it took its ticket and has its whole
    # lifetime: the third does not start while it holds the lock.
    order: list[str] = []

    async def turn(name: str, start: float, hold: float) -> None:
        await asyncio.sleep(start)
        async with replica(prefix).lock("anna", 1.0, 0.05):
            order.append(f"{name} in")
            await asyncio.sleep(hold)
            order.append(f"{name} out")

    await asyncio.wait_for(
        asyncio.gather(turn("a", 0, 0.9), turn("b", 0.1, 0.5), turn("c", 0.15, 0)), timeout=5
    )
    assert order == ["a in", "a out", "b in", "b out", "c in", "c out"]


async def test_a_waiter_whose_ticket_is_gone_gets_a_lock_error_at_once(prefix):
    holder, waiter = replica(prefix), replica(prefix)
    holder.issue_ticket("anna", 30)
    waiting = asyncio.create_task(waiter.lock("anna", 30, 0.05).__aenter__())
    await asyncio.sleep(0.2)
    assert not waiting.done()
    holder.red.delete(holder.key_prefix + "anna")  # e.g. Redis lost its keys
    started = time.monotonic()
    with pytest.raises(LockError):
        await asyncio.wait_for(waiting, timeout=5)
    assert time.monotonic() - started < 1


def test_the_lock_key_expires_with_its_last_ticket(prefix):
    store = replica(prefix)
    store.issue_ticket("anna", 2.0)
    assert 2000 < store.red.pttl(store.key_prefix + "anna") <= 3000
    store.issue_ticket("anna", 20.0)
    assert 20000 < store.red.pttl(store.key_prefix + "anna") <= 21000


def test_processes_taking_the_same_lock_at_once_never_overlap_and_all_get_their_turn(prefix):
    inside, overlaps, turns = [0], [0], [0]
    guard = threading.Lock()

    async def process(store: RedisLockStore) -> None:
        for _ in range(20):
            async with store.lock("anna", 5.0, 0.005):
                with guard:
                    inside[0] += 1
                    overlaps[0] += inside[0] > 1
                await asyncio.sleep(0.002)
                with guard:
                    inside[0] -= 1
                    turns[0] += 1

    errors: list[BaseException] = []

    def run(store: RedisLockStore) -> None:
        try:
            asyncio.run(asyncio.wait_for(process(store), timeout=60))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(replica(prefix),)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    assert errors == []
    assert (turns[0], overlaps[0]) == (80, 0)
    assert replica(prefix).get_lock("anna") is None


def test_built_from_the_endpoints_as_rasa_builds_its_redis_store(prefix):
    config = EndpointConfig(
        url=REDIS.host or "127.0.0.1",
        type="handoff.server.lock_store.HandoffRedisLockStore",
        port=str(REDIS.port or 6379),
        db=str(REDIS.database or 0),
        password=REDIS.password or "",
        key_prefix=prefix,
    )
    store = LockStore.create(config)
    assert isinstance(store, HandoffRedisLockStore)
    assert store.key_prefix == f"{prefix}:lock:"
    assert store.red.ping()
    # The stored replies of customer messages live beside the locks, as with Rasa's store.
    assert idempotency.reply_store(store).prefix == f"{prefix}:message:"


def test_the_scaled_endpoints_use_it():
    endpoints = yaml.safe_load((ROOT / "endpoints.scaled.yml").read_text())
    assert endpoints["lock_store"]["type"] == "handoff.server.lock_store.HandoffRedisLockStore"
