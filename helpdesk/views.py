"""The agent console: pages (inbox, ticket), their live parts, and the agent's actions
(claim, take over, reply, hand back, transfer, presence). Every action is done as the signed-in
agent.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import yaml
from aiohttp import web

from handoff.settings import PROJECT_ROOT
from helpdesk.assistant import Delivery
from helpdesk.auth import SESSION_COOKIE, Agent
from helpdesk.db import (
    ASSIGNED,
    AVAILABLE,
    AWAY,
    BOT_MISUNDERSTOOD,
    CLOSED,
    OFFLINE,
    PRESENCE_STATES,
    WAITING,
    WRAP_UP_OUTCOMES,
    WRAP_UP_REASONS,
    Ticket,
)
from helpdesk.flash import FLASH_COOKIE, Flash
from helpdesk.history import ticket_contacts
from helpdesk.keys import (
    AGENT_REQUEST_KEY,
    AGENTS_KEY,
    ASSISTANT_KEY,
    FLASH_KEY,
    LIVE_KEY,
    LOCKS_KEY,
    SESSIONS_KEY,
    STORE_KEY,
    TEMPLATES_KEY,
)
from helpdesk.live import KEEPALIVE_SECONDS, RETRY_MILLISECONDS
from helpdesk.presentation import presence_label, transfer_targets
from helpdesk.store import TicketNotFound, WrapUpExists

logger = logging.getLogger("helpdesk.agent")

MAX_TEXT = 5000
#: The longest note for colleagues a transfer may carry.
MAX_TRANSFER_NOTE = 2000

#: The wrap-up's choices, in words (codes: ``wrap_up`` of agent.handback, docs/HANDOFF_CONTRACT.md).
OUTCOME_LABELS = {
    "resolved": "Resolved",
    "needs_follow_up": "Needs follow-up",
    "not_resolved": "Not resolved",
}
REASON_LABELS = {
    "bot_misunderstood": "Bot misunderstood",
    "missing_knowledge": "Missing knowledge",
    "policy_needs_person": "Policy needs a person",
    "customer_preference": "Customer preference",
    "technical_failure": "Technical failure",
    "other": "Other",
}
#: The choice of the wrap-up's intent field for "no intent fits: a new topic" (not an intent name).
NEW_TOPIC = "(new topic)"
#: The form fields of the wrap-up; a hand-back form without any of them hands back without one.
WRAP_UP_FIELDS = ("outcome", "why", "intent")

#: The domain whose intents an agent may say a misunderstood message should have been.
DOMAIN_FILE = PROJECT_ROOT / "domain.yml"
#: Intents no customer types: triggered by the assistant itself, or Rasa's own.
_INTERNAL_INTENTS = frozenset({"nlu_fallback", "session_start", "restart", "back"})

#: The signed-in agent's presence (a :class:`helpdesk.store.Presence`), read for every page.
PRESENCE_REQUEST_KEY = "helpdesk.presence"

# Template constants every page may use.
_STATES = {
    "WAITING": WAITING,
    "ASSIGNED": ASSIGNED,
    "CLOSED": CLOSED,
    "AVAILABLE": AVAILABLE,
    "AWAY": AWAY,
    "OFFLINE": OFFLINE,
    "PRESENCE_STATES": PRESENCE_STATES,
    "max_text": MAX_TEXT,
    "max_transfer_note": MAX_TRANSFER_NOTE,
    "wrap_up_outcomes": OUTCOME_LABELS,
    "wrap_up_reasons": REASON_LABELS,
    "BOT_MISUNDERSTOOD": BOT_MISUNDERSTOOD,
    "NEW_TOPIC": NEW_TOPIC,
}


@functools.lru_cache(maxsize=4)
def domain_intents(path: Path = DOMAIN_FILE) -> tuple[str, ...]:
    """The intents of the assistant's domain a customer's message can be, sorted (read once):
    without the internal ones (``EXTERNAL_*``, ``nlu_fallback``, ...). Empty when the domain
    cannot be read."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        logger.warning("the wrap-up lists no intents: cannot read %s: %s", path, exc)
        return ()
    names: set[str] = set()
    for item in (data.get("intents") if isinstance(data, dict) else None) or []:
        name = next(iter(item), None) if isinstance(item, dict) else item
        if isinstance(name, str) and name and not name.startswith("EXTERNAL_") and name not in _INTERNAL_INTENTS:
            names.add(name)
    return tuple(sorted(names))


