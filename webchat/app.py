"""The web chat's aiohttp application: the page, its static files and a health check."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from webchat.config import WebchatConfig, load_config
from webchat.page import render_page
from webchat.texts import LANGUAGES, page_language

STATIC_DIR = Path(__file__).resolve().parent / "static"
CONFIG_KEY = web.AppKey("config", WebchatConfig)
#: The page by the language asked for ("" when none was).
PAGE_KEY = web.AppKey("page", dict)


def content_security_policy(config: WebchatConfig) -> str:
    """Scripts and styles from this server only; connections to it and to the Rasa server."""
    connect = " ".join(["'self'", *config.socket_origins])
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; "
        f"connect-src {connect}; base-uri 'none'; form-action 'self'; object-src 'none'"
    )


async def index(request: web.Request) -> web.Response:
    return web.Response(
        text=request.app[PAGE_KEY][page_language(request.query.get("lang")) or ""],
        content_type="text/html",
        charset="utf-8",
        headers={
            "Content-Security-Policy": content_security_policy(request.app[CONFIG_KEY]),
            "Cache-Control": "no-cache",
            "Referrer-Policy": "strict-origin-when-cross-origin",
            "X-Content-Type-Options": "nosniff",
        },
    )


async def health(request: web.Request) -> web.Response:
    config = request.app[CONFIG_KEY]
    return web.json_response(
        {"status": "ok", "service": "webchat", "rasa": config.socket_url + config.socket_path}
    )


def create_app(config: WebchatConfig | None = None) -> web.Application:
    """The web chat; ``config`` defaults to the environment."""
    config = config or load_config()
    app = web.Application()
    app[CONFIG_KEY] = config
    app[PAGE_KEY] = {"": render_page(config), **{lang: render_page(config, lang) for lang in LANGUAGES}}
    app.router.add_get("/", index, name="index")
    app.router.add_get("/health", health, name="health")
    app.router.add_static("/static", STATIC_DIR, name="static")
    return app
