"""Typed keys for what the helpdesk app keeps on its ``aiohttp.web.Application`` and requests."""

from __future__ import annotations

import aiohttp
import jinja2
from aiohttp import web

from handoff.settings import Settings
from helpdesk.assistant import AssistantClient
from helpdesk.auth import AgentDirectory, SignInThrottle
from helpdesk.flash import FlashStore
from helpdesk.live import LiveUpdates
from helpdesk.locks import TicketLocks
from helpdesk.sessions import SessionStore
from helpdesk.store import TicketStore

SETTINGS_KEY = web.AppKey("settings", Settings)
DATABASE_URL_KEY = web.AppKey("database_url", str)
TEMPLATES_KEY = web.AppKey("templates", jinja2.Environment)
STORE_KEY = web.AppKey("store", TicketStore)
ASSISTANT_KEY = web.AppKey("assistant", AssistantClient)
HTTP_SESSION_KEY = web.AppKey("http_session", aiohttp.ClientSession)
FLASH_KEY = web.AppKey("flash", FlashStore)
AGENTS_KEY = web.AppKey("agents", AgentDirectory)
SESSIONS_KEY = web.AppKey("sessions", SessionStore)
THROTTLE_KEY = web.AppKey("throttle", SignInThrottle)
LIVE_KEY = web.AppKey("live", LiveUpdates)
LOCKS_KEY = web.AppKey("locks", TicketLocks)

#: The signed-in agent (a :class:`helpdesk.auth.Agent`), set on the request by the sign-in check.
AGENT_REQUEST_KEY = "helpdesk.agent"
