"""Signing in and out, and the check that every page and action has a signed-in agent.

Only ``POST /webhook`` (signed by the assistant), ``GET /health``, the sign-in page and the
static files are open without a session.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from urllib.parse import quote, urlsplit

from aiohttp import web

from helpdesk.auth import SESSION_COOKIE
from helpdesk.keys import AGENT_REQUEST_KEY, AGENTS_KEY, SESSIONS_KEY, THROTTLE_KEY
from helpdesk.views import check_same_origin, render

logger = logging.getLogger("helpdesk.auth")

#: Routes (by name) that need no session.
PUBLIC_ROUTES = frozenset({"webhook", "health", "login", "login_submit", "logout", "static"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site only (never another host)."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    if "\\" in target or target.startswith("/login") or target.startswith("/logout"):
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


@web.middleware
async def require_agent(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Put the signed-in agent on the request, or send the browser to the sign-in page."""
    route = request.match_info.route
    if route.name in PUBLIC_ROUTES:
        return await handler(request)
    agent = request.app[SESSIONS_KEY].verify(
        request.cookies.get(SESSION_COOKIE), request.app[AGENTS_KEY]
    )
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
    return await handler(request)


async def login_page(request: web.Request) -> web.Response:
    next_path = _safe_next(request.query.get("next"))
    agent = request.app[SESSIONS_KEY].verify(
        request.cookies.get(SESSION_COOKIE), request.app[AGENTS_KEY]
    )
    if agent is not None:
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
        return render(
            request,
            "login.html",
            status=429,
            next_path=next_path,
            login=login,
            error=f"Too many failed attempts. Try again in {(wait + 59) // 60} min.",
        )
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
    response = web.HTTPSeeOther(location=next_path)
    response.set_cookie(
        SESSION_COOKIE,
        sessions.issue(agent),
        max_age=sessions.max_age,
        path="/",
        httponly=True,
        samesite="Lax",
        secure=request.secure,
    )
    logger.info("%s signed in", agent.login)
    raise response


async def logout(request: web.Request) -> web.Response:
    check_same_origin(request)
    agent = request.get(AGENT_REQUEST_KEY)
    response = web.HTTPSeeOther(location="/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    if agent is not None:
        logger.info("%s signed out", agent.login)
    raise response
