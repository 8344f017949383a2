"""Delivery of outbox entries to the helpdesk webhook: signed, retried, in order per handoff.

The handoff action makes one bounded first attempt (so it can tell the customer the wait without
holding the conversation lock on a slow helpdesk); everything else, retries included, is done by
:class:`OutboxWorker`, which runs inside the Rasa server. Every retry sends the same bytes with the
same ``X-Handoff-Delivery`` id, so receivers can drop duplicates.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from dataclasses import dataclass

import aiohttp

from handoff.lifecycle import PERMANENT_STATUSES  # answers that retrying the same bytes cannot fix
from handoff.settings import Settings
from handoff.signing import sign_headers
from handoff.store import EXPIRED, REJECTED, HandoffStore, OutboxEvent

logger = logging.getLogger(__name__)

BACKOFF_BASE_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 60.0  # the default of HANDOFF_RETRY_MAX_DELAY

def backoff_delay(attempts: int, base: float = BACKOFF_BASE_SECONDS, cap: float = BACKOFF_CAP_SECONDS) -> float:
    """Exponential backoff with "equal jitter": half fixed, half random, capped."""
    ceiling = min(cap, base * (2 ** max(attempts - 1, 0)))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


@dataclass(frozen=True)
class DeliveryResult:
    """What one delivery attempt came to."""

    event_id: str
    delivered: bool
    status: int | None = None
    response: dict | None = None
    error: str | None = None
    skipped: bool = False  # another worker holds the lease, or it is no longer pending


class Deliverer:
    """Sends outbox entries to ``settings.helpdesk_webhook_url``."""

    def __init__(self, store: HandoffStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings

    async def deliver(
        self,
        event_id: str,
        timeout: float | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> DeliveryResult:
        """Claim ``event_id`` and make one attempt; record the outcome in the outbox."""
        timeout = self.settings.delivery_timeout if timeout is None else timeout
        entry = self.store.claim(event_id, lease_seconds=timeout + 5)
        if entry is None:
            return DeliveryResult(event_id, delivered=False, skipped=True)
        if session is None:
            async with aiohttp.ClientSession() as own_session:
                return await self._attempt(entry, timeout, own_session)
        return await self._attempt(entry, timeout, session)

    async def _attempt(self, entry: OutboxEvent, timeout: float, session: aiohttp.ClientSession) -> DeliveryResult:
        body = entry.body.encode("utf-8")
        headers = sign_headers(self.settings.secret, body, entry.event_id)
        status: int | None = None
        try:
            async with session.post(
                self.settings.helpdesk_webhook_url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                status = response.status
                text = await response.text()
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}".strip()
            self._failed(entry, error, status=None)
            return DeliveryResult(entry.event_id, delivered=False, error=error)

        if 200 <= status < 300:
            self.store.mark_delivered(entry.event_id, text[:10000] or None)
            parsed = _json_object(text)
            logger.info("delivered %s %s (attempt %d)", entry.event_type, entry.event_id, entry.attempts + 1)
            return DeliveryResult(entry.event_id, delivered=True, status=status, response=parsed)

        error = f"HTTP {status}: {text[:300]}"
        self._failed(entry, error, status=status)
        return DeliveryResult(entry.event_id, delivered=False, status=status, error=error)

    def _failed(self, entry: OutboxEvent, error: str, status: int | None) -> None:
        attempts = entry.attempts + 1
        now = time.time()
        final = None
        if status in PERMANENT_STATUSES:
            final = REJECTED
        elif attempts >= self.settings.outbox_max_attempts or now - entry.created_at > self.settings.outbox_expiry_seconds:
            final = EXPIRED
        delay = backoff_delay(attempts, cap=self.settings.retry_max_delay)
        self.store.mark_failed(entry.event_id, error, now + delay, final_status=final)
        log = logger.error if final else logger.warning
        log(
            "delivery of %s %s failed (attempt %d%s): %s",
            entry.event_type,
            entry.event_id,
            attempts,
            f", {final}" if final else ", will retry",
            # The helpdesk's answer can quote the message (customer data): it is kept with the
            # outbox entry (`make outbox`); the log says only the status.
            error if status is None else f"HTTP {status}",
        )


def _json_object(text: str) -> dict | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


class OutboxWorker:
    """Delivers pending outbox entries, oldest first and in order within each handoff.

    A failed entry holds back the later entries of its handoff until it goes through, so the
    helpdesk never sees a customer message before the handoff it belongs to.
    """

    def __init__(self, store: HandoffStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.deliverer = Deliverer(store, settings)
        self._wake = asyncio.Event()
        self._stopped = False
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_event_loop().create_task(self._run())

    def wake(self) -> None:
        """Deliver now instead of at the next poll (called when something was queued)."""
        self._wake.set()

    async def stop(self) -> None:
        self._stopped = True
        self._wake.set()
        if self._task is not None:
            await asyncio.wait([self._task], timeout=5)

    async def run_once(self, session: aiohttp.ClientSession | None = None) -> int:
        """One pass over the pending entries; returns how many were delivered."""
        if session is None:
            async with aiohttp.ClientSession() as own_session:
                return await self.run_once(own_session)
        delivered = 0
        held_back: set[str] = set()
        now = time.time()
        for entry in self.store.pending_events():
            if entry.handoff_id in held_back:
                continue
            leased = entry.lease_until is not None and entry.lease_until > now
            if entry.next_attempt_at > now or leased:
                held_back.add(entry.handoff_id)
                continue
            result = await self.deliverer.deliver(entry.event_id, session=session)
            if result.delivered:
                delivered += 1
            else:
                held_back.add(entry.handoff_id)
        return delivered

    async def _run(self) -> None:
        async with aiohttp.ClientSession() as session:
            while not self._stopped:
                self._wake.clear()
                try:
                    await self.run_once(session)
                except Exception:  # keep the worker alive; the entry stays pending
                    logger.exception("outbox pass failed")
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=self.settings.outbox_poll_interval)
                except asyncio.TimeoutError:
                    pass
