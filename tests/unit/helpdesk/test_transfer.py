"""Transferring a ticket to another queue: agent.transferred to the assistant, and only once the
assistant accepted it the ticket waits in the new queue, unassigned, with the transfer on its
timeline."""

from __future__ import annotations

import json
import uuid
from html import unescape

import pytest
from aiohttp.test_utils import TestClient, TestServer

from handoff.schemas import validate_inbound
from helpdesk.assistant import ATTEMPTS
from helpdesk.keys import STORE_KEY
from helpdesk.presentation import STANDARD_QUEUES, queue_choices, transfer_parts
from helpdesk.store import TicketStore
from tests.helpdesk_support import (
    deliver,
    make_app,
    make_settings,
    page,
    request_handoff,
    sign_in,
)
from tests.support import handoff_ended


def store_of(client: TestClient) -> TicketStore:
    return client.server.app[STORE_KEY]


async def claimed_ticket(helpdesk, **fields) -> tuple[dict, str]:
    """A ticket Grace has claimed; its request body and page path."""
    body, answer = await request_handoff(helpdesk, **fields)
    path = f"/tickets/{answer['ticket_id']}"
    response = await helpdesk.post(f"{path}/join", allow_redirects=False)
    assert response.status == 303
    return body, path


def transfer_form(html: str) -> str:
    return html.split('<form class="transfer"', 1)[1].split("</form>", 1)[0]


async def test_a_transfer_is_sent_and_then_recorded(helpdesk, assistant):
    request, path = await claimed_ticket(helpdesk)
    ticket_id = path.rsplit("/", 1)[1]
    joined_at = store_of(helpdesk).get(ticket_id).joined_at
    assert joined_at is not None

    response = await helpdesk.post(
        f"{path}/transfer", data={"queue": "sales", "note": "  Wants a quote for 40 seats.  "}
    )
    assert response.status == 200

    headers, body = assistant.received[-1]
    assert body == {
        "event": "agent.transferred",
        "event_id": body["event_id"],
        "handoff_id": request["handoff_id"],
        "conversation_id": request["conversation_id"],
        "agent": {"name": "Grace"},
        "queue": "sales",
        "note": "Wants a quote for 40 seats.",
    }
    assert headers["X-Handoff-Delivery"] == body["event_id"]
    assert uuid.UUID(body["event_id"]).version == 4
    assert validate_inbound(body) is body

    ticket = store_of(helpdesk).get(ticket_id)
    assert (ticket.queue, ticket.state, ticket.agent_name) == ("sales", "waiting", None)
    assert ticket.joined_at == joined_at  # kept
    entry = ticket.entries[-1]
    assert (entry.kind, entry.author) == ("transfer", "Grace")
    assert json.loads(entry.text) == {
        "from": "support",
        "to": "sales",
        "note": "Wants a quote for 40 seats.",
    }

    detail = await response.text()
    assert "Transferred to the sales queue." in detail
    timeline = unescape(detail.split("Since the handoff", 1)[1])
    moved = timeline.split("Grace transferred the conversation", 1)[1].split("</li>", 1)[0]
    assert ">support → sales</span>" in moved
    assert "“Wants a quote for 40 seats.”" in moved
    assert "Nobody has claimed this yet" in detail  # waiting again, for anyone
    assert "with Grace" not in detail.split("Since the handoff", 1)[0]


async def test_a_waiting_ticket_can_be_transferred_by_anyone(helpdesk, alan, assistant):
    _, answer = await request_handoff(helpdesk, queue="sales")
    path = f"/tickets/{answer['ticket_id']}"
    response = await alan.post(f"{path}/transfer", data={"queue": "supervisor", "note": "Angry."})
    assert response.status == 200
    assert [(b["event"], b["agent"]["name"], b["queue"]) for b in assistant.bodies] == [
        ("agent.transferred", "Alan", "supervisor")
    ]
    ticket = store_of(helpdesk).get(answer["ticket_id"])
    assert (ticket.queue, ticket.state, ticket.joined_at) == ("supervisor", "waiting", None)


