"""The embedded helpdesk: an agent console speaking the handoff contract (docs/HANDOFF_CONTRACT.md).

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
from helpdesk import followups, reports, review, signin, views
from helpdesk.assistant import AssistantClient
from helpdesk.auth import AgentDirectory, SignInThrottle, development_banner, load_agents
from helpdesk.db import create_engine_for, init_database
from helpdesk.flash import FlashStore
from helpdesk.keys import (
    AGENTS_KEY,
    ASSISTANT_KEY,
    DATABASE_URL_KEY,
    FLASH_KEY,
    HTTP_SESSION_KEY,
    LIVE_KEY,
    LOCKS_KEY,
    SESSIONS_KEY,
    SETTINGS_KEY,
    STORE_KEY,
    TEMPLATES_KEY,
    THROTTLE_KEY,
)
from helpdesk.live import LiveUpdates
from helpdesk.locks import TicketLocks
from helpdesk.presentation import make_environment
from helpdesk.retention import run_retention
from helpdesk.sessions import SessionStore
from helpdesk.store import TicketStore
from helpdesk.webhook import handle_webhook

logger = logging.getLogger("helpdesk")

STATIC_DIR = Path(__file__).resolve().parent / "static"

# The pages load nothing from elsewhere and run no inline script.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


async def _database(app: web.Application) -> AsyncIterator[None]:
    engine = create_engine_for(app[DATABASE_URL_KEY])
    session_factory = init_database(engine)
    sessions = SessionStore(session_factory, app[SETTINGS_KEY].secret)
    app[SESSIONS_KEY] = sessions
    # An available agent counts only while their session is live, idle timeout included.
    app[STORE_KEY] = TicketStore(session_factory, idle_timeout=sessions.idle_timeout)
    followups.attach(app, session_factory)
    review.attach(app, session_factory)
    # Agents removed or with a new password since the last start lose their sessions now.
    revoked = sessions.revoke_outdated(app[AGENTS_KEY])
    purged = sessions.purge_expired()
    if revoked or purged:
        logger.info(
            "agent sessions: %d revoked (agent or password changed), %d expired removed",
            revoked,
            purged,
        )
    logger.info("helpdesk database: %s", engine.url.render_as_string(hide_password=True))
    yield
    engine.dispose()


async def _http_client(app: web.Application) -> AsyncIterator[None]:
    session = aiohttp.ClientSession()
    app[HTTP_SESSION_KEY] = session
    app[ASSISTANT_KEY] = AssistantClient(app[SETTINGS_KEY], session)
    yield
    await session.close()


async def _end_live_streams(app: web.Application) -> None:
    app[LIVE_KEY].close()


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if response.content_type == "text/html":
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Cache-Control", "no-store")


def create_app(
    settings: Settings | None = None,
    database_url: str | None = None,
    agents: AgentDirectory | None = None,
) -> web.Application:
    """The helpdesk application.

    ``settings`` default to :func:`handoff.settings.get_settings`, the database to
    ``settings.helpdesk_database_url``, the agents to :func:`helpdesk.auth.load_agents` (which
    raises :class:`handoff.settings.SettingsError` outside development without HELPDESK_AGENTS).
    """
    settings = settings or get_settings()
    if agents is None:
        agents = load_agents(settings)
        banner = development_banner(agents)
        if banner:
            logger.warning("\n%s", banner)
    app = web.Application(middlewares=[signin.require_agent])
    app[SETTINGS_KEY] = settings
    app[DATABASE_URL_KEY] = database_url or settings.helpdesk_database_url
    app[TEMPLATES_KEY] = make_environment()
    app[FLASH_KEY] = FlashStore()
    app[AGENTS_KEY] = agents
    app[THROTTLE_KEY] = SignInThrottle(agent_logins=agents.logins())
    app[LIVE_KEY] = LiveUpdates()
    app[LOCKS_KEY] = TicketLocks()
    app.cleanup_ctx.append(_database)
    # After _database: it uses the ticket store.
    app.cleanup_ctx.append(run_retention)
    app.cleanup_ctx.append(_http_client)
    app.on_shutdown.append(_end_live_streams)
    app.on_response_prepare.append(_security_headers)

    router = app.router
    router.add_get("/", views.inbox, name="inbox")
    router.add_get("/health", views.health, name="health")
    router.add_post("/webhook", handle_webhook, name="webhook")
    router.add_get("/login", signin.login_page, name="login")
    router.add_post("/login", signin.login_submit, name="login_submit")
    router.add_post("/logout", signin.logout, name="logout")
    router.add_get("/events", views.events, name="events")
    router.add_get("/partials/inbox", views.inbox_partial, name="inbox_partial")
    router.add_get("/partials/tickets/{ticket_id}", views.ticket_partial, name="ticket_partial")
    router.add_get("/tickets/{ticket_id}", views.ticket_page, name="ticket")
    router.add_post("/tickets/{ticket_id}/join", views.join, name="join")
    router.add_post("/tickets/{ticket_id}/takeover", views.take_over, name="takeover")
    router.add_post("/tickets/{ticket_id}/reply", views.reply, name="reply")
    router.add_post("/tickets/{ticket_id}/handback", views.handback, name="handback")
    router.add_post("/tickets/{ticket_id}/transfer", views.transfer, name="transfer")
    router.add_post("/tickets/{ticket_id}/wrapup", views.wrap_up, name="wrapup")
    router.add_post("/presence", views.set_presence, name="presence")
    followups.setup(app)
    review.setup(app)
    reports.setup(app)
    router.add_static("/static", STATIC_DIR, name="static")
    return app