def current_agent(request: web.Request) -> Agent:
    """The signed-in agent (the sign-in check has put it on the request)."""
    return request[AGENT_REQUEST_KEY]


def local_path(target: Any) -> str:
    """``target`` when it is a path on this site (never another host), else ``/``."""
    if not isinstance(target, str) or not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    if "\\" in target or any(ord(c) < 32 for c in target):
        return "/"
    return target


def _page_context(request: web.Request, context: dict[str, Any]) -> dict[str, Any]:
    return {
        "agent": request.get(AGENT_REQUEST_KEY),
        "presence": request.get(PRESENCE_REQUEST_KEY),
        "here": request.path_qs,
        "domain_intents": domain_intents(),
        **_STATES,
        **context,
    }


def _html(request: web.Request, template: str, **context: Any) -> str:
    return (
        request.app[TEMPLATES_KEY]
        .get_template(template)
        .render(_page_context(request, context))
    )


def _block(request: web.Request, template: str, block: str, **context: Any) -> str:
    """One block of a template, e.g. the presence control of the page header."""
    page = request.app[TEMPLATES_KEY].get_template(template)
    return "".join(page.blocks[block](page.new_context(_page_context(request, context))))


async def load_presence(request: web.Request) -> None:
    """Read the signed-in agent's presence for the page header."""
    agent = request.get(AGENT_REQUEST_KEY)
    if agent is not None:
        request[PRESENCE_REQUEST_KEY] = await asyncio.to_thread(
            request.app[STORE_KEY].presence, agent.login
        )


def render(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    html = _html(request, template, **context)
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")


async def _ticket_or_404(request: web.Request, ticket_id: str) -> Ticket:
    try:
        return await asyncio.to_thread(request.app[STORE_KEY].get, ticket_id)
    except TicketNotFound:
        html = _html(request, "not_found.html", ticket_id=ticket_id)
        raise web.HTTPNotFound(text=html, content_type="text/html") from None


def _split_queue(open_tickets: list[Ticket]) -> dict[str, Any]:
    """Waiting tickets (the queue) and claimed ones, each still by priority then waiting time."""
    waiting = [t for t in open_tickets if t.state == WAITING]
    assigned = [t for t in open_tickets if t.state != WAITING]
    return {"waiting_tickets": waiting, "assigned_tickets": assigned}


async def _queue(request: web.Request) -> tuple[dict[str, Any], list[Ticket]]:
    open_tickets, closed = await asyncio.to_thread(request.app[STORE_KEY].inbox)
    return {"open_tickets": open_tickets, **_split_queue(open_tickets)}, closed


# --- pages ---------------------------------------------------------------------------------------


async def inbox(request: web.Request) -> web.Response:
    queue, closed = await _queue(request)
    return render(request, "inbox.html", closed_tickets=closed, live=True, **queue)


async def inbox_partial(request: web.Request) -> web.Response:
    """The inbox's changing parts as HTML fragments, for the live page."""
    queue, closed = await _queue(request)
    return web.json_response(
        {
            "html": {
                "queue": _html(request, "_inbox_queue.html", **queue),
                "closed": _html(request, "_inbox_closed.html", closed_tickets=closed),
                "presence": _block(request, "base.html", "presence", here="/"),
            },
            "waiting": len(queue["waiting_tickets"]),
            "open": len(queue["open_tickets"]),
        }
    )


async def ticket_page(request: web.Request) -> web.Response:
    ticket_id = request.match_info["ticket_id"]
    ticket = await _ticket_or_404(request, ticket_id)
    queue, _closed = await _queue(request)
    flash_key = request.cookies.get(FLASH_COOKIE)
    flash = request.app[FLASH_KEY].pop(flash_key, ticket_id)
    contacts = await ticket_contacts(request, ticket)
    response = render(
        request, "ticket.html", ticket=ticket, flash=flash, live=True, contacts=contacts, **queue
    )
    if flash_key and flash is not None:
        response.del_cookie(FLASH_COOKIE, path="/")
    return response


async def ticket_partial(request: web.Request) -> web.Response:
    """A ticket page's changing parts as HTML fragments, for the live page."""
    ticket = await _ticket_or_404(request, request.match_info["ticket_id"])
    queue, _closed = await _queue(request)
    context = {"ticket": ticket, "flash": None, **queue}
    return web.json_response(
        {
            "html": {
                "ticket-head": _html(request, "_ticket_head.html", **context),
                "timeline": _html(request, "_ticket_timeline.html", **context),
                "work": _html(request, "_ticket_work.html", **context),
                "sidebar": _html(request, "_sidebar_queue.html", **context),
                "presence": _block(
                    request, "base.html", "presence", here=f"/tickets/{quote(ticket.ticket_id)}"
                ),
            },
            "state": ticket.state,
            "agent": ticket.agent_name,
            "waiting": len(queue["waiting_tickets"]),
        }
    )


_KEEPALIVE = object()


async def _session_still_live(request: web.Request) -> bool:
    """Whether the session that opened this stream is still valid (without renewing it)."""
    agent = await asyncio.to_thread(
        request.app[SESSIONS_KEY].verify,
        request.cookies.get(SESSION_COOKIE),
        request.app[AGENTS_KEY],
        touch=False,
    )
    return agent is not None


async def events(request: web.Request) -> web.StreamResponse:
    """``text/event-stream`` of ticket changes for the signed-in agent's open pages."""
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache, no-transform",
            "X-Accel-Buffering": "no",  # no buffering in an nginx in front
        }
    )
    await response.prepare(request)
    live = request.app[LIVE_KEY]
    loop = asyncio.get_running_loop()
    session_checked = loop.time()
    try:
        await response.write(f"retry: {RETRY_MILLISECONDS}\n: connected\n\n".encode())
        async with live.subscribe() as queue:
            while True:
                try:
                    change = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
                except asyncio.TimeoutError:
                    change = _KEEPALIVE
                # A stream outlives its request: end it once the session is signed out elsewhere,
                # revoked or expired (the page's reconnect then meets the sign-in check).
                # Checked at every keep-alive, and at least as often while changes flow.
                if change is _KEEPALIVE or loop.time() - session_checked >= KEEPALIVE_SECONDS:
                    session_checked = loop.time()
                    if not await _session_still_live(request):
                        break
                if change is _KEEPALIVE:
                    await response.write(b": keep-alive\n\n")
                    continue
                if change is None:
                    break
                await response.write(change.as_sse())
    except ConnectionResetError:
        # The page was closed or reloaded; nothing to clean up beyond the subscription.
        pass
    return response


