"""Load benchmark: throughput and latencies of the assistant against a bare Rasa bot.

Starts the project's stack (Rasa server + action server, tests/stack.py) on loopback with a signed
webhook receiver standing in for the helpdesk (tests/support.py), and drives closed-loop load
through the REST channel: N simulated customers, each waiting for the bot's answer before sending
its next message, each conversation a scripted sequence of routine questions. One conversation in
five asks for a person; the benchmark then plays the agent (a signed ``agent.message`` and an
``agent.handback`` to /webhooks/helpdesk/webhook) and measures the handoff loop.

A bare ``rasa init`` bot (trained once per Rasa version and cached in results/bench/) runs beside
it and gets the same load. Both are measured in alternating windows, project then bare bot, then
bare bot then project (``--rounds``): the machine's speed drifts by tens of per cent over minutes on
a shared host, and measuring one bot after the other would put that drift into the ratio. It
prints the project/bare throughput ratio per concurrency level, a Markdown table for docs/PERFORMANCE.md,
and writes every figure to results/bench/bench-<date>.json.

Usage: python scripts/bench.py [--duration 30] [--rounds 2] [--warmup 5] [--levels 1,20,50] [--model PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import numpy as np  # noqa: E402
import requests  # noqa: E402

from tests.stack import BIN, MODEL, Stack, free_port  # noqa: E402
from tests.support import Received, Receiver, helpdesk_event, signed  # noqa: E402

RESULTS = ROOT / "results" / "bench"

# Routine conversations of the assistant's customers (each wording checked against the model: it
# lands on the intended FAQ or small-talk intent, never on one that hands off).
PROJECT_SCRIPTS: list[list[str]] = [
    ["hi there", "when are you open?", "how long does delivery take?", "thanks", "bye"],
    ["hello", "how do I return an item?", "which payment methods do you accept?", "great, thank you", "goodbye"],
    ["good morning", "where is my order?", "do you ship to Belgium?", "ok thanks, that helps", "bye"],
    ["hey", "can I pay with PayPal?", "what do your products cost?", "are you a bot?", "thanks, bye"],
    ["hallo", "hoe laat zijn jullie open?", "wanneer wordt mijn pakket bezorgd?", "bedankt", "doei"],
    ["hi there", "can I send my shoes back?", "how much does shipping cost?", "no, that's all"],
]
# A conversation that hands off: before, the request, a message to the agent, after the hand-back.
HANDOFF_BEFORE = ["hello", "where is my order?"]
HANDOFF_REQUEST = "I want to talk to a person"
HANDOFF_DURING = "my parcel 4711 never arrived"
HANDOFF_AFTER = "thanks, bye"
AGENT_TEXT = "Hi, I'm looking into parcel 4711 now."

# The bare `rasa init` bot's own routine: greet, mood, goodbye.
BARE_SCRIPTS: list[list[str]] = [
    ["hello", "I am feeling great", "bye"],
    ["hi there", "I'm sad", "yes", "goodbye"],
    ["good morning", "I am very unhappy today", "no"],
    ["hey", "are you a bot?", "perfect, I'm doing fine", "see you later"],
]

LOCK_ERROR = re.compile(r"LockError|could not acquire lock|lock.{0,40}(error|expired|timed? ?out)", re.IGNORECASE)
LOG_ERROR = re.compile(r"\bERROR\b|Traceback")


# -- measuring -----------------------------------------------------------------------------------


def percentiles(values: list[float]) -> dict[str, float | int]:
    """Count, p50/p95/p99, mean and max of ``values`` (seconds) in milliseconds."""
    if not values:
        return {"n": 0}
    p50, p95, p99 = np.percentile(np.array(values) * 1000, [50, 95, 99])
    return {
        "n": len(values),
        "p50": round(float(p50), 1),
        "p95": round(float(p95), 1),
        "p99": round(float(p99), 1),
        "mean": round(float(np.mean(values) * 1000), 1),
        "max": round(float(np.max(values) * 1000), 1),
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")), "?")
    meminfo = Path("/proc/meminfo").read_text()
    mem_kb = int(next(line.split()[1] for line in meminfo.splitlines() if line.startswith("MemTotal")))
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "ram_gib": round(mem_kb / 1024 / 1024, 1),
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
    }


def rasa_version() -> str:
    out = subprocess.run([str(BIN / "python"), "-c", "import rasa; print(rasa.__version__)"], capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


class LogWatch:
    """Counts lock errors and error lines a log file gains between two moments."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = self._size()

    def _size(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def take(self) -> dict[str, Any]:
        with open(self.path, "rb") as log:
            log.seek(self.offset)
            text = log.read().decode(errors="replace")
        self.offset += len(text.encode(errors="replace"))
        lock_lines = [line for line in text.splitlines() if LOCK_ERROR.search(line)]
        error_lines = [line for line in text.splitlines() if LOG_ERROR.search(line)]
        return {"lock_errors": len(lock_lines), "error_lines": len(error_lines), "examples": (lock_lines or error_lines)[:3]}


class Arrivals:
    """What the stand-in helpdesk received, by (event, conversation), for asyncio code to await."""

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver
        self.cursor = 0
        self.seen: dict[tuple[str, str], list[Received]] = {}
        self.waiters: dict[tuple[str, str], list[asyncio.Future]] = {}

    def pump(self) -> None:
        new = self.receiver.received[self.cursor :]
        self.cursor += len(new)
        for record in new:
            key = (record.body.get("event"), record.body.get("conversation_id"))
            self.seen.setdefault(key, []).append(record)
            for waiter in self.waiters.pop(key, []):
                if not waiter.done():
                    waiter.set_result(record)

    async def run(self) -> None:
        while True:
            self.pump()
            await asyncio.sleep(0.01)

    async def wait(self, event: str, conversation_id: str, timeout: float) -> Received:
        key = (event, conversation_id)
        if self.seen.get(key):
            return self.seen[key][0]
        waiter = asyncio.get_running_loop().create_future()
        self.waiters.setdefault(key, []).append(waiter)
        return await asyncio.wait_for(waiter, timeout)

    def conversations_with(self, event: str) -> set[str]:
        return {conversation for (kind, conversation) in self.seen if kind == event}


@dataclass
class Level:
    """Everything measured at one concurrency level."""

    concurrency: int
    window_start: float = 0.0
    window_end: float = 0.0
    latencies: list[float] = field(default_factory=list)  # customer messages done within the window
    sent: int = 0
    errors: list[str] = field(default_factory=list)  # HTTP errors, timeouts, wrong answers
    unanswered: int = 0
    relays: list[tuple[str, str, float]] = field(default_factory=list)  # (conversation, text, sent at)
    relay_latencies: list[float] = field(default_factory=list)
    relays_lost: int = 0
    conversations: int = 0
    handoff_conversations: set[str] = field(default_factory=set)
    handoffs: dict[str, list[float]] = field(
        default_factory=lambda: {"trigger_to_webhook": [], "agent_message_to_tracker": [], "handback_to_bot_reply": []}
    )
    handoff_failures: list[str] = field(default_factory=list)

    def in_window(self, at: float) -> bool:
        return self.window_start <= at <= self.window_end

    def error(self, text: str) -> None:
        if len(self.errors) < 1000:
            self.errors.append(text)


# -- driving load --------------------------------------------------------------------------------


class Driver:
    """Closed-loop customers talking to one Rasa server over the REST channel."""

    def __init__(
        self,
        rasa_url: str,
        scripts: list[list[str]],
        label: str,
        arrivals: Arrivals | None = None,
        handoff_every: int = 0,
        request_timeout: float = 60,
    ) -> None:
        self.rasa_url = rasa_url
        self.scripts = scripts
        self.label = label
        self.arrivals = arrivals
        self.handoff_every = handoff_every
        self.timeout = aiohttp.ClientTimeout(total=request_timeout)
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Driver:
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=self.timeout)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self.session is not None
        await self.session.close()

    async def say(self, level: Level, sender: str, text: str) -> list[dict[str, Any]] | None:
        """One customer message; its latency counts when it ends within the window."""
        assert self.session is not None
        level.sent += 1
        started = time.monotonic()
        try:
            async with self.session.post(
                f"{self.rasa_url}/webhooks/rest/webhook", json={"sender": sender, "message": text}
            ) as answer:
                body = await answer.json(content_type=None)
                if answer.status != 200:
                    level.error(f"{answer.status} for {text!r}: {str(body)[:200]}")
                    return None
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            level.error(f"{type(exc).__name__} for {text!r}: {exc}")
            return None
        done = time.monotonic()
        if level.in_window(done):
            level.latencies.append(done - started)
        return body

    async def answered(self, level: Level, sender: str, text: str) -> bool:
        reply = await self.say(level, sender, text)
        if reply is None:
            return False
        if not any(m.get("text") for m in reply):
            level.unanswered += 1
            level.error(f"no answer to {text!r} ({sender})")
            return False
        return True

    async def tracker(self, sender: str) -> dict[str, Any]:
        assert self.session is not None
        async with self.session.get(
            f"{self.rasa_url}/conversations/{sender}/tracker", params={"include_events": "AFTER_RESTART"}
        ) as answer:
            answer.raise_for_status()
            return await answer.json()

    async def helpdesk(self, body: dict[str, Any]) -> int:
        assert self.session is not None
        raw, headers = signed(body)
        headers["Content-Type"] = "application/json"
        async with self.session.post(f"{self.rasa_url}/webhooks/helpdesk/webhook", data=raw, headers=headers) as answer:
            await answer.read()
            return answer.status

    async def poll_tracker(self, sender: str, found: Any, timeout: float = 15) -> bool:
        """Poll the tracker until ``found(events)`` is true."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if found((await self.tracker(sender))["events"]):
                return True
            await asyncio.sleep(0.02)
        return False

    async def routine(self, level: Level, sender: str, script: list[str], end: float) -> None:
        for text in script:
            if time.monotonic() >= end:
                return
            if not await self.answered(level, sender, text):
                return

    async def handoff(self, level: Level, sender: str, end: float) -> None:
        """Ask for a person, talk to the agent, get handed back; measure each step."""
        assert self.arrivals is not None
        level.handoff_conversations.add(sender)
        for text in HANDOFF_BEFORE:
            if time.monotonic() >= end or not await self.answered(level, sender, text):
                return
        counted = level.in_window(time.monotonic())
        asked_at = time.time()
        if not await self.answered(level, sender, HANDOFF_REQUEST):
            return
        try:
            requested = await self.arrivals.wait("handoff.requested", sender, timeout=30)
        except asyncio.TimeoutError:
            level.handoff_failures.append(f"no handoff.requested for {sender} within 30 s")
            return
        if counted:
            level.handoffs["trigger_to_webhook"].append(requested.at - asked_at)
        handoff_id = requested.body["handoff_id"]
        if time.monotonic() >= end:
            return

        # Paused: the bot says nothing and the message goes to the helpdesk.
        sent_at = time.time()
        reply = await self.say(level, sender, HANDOFF_DURING)
        if reply is None:
            return
        if reply:
            level.error(f"the bot answered during the handoff ({sender}): {reply}")
        level.relays.append((sender, HANDOFF_DURING, sent_at))

        # The agent writes: measure until the turn is in the tracker.
        started = time.monotonic()
        status = await self.helpdesk(helpdesk_event("agent.message", handoff_id, sender, text=AGENT_TEXT))
        if status != 200:
            level.handoff_failures.append(f"agent.message answered {status} ({sender})")
            return

        def agent_turn(events: list[dict]) -> bool:
            return any(
                e["event"] == "bot" and e.get("text") == AGENT_TEXT and (e.get("metadata") or {}).get("handoff_role") == "agent"
                for e in events
            )

        if not await self.poll_tracker(sender, agent_turn):
            level.handoff_failures.append(f"agent message never in the tracker ({sender})")
            return
        if counted:
            level.handoffs["agent_message_to_tracker"].append(time.monotonic() - started)

        # Hand-back: measure until the bot's own reply follows the resume in the tracker.
        started = time.monotonic()
        status = await self.helpdesk(helpdesk_event("agent.handback", handoff_id, sender, note="Parcel re-sent."))
        if status != 200:
            level.handoff_failures.append(f"agent.handback answered {status} ({sender})")
            return

        def bot_reply_after_resume(events: list[dict]) -> bool:
            resumed = [i for i, e in enumerate(events) if e["event"] == "resume"]
            return bool(resumed) and any(
                e["event"] == "bot" and e.get("text") and (e.get("metadata") or {}).get("handoff_role") is None
                for e in events[resumed[-1] :]
            )

        if not await self.poll_tracker(sender, bot_reply_after_resume):
            level.handoff_failures.append(f"no bot reply after the hand-back ({sender})")
            return
        if counted:
            level.handoffs["handback_to_bot_reply"].append(time.monotonic() - started)
        if time.monotonic() < end:
            await self.answered(level, sender, HANDOFF_AFTER)

    async def customer(self, level: Level, worker: int, end: float) -> None:
        number = 0
        while time.monotonic() < end:
            sender = f"bench-{self.label}-{level.concurrency}-{worker}-{number}-{uuid.uuid4().hex[:6]}"
            level.conversations += 1
            if self.handoff_every and (worker + number) % self.handoff_every == self.handoff_every - 1:
                await self.handoff(level, sender, end)
            else:
                await self.routine(level, sender, self.scripts[(worker + number) % len(self.scripts)], end)
            number += 1

    async def run_level(self, concurrency: int, warmup: float, duration: float) -> Level:
        level = Level(concurrency)
        now = time.monotonic()
        level.window_start = now + warmup
        level.window_end = level.window_start + duration
        await asyncio.gather(*(self.customer(level, w, level.window_end) for w in range(concurrency)))
        if self.arrivals is not None:
            await self.check_relays(level)
        return level

    async def check_relays(self, level: Level, grace: float = 15) -> None:
        """Every message sent during a handoff must reach the helpdesk (within ``grace`` s)."""
        assert self.arrivals is not None
        deadline = time.monotonic() + grace
        for sender, text, sent_at in level.relays:
            while True:
                self.arrivals.pump()
                found = [
                    r for r in self.arrivals.seen.get(("conversation.message", sender), [])
                    if r.body.get("message", {}).get("text") == text
                ]
                if found:
                    level.relay_latencies.append(found[0].at - sent_at)
                    break
                if time.monotonic() > deadline:
                    level.relays_lost += 1
                    break
                await asyncio.sleep(0.05)

    async def parse_throughput(self, texts: list[str], concurrency: int, duration: float) -> dict[str, Any]:
        """NLU only: /model/parse, closed loop, for comparison with whole turns."""
        assert self.session is not None
        latencies: list[float] = []
        errors = 0
        end = time.monotonic() + duration

        async def worker(w: int) -> None:
            nonlocal errors
            i = w
            while time.monotonic() < end:
                started = time.monotonic()
                try:
                    async with self.session.post(f"{self.rasa_url}/model/parse", json={"text": texts[i % len(texts)]}) as a:
                        await a.read()
                        if a.status != 200:
                            errors += 1
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    errors += 1
                latencies.append(time.monotonic() - started)
                i += 1

        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        return {"concurrency": concurrency, "parses_per_s": round(len(latencies) / duration, 1), "latency_ms": percentiles(latencies), "errors": errors}


def summarize(level: Level, duration: float, log: dict[str, Any], cpu: dict[str, float], unexpected: int) -> dict[str, Any]:
    messages = len(level.latencies)
    summary: dict[str, Any] = {
        "concurrency": level.concurrency,
        "messages": messages,
        "messages_per_s": round(messages / duration, 2),
        "latency_ms": percentiles(level.latencies),
        "conversations": level.conversations,
        "sent": level.sent,
        "errors": len(level.errors) - level.unanswered,
        "unanswered": level.unanswered,
        "relays_lost": level.relays_lost,
        "lock_errors": log["lock_errors"],
        "log_error_lines": log["error_lines"],
        "unexpected_handoffs": unexpected,
        "cpu_ms_per_message": {name: round(seconds * 1000 / messages, 1) if messages else None for name, seconds in cpu.items()},
        "error_examples": level.errors[:5] + log["examples"],
    }
    if level.handoff_conversations:
        summary["handoff"] = {
            "conversations": len(level.handoff_conversations),
            **{name: percentiles(values) for name, values in level.handoffs.items()},
            "customer_message_to_relayed": percentiles(level.relay_latencies),
            "failures": len(level.handoff_failures),
            "failure_examples": level.handoff_failures[:5],
        }
    return summary


@contextmanager
def cpu_meter(pids: dict[str, int], into: dict[str, float]) -> Iterator[None]:
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    yield
    into.update({name: cpu_seconds(pid) - before[name] for name, pid in pids.items()})


@dataclass
class Bot:
    """One server under load: how to drive it, its log and processes, and its NLU texts."""

    name: str  # "project" or "bare"
    driver: Driver
    log: LogWatch
    pids: dict[str, int]
    texts: list[str]
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class Window:
    """One measured window of one bot at one concurrency level."""

    level: Level
    cpu: dict[str, float]
    log: dict[str, Any]


def merge(windows: list[Window]) -> tuple[Level, dict[str, float], dict[str, Any]]:
    """The windows of one bot at one level, as if they were one."""
    level = Level(windows[0].level.concurrency)
    for part in (w.level for w in windows):
        level.latencies += part.latencies
        level.sent += part.sent
        level.errors += part.errors
        level.unanswered += part.unanswered
        level.relays += part.relays
        level.relay_latencies += part.relay_latencies
        level.relays_lost += part.relays_lost
        level.conversations += part.conversations
        level.handoff_conversations |= part.handoff_conversations
        level.handoff_failures += part.handoff_failures
        for name, values in part.handoffs.items():
            level.handoffs[name] += values
    cpu = {name: sum(w.cpu[name] for w in windows) for name in windows[0].cpu}
    log = {
        "lock_errors": sum(w.log["lock_errors"] for w in windows),
        "error_lines": sum(w.log["error_lines"] for w in windows),
        "examples": [e for w in windows for e in w.log["examples"]][:3],
    }
    return level, cpu, log


async def measure(bots: list[Bot], levels: list[int], args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Every level for every bot, in alternating windows (see the module docstring)."""
    results: dict[str, dict[str, Any]] = {bot.name: {"levels": [], **bot.info} for bot in bots}
    window = args.duration / args.rounds
    async with contextlib.AsyncExitStack() as entered:
        pumps = []
        for bot in bots:
            await entered.enter_async_context(bot.driver)
            if bot.driver.arrivals:
                pumps.append(asyncio.create_task(bot.driver.arrivals.run()))
        try:
            for concurrency in levels:
                windows: dict[str, list[Window]] = {bot.name: [] for bot in bots}
                for round_ in range(args.rounds):
                    # A B, then B A: a machine that speeds up or slows down during the level
                    # weighs on both bots alike.
                    for bot in bots if round_ % 2 == 0 else bots[::-1]:
                        print(
                            f"    {bot.name}, {concurrency} concurrent, round {round_ + 1} of {args.rounds}: "
                            f"{args.warmup:g} s warm-up + {window:g} s",
                            file=sys.stderr,
                        )
                        bot.log.take()
                        cpu: dict[str, float] = {}
                        # CPU is measured over the whole window (warm-up included) and divided by
                        # the messages of the window: a slight overestimate, the same for both bots.
                        with cpu_meter(bot.pids, cpu):
                            level = await bot.driver.run_level(concurrency, args.warmup, window)
                        cpu = {k: v * window / (window + args.warmup) for k, v in cpu.items()}
                        windows[bot.name].append(Window(level, cpu, bot.log.take()))
                for bot in bots:
                    level, cpu, log = merge(windows[bot.name])
                    unexpected = 0
                    if bot.driver.arrivals:
                        prefix = f"bench-{bot.driver.label}-{concurrency}-"
                        requested = {c for c in bot.driver.arrivals.conversations_with("handoff.requested") if c.startswith(prefix)}
                        unexpected = len(requested - level.handoff_conversations)
                    summary = summarize(level, args.duration, log, cpu, unexpected)
                    results[bot.name]["levels"].append(summary)
                    print(f"      {bot.name}: " + line_for(summary), file=sys.stderr)
            if args.parse_seconds > 0:
                concurrency = 20 if 20 in levels else max(levels)
                for bot in bots:
                    print(f"    {bot.name}: NLU only (/model/parse), {concurrency} concurrent, {args.parse_seconds:g} s", file=sys.stderr)
                    results[bot.name]["parse"] = await bot.driver.parse_throughput(bot.texts, concurrency, args.parse_seconds)
                    print(f"      {results[bot.name]['parse']['parses_per_s']} parses/s", file=sys.stderr)
        finally:
            for pump in pumps:
                pump.cancel()
    return results