async def test_the_transferred_ticket_waits_in_its_new_queue(helpdesk):
    await helpdesk.post("/presence", data={"status": "available"})
    _, path = await claimed_ticket(helpdesk, priority="normal")
    await helpdesk.post(f"{path}/transfer", data={"queue": "sales", "note": "For sales."})
    _, answer = await request_handoff(helpdesk, queue="sales", priority="normal")
    # Behind the transferred (older) ticket; Grace is free again.
    assert (answer["queue_position"], answer["agents_available"]) == (2, 1)
    assert answer["estimated_wait_seconds"] == 180
    _, support = await request_handoff(helpdesk, queue="support", priority="normal")
    assert support["queue_position"] == 1


@pytest.mark.parametrize(
    ("status", "answer", "shown"),
    [
        (
            409,
            {"error": "not_active", "message": "the handoff is no longer active"},
            "Transfer failed: the assistant answered 409: the handoff is no longer active",
        ),
        (
            400,
            {"error": "unknown_queue", "message": "no queue 'sales' in handoff_rules.yml"},
            "Transfer failed: the assistant answered 400: no queue &#39;sales&#39; in handoff_rules.yml",
        ),
        (500, {"message": "boom"}, "Transfer failed: the assistant answered 500: boom"),
    ],
)
async def test_a_refused_transfer_records_nothing_and_keeps_the_draft(
    helpdesk, assistant, status, answer, shown
):
    _, path = await claimed_ticket(helpdesk)
    ticket_id = path.rsplit("/", 1)[1]
    assistant.status = status
    assistant.answer = answer

    response = await helpdesk.post(
        f"{path}/transfer", data={"queue": "sales", "note": "Wants a quote."}
    )
    detail = await response.text()
    assert 'class="banner error"' in detail and shown in detail
    form = transfer_form(detail)
    assert 'value="Wants a quote."' in form  # the note is kept
    assert '<option value="sales" selected>' in form  # and the queue chosen
    # A 5xx is a temporary failure: the same event is sent again (helpdesk/assistant.py).
    tries = ATTEMPTS if status >= 500 else 1
    assert [b["event"] for b in assistant.bodies] == ["agent.joined"] + ["agent.transferred"] * tries
    assert len({b["event_id"] for b in assistant.bodies[1:]}) == 1

    ticket = store_of(helpdesk).get(ticket_id)
    assert (ticket.queue, ticket.state, ticket.agent_name) == ("support", "assigned", "Grace")
    assert [entry.kind for entry in ticket.entries] == ["joined"]
    assert "transferred the conversation" not in await page(helpdesk, path)


async def test_an_unreachable_assistant_records_nothing(assistant, database_url, unused_tcp_port):
    settings = make_settings(f"http://127.0.0.1:{unused_tcp_port}")
    async with TestClient(TestServer(make_app(settings, database_url))) as client:
        await sign_in(client)
        _, answer = await request_handoff(client)
        path = f"/tickets/{answer['ticket_id']}"
        response = await client.post(f"{path}/transfer", data={"queue": "sales", "note": "Quote."})
        detail = await response.text()
        ticket = store_of(client).get(answer["ticket_id"])
    assert "Transfer was not sent: could not reach the assistant" in detail
    assert (ticket.queue, ticket.entries) == ("support", [])


async def test_a_colleagues_ticket_cannot_be_transferred(helpdesk, alan, assistant):
    _, path = await claimed_ticket(helpdesk)
    detail = await page(alan, path)
    form = transfer_form(detail)
    assert "disabled" in form.split('name="queue"', 1)[1].split(">", 1)[0]
    response = await alan.post(f"{path}/transfer", data={"queue": "sales", "note": "Mine now."})
    refused = await response.text()
    assert "Grace is handling this conversation; nothing was sent." in refused
    assert [b["event"] for b in assistant.bodies] == ["agent.joined"]
    assert store_of(helpdesk).get(path.rsplit("/", 1)[1]).queue == "support"