async def health(request: web.Request) -> web.Response:
    try:
        open_count = await asyncio.to_thread(request.app[STORE_KEY].count_open)
    except Exception as exc:  # the point of a health check is to report any failure
        logger.error("health check failed: %s", exc)
        return web.json_response({"status": "error", "message": "database unavailable"}, status=503)
    return web.json_response({"status": "ok", "service": "helpdesk", "open_tickets": open_count})


# --- agent actions -------------------------------------------------------------------------------


def check_same_origin(request: web.Request) -> None:
    """Refuse form posts made by other sites in the agent's browser (cross-site request forgery)."""
    origin = request.headers.get("Origin")
    if origin is None:
        referer = request.headers.get("Referer")
        if referer is None:
            return
        origin = referer
    if origin == "null" or urlsplit(origin).netloc != request.host:
        raise web.HTTPForbidden(text="Form posts are only accepted from the helpdesk's own pages.")


def _back(request: web.Request, ticket_id: str, flash: Flash | None = None) -> web.HTTPSeeOther:
    """303 to the ticket page, with a one-time notice when there is one."""
    response = web.HTTPSeeOther(location=f"/tickets/{quote(ticket_id)}")
    if flash is not None:
        key = request.app[FLASH_KEY].put(flash)
        response.set_cookie(FLASH_COOKIE, key, max_age=600, path="/", httponly=True, samesite="Lax")
    return response


def _failed(action: str, delivery: Delivery) -> str:
    if delivery.status is None:
        return f"{action} was not sent: {delivery.message}."
    return f"{action} failed: the assistant answered {delivery.status}: {delivery.message}"


async def _form(request: web.Request) -> tuple[str, dict[str, str]]:
    check_same_origin(request)
    ticket_id = request.match_info["ticket_id"]
    form = await request.post()
    fields = {key: str(value) for key, value in form.items() if isinstance(value, str)}
    return ticket_id, fields


def _closed_flash(ticket: Ticket, **drafts: str) -> Flash:
    return Flash(ticket.ticket_id, "error", "This ticket is closed; nothing was sent.", **drafts)


def _taken_flash(ticket: Ticket, action: str, **drafts: str) -> Flash:
    return Flash(
        ticket.ticket_id,
        "error",
        f"{ticket.agent_name} is handling this conversation; nothing was sent. "
        f"Take it over first if you want to {action}.",
        **drafts,
    )


