"""The embedded helpdesk's retention period: tickets of conversations with no activity for
``HANDOFF_RETENTION_DAYS`` (default 90) are erased, shortly after start-up and then hourly.

``create_app`` adds :func:`run_retention` to the app's ``cleanup_ctx`` after the database; it
needs the ticket store that the database context puts on the app.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from handoff.privacy import retention_days
from helpdesk.keys import STORE_KEY
from helpdesk.store import TicketStore

logger = logging.getLogger("helpdesk.retention")

#: The first pass runs this long after start-up (not during it), then every INTERVAL_SECONDS.
FIRST_DELAY_SECONDS = 60.0
INTERVAL_SECONDS = 3600.0


async def expire_once(store: TicketStore, days: float) -> dict[str, int]:
    """One retention pass; the counts of what was erased."""
    counts = await asyncio.to_thread(store.expire, days)
    if counts["tickets"]:
        logger.info(
            "retention: erased %d tickets (%d entries) with no activity for %g days",
            counts["tickets"], counts["ticket_entries"], days,
        )
    return counts


async def retention_loop(store: TicketStore, days: float, first_delay: float = FIRST_DELAY_SECONDS, interval: float = INTERVAL_SECONDS) -> None:
    await asyncio.sleep(first_delay)
    while True:
        try:
            await expire_once(store, days)
        except asyncio.CancelledError:
            raise
        except Exception:  # keep the loop alive; the next pass tries again
            logger.exception("retention pass failed")
        await asyncio.sleep(interval)


async def run_retention(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx`` entry: the retention loop runs while the app does."""
    days = retention_days()  # a bad HANDOFF_RETENTION_DAYS stops the start-up, saying so
    task = asyncio.get_running_loop().create_task(retention_loop(app[STORE_KEY], days))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
