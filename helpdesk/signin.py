"""Signing in and out, and the check that every page and action has a signed-in agent.

Only ``POST /webhook`` (signed by the assistant), ``GET /health``, the sign-in page and the
static files are open without a session. Sessions are rows in the helpdesk database
(:mod:`helpdesk.sessions`): signing out revokes the row, so a copy of the cookie stops working.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from aiohttp import web

from helpdesk.auth import SESSION_COOKIE, Agent
from helpdesk.db import OFFLINE
from helpdesk.keys import (
    AGENT_REQUEST_KEY,
    AGENTS_KEY,
    SESSIONS_KEY,
    SETTINGS_KEY,
    STORE_KEY,
    THROTTLE_KEY,
)
from helpdesk.views import check_same_origin, load_presence, local_path, render

logger = logging.getLogger("helpdesk.auth")

#: Routes (by name) that need no session.
PUBLIC_ROUTES = frozenset({"webhook", "health", "login", "login_submit", "logout", "static"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site only (never another host)."""
    target = local_path(target)
    if target.startswith("/login") or target.startswith("/logout"):
        return "/"
    return target


def _wants_page(request: web.Request) -> bool:
    """A person's browser asking for a page (redirect it to sign in) rather than a script."""
    if request.method != "GET":
        return False
    if request.path.startswith("/partials/") or request.path == "/events":
        return False
    accept = request.headers.get("Accept", "")
    return "text/html" in accept or "application/json" not in accept


async def session_agent(request: web.Request, touch: bool = True) -> Agent | None:
    """The agent whose live session the request's cookie names, or None.

    ``touch``: the request is the agent's doing, so the session's idle timer starts again.
    """
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    return await asyncio.to_thread(
        request.app[SESSIONS_KEY].verify, token, request.app[AGENTS_KEY], touch=touch
    )


@web.middleware
async def require_agent(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Put the signed-in agent on the request, or send the browser to the sign-in page."""
    route = request.match_info.route
    if route.name in PUBLIC_ROUTES:
        return await handler(request)
    agent = await session_agent(request)
    if agent is None:
        if _wants_page(request):
            target = request.path_qs if request.path != "/" else ""
            location = "/login" + (f"?next={quote(target, safe='/')}" if target else "")
            raise web.HTTPSeeOther(location=location)
        raise web.HTTPUnauthorized(
            text='{"error": "not_signed_in", "message": "sign in to the helpdesk first"}',
            content_type="application/json",
        )
    request[AGENT_REQUEST_KEY] = agent
    if request.method == "GET" and request.path != "/events":
        # Every page's header shows the agent's presence and who is available.
        await load_presence(request)
    return await handler(request)


async def login_page(request: web.Request) -> web.Response:
    next_path = _safe_next(request.query.get("next"))
    if await session_agent(request) is not None:
        raise web.HTTPSeeOther(location=next_path)
    return render(request, "login.html", next_path=next_path, login="", error=None)


async def login_submit(request: web.Request) -> web.Response:
    check_same_origin(request)
    form = await request.post()
    login = str(form.get("login") or "").strip()
    password = str(form.get("password") or "")
    next_path = _safe_next(str(form.get("next") or ""))
    throttle = request.app[THROTTLE_KEY]
    address = request.remote or "-"
    wait = throttle.retry_after(address, login)
    if wait:
        logger.warning("sign-in for %r from %s refused: too many failures", login[:64], address)
        response = render(
            request,
            "login.html",
            status=429,
            next_path=next_path,
            login=login,
            error=f"Too many failed attempts. Try again in {(wait + 59) // 60} min.",
        )
        response.headers["Retry-After"] = str(wait)
        return response
    agent = request.app[AGENTS_KEY].authenticate(login, password)
    if agent is None:
        throttle.failed(address, login)
        logger.warning("failed sign-in for %r from %s", login[:64], address)
        return render(
            request,
            "login.html",
            status=401,
            next_path=next_path,
            login=login,
            error="That login and password do not match. Try again.",
        )
    throttle.succeeded(address, login)
    sessions = request.app[SESSIONS_KEY]
    if not await asyncio.to_thread(sessions.live_count, agent.login):
        # Signed in is not available: a first sign-in starts offline until the agent chooses
        # "Available" (another open browser of the agent keeps its status).
        await asyncio.to_thread(request.app[STORE_KEY].set_presence, agent.login, OFFLINE)
    token = await asyncio.to_thread(sessions.issue, agent)
    response = web.HTTPSeeOther(location=next_path)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=sessions.max_age,
        path="/",
        httponly=True,
        # Lax, not Strict: a link to a ticket from mail or chat opens signed in; posts from other
        # sites are refused by check_same_origin.
        samesite="Lax",
        secure=_secure_cookies(request),
    )
    logger.info("%s signed in", agent.login)
    raise response


def _secure_cookies(request: web.Request) -> bool:
    """Cookies are ``Secure`` outside development (behind TLS), and on any HTTPS request."""
    return request.secure or not request.app[SETTINGS_KEY].is_development


async def logout(request: web.Request) -> web.Response:
    """Revoke the session in the database (a copied cookie is refused from now on) and drop the
    cookie."""
    check_same_origin(request)
    login = await asyncio.to_thread(
        request.app[SESSIONS_KEY].revoke, request.cookies.get(SESSION_COOKIE)
    )
    response = web.HTTPSeeOther(location="/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    if login is not None:
        # Signing out ends the agent's availability, whatever other browsers they left open.
        await asyncio.to_thread(request.app[STORE_KEY].set_presence, login, OFFLINE)
        logger.info("%s signed out", login)
    raise response