async def _send(request: web.Request, ticket: Ticket, event: str, agent: Agent, **fields: Any):
    return await request.app[ASSISTANT_KEY].send(
        event,
        handoff_id=ticket.handoff_id,
        conversation_id=ticket.conversation_id,
        agent_name=agent.name,
        **fields,
    )


async def _claim(request: web.Request, ticket: Ticket, agent: Agent) -> Delivery:
    """Send ``agent.joined`` and, once the assistant accepted it, record the claim."""
    previous = ticket.agent_name if ticket.state == ASSIGNED else None
    delivery = await _send(request, ticket, "agent.joined", agent)
    if delivery.ok:
        await asyncio.to_thread(
            request.app[STORE_KEY].record_join, ticket.ticket_id, agent.name, previous
        )
        request.app[LIVE_KEY].publish("claimed", ticket.ticket_id, agent.name)
        logger.info(
            "%s %s ticket %s",
            agent.login,
            f"took over from {previous}" if previous else "claimed",
            ticket.ticket_id,
        )
    return delivery


async def _claim_action(request: web.Request, *, take_over: bool) -> web.Response:
    ticket_id, _form_fields = await _form(request)
    agent = current_agent(request)
    async with request.app[LOCKS_KEY].hold(ticket_id):
        ticket = await _ticket_or_404(request, ticket_id)
        if ticket.state == CLOSED:
            raise _back(request, ticket_id, _closed_flash(ticket))
        if ticket.state == ASSIGNED and ticket.agent_name == agent.name:
            raise _back(request, ticket_id, Flash(ticket_id, "info", "You are already handling this."))
        if ticket.state == ASSIGNED and not take_over:
            # Someone claimed it meanwhile: taking a colleague's conversation must be deliberate.
            message = f"{ticket.agent_name} claimed this conversation first. Use Take over to take it from them."
            raise _back(request, ticket_id, Flash(ticket_id, "error", message))
        delivery = await _claim(request, ticket, agent)
    action = "Take-over" if take_over and ticket.state == ASSIGNED else "Claim"
    if not delivery.ok:
        raise _back(request, ticket_id, Flash(ticket_id, "error", _failed(action, delivery)))
    raise _back(request, ticket_id)


async def join(request: web.Request) -> web.Response:
    """Claim a waiting ticket: the customer is told that the signed-in agent joined."""
    return await _claim_action(request, take_over=False)


def _problem(request: web.Request, ticket_id: str, draft_text: str, draft_note: str) -> Callable[[str], web.HTTPSeeOther]:
    """A redirect back to the ticket with ``message`` as an error, keeping what the agent typed."""

    def problem(message: str) -> web.HTTPSeeOther:
        flash = Flash(ticket_id, "error", message, draft_text=draft_text, draft_note=draft_note)
        return _back(request, ticket_id, flash)

    return problem


async def take_over(request: web.Request) -> web.Response:
    """Take a ticket from the colleague handling it (the customer is told who joined)."""
    return await _claim_action(request, take_over=True)


async def _agent_form(request: web.Request) -> tuple[str, Any, str, str]:
    """The ticket, the signed-in agent, and the message and note fields of a ticket's form."""
    ticket_id, form = await _form(request)
    return ticket_id, current_agent(request), form.get("text", ""), form.get("note", "")


def _check_length(problem: Any, what: str, value: str) -> None:
    if len(value) > MAX_TEXT:
        raise problem(f"The {what} is {len(value)} characters long; the limit is {MAX_TEXT}.")


async def reply(request: web.Request) -> web.Response:
    ticket_id, agent, text, note = await _agent_form(request)
    text = text.strip()
    problem = _problem(request, ticket_id, draft_text=text, draft_note=note)
    if not text:
        raise problem("Write a message first.")
    _check_length(problem, "message", text)
    async with request.app[LOCKS_KEY].hold(ticket_id):
        ticket = await _ticket_or_404(request, ticket_id)
        if ticket.state == CLOSED:
            raise _back(request, ticket_id, _closed_flash(ticket, draft_text=text))
        if ticket.state == ASSIGNED and ticket.agent_name != agent.name:
            raise _back(request, ticket_id, _taken_flash(ticket, "reply", draft_text=text))
        if ticket.state == WAITING:
            # The customer must know who they are talking to: replying claims the ticket first.
            delivery = await _claim(request, ticket, agent)
            if not delivery.ok:
                raise problem(_failed("Claiming (before your reply)", delivery))
        delivery = await _send(request, ticket, "agent.message", agent, text=text)
        if not delivery.ok:
            raise problem(_failed("Reply", delivery))
        await asyncio.to_thread(
            request.app[STORE_KEY].record_agent_message, ticket_id, agent.name, text
        )
    request.app[LIVE_KEY].publish("replied", ticket_id, agent.name)
    raise _back(request, ticket_id)


