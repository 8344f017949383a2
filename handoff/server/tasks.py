"""Scheduled handoff work, run inside the Rasa server: durable, unlike Rasa's reminders.

Rasa keeps reminders in memory, so a restart would forget them. The handoff database holds the
tasks instead (``handoff_tasks``); every Rasa server process polls for the due ones and takes a
lease on each before running it, so two processes never run the same task:

``no_agent_timeout``
    Nobody joined within ``HANDOFF_NO_AGENT_TIMEOUT``: the handoff ends, the bot takes the
    conversation back, apologises and asks for a callback number or an email address
    (``action_handoff_resume`` and ``follow_up_form``); ``handoff.ended`` (cause
    ``no_agent_timeout``) follows with that detail.
``wait_update``
    The customer is still waiting: tell them their place in the queue and when the bot will offer
    another way, then check again later.
``resume``
    The handoff ended on the assistant's side (the customer gave up waiting): take the
    conversation back.
``follow_up_deadline``
    No callback number or email address came after a no-agent timeout: tell the helpdesk the
    handoff ended without one.

Beside the tasks, the same loop enforces the retention period (:mod:`handoff.privacy`): a
minute after start-up and then hourly it erases the conversations with no activity for
``HANDOFF_RETENTION_DAYS`` (default 90) from the tracker store and the handoff database.

Started by the ``helpdesk`` input channel (:mod:`handoff.server.helpdesk_channel`) when the server starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from typing import Any

from rasa.shared.core.events import BotUttered

from handoff import privacy
from handoff.lifecycle import EndCause
from handoff.server.lifecycle import (
    language_of,
    locked_tracker,
    output_channel_for,
    push,
    take_back,
)
from handoff.server.tracker_store import sql_engine
from handoff.settings import Settings, get_settings
from handoff.store import (
    REQUESTED,
    TASK_FOLLOW_UP_DEADLINE,
    TASK_NO_AGENT,
    TASK_RESUME,
    TASK_WAIT_UPDATE,
    Handoff,
    HandoffStore,
    Task,
    get_store,
    new_event,
)

logger = logging.getLogger(__name__)

STILL_WAITING_RESPONSE = "utter_handoff_still_waiting"
#: How long one process holds a task before another may take it over (a crashed process).
LEASE_SECONDS = 60.0
#: When a task fails (e.g. the tracker store is briefly unavailable), try again after this long.
RETRY_SECONDS = 10.0
#: The retention pass runs this long after start-up (not during it), then every RETENTION_INTERVAL.
RETENTION_FIRST_DELAY = 60.0
RETENTION_INTERVAL = 3600.0


class TaskRunner:
    """Polls the handoff database for due tasks and runs them against the Rasa agent."""

    def __init__(self, app: Any, store: HandoffStore | None = None, settings: Settings | None = None) -> None:
        self.app = app
        self.settings = settings or get_settings()
        self.store = store or get_store(self.settings.database_url)
        self._task: asyncio.Task | None = None
        # Read now: a bad HANDOFF_RETENTION_DAYS is a SettingsError at start-up, not a silent no.
        self.retention_days = privacy.retention_days()
        self._next_retention = time.monotonic() + RETENTION_FIRST_DELAY

    def start(self) -> TaskRunner:
        self._task = asyncio.get_event_loop().create_task(self._loop())
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("handoff task pass failed")
            if time.monotonic() >= self._next_retention:
                self._next_retention = time.monotonic() + RETENTION_INTERVAL
                try:
                    if await self.run_retention() is None:
                        self._next_retention = time.monotonic() + RETENTION_FIRST_DELAY
                except asyncio.CancelledError:
                    raise
                except Exception:
                    logger.exception("retention pass failed")
            await asyncio.sleep(self.settings.task_poll_interval)

    async def run_retention(self, now: float | None = None) -> privacy.Erasure | None:
        """Erase the conversations past the retention period from the tracker store and the
        handoff database; None while the model (and with it the tracker store) is still loading."""
        agent = getattr(self.app.ctx, "agent", None)
        if agent is None:
            return None
        engine = sql_engine(agent.tracker_store)
        stores = privacy.Stores(tracker=privacy.TrackerEvents(engine) if engine is not None else None, handoff=self.store)
        cutoff = (time.time() if now is None else now) - self.retention_days * privacy.DAY
        result = await asyncio.to_thread(privacy.expire, stores, cutoff)
        if result.conversations:
            # Counts only: conversation ids can be customer identifiers.
            logger.info("retention: erased %d conversations older than %g days: %s", len(result.conversations), self.retention_days, result.counts)
        return result

    async def run_due(self) -> int:
        """Run every task that is due now; the number run."""
        agent = getattr(self.app.ctx, "agent", None)
        if agent is None or agent.processor is None:
            return 0  # the model is still loading
        ran = 0
        for task in await asyncio.to_thread(self.store.due_tasks):
            claimed = await asyncio.to_thread(self.store.claim_task, task.id, LEASE_SECONDS)
            if claimed is None:
                continue  # another process took it
            try:
                await self.run(agent, claimed)
            except Exception:
                logger.exception("handoff task %s (%s) failed; retrying later", task.id, task.kind)
                await asyncio.to_thread(self.store.release_task, task.id, RETRY_SECONDS)
                continue
            await asyncio.to_thread(self.store.complete_task, task.id)
            ran += 1
        return ran

    async def run(self, agent: Any, task: Task) -> None:
        handoff = await asyncio.to_thread(self.store.get_handoff, task.handoff_id)
        if handoff is None:
            return
        if task.kind == TASK_NO_AGENT:
            await self._no_agent(agent, handoff)
        elif task.kind == TASK_WAIT_UPDATE:
            await self._wait_update(agent, handoff)
        elif task.kind == TASK_RESUME:
            await self._take_back(agent, handoff.conversation_id)
        elif task.kind == TASK_FOLLOW_UP_DEADLINE:
            body = new_event("handoff.ended", handoff.id, handoff.conversation_id, cause=EndCause.NO_AGENT_TIMEOUT.value, follow_up=None)
            if await asyncio.to_thread(self.store.enqueue_once, body):
                logger.info("handoff %s ended without a follow-up detail", handoff.id)
        else:
            logger.warning("unknown handoff task kind %r", task.kind)

    async def _no_agent(self, agent: Any, handoff: Handoff) -> None:
        if handoff.state != REQUESTED:
            return  # an agent joined, or the handoff ended otherwise
        if not await asyncio.to_thread(self.store.end_handoff, handoff.id, EndCause.NO_AGENT_TIMEOUT):
            return
        await asyncio.to_thread(
            self.store.schedule, handoff.id, handoff.conversation_id, TASK_FOLLOW_UP_DEADLINE, self.settings.follow_up_wait
        )
        logger.info("handoff %s: no agent in time; the bot takes the conversation back", handoff.id)
        await self._take_back(agent, handoff.conversation_id)

    async def _wait_update(self, agent: Any, handoff: Handoff) -> None:
        if handoff.state != REQUESTED:
            return
        left = handoff.created_at + self.settings.no_agent_timeout - time.time()
        if left <= 0:
            return
        ahead = await asyncio.to_thread(self.store.waiting_ahead, handoff)
        async with locked_tracker(agent, handoff.conversation_id) as tracker:
            if not tracker.is_paused():
                return
            output = output_channel_for(self.app, tracker)
            message = await agent.processor.nlg.generate(
                STILL_WAITING_RESPONSE,
                tracker,
                output.name(),
                position=ahead + 1,
                minutes_left=max(1, math.ceil(left / 60)),
            )
            if not message:
                return
            event = BotUttered(
                text=message.get("text"), metadata={"handoff_role": "notice", "notice": "still_waiting", **language_of(tracker)}
            )
            await push(agent, tracker, output, event)
        if left > self.settings.wait_update_after:
            await asyncio.to_thread(
                self.store.schedule, handoff.id, handoff.conversation_id, TASK_WAIT_UPDATE, self.settings.wait_update_after
            )

    async def _take_back(self, agent: Any, conversation_id: str) -> None:
        async with locked_tracker(agent, conversation_id) as tracker:
            if not tracker.is_paused():
                return  # already the bot's again (a /restart, say)
            await take_back(agent, tracker, output_channel_for(self.app, tracker))