def line_for(summary: dict[str, Any]) -> str:
    lat = summary["latency_ms"]
    text = (
        f"{summary['messages_per_s']} msg/s, p50 {lat.get('p50')} / p95 {lat.get('p95')} / p99 {lat.get('p99')} ms, "
        f"errors {summary['errors']}, unanswered {summary['unanswered']}, relays lost {summary['relays_lost']}, "
        f"lock errors {summary['lock_errors']}, CPU ms/msg {summary['cpu_ms_per_message']}"
    )
    if "handoff" in summary:
        h = summary["handoff"]
        text += (
            f"\n      handoffs {h['conversations']} (failures {h['failures']}): trigger→webhook p50 "
            f"{h['trigger_to_webhook'].get('p50')} ms, agent msg→tracker p50 {h['agent_message_to_tracker'].get('p50')} ms, "
            f"hand-back→reply p50 {h['handback_to_bot_reply'].get('p50')} ms, relay p50 {h['customer_message_to_relayed'].get('p50')} ms"
        )
    return text


# -- the two bots --------------------------------------------------------------------------------


def start_project(args: argparse.Namespace, workdir: Path, running: contextlib.ExitStack) -> Bot:
    """The project's stack with a signed webhook receiver as its helpdesk, stopped with ``running``."""
    receiver = Receiver()
    running.callback(receiver.close)
    stack = Stack(workdir / "project", webhook_url=receiver.url, model=Path(args.model).resolve())
    if args.endpoints:
        # Another tracker store or lock store (e.g. PostgreSQL, Redis) instead of the default SQLite.
        stack.endpoints.write_text(Path(args.endpoints).read_text())
    if args.keep_logs:
        running.callback(keep_logs, stack.workdir)
    print(f"==> project: starting the stack ({args.model})", file=sys.stderr)
    running.callback(stack.stop)
    stack.start()
    print(f"    ready in {stack.ready_seconds:.1f} s", file=sys.stderr)
    warm(stack.rasa_url, PROJECT_SCRIPTS[0])
    return Bot(
        "project",
        Driver(stack.rasa_url, PROJECT_SCRIPTS, args.label, Arrivals(receiver), handoff_every=args.handoff_every),
        LogWatch(stack.workdir / "rasa.log"),
        {"rasa": stack.processes["rasa"].pid, "actions": stack.processes["actions"].pid},
        [t for script in PROJECT_SCRIPTS for t in script],
        {"ready_seconds": round(stack.ready_seconds, 1)},
    )


