"""The agent's pages (inbox, ticket) and actions (join, reply, hand back)."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from aiohttp import web

from helpdesk.assistant import Delivery
from helpdesk.db import ASSIGNED, CLOSED, WAITING, Ticket
from helpdesk.flash import FLASH_COOKIE, Flash
from helpdesk.keys import ASSISTANT_KEY, FLASH_KEY, STORE_KEY, TEMPLATES_KEY
from helpdesk.store import TicketNotFound

logger = logging.getLogger("helpdesk.agent")

AGENT_COOKIE = "helpdesk_agent"
MAX_AGENT_NAME = 100
MAX_TEXT = 5000
REFRESH_SECONDS = 5


def _html(request: web.Request, template: str, **context: Any) -> str:
    return request.app[TEMPLATES_KEY].get_template(template).render(**context)


def render(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    html = _html(request, template, **context)
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")


def agent_from_cookie(request: web.Request) -> str:
    return clean_name(unquote(request.cookies.get(AGENT_COOKIE, "")))


def clean_name(raw: Any) -> str:
    name = re.sub(r"\s+", " ", str(raw or "")).strip()
    return name[:MAX_AGENT_NAME]


async def _ticket_or_404(request: web.Request, ticket_id: str) -> Ticket:
    try:
        return await asyncio.to_thread(request.app[STORE_KEY].get, ticket_id)
    except TicketNotFound:
        html = _html(request, "not_found.html", ticket_id=ticket_id)
        raise web.HTTPNotFound(text=html, content_type="text/html") from None


# --- pages ---------------------------------------------------------------------------------------


async def inbox(request: web.Request) -> web.Response:
    open_tickets, closed = await asyncio.to_thread(request.app[STORE_KEY].inbox)
    return render(
        request,
        "inbox.html",
        open_tickets=open_tickets,
        closed_tickets=closed,
        refresh_seconds=REFRESH_SECONDS,
    )


async def ticket_page(request: web.Request) -> web.Response:
    ticket_id = request.match_info["ticket_id"]
    ticket = await _ticket_or_404(request, ticket_id)
    flash_key = request.cookies.get(FLASH_COOKIE)
    flash = request.app[FLASH_KEY].pop(flash_key, ticket_id)
    agent = agent_from_cookie(request)
    if not agent and ticket.state == ASSIGNED:
        agent = ticket.agent_name or ""
    response = render(
        request,
        "ticket.html",
        ticket=ticket,
        flash=flash,
        agent_name=agent,
        refresh_seconds=REFRESH_SECONDS,
        WAITING=WAITING,
        ASSIGNED=ASSIGNED,
        CLOSED=CLOSED,
        max_text=MAX_TEXT,
    )
    if flash_key and flash is not None:
        response.del_cookie(FLASH_COOKIE, path="/")
    return response


async def health(request: web.Request) -> web.Response:
    try:
        open_count = await asyncio.to_thread(request.app[STORE_KEY].count_open)
    except Exception as exc:  # the point of a health check is to report any failure
        logger.error("health check failed: %s", exc)
        return web.json_response({"status": "error", "message": "database unavailable"}, status=503)
    return web.json_response({"status": "ok", "service": "helpdesk", "open_tickets": open_count})


# --- agent actions -------------------------------------------------------------------------------


def _check_same_origin(request: web.Request) -> None:
    """Refuse form posts made by other sites in the agent's browser (cross-site request forgery)."""
    origin = request.headers.get("Origin")
    if origin is None:
        referer = request.headers.get("Referer")
        if referer is None:
            return
        origin = referer
    if origin == "null" or urlsplit(origin).netloc != request.host:
        raise web.HTTPForbidden(text="Form posts are only accepted from the helpdesk's own pages.")


def _back(
    request: web.Request,
    ticket_id: str,
    agent: str,
    flash: Flash | None = None,
) -> web.HTTPSeeOther:
    """303 to the ticket page, remembering the agent's name and any notice."""
    response = web.HTTPSeeOther(location=f"/tickets/{quote(ticket_id)}")
    if agent:
        response.set_cookie(
            AGENT_COOKIE,
            quote(agent),
            max_age=365 * 24 * 3600,
            path="/",
            httponly=True,
            samesite="Lax",
        )
    if flash is not None:
        key = request.app[FLASH_KEY].put(flash)
        response.set_cookie(FLASH_COOKIE, key, max_age=600, path="/", httponly=True, samesite="Lax")
    return response


def _failed(action: str, delivery: Delivery) -> str:
    if delivery.status is None:
        return f"{action} was not sent: {delivery.message}."
    return f"{action} failed: the assistant answered {delivery.status}: {delivery.message}"