@dataclass(frozen=True)
class WrapUpFlash(Flash):
    """A notice after a hand-back or wrap-up that did not happen, with the wrap-up's choices."""

    wrap_up_outcome: str = ""
    wrap_up_why: str = ""
    wrap_up_intent: str = ""


def _wrap_up_choices(form: Mapping[str, str]) -> dict[str, str]:
    return {f"wrap_up_{name}": form.get(name, "").strip() for name in WRAP_UP_FIELDS}


def _wrap_up_problem(
    request: web.Request, ticket_id: str, choices: dict[str, str], **drafts: str
) -> Callable[[str], web.HTTPSeeOther]:
    """A redirect back to the ticket with ``message`` as an error, keeping what the agent typed
    and chose."""

    def problem(message: str) -> web.HTTPSeeOther:
        return _back(request, ticket_id, WrapUpFlash(ticket_id, "error", message, **drafts, **choices))

    return problem


def check_wrap_up(problem: Callable[[str], Exception], choices: dict[str, str]) -> dict[str, Any]:
    """The ``wrap_up`` object of agent.handback from the form's choices; ``problem`` says what
    is missing or wrong. The intent counts only when the bot misunderstood."""
    outcome, why, intent = (choices[f"wrap_up_{name}"] for name in WRAP_UP_FIELDS)
    if outcome not in WRAP_UP_OUTCOMES:
        raise problem(
            "Wrap-up: choose the outcome (resolved, needs follow-up or not resolved)."
            if not outcome
            else f"Wrap-up: there is no outcome {outcome[:40]!r}."
        )
    if why not in WRAP_UP_REASONS:
        raise problem(
            "Wrap-up: choose why a person was needed."
            if not why
            else f"Wrap-up: there is no reason {why[:40]!r} for needing a person."
        )
    wrap_up: dict[str, Any] = {"outcome": outcome, "why": why, "intent": None, "new_topic": False}
    if why != BOT_MISUNDERSTOOD:
        return wrap_up
    if intent == NEW_TOPIC:
        wrap_up["new_topic"] = True
    elif not intent:
        raise problem(
            "Wrap-up: the bot misunderstood, so choose which intent the customer's message "
            "should have been, or “new topic” when none fits."
        )
    elif intent not in domain_intents():
        raise problem(f"Wrap-up: {intent[:64]!r} is not an intent of the assistant's domain.")
    else:
        wrap_up["intent"] = intent
    return wrap_up


async def handback(request: web.Request) -> web.Response:
    """Give the conversation back to the bot, with the agent's note and wrap-up.

    The console's form always has the wrap-up, and then outcome and why are required; a post
    without any of its fields (a page opened before they existed, a script) hands back without one.
    """
    ticket_id, form = await _form(request)
    agent = current_agent(request)
    draft_text, note = form.get("text", ""), form.get("note", "").strip()
    choices = _wrap_up_choices(form)
    problem = _wrap_up_problem(request, ticket_id, choices, draft_text=draft_text, draft_note=note)
    _check_length(problem, "note", note)
    wrap_up = check_wrap_up(problem, choices) if any(k in form for k in WRAP_UP_FIELDS) else None
    async with request.app[LOCKS_KEY].hold(ticket_id):
        ticket = await _ticket_or_404(request, ticket_id)
        if ticket.state == CLOSED:
            raise _back(request, ticket_id, _closed_flash(ticket))
        if ticket.state == ASSIGNED and ticket.agent_name != agent.name:
            raise problem(_taken_flash(ticket, "hand it back").message)
        fields: dict[str, Any] = {"note": note} if note else {}
        if wrap_up is not None:
            fields["wrap_up"] = wrap_up
        delivery = await _send(request, ticket, "agent.handback", agent, **fields)
        if not delivery.ok:
            raise problem(_failed("Hand-back", delivery))
        await asyncio.to_thread(
            request.app[STORE_KEY].record_handback, ticket_id, agent.name, note or None, wrap_up
        )
    request.app[LIVE_KEY].publish("closed", ticket_id, agent.name)
    logger.info("%s handed ticket %s back to the bot", agent.login, ticket_id)
    raise _back(request, ticket_id)


