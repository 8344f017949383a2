"""Benchmark of the scaled deployment: 1 against N Rasa replicas through haproxy, and a failover run.

``make bench REPLICAS=2`` runs this. It starts two deployments of make run-scaled's topology
(handoff/tools/scaled.py, started as tests/scaled_stack.py does: each on a fresh PostgreSQL
database and a Redis key prefix of its own, a signed webhook receiver as the helpdesk) side by side:
one with 1 replica and one with N, each behind its own haproxy. Closed-loop REST load at
``--concurrency`` conversations (each customer sends its next message when the last one was
answered; one conversation in ``--handoff-every`` asks for a person and keeps writing while handed
off) goes through each balancer in alternating windows (1, N, N, 1, ...: ``--rounds``), as
scripts/bench.py does against the bare bot: the machine's speed drifts over minutes, and measuring
one after the other would put that drift into the ratio.

Then the failover run on the N-replica deployment: the same load for ``--failover-seconds``, one
replica killed with SIGKILL a third of the way in. Every message carries a message id and no
customer sends anything twice; a message is lost when it got no answer or is not in its
conversation's tracker, duplicated when the tracker has it more than once. An agent answers each
handoff through the balancer once it reached the helpdesk (as in tests/e2e/test_scaled.py); its
message is lost when the conversation lacks it, duplicated when it is there twice.

It prints a Markdown table and writes every figure to results/bench/scaled-<date>.json.
PostgreSQL and Redis: TEST_POSTGRES_URL, TEST_REDIS_URL (default on 127.0.0.1).

Usage: python scripts/bench_scaled.py [--replicas 2] [--concurrency 20] [--duration 30] [--rounds 2]
       [--warmup 5] [--failover-seconds 30] [--skip-failover]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import numpy as np  # noqa: E402
import requests  # noqa: E402

from tests.scaled_stack import (  # noqa: E402
    AGENT_TEXT,
    HANDOFF_SCRIPT,
    LOCK_LIFETIME,
    ROUTINE_SCRIPTS,
    Customers,
    agent_turns,
    agent_writes,
    clear_redis_prefix,
    postgres_database,
    scaled_deployment,
    user_texts,
)
from tests.stack import MODEL  # noqa: E402
from tests.support import Receiver  # noqa: E402

RESULTS = ROOT / "results" / "bench"


def percentiles(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    p50, p95, p99 = np.percentile(np.array(values) * 1000, [50, 95, 99])
    return {"n": len(values), "p50": round(float(p50)), "p95": round(float(p95)), "p99": round(float(p99)), "max": round(max(values) * 1000)}


def script_for(worker: int, round_: int, handoff_every: int) -> list[str]:
    if handoff_every and (worker + round_) % handoff_every == 0:
        return HANDOFF_SCRIPT
    return ROUTINE_SCRIPTS[(worker + round_) % len(ROUTINE_SCRIPTS)]


async def load(url: str, label: str, concurrency: int, warmup: float, seconds: float, handoff_every: int) -> dict[str, Any]:
    """Closed-loop customers for ``warmup`` + ``seconds``; what was answered within the measured window."""
    customers = Customers(url)
    started = time.monotonic()
    measured_from, end = started + warmup, started + warmup + seconds
    run = uuid.uuid4().hex[:6]

    async def customer(session: aiohttp.ClientSession, worker: int) -> None:
        round_ = 0
        while time.monotonic() < end:
            sender = f"bench-{label}-{run}-{worker}-{round_}"
            for text in script_for(worker, round_, handoff_every):
                if time.monotonic() >= end:
                    return
                await customers.say(session, sender, text)
            round_ += 1

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=150)) as session:
        await asyncio.gather(*(customer(session, w) for w in range(concurrency)))
    latencies = [seconds_ for at, seconds_ in customers.latencies if measured_from <= at <= end]
    return {"answered": len(latencies), "msg_s": len(latencies) / seconds, "latency_ms": percentiles(latencies), "errors": len(customers.errors)}


async def failover(deployment: Any, victim: str, concurrency: int, seconds: float, handoff_every: int, helpdesk: Any) -> dict[str, Any]:
    """The load for ``seconds`` with ``victim`` killed a third of the way in; an agent answers each
    handoff once it reaches ``helpdesk``, through the balancer."""
    customers = Customers(deployment.url)
    sent: dict[str, list[str]] = {}
    started = time.monotonic()
    end = started + seconds
    run = uuid.uuid4().hex[:6]
    unanswered: list[tuple[str, str]] = []
    agents: list[asyncio.Task] = []
    agent_answers: dict[str, tuple] = {}

    async def customer(session: aiohttp.ClientSession, worker: int) -> None:
        round_ = 0
        while time.monotonic() < end:
            sender = f"failover-{run}-{worker}-{round_}"
            sent[sender] = []
            script = script_for(worker, round_, handoff_every)
            if script is HANDOFF_SCRIPT:
                wait = max(0.0, end - time.monotonic()) + 20
                agents.append(asyncio.create_task(agent_writes(session, deployment.url, helpdesk, sender, agent_answers, timeout=wait)))
            for text in script:
                if time.monotonic() >= end:
                    return
                sent[sender].append(text)
                if await customers.say(session, sender, text) is None:
                    unanswered.append((sender, text))
            round_ += 1

    async def kill() -> dict[str, Any]:
        await asyncio.sleep(seconds / 3)
        in_flight = customers.in_flight
        await asyncio.to_thread(deployment.kill, victim)
        return {"killed_at_s": round(time.monotonic() - started, 1), "in_flight_at_kill": in_flight}

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=150)) as session:
        killed, *_ = await asyncio.gather(kill(), *(customer(session, w) for w in range(concurrency)))
        loaded = round(time.monotonic() - started, 1)
        await asyncio.gather(*agents)  # those of conversations cut off before their handoff give up later
    return {
        **killed,
        "seconds": loaded,
        "messages": sum(len(t) for t in sent.values()),
        "answered": customers.answered,
        "unanswered": len(unanswered),
        "errors": len(customers.errors),
        "latency_ms": percentiles([s for _, s in customers.latencies]),
        "sent": sent,
        "agent_answers": agent_answers,
    }


def count_lost_and_duplicated(deployment: Any, figures: dict[str, Any]) -> dict[str, Any]:
    """A message is lost when its conversation's tracker lacks it, duplicated when it has it twice."""
    sent = figures.pop("sent")
    agent_answers = figures.pop("agent_answers")
    lost = duplicated = 0
    agents = {"sent": len(agent_answers), "accepted": 0, "lost": 0, "duplicated": 0}
    for sender, texts in sent.items():
        answer = requests.get(f"{deployment.url}/conversations/{sender}/tracker", timeout=30)
        answer.raise_for_status()
        said, wanted = Counter(user_texts(answer.json())), Counter(texts)
        lost += sum((wanted - said).values())
        duplicated += sum((said - wanted).values())
        if sender in agent_answers:
            kept = agent_turns(answer.json()).count(AGENT_TEXT)
            agents["accepted"] += agent_answers[sender][0] == 200
            agents["lost"] += kept == 0
            agents["duplicated"] += max(0, kept - 1)
    retried = len(re.findall(r"/\+\d+ \d+/\d+ \"POST /webhooks/rest/webhook", deployment.log("haproxy", tail=10**8)))
    return {**figures, "lost": lost, "duplicated": duplicated, "retried_by_haproxy": retried, "agent_messages": agents}