def keep_logs(workdir: Path) -> None:
    keep = RESULTS / "logs"
    keep.mkdir(parents=True, exist_ok=True)
    for name in ("rasa", "actions"):
        shutil.copy(workdir / f"{name}.log", keep / f"project-{name}.log")


def bare_model(version: str) -> Path:
    """The bare `rasa init` bot's model, trained once per Rasa version and cached."""
    cached = RESULTS / f"bare-rasa-{version}.tar.gz"
    if cached.exists():
        print(f"==> bare bot: cached model {cached.relative_to(ROOT)}", file=sys.stderr)
        return cached
    print("==> bare bot: `rasa init --no-prompt` and training (1-2 minutes, once per Rasa version)", file=sys.stderr)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-bare-init-") as tmp:
        project = Path(tmp) / "bot"
        project.mkdir()  # rasa init refuses a directory that does not exist
        with open(Path(tmp) / "init.log", "wb") as log:
            done = subprocess.run(
                [str(BIN / "rasa"), "init", "--no-prompt", "--init-dir", str(project)],
                cwd=tmp, env=quiet_env(), stdout=log, stderr=subprocess.STDOUT,
            )
        models = sorted((project / "models").glob("*.tar.gz"))
        if done.returncode != 0 or not models:
            raise RuntimeError("rasa init failed:\n" + (Path(tmp) / "init.log").read_text(errors="replace")[-4000:])
        RESULTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(models[-1], cached)
    print(f"    trained in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return cached


def quiet_env() -> dict[str, str]:
    return {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "RASA_TELEMETRY_ENABLED": "false",
        "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
        "PYTHONUNBUFFERED": "1",
    }


def start_bare(model: Path, workdir: Path) -> tuple[subprocess.Popen, str]:
    """`rasa run` of the bare bot with its defaults (REST channel, in-memory tracker store)."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "credentials.yml").write_text("rest:\n")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(workdir / "rasa.log", "wb")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        [str(BIN / "rasa"), "run", "--enable-api", "--interface", "127.0.0.1", "--port", str(port),
         "--model", str(model), "--credentials", "credentials.yml"],
        cwd=workdir, env=quiet_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    deadline = time.monotonic() + 240
    while True:
        if process.poll() is not None:
            raise RuntimeError("the bare bot exited early:\n" + (workdir / "rasa.log").read_text(errors="replace")[-4000:])
        try:
            if requests.get(f"{url}/status", timeout=2).status_code == 200:
                return process, url
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            stop(process)
            raise RuntimeError("the bare bot was not ready in 240 s")
        time.sleep(0.5)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        try:
            os.killpg(process.pid, 15)
            process.wait(timeout=20)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)


def warm(rasa_url: str, script: list[str]) -> None:
    """One conversation before measuring: the first turn loads lazily initialised parts."""
    sender = f"bench-warm-{uuid.uuid4().hex[:8]}"
    for text in script:
        requests.post(f"{rasa_url}/webhooks/rest/webhook", json={"sender": sender, "message": text}, timeout=120)


def start_bare_bot(args: argparse.Namespace, workdir: Path, version: str, running: contextlib.ExitStack) -> Bot:
    """The bare `rasa init` bot, stopped with ``running``."""
    model = bare_model(version)
    print("==> bare bot: starting `rasa run`", file=sys.stderr)
    started = time.monotonic()
    process, url = start_bare(model, workdir / "bare")
    running.callback(stop, process)
    ready = time.monotonic() - started
    print(f"    ready in {ready:.1f} s", file=sys.stderr)
    warm(url, BARE_SCRIPTS[0])
    return Bot(
        "bare",
        Driver(url, BARE_SCRIPTS, args.label + "-bare"),
        LogWatch(workdir / "bare" / "rasa.log"),
        {"rasa": process.pid},
        [t for script in BARE_SCRIPTS for t in script],
        {"ready_seconds": round(ready, 1), "model": str(model.relative_to(ROOT))},
    )


# -- reporting -----------------------------------------------------------------------------------


def ms(lat: dict[str, Any], *keys: str) -> str:
    return " / ".join(f"{lat[k]:.0f}" if k in lat else "–" for k in keys)


def cpu(level: dict[str, Any]) -> str:
    value = level["cpu_ms_per_message"].get("rasa")
    return f"{value:.0f}" if value is not None else "–"


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    project = {lv["concurrency"]: lv for lv in report["project"]["levels"]}
    bare = {lv["concurrency"]: lv for lv in (report.get("bare") or {}).get("levels", [])}
    lines = [
        f"Measured {report['date']} on {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM; Rasa {report['rasa_version']}; "
        f"model `{report['model']}`; closed loop over the REST channel, {report['duration_s']:g} s per level and bot in "
        f"{report.get('rounds', 1)} windows alternating between the bots, each after a {report['warmup_s']:g} s warm-up; one conversation in {report['handoff_every']} hands off. Load average "
        f"before / after: {m['load_average_before'][0]:.1f} / {m.get('load_average_after', ['?'])[0]}. CPU: the Rasa "
        "server's CPU time per customer message.",
        "",
        "| Concurrent conversations | Project msg/s | p50 / p95 / p99 (ms) | Errors / lost / lock errors | CPU (ms) | "
        "Bare bot msg/s | Bare p50 / p95 / p99 (ms) | Bare CPU (ms) | Project / bare |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for concurrency, p in project.items():
        b = bare.get(concurrency)
        lost = p["unanswered"] + p["relays_lost"]
        ratio = report.get("ratio", {}).get(str(concurrency))
        lines.append(
            f"| {concurrency} | {p['messages_per_s']:.1f} | {ms(p['latency_ms'], 'p50', 'p95', 'p99')} | "
            f"{p['errors']} / {lost} / {p['lock_errors']} | {cpu(p)} | "
            + (
                f"{b['messages_per_s']:.1f} | {ms(b['latency_ms'], 'p50', 'p95', 'p99')} | {cpu(b)} | {ratio:.2f}× |"
                if b and ratio
                else "– | – | – | – |"
            )
        )
    lines += [
        "",
        "| Concurrent conversations | Handoffs | Trigger → webhook received p50 / p95 (ms) | Agent message → in tracker "
        "p50 / p95 (ms) | Hand-back → bot reply in tracker p50 / p95 (ms) | Customer message → relayed p50 / p95 (ms) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for concurrency, p in project.items():
        h = p.get("handoff")
        if not h:
            continue
        failures = f" ({h['failures']} failed)" if h["failures"] else ""
        lines.append(
            f"| {concurrency} | {h['trigger_to_webhook'].get('n', 0)}{failures} | {ms(h['trigger_to_webhook'], 'p50', 'p95')} | "
            f"{ms(h['agent_message_to_tracker'], 'p50', 'p95')} | {ms(h['handback_to_bot_reply'], 'p50', 'p95')} | "
            f"{ms(h['customer_message_to_relayed'], 'p50', 'p95')} |"
        )
    parse_p = report["project"].get("parse")
    parse_b = (report.get("bare") or {}).get("parse")
    if parse_p:
        text = f"NLU only (`/model/parse`, {parse_p['concurrency']} concurrent): project {parse_p['parses_per_s']:.1f}/s"
        if parse_b:
            text += f", bare bot {parse_b['parses_per_s']:.1f}/s"
        lines += ["", text + "."]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=30, help="seconds measured per concurrency level (default 30)")
    parser.add_argument("--warmup", type=float, default=5, help="seconds of load before each window (default 5)")
    parser.add_argument("--rounds", type=int, default=2, help="windows per bot and level, alternating between the bots (default 2)")
    parser.add_argument("--levels", default="1,20,50", help="concurrent conversations, comma-separated (default 1,20,50)")
    parser.add_argument("--model", default=str(MODEL.relative_to(ROOT)), help="the project model to serve (default models/handoff.tar.gz)")
    parser.add_argument("--endpoints", help="serve the project with this endpoints.yml instead of its own (default: SQLite tracker store); keep its action_endpoint headers (the action server answers 401 without the token)")
    parser.add_argument("--label", default="", help="a name for this run (e.g. a config variant); part of the output file name")
    parser.add_argument("--handoff-every", type=int, default=5, help="every Nth conversation hands off (default 5: 20 %%)")
    parser.add_argument("--parse-seconds", type=float, default=10, help="NLU-only /model/parse measurement per bot; 0 skips it")
    parser.add_argument("--skip-bare", action="store_true", help="measure the project only")
    parser.add_argument("--bare-results", help="take the bare bot's figures from an earlier results/bench/bench-*.json")
    parser.add_argument("--keep-logs", action="store_true", help="copy the project's server logs to results/bench/logs/")
    args = parser.parse_args()
    if args.rounds < 1 or args.duration <= 0:
        parser.error("--rounds must be at least 1 and --duration positive")
    levels = [int(x) for x in args.levels.split(",") if x.strip()]
    model = Path(args.model)
    if not (model if model.is_absolute() else ROOT / model).exists():
        print(f"no model at {model}: run `make train` first", file=sys.stderr)
        return 1
    args.model = str(model if model.is_absolute() else ROOT / model)
    args.label = args.label or "run"

    started = time.monotonic()
    now = dt.datetime.now()
    version = rasa_version()
    report: dict[str, Any] = {
        "date": now.strftime("%Y-%m-%d"),
        "started_at": now.isoformat(timespec="seconds"),
        "machine": machine(),
        "rasa_version": version,
        "model": str(Path(args.model).relative_to(ROOT)) if Path(args.model).is_relative_to(ROOT) else args.model,
        "label": args.label,
        "endpoints": args.endpoints or "endpoints.yml (SQLite tracker store)",
        "duration_s": args.duration,
        "rounds": args.rounds,
        "warmup_s": args.warmup,
        "handoff_every": args.handoff_every,
        "levels": levels,
    }
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp, contextlib.ExitStack() as running:
        workdir = Path(tmp)
        bots = [start_project(args, workdir, running)]
        if not args.skip_bare and not args.bare_results:
            try:
                bots.append(start_bare_bot(args, workdir, version, running))
            except RuntimeError as exc:
                # Measure the project all the same.
                print(f"the bare bot could not be started: {exc}", file=sys.stderr)
                report["bare_error"] = str(exc)[-2000:]
        measured = asyncio.run(measure(bots, levels, args))
    report["project"] = measured["project"]
    if "bare" in measured:
        report["bare"] = measured["bare"]
    elif args.bare_results:
        earlier = json.loads(Path(args.bare_results).read_text())
        report["bare"] = {**earlier["bare"], "from": args.bare_results}
    if report.get("bare"):
        bare = {lv["concurrency"]: lv["messages_per_s"] for lv in report["bare"]["levels"]}
        report["ratio"] = {
            str(lv["concurrency"]): round(lv["messages_per_s"] / bare[lv["concurrency"]], 2)
            for lv in report["project"]["levels"]
            if bare.get(lv["concurrency"])
        }
    report["total_seconds"] = round(time.monotonic() - started)
    report["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]

    RESULTS.mkdir(parents=True, exist_ok=True)
    suffix = "" if args.label == "run" else f"-{re.sub(r'[^A-Za-z0-9_.-]', '_', args.label)}"
    out = RESULTS / f"bench-{now.strftime('%Y-%m-%d-%H%M%S')}{suffix}.json"
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print()
    print(markdown(report))
    if report.get("ratio"):
        print("Throughput project / bare: " + ", ".join(f"{c} concurrent {r:.2f}×" for c, r in report["ratio"].items()))
    print(f"written: {out.relative_to(ROOT)} (whole run {report['total_seconds']} s)")
    problems = [
        lv for lv in report["project"]["levels"]
        if lv["errors"] or lv["unanswered"] or lv["relays_lost"] or (lv.get("handoff") or {}).get("failures")
    ]
    if problems:
        print(f"{len(problems)} level(s) had errors or lost messages: see {out.relative_to(ROOT)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