async def wrap_up(request: web.Request) -> web.Response:
    """Record the wrap-up of a closed ticket that has none (e.g. one the assistant ended): in the
    helpdesk only, nothing is sent, the handoff being over. A ticket is wrapped up once."""
    ticket_id, form = await _form(request)
    agent = current_agent(request)
    note = form.get("note", "").strip()
    choices = _wrap_up_choices(form)
    problem = _wrap_up_problem(request, ticket_id, choices, draft_note=note)
    _check_length(problem, "note", note)
    wrap = check_wrap_up(problem, choices)
    async with request.app[LOCKS_KEY].hold(ticket_id):
        ticket = await _ticket_or_404(request, ticket_id)
        if ticket.state != CLOSED:
            raise problem("This ticket is still open: its wrap-up goes with the hand-back.")
        try:
            await asyncio.to_thread(
                request.app[STORE_KEY].record_wrap_up, ticket_id, agent.name, wrap, note or None
            )
        except WrapUpExists as exc:
            by = f" by {exc.author}" if exc.author else ""
            raise _back(
                request, ticket_id, Flash(ticket_id, "error", f"This ticket was wrapped up already{by}; nothing was changed.")
            ) from None
    request.app[LIVE_KEY].publish("wrapped_up", ticket_id, agent.name)
    logger.info("%s wrapped up ticket %s", agent.login, ticket_id)
    raise _back(request, ticket_id, Flash(ticket_id, "info", "Wrap-up recorded."))


@dataclass(frozen=True)
class TransferFlash(Flash):
    """A notice after a transfer that did not happen, with the transfer's own draft."""

    transfer_note: str = ""
    transfer_queue: str = ""


async def transfer(request: web.Request) -> web.Response:
    """Move the ticket to another queue: the assistant tells the customer and the ticket waits
    there again, unassigned. Only the agent handling it, or anyone while it waits, may."""
    ticket_id, form = await _form(request)
    agent = current_agent(request)
    queue = form.get("queue", "").strip()
    note = form.get("note", "").strip()

    def problem(message: str) -> web.HTTPSeeOther:
        flash = TransferFlash(
            ticket_id, "error", message, transfer_note=note, transfer_queue=queue
        )
        return _back(request, ticket_id, flash)

    if not note:
        raise problem("Write a note for your colleagues first: why is it transferred?")
    if len(note) > MAX_TRANSFER_NOTE:
        raise problem(
            f"The transfer note is {len(note)} characters long; the limit is {MAX_TRANSFER_NOTE}."
        )
    async with request.app[LOCKS_KEY].hold(ticket_id):
        ticket = await _ticket_or_404(request, ticket_id)
        if ticket.state == CLOSED:
            raise _back(request, ticket_id, _closed_flash(ticket))
        if ticket.state == ASSIGNED and ticket.agent_name != agent.name:
            message = _taken_flash(ticket, "transfer it").message
            raise problem(message)
        targets = {choice.name for choice in transfer_targets(ticket)}
        if queue == ticket.queue:
            raise problem(f"This ticket is already in the {queue} queue; choose another queue.")
        if queue not in targets:
            raise problem("Choose the queue to transfer to." if not queue else f"There is no queue {queue!r}.")
        source = ticket.queue
        delivery = await _send(request, ticket, "agent.transferred", agent, queue=queue, note=note)
        if not delivery.ok:
            raise problem(_failed("Transfer", delivery))
        await asyncio.to_thread(
            request.app[STORE_KEY].record_transfer, ticket_id, agent.name, queue, note
        )
    request.app[LIVE_KEY].publish("transferred", ticket_id, agent.name)
    logger.info("%s transferred ticket %s from %s to %s", agent.login, ticket_id, source, queue)
    raise _back(request, ticket_id, Flash(ticket_id, "info", f"Transferred to the {queue} queue."))


async def set_presence(request: web.Request) -> web.Response:
    """The signed-in agent becomes available, away or offline (form field ``status``)."""
    check_same_origin(request)
    form = await request.post()
    status = form.get("status")
    if status not in PRESENCE_STATES:
        raise web.HTTPBadRequest(
            text=f"status must be one of: {', '.join(PRESENCE_STATES)}", content_type="text/plain"
        )
    agent = current_agent(request)
    await asyncio.to_thread(request.app[STORE_KEY].set_presence, agent.login, status)
    request.app[LIVE_KEY].publish("presence", None, agent.name)
    logger.info("%s is now %s", agent.login, presence_label(str(status)).lower())
    raise web.HTTPSeeOther(location=local_path(form.get("next")))