async def _form(request: web.Request) -> tuple[str, Ticket, dict[str, str]]:
    _check_same_origin(request)
    ticket_id = request.match_info["ticket_id"]
    ticket = await _ticket_or_404(request, ticket_id)
    form = await request.post()
    fields = {key: str(value) for key, value in form.items() if isinstance(value, str)}
    return ticket_id, ticket, fields


def _closed_flash(ticket: Ticket, **drafts: str) -> Flash:
    return Flash(ticket.ticket_id, "error", "This ticket is closed; nothing was sent.", **drafts)


async def _send(request: web.Request, ticket: Ticket, event: str, agent: str, **fields: Any):
    return await request.app[ASSISTANT_KEY].send(
        event,
        handoff_id=ticket.handoff_id,
        conversation_id=ticket.conversation_id,
        agent_name=agent,
        **fields,
    )


async def _join(request: web.Request, ticket: Ticket, agent: str) -> Delivery:
    delivery = await _send(request, ticket, "agent.joined", agent)
    if delivery.ok:
        await asyncio.to_thread(request.app[STORE_KEY].record_join, ticket.ticket_id, agent)
    return delivery


async def join(request: web.Request) -> web.Response:
    ticket_id, ticket, form = await _form(request)
    agent = clean_name(form.get("agent"))
    if not agent:
        raise _back(
            request, ticket_id, agent, Flash(ticket_id, "error", "Enter your name to join.")
        )
    if ticket.state == CLOSED:
        raise _back(request, ticket_id, agent, _closed_flash(ticket))
    if ticket.state == ASSIGNED and ticket.agent_name == agent:
        raise _back(request, ticket_id, agent, Flash(ticket_id, "info", "You have already joined."))
    delivery = await _join(request, ticket, agent)
    if not delivery.ok:
        raise _back(request, ticket_id, agent, Flash(ticket_id, "error", _failed("Join", delivery)))
    raise _back(request, ticket_id, agent)


async def reply(request: web.Request) -> web.Response:
    ticket_id, ticket, form = await _form(request)
    agent = clean_name(form.get("agent"))
    text = form.get("text", "").strip()
    note = form.get("note", "")

    def problem(message: str) -> web.HTTPSeeOther:
        flash = Flash(ticket_id, "error", message, draft_text=text, draft_note=note)
        return _back(request, ticket_id, agent, flash)

    if not agent:
        raise problem("Enter your name before replying.")
    if not text:
        raise problem("Write a message first.")
    if len(text) > MAX_TEXT:
        raise problem(f"The message is {len(text)} characters long; the limit is {MAX_TEXT}.")
    if ticket.state == CLOSED:
        raise _back(request, ticket_id, agent, _closed_flash(ticket, draft_text=text))

    # The customer must know who they are talking to: join first when nobody has, or take over
    # when another agent had joined.
    if ticket.state == WAITING or ticket.agent_name != agent:
        delivery = await _join(request, ticket, agent)
        if not delivery.ok:
            raise problem(_failed("Joining (before your reply)", delivery))

    delivery = await _send(request, ticket, "agent.message", agent, text=text)
    if not delivery.ok:
        raise problem(_failed("Reply", delivery))
    await asyncio.to_thread(request.app[STORE_KEY].record_agent_message, ticket_id, agent, text)
    raise _back(request, ticket_id, agent)


async def handback(request: web.Request) -> web.Response:
    ticket_id, ticket, form = await _form(request)
    agent = clean_name(form.get("agent")) or (ticket.agent_name or "")
    note = form.get("note", "").strip()
    draft_text = form.get("text", "")

    def problem(message: str) -> web.HTTPSeeOther:
        flash = Flash(ticket_id, "error", message, draft_text=draft_text, draft_note=note)
        return _back(request, ticket_id, agent, flash)

    if not agent:
        raise problem("Enter your name before handing back.")
    if len(note) > MAX_TEXT:
        raise problem(f"The note is {len(note)} characters long; the limit is {MAX_TEXT}.")
    if ticket.state == CLOSED:
        raise _back(request, ticket_id, agent, _closed_flash(ticket))
    fields = {"note": note} if note else {}
    delivery = await _send(request, ticket, "agent.handback", agent, **fields)
    if not delivery.ok:
        raise problem(_failed("Hand-back", delivery))
    await asyncio.to_thread(request.app[STORE_KEY].record_handback, ticket_id, agent, note or None)
    raise _back(request, ticket_id, agent)