async def test_a_closed_ticket_cannot_be_transferred(helpdesk, assistant):
    body, answer = await request_handoff(helpdesk)
    ended = handoff_ended(handoff_id=body["handoff_id"], conversation_id=body["conversation_id"])
    await deliver(helpdesk, ended)
    path = f"/tickets/{answer['ticket_id']}"
    assert '<form class="transfer"' not in await page(helpdesk, path)
    response = await helpdesk.post(f"{path}/transfer", data={"queue": "sales", "note": "Late."})
    assert "This ticket is closed; nothing was sent." in await response.text()
    assert assistant.received == []


@pytest.mark.parametrize(
    ("form", "problem"),
    [
        ({"queue": "sales", "note": "   "}, "Write a note for your colleagues first"),
        ({"queue": "sales"}, "Write a note for your colleagues first"),
        (
            {"queue": "sales", "note": "x" * 2001},
            "The transfer note is 2001 characters long; the limit is 2000.",
        ),
        ({"queue": "support", "note": "Again."}, "This ticket is already in the support queue"),
        ({"queue": "nowhere", "note": "Where?"}, "There is no queue &#39;nowhere&#39;."),
        ({"queue": "", "note": "Which?"}, "Choose the queue to transfer to."),
    ],
)
async def test_transfer_forms_are_checked_before_anything_is_sent(
    helpdesk, assistant, form, problem
):
    _, path = await claimed_ticket(helpdesk)
    response = await helpdesk.post(f"{path}/transfer", data=form)
    detail = await response.text()
    assert problem in detail
    assert [b["event"] for b in assistant.bodies] == ["agent.joined"]
    assert store_of(helpdesk).get(path.rsplit("/", 1)[1]).queue == "support"


async def test_a_note_of_exactly_the_limit_is_sent(helpdesk, assistant):
    _, path = await claimed_ticket(helpdesk)
    await helpdesk.post(f"{path}/transfer", data={"queue": "sales", "note": "y" * 2000})
    assert assistant.bodies[-1]["note"] == "y" * 2000


async def test_the_ticket_page_offers_the_other_queues(helpdesk):
    _, path = await claimed_ticket(helpdesk, queue="sales")
    form = transfer_form(await page(helpdesk, path))
    ticket_id = path.rsplit("/", 1)[1]
    assert f'action="/tickets/{ticket_id}/transfer"' in form
    assert 'name="queue"' in form and 'name="note"' in form
    assert 'maxlength="2000"' in form and "required" in form
    assert '<option value="support"' in form and '<option value="supervisor"' in form
    assert '<option value="sales"' not in form  # its own queue


def test_the_standard_queues_are_always_offered():
    names = [choice.name for choice in queue_choices()]
    assert names[: len(STANDARD_QUEUES)] == list(STANDARD_QUEUES)
    assert len(names) == len(set(names))


def test_transfer_entries_read_back():
    parts = transfer_parts(json.dumps({"from": "support", "to": "sales", "note": "n"}))
    assert (parts.source, parts.target, parts.note) == ("support", "sales", "n")
    odd = transfer_parts("not json")
    assert (odd.source, odd.target, odd.note) == ("?", "?", "not json")


async def test_transfers_are_refused_from_other_sites_and_without_a_session(helpdesk, assistant):
    _, path = await claimed_ticket(helpdesk)
    response = await helpdesk.post(
        f"{path}/transfer",
        data={"queue": "sales", "note": "x"},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status == 403
    helpdesk.session.cookie_jar.clear()
    response = await helpdesk.post(f"{path}/transfer", data={"queue": "sales", "note": "x"})
    assert response.status == 401
    assert [b["event"] for b in assistant.bodies] == ["agent.joined"]
