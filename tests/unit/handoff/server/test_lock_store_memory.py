"""handoff.server.lock_store.HandoffInMemoryLockStore: the lock of one Rasa process (endpoints.yml)
when a turn outlasts the lock's lifetime."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import yaml
from rasa.core.lock_store import InMemoryLockStore, LockError, LockStore
from rasa.utils.endpoints import EndpointConfig

from handoff.idempotency import MemoryReplyStore
from handoff.server import idempotency
from handoff.server.lock_store import HandoffInMemoryLockStore

ROOT = Path(__file__).resolve().parents[4]


async def queue_behind_a_long_turn(store: InMemoryLockStore) -> list[str]:
    """Three turns queue for the lock (1 s lifetime): the first holds it 0.9 s, the second 0.5 s;
    the third waits 1.4 s in all, longer than its ticket lasts from the moment it was taken. Each
    turn's start and end, in order."""
    order: list[str] = []

    async def turn(name: str, start: float, hold: float) -> None:
        await asyncio.sleep(start)
        async with store.lock("anna", 1.0, 0.05):
            order.append(f"{name} in")
            await asyncio.sleep(hold)
            order.append(f"{name} out")

    await asyncio.wait_for(asyncio.gather(turn("a", 0, 0.9), turn("b", 0.1, 0.5), turn("c", 0.15, 0)), timeout=5)
    return order


async def test_turns_queued_behind_a_long_one_run_in_order():
    store = HandoffInMemoryLockStore()
    assert await queue_behind_a_long_turn(store) == ["a in", "a out", "b in", "b out", "c in", "c out"]
    assert store.get_lock("anna") is None


async def test_with_rasas_in_memory_store_the_last_one_runs_during_the_second():
    # The second turn's ticket, taken 0.1 s in, expires 0.2 s into its turn, and the third turn
    # (whose ticket is still valid) starts while the second is running.
    assert await queue_behind_a_long_turn(InMemoryLockStore()) == ["a in", "a out", "b in", "c in", "c out", "b out"]


async def test_a_turn_behind_a_ticket_nobody_gives_back_runs_once_it_expires():
    store = HandoffInMemoryLockStore()
    store.issue_ticket("anna", 0.5)  # taken, and never given back
    started = time.monotonic()
    async with store.lock("anna", 0.5, 1):
        waited = time.monotonic() - started
    assert 0.4 < waited < 1.5


async def test_a_waiter_whose_lock_was_deleted_gets_a_lock_error_at_once():
    store = HandoffInMemoryLockStore()
    store.issue_ticket("anna", 30)
    waiting = asyncio.create_task(store.lock("anna", 30, 0.05).__aenter__())
    await asyncio.sleep(0.2)
    store.delete_lock("anna")
    with pytest.raises(LockError):
        await asyncio.wait_for(waiting, timeout=1)


def test_the_default_endpoints_use_it_and_rasa_builds_it():
    endpoints = yaml.safe_load((ROOT / "endpoints.yml").read_text())
    assert endpoints["lock_store"]["type"] == "handoff.server.lock_store.HandoffInMemoryLockStore"
    store = LockStore.create(EndpointConfig(type=endpoints["lock_store"]["type"]))
    assert isinstance(store, HandoffInMemoryLockStore)
    assert isinstance(idempotency.reply_store(store), MemoryReplyStore)
