"""The cost of a conversation lock in Redis: Rasa's RedisLockStore against the project's.

Each round times ``--cycles`` lock-and-release cycles of one process over 50 conversations (no
waiting), then ``--processes`` processes taking the lock of the same conversation as fast as they
can (every turn waits), for both stores in turn; alternating rounds, so a busy machine hurts both
alike. Prints the round trip of one Redis PING first: every figure is a few of them.

Usage: python scripts/bench_lock_store.py [--cycles 2000] [--processes 4] [--turns 100] [--rounds 3]
       [--redis redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

STORES = ("rasa.core.lock_store.RedisLockStore", "handoff.server.lock_store.HandoffRedisLockStore")


def make_store(path: str, url: str, prefix: str):
    import importlib

    from sqlalchemy.engine import make_url

    module, _, name = path.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    where = make_url(url)
    return cls(host=where.host or "127.0.0.1", port=where.port or 6379, db=int(where.database or 0), password=where.password, key_prefix=prefix)


async def cycles(store, count: int) -> float:
    started = time.perf_counter()
    for i in range(count):
        async with store.lock(f"bench{i % 50}", 15, 0.001):
            pass
    return (time.perf_counter() - started) / count


def contend(path: str, url: str, prefix: str, turns: int, start_at: float) -> None:
    store = make_store(path, url, prefix)

    async def run() -> None:
        for _ in range(turns):
            async with store.lock("shared", 15, 0.001):
                pass

    time.sleep(max(0.0, start_at - time.time()))
    try:
        asyncio.run(asyncio.wait_for(run(), timeout=120))
    except Exception as exc:  # noqa: BLE001 - the figure says the store failed
        print(f"    a process stopped: {type(exc).__name__}: {str(exc).splitlines()[0][:100]}", flush=True)
        raise SystemExit(1) from None


def contended(path: str, url: str, processes: int, turns: int) -> float:
    """Seconds per turn with ``processes`` processes on one conversation's lock."""
    prefix = "benchlock" + uuid.uuid4().hex[:8]
    start_at = time.time() + 1.0
    workers = [multiprocessing.Process(target=contend, args=(path, url, prefix, turns, start_at)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=180)
    failed = [w.exitcode for w in workers if w.exitcode != 0]
    if failed:
        return float("nan")  # a process hung on the lock or failed
    return (time.time() - start_at) / (processes * turns)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=2000)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--turns", type=int, default=100, help="turns of each process when they contend")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--redis", default=os.environ.get("TEST_REDIS_URL") or "redis://127.0.0.1:6379/0")
    args = parser.parse_args()

    import redis

    client = redis.Redis.from_url(args.redis)
    started = time.perf_counter()
    for _ in range(1000):
        client.ping()
    print(f"Redis at {args.redis}: {(time.perf_counter() - started) / 1000 * 1e6:.0f} µs per PING")

    alone: dict[str, list[float]] = {path: [] for path in STORES}
    shared: dict[str, list[float]] = {path: [] for path in STORES}
    for round_number in range(1, args.rounds + 1):
        for path in STORES:
            store = make_store(path, args.redis, "benchlock" + uuid.uuid4().hex[:8])
            alone[path].append(asyncio.run(cycles(store, args.cycles)))
            shared[path].append(contended(path, args.redis, args.processes, args.turns))
            print(f"  round {round_number} {path.rsplit('.', 1)[1]}: {alone[path][-1] * 1e6:.0f} µs alone, "
                  f"{shared[path][-1] * 1e6:.0f} µs per turn with {args.processes} processes on one conversation", flush=True)  # fmt: skip
    print()
    print(f"| Lock store | lock + release, alone (µs) | per turn, {args.processes} processes on one conversation (µs) |")
    print("|---|---:|---:|")
    for path in STORES:
        print(f"| {path.rsplit('.', 1)[1]} | {statistics.median(alone[path]) * 1e6:.0f} | {statistics.median(shared[path]) * 1e6:.0f} |")
    print("(medians of the rounds; nan: a process stopped on a LockError or did not finish its turns in 120 s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
