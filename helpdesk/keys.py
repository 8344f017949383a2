"""Typed keys for what the helpdesk app keeps on its ``aiohttp.web.Application``."""

from __future__ import annotations

import aiohttp
import jinja2
from aiohttp import web

from handoff.settings import Settings
from helpdesk.assistant import AssistantClient
from helpdesk.flash import FlashStore
from helpdesk.store import TicketStore

SETTINGS_KEY = web.AppKey("settings", Settings)
DATABASE_URL_KEY = web.AppKey("database_url", str)
TEMPLATES_KEY = web.AppKey("templates", jinja2.Environment)
STORE_KEY = web.AppKey("store", TicketStore)
ASSISTANT_KEY = web.AppKey("assistant", AssistantClient)
HTTP_SESSION_KEY = web.AppKey("http_session", aiohttp.ClientSession)
FLASH_KEY = web.AppKey("flash", FlashStore)
