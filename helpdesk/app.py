"""The embedded helpdesk: an agent inbox speaking the handoff contract (docs/HANDOFF_CONTRACT.md).

``create_app()`` builds the aiohttp application; the database engine and the HTTP client session
are created when it starts and closed when it stops.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
from aiohttp import web

from handoff.settings import Settings, get_settings
from helpdesk import views
from helpdesk.assistant import AssistantClient
from helpdesk.db import create_engine_for, init_database
from helpdesk.flash import FlashStore
from helpdesk.keys import (
    ASSISTANT_KEY,
    DATABASE_URL_KEY,
    FLASH_KEY,
    HTTP_SESSION_KEY,
    SETTINGS_KEY,
    STORE_KEY,
    TEMPLATES_KEY,
)
from helpdesk.presentation import make_environment
from helpdesk.store import TicketStore
from helpdesk.webhook import handle_webhook

logger = logging.getLogger("helpdesk")

STATIC_DIR = Path(__file__).resolve().parent / "static"


async def _database(app: web.Application) -> AsyncIterator[None]:
    engine = create_engine_for(app[DATABASE_URL_KEY])
    app[STORE_KEY] = TicketStore(init_database(engine))
    logger.info("helpdesk database: %s", engine.url.render_as_string(hide_password=True))
    yield
    engine.dispose()


async def _http_client(app: web.Application) -> AsyncIterator[None]:
    session = aiohttp.ClientSession()
    app[HTTP_SESSION_KEY] = session
    app[ASSISTANT_KEY] = AssistantClient(app[SETTINGS_KEY], session)
    yield
    await session.close()


def create_app(
    settings: Settings | None = None, database_url: str | None = None
) -> web.Application:
    """The helpdesk application; ``settings`` default to :func:`handoff.settings.get_settings`,
    the database to ``settings.helpdesk_database_url``.
    """
    settings = settings or get_settings()
    app = web.Application()
    app[SETTINGS_KEY] = settings
    app[DATABASE_URL_KEY] = database_url or settings.helpdesk_database_url
    app[TEMPLATES_KEY] = make_environment()
    app[FLASH_KEY] = FlashStore()
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_http_client)

    app.router.add_get("/", views.inbox, name="inbox")
    app.router.add_get("/health", views.health, name="health")
    app.router.add_post("/webhook", handle_webhook, name="webhook")
    app.router.add_get("/tickets/{ticket_id}", views.ticket_page, name="ticket")
    app.router.add_post("/tickets/{ticket_id}/join", views.join, name="join")
    app.router.add_post("/tickets/{ticket_id}/reply", views.reply, name="reply")
    app.router.add_post("/tickets/{ticket_id}/handback", views.handback, name="handback")
    app.router.add_static("/static", STATIC_DIR, name="static")
    return app