def warm(url: str) -> None:
    for text in ROUTINE_SCRIPTS[0][:3]:
        requests.post(f"{url}/webhooks/rest/webhook", json={"sender": f"warm-{uuid.uuid4().hex[:6]}", "message": text}, timeout=120)


def markdown(report: dict[str, Any]) -> str:
    n = report["replicas"]
    rows = [
        f"Measured {report['date']} on {report['cpus']} cores; Rasa replicas behind haproxy ({report['haproxy']}), PostgreSQL "
        f"tracker store, Redis locks; closed loop over REST at {report['concurrency']} concurrent conversations, "
        f"{report['duration']:g} s per window in {report['rounds']} alternating windows per deployment; one conversation "
        f"in {report['handoff_every']} hands off.",
        "",
        "| Replicas | msg/s | p50 / p95 / p99 (ms) | Errors |",
        "|---:|---:|---:|---:|",
    ]
    for replicas in (1, n):
        figures = report["windows"][str(replicas)]
        lat = figures["latency_ms"]
        rows.append(f"| {replicas} | {figures['msg_s']:.1f} | {lat.get('p50')} / {lat.get('p95')} / {lat.get('p99')} | {figures['errors']} |")
    rows += ["", f"{n} replicas / 1: {report['ratio']:.2f}×"]
    if report.get("failover"):
        f = report["failover"]
        rows += [
            "",
            f"Failover ({n} replicas, one killed with SIGKILL at {f['killed_at_s']} s of {f['seconds']} s, "
            f"{f['in_flight_at_kill']} messages in flight; conversation lock lifetime {report['lock_lifetime']} s): "
            f"{f['messages']} customer messages, {f['unanswered']} without an answer, lost {f['lost']}, duplicated {f['duplicated']}; "
            f"haproxy retried {f['retried_by_haproxy']} on another replica; latency p50 / p99 / max "
            f"{f['latency_ms'].get('p50')} / {f['latency_ms'].get('p99')} / {f['latency_ms'].get('max')} ms. "
            f"Agents answered {f['agent_messages']['sent']} handoffs through the balancer: {f['agent_messages']['accepted']} accepted, "
            f"lost {f['agent_messages']['lost']}, duplicated {f['agent_messages']['duplicated']}.",
        ]
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=2, help="replicas of the scaled deployment (default 2), against 1")
    parser.add_argument("--concurrency", type=int, default=20, help="concurrent conversations (default 20)")
    parser.add_argument("--duration", type=float, default=30, help="seconds measured per window (default 30)")
    parser.add_argument("--warmup", type=float, default=5, help="seconds of load before each window (default 5)")
    parser.add_argument("--rounds", type=int, default=2, help="windows per deployment, alternating (default 2)")
    parser.add_argument("--handoff-every", type=int, default=5, help="every Nth conversation hands off (default 5)")
    parser.add_argument("--failover-seconds", type=float, default=30, help="length of the failover run (default 30)")
    parser.add_argument("--skip-failover", action="store_true")
    parser.add_argument("--model", default=str(MODEL))
    args = parser.parse_args()
    if args.replicas < 2:
        parser.error("--replicas must be 2 or more (the comparison is against 1)")

    from handoff.tools.scaled import haproxy_binary

    report: dict[str, Any] = {
        "date": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "cpus": os.cpu_count(),
        "haproxy": subprocess.run([haproxy_binary(), "-v"], capture_output=True, text=True).stdout.split(" - ")[0].strip(),
        "replicas": args.replicas,
        "concurrency": args.concurrency,
        "duration": args.duration,
        "rounds": args.rounds,
        "handoff_every": args.handoff_every,
        "lock_lifetime": LOCK_LIFETIME,
    }
    with contextlib.ExitStack() as running, tempfile.TemporaryDirectory(prefix="bench-scaled-") as tmp:
        receiver = Receiver()
        running.callback(receiver.close)
        deployments = {}
        for replicas in (1, args.replicas):
            database_url = running.enter_context(postgres_database())
            prefix = f"bench{uuid.uuid4().hex[:10]}"
            running.callback(clear_redis_prefix, prefix)
            deployment = scaled_deployment(Path(tmp) / f"r{replicas}", replicas, database_url, prefix, receiver.url, model=Path(args.model))
            print(f"==> starting {replicas} replica(s) behind haproxy", file=sys.stderr)
            running.callback(deployment.stop)
            deployment.start()
            print(f"    ready in {deployment.ready_seconds:.1f} s at {deployment.url}", file=sys.stderr)
            warm(deployment.url)
            deployments[replicas] = deployment

        order = [1, args.replicas] * args.rounds
        for i in range(1, len(order), 2):
            if (i // 2) % 2:
                order[i - 1], order[i] = order[i], order[i - 1]
        windows: dict[int, list[dict[str, Any]]] = {1: [], args.replicas: []}
        for replicas in order:
            figures = asyncio.run(load(deployments[replicas].url, f"r{replicas}", args.concurrency, args.warmup, args.duration, args.handoff_every))
            windows[replicas].append(figures)
            print(f"    {replicas} replica(s): {figures['msg_s']:.1f} msg/s, p50 {figures['latency_ms'].get('p50')} ms, {figures['errors']} errors", file=sys.stderr)
        report["windows"] = {}
        for replicas, runs in windows.items():
            answered = sum(r["answered"] for r in runs)
            report["windows"][str(replicas)] = {
                "msg_s": answered / (args.duration * len(runs)),
                "errors": sum(r["errors"] for r in runs),
                "latency_ms": {k: round(float(np.mean([r["latency_ms"].get(k, 0) for r in runs]))) for k in ("p50", "p95", "p99")},
                "windows": runs,
            }
        report["ratio"] = report["windows"][str(args.replicas)]["msg_s"] / max(report["windows"]["1"]["msg_s"], 1e-9)

        if not args.skip_failover:
            print(f"==> failover: {args.failover_seconds:g} s of load on {args.replicas} replicas, one killed", file=sys.stderr)
            victim = deployments[args.replicas].topology.replicas[-1].name
            figures = asyncio.run(failover(deployments[args.replicas], victim, args.concurrency, args.failover_seconds, args.handoff_every, receiver))
            report["failover"] = count_lost_and_duplicated(deployments[args.replicas], figures)

    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"scaled-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=2))
    print(markdown(report))
    print(f"\n(figures in {out.relative_to(ROOT)})", file=sys.stderr)
    failover_ = report.get("failover") or {}
    agents = failover_.get("agent_messages") or {}
    failed = failover_.get("lost") or failover_.get("duplicated") or failover_.get("unanswered") or agents.get("lost") or agents.get("duplicated")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
