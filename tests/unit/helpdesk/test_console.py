"""The embedded helpdesk: its signed webhook, its pages and the agent actions it sends."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from datetime import timedelta
from html.parser import HTMLParser
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from handoff.schemas import validate_inbound
from handoff.signing import sign_headers
from helpdesk.db import HANDED_BACK, Ticket, create_engine_for, init_database, utcnow
from helpdesk.presentation import browser_label, customer_fields, is_verified
from helpdesk.sessions import SessionStore
from helpdesk.store import TicketStore
from tests.helpdesk_support import (
    GRACE,
    SECRET,
    deliver,
    make_app,
    make_settings,
    page,
    request_handoff,
    sign_in,
)
from tests.support import conversation_message, handoff_ended, handoff_requested


class FormParser(HTMLParser):
    """Collects the names of form fields and the URLs that forms and buttons post to."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: set[str] = set()
        self.actions: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag in ("input", "textarea") and attributes.get("name"):
            self.fields.add(attributes["name"])
        for key in ("action", "formaction"):
            if attributes.get(key):
                self.actions.add(attributes[key])


# --- webhook ------------------------------------------------------------------------------------


async def test_handoff_requested_answers_ticket_and_wait(helpdesk):
    await helpdesk.post("/presence", data={"status": "available"})  # Grace takes customers
    _, first = await request_handoff(helpdesk)
    _, second = await request_handoff(helpdesk)
    assert re.fullmatch(r"HD-[0-9A-F]{8}", first["ticket_id"])
    assert first["ticket_id"] != second["ticket_id"]
    assert first["estimated_wait_seconds"] == 0  # nobody ahead
    assert second["estimated_wait_seconds"] == 180  # one ahead, default handling time
    assert second["estimated_wait_seconds"] > first["estimated_wait_seconds"]


async def test_wait_counts_only_tickets_served_first(helpdesk):
    await helpdesk.post("/presence", data={"status": "available"})  # Grace takes customers
    await request_handoff(helpdesk, priority="normal")
    await request_handoff(helpdesk, priority="normal")
    _, urgent = await request_handoff(helpdesk, priority="urgent")
    _, low = await request_handoff(helpdesk, priority="low")
    assert urgent["estimated_wait_seconds"] == 0
    assert low["estimated_wait_seconds"] == 3 * 180


async def test_missing_signature_is_401(helpdesk):
    body = handoff_requested()
    response = await helpdesk.post("/webhook", json=body)
    assert response.status == 401
    assert "missing" in (await response.json())["message"]


async def test_wrong_signature_is_401(helpdesk):
    status, answer = await deliver(helpdesk, handoff_requested(), secret="not-the-secret")
    assert status == 401
    assert answer["error"] == "invalid_signature"
    assert "does not match" in answer["message"]


async def test_stale_timestamp_is_401(helpdesk):
    status, answer = await deliver(helpdesk, handoff_requested(), now=time.time() - 301)
    assert status == 401
    assert "300 s" in answer["message"]


async def test_malformed_json_is_400(helpdesk):
    status, answer = await deliver(helpdesk, {}, raw=b'{"event": "handoff.requested",')
    assert status == 400
    assert answer["error"] == "invalid_json"
    assert "not valid JSON" in answer["message"]


async def test_schema_invalid_body_is_400_with_the_problem(helpdesk):
    status, answer = await deliver(helpdesk, handoff_requested(priority="asap"))
    assert status == 400
    assert answer["error"] == "invalid_body"
    assert answer["message"].startswith("handoff.requested: at priority: 'asap' is not one of")


async def test_helpdesk_events_are_not_accepted_here(helpdesk):
    body = {"event": "agent.joined", "event_id": str(uuid.uuid4())}
    status, answer = await deliver(helpdesk, body)
    assert status == 400
    assert "unknown event 'agent.joined'" in answer["message"]


async def test_body_over_the_limit_is_413(assistant, database_url):
    settings = make_settings(assistant.url, max_body_bytes=2000)
    async with TestClient(TestServer(make_app(settings, database_url))) as client:
        body = handoff_requested(reason_text="x" * 3000)
        status, answer = await deliver(client, body)
    assert status == 413
    assert "2000 bytes" in answer["message"]


async def test_delivery_header_must_match_event_id(helpdesk):
    body = handoff_requested()
    data = json.dumps(body).encode()
    headers = sign_headers(SECRET, data, str(uuid.uuid4()))
    response = await helpdesk.post("/webhook", data=data, headers=headers)
    assert response.status == 400
    assert "X-Handoff-Delivery" in (await response.json())["message"]


async def test_repeated_event_id_is_answered_once(helpdesk):
    body = handoff_requested()
    first = await deliver(helpdesk, body)
    again = await deliver(helpdesk, body)
    assert again == first
    inbox = await page(helpdesk, "/")
    assert inbox.count(f'href="/tickets/{first[1]["ticket_id"]}"') == 1

    message = conversation_message(
        handoff_id=body["handoff_id"], conversation_id=body["conversation_id"]
    )
    message["message"]["text"] = "is anybody there"
    assert await deliver(helpdesk, message) == await deliver(helpdesk, message)
    detail = await page(helpdesk, f"/tickets/{first[1]['ticket_id']}")
    assert detail.count("is anybody there") == 1


async def test_concurrent_repeats_create_one_ticket(helpdesk):
    body = handoff_requested()
    answers = await asyncio.gather(*(deliver(helpdesk, body) for _ in range(6)))
    assert all(answer == answers[0] for answer in answers)
    assert answers[0][0] == 200
    inbox = await page(helpdesk, "/")
    assert len(re.findall(r'href="/tickets/HD-', inbox)) == 1


async def test_conversation_message_is_shown_on_the_ticket(helpdesk):
    body, answer = await request_handoff(helpdesk)
    message = conversation_message(
        handoff_id=body["handoff_id"], conversation_id=body["conversation_id"]
    )
    message["message"]["text"] = "My order number is 4411"
    status, reply = await deliver(helpdesk, message)
    assert (status, reply) == (200, {"ticket_id": answer["ticket_id"]})
    detail = await page(helpdesk, f"/tickets/{answer['ticket_id']}")
    since = detail.split("Since the handoff", 1)[1]
    assert "My order number is 4411" in since


async def test_conversation_message_for_unknown_handoff_is_404(helpdesk):
    status, answer = await deliver(helpdesk, conversation_message())
    assert status == 404
    assert answer["error"] == "unknown_handoff"


async def test_handoff_ended_closes_the_ticket_with_its_cause(helpdesk):
    body, answer = await request_handoff(helpdesk)
    ended = handoff_ended(
        handoff_id=body["handoff_id"],
        conversation_id=body["conversation_id"],
        cause="customer_left",
    )
    assert (await deliver(helpdesk, ended))[0] == 200
    detail = await page(helpdesk, f"/tickets/{answer['ticket_id']}")
    assert "closed: the customer left" in detail
    assert "The assistant ended the handoff: the customer left." in detail
    assert "Send reply" not in detail
    inbox = await page(helpdesk, "/")
    assert "<h2>Closed</h2>" in inbox
    assert "closed: the customer left" in inbox.split("<h2>Closed</h2>", 1)[1]


# --- pages --------------------------------------------------------------------------------------


async def test_inbox_orders_open_tickets_by_priority_then_age(helpdesk):
    ids = {}
    for priority in ("low", "normal", "urgent", "high", "normal"):
        _, answer = await request_handoff(helpdesk, priority=priority)
        ids.setdefault(priority, []).append(answer["ticket_id"])
    closed_body, closed = await request_handoff(helpdesk, priority="urgent")
    ended = handoff_ended(
        handoff_id=closed_body["handoff_id"], conversation_id=closed_body["conversation_id"]
    )
    await deliver(helpdesk, ended)

    inbox = await page(helpdesk, "/")
    order = re.findall(r'href="/tickets/(HD-[0-9A-F]+)"', inbox)
    expected = ids["urgent"] + ids["high"] + ids["normal"] + ids["low"] + [closed["ticket_id"]]
    assert order == expected


async def test_inbox_shows_what_an_agent_needs(helpdesk):
    await request_handoff(
        helpdesk,
        reason="qualified_lead",
        queue="sales",
        language="nl",
        customer={"name": "Jan de Vries", "email": "jan@example.nl"},
        lead={"answers": {"company_size": "50-200"}, "score": 72},
    )
    inbox = await page(helpdesk, "/")
    for text in ("Qualified sales lead", "sales", "Dutch", "Jan de Vries", "jan@example.nl"):
        assert text in inbox
    assert "waiting" in inbox


async def test_ticket_page_shows_the_whole_handoff(helpdesk):
    _, answer = await request_handoff(
        helpdesk,
        reason="qualified_lead",
        lead={"answers": {"company_size": "50-200", "budget": "approved"}, "score": 72},
    )
    detail = await page(helpdesk, f"/tickets/{answer['ticket_id']}")
    for text in (
        "Qualified sales lead",
        "The customer is frustrated after two failed answers about a refund.",  # reason_text
        "complain (93%)",  # trigger
        "repeated_fallback",
        "Ada Lovelace",
        "ada@example.com",
        "socketio",
        "Firefox 126",
        "/orders",
        "company size",
        "approved",
        "72",
        "where is my refund",
        "ask_refund 41%",
        "Sorry, I did not get that.",
        "11:58:01",
        "Claim",
        "Send reply",
        "Hand back to the bot",
    ):
        assert text in detail, text


async def test_pages_escape_what_customers_type(helpdesk):
    _, answer = await request_handoff(helpdesk, customer={"name": "<script>alert(1)</script>"})
    for path in ("/", f"/tickets/{answer['ticket_id']}"):
        html = await page(helpdesk, path)
        assert "<script>alert(1)</script>" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


async def test_unknown_ticket_is_404(helpdesk):
    response = await helpdesk.get("/tickets/HD-00000000")
    assert response.status == 404
    assert "No ticket HD-00000000" in await response.text()


async def test_health(helpdesk):
    response = await helpdesk.get("/health")
    assert response.status == 200
    assert (await response.json())["status"] == "ok"


# --- agent actions ------------------------------------------------------------------------------


def assert_signed_contract_body(headers: dict[str, str], body: dict[str, Any], event: str) -> None:
    assert body["event"] == event
    assert headers["X-Handoff-Delivery"] == body["event_id"]
    assert uuid.UUID(body["event_id"]).version == 4
    assert validate_inbound(body) is body


async def test_claim_sends_agent_joined_and_records_it(helpdesk, assistant):
    request, answer = await request_handoff(helpdesk)
    ticket = f"/tickets/{answer['ticket_id']}"
    response = await helpdesk.post(f"{ticket}/join", allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == ticket

    [(headers, body)] = assistant.received
    assert_signed_contract_body(headers, body, "agent.joined")
    assert body == {
        "event": "agent.joined",
        "event_id": body["event_id"],
        "handoff_id": request["handoff_id"],
        "conversation_id": request["conversation_id"],
        "agent": {"name": "Grace"},
    }
    detail = await page(helpdesk, ticket)
    assert "with Grace" in detail
    assert "Grace joined the conversation." in detail
    assert "You are handling this conversation." in detail
    assert "with Grace" in await page(helpdesk, "/")


async def test_the_agent_name_sent_is_the_signed_in_agents(helpdesk, assistant):
    _, answer = await request_handoff(helpdesk)
    ticket = f"/tickets/{answer['ticket_id']}"
    # A name typed into a form (as the console once asked for) changes nothing.
    await helpdesk.post(f"{ticket}/reply", data={"agent": "Mallory", "text": "Hello"})
    assert {body["agent"]["name"] for body in assistant.bodies} == {"Grace"}


async def test_reply_before_claiming_claims_first(helpdesk, assistant):
    request, answer = await request_handoff(helpdesk)
    ticket = f"/tickets/{answer['ticket_id']}"
    response = await helpdesk.post(f"{ticket}/reply", data={"text": "  Hello, I am Grace.  "})
    assert response.status == 200

    (h1, joined), (h2, message) = assistant.received
    assert_signed_contract_body(h1, joined, "agent.joined")
    assert_signed_contract_body(h2, message, "agent.message")
    assert joined["event_id"] != message["event_id"]
    assert message["text"] == "Hello, I am Grace."
    assert message["agent"] == {"name": "Grace"}
    assert message["handoff_id"] == request["handoff_id"]

    detail = await response.text()
    since = detail.split("Since the handoff", 1)[1]
    assert since.index("Grace joined") < since.index("Hello, I am Grace.")


async def test_reply_after_claiming_sends_only_the_message(helpdesk, assistant):
    _, answer = await request_handoff(helpdesk)
    ticket = f"/tickets/{answer['ticket_id']}"
    await helpdesk.post(f"{ticket}/join")
    await helpdesk.post(f"{ticket}/reply", data={"text": "One moment."})
    assert [body["event"] for body in assistant.bodies] == ["agent.joined", "agent.message"]


async def test_a_claimed_ticket_shows_its_agent_and_others_must_take_over(
    helpdesk, alan, assistant
):
    _, answer = await request_handoff(helpdesk)
    ticket = f"/tickets/{answer['ticket_id']}"
    await helpdesk.post(f"{ticket}/join")

    # Alan sees who has it, everywhere.
    assert "with Grace" in await page(alan, "/")
    detail = await page(alan, ticket)
    assert "with Grace" in detail
    assert "Take over from Grace" in detail
    assert f'action="{ticket}/takeover"' in detail

    # Claiming, replying or handing back over Grace's head sends nothing.
    response = await alan.post(f"{ticket}/join")
    assert "Grace claimed this conversation first" in await response.text()
    response = await alan.post(f"{ticket}/reply", data={"text": "Let me help."})
    refused = await response.text()
    assert "Grace is handling this conversation; nothing was sent." in refused
    assert ">Let me help.</textarea>" in refused  # the draft is kept
    response = await alan.post(f"{ticket}/handback", data={"note": "done"})
    assert "Grace is handling this conversation; nothing was sent." in await response.text()
    assert [(b["event"], b["agent"]["name"]) for b in assistant.bodies] == [
        ("agent.joined", "Grace")
    ]

    # Taking over is explicit; the customer is told who joined, and the ticket says who had it.
    response = await alan.post(f"{ticket}/takeover")
    taken = await response.text()
    assert "Alan took the conversation over from Grace." in taken
    assert "with Alan" in taken
    await alan.post(f"{ticket}/reply", data={"text": "Hi, Alan here."})
    response = await helpdesk.post(f"{ticket}/reply", data={"text": "Still me."})
    assert "Alan is handling this conversation; nothing was sent." in await response.text()
    assert [(b["event"], b["agent"]["name"]) for b in assistant.bodies] == [
        ("agent.joined", "Grace"),
        ("agent.joined", "Alan"),
        ("agent.message", "Alan"),
    ]


async def test_two_agents_claiming_at_once_get_one_claim(helpdesk, alan, assistant):
    _, answer = await request_handoff(helpdesk)
    ticket = f"/tickets/{answer['ticket_id']}"
    first, second = await asyncio.gather(
        helpdesk.post(f"{ticket}/join"), alan.post(f"{ticket}/join")
    )
    pages = [await first.text(), await second.text()]
    assert [body["event"] for body in assistant.bodies] == ["agent.joined"]
    winner = assistant.bodies[0]["agent"]["name"]
    loser_page = pages[1] if winner == "Grace" else pages[0]
    assert f"{winner} claimed this conversation first" in loser_page


async def test_ticket_form_posts_the_fields_the_actions_read(helpdesk):
    _, answer = await request_handoff(helpdesk)
    ticket = f"/tickets/{answer['ticket_id']}"
    parser = FormParser()
    parser.feed(await page(helpdesk, ticket))
    assert {"text", "note"} <= parser.fields
    assert {f"{ticket}/join", f"{ticket}/reply", f"{ticket}/handback"} <= parser.actions


async def test_handback_sends_the_note_and_closes_the_ticket(helpdesk, assistant):
    _, answer = await request_handoff(helpdesk)
    ticket = f"/tickets/{answer['ticket_id']}"
    await helpdesk.post(f"{ticket}/join")
    response = await helpdesk.post(f"{ticket}/handback", data={"note": "Refund approved."})
    assert response.status == 200
    headers, body = assistant.received[-1]
    assert_signed_contract_body(headers, body, "agent.handback")
    assert body["note"] == "Refund approved."
    assert body["agent"] == {"name": "Grace"}
    detail = await response.text()
    assert "closed: handed back to the bot by Grace" in detail
    assert "Refund approved." in detail
    assert "Send reply" not in detail


async def test_handback_without_note_sends_no_note(helpdesk, assistant):
    _, answer = await request_handoff(helpdesk)
    await helpdesk.post(f"/tickets/{answer['ticket_id']}/handback")
    [body] = assistant.bodies
    assert body["event"] == "agent.handback"
    assert "note" not in body


async def test_assistant_409_is_shown_and_nothing_is_recorded(helpdesk, assistant):
    _, answer = await request_handoff(helpdesk)
    ticket = f"/tickets/{answer['ticket_id']}"
    assistant.status = 409
    assistant.answer = {"error": "not_active", "message": "the handoff is no longer active"}

    response = await helpdesk.post(f"{ticket}/reply", data={"text": "Hello?"})
    assert response.status == 200
    detail = await response.text()
    assert 'class="banner error"' in detail
    assert "the assistant answered 409: the handoff is no longer active" in detail
    assert ">Hello?</textarea>" in detail  # the draft is kept
    assert "Grace joined" not in detail
    assert "waiting" in detail
    assert [body["event"] for body in assistant.bodies] == ["agent.joined"]

    # The notice is shown once; the ticket records nothing.
    again = await page(helpdesk, ticket)
    assert "banner error" not in again
    assert "Nothing yet." in again

    response = await helpdesk.post(f"{ticket}/handback")
    assert "Hand-back failed: the assistant answered 409" in await response.text()
    assert "Send reply" in await page(helpdesk, ticket)  # still open
    assert "<h2>Closed</h2>" not in await page(helpdesk, "/")


async def test_unreachable_assistant_is_shown(assistant, database_url, unused_tcp_port):
    settings = make_settings(f"http://127.0.0.1:{unused_tcp_port}")
    async with TestClient(TestServer(make_app(settings, database_url))) as client:
        await sign_in(client)
        _, answer = await request_handoff(client)
        response = await client.post(f"/tickets/{answer['ticket_id']}/join")
        detail = await response.text()
    assert "Claim was not sent: could not reach the assistant" in detail
    assert "Grace joined" not in detail


async def test_empty_reply_is_refused_without_sending(helpdesk, assistant):
    _, answer = await request_handoff(helpdesk)
    response = await helpdesk.post(f"/tickets/{answer['ticket_id']}/reply", data={"text": "   "})
    assert "Write a message first." in await response.text()
    assert assistant.received == []


async def test_actions_need_a_signed_in_agent(helpdesk, assistant):
    _, answer = await request_handoff(helpdesk)
    helpdesk.session.cookie_jar.clear()
    for action in ("join", "takeover", "reply", "handback"):
        response = await helpdesk.post(
            f"/tickets/{answer['ticket_id']}/{action}", data={"agent": "Grace", "text": "Hi"}
        )
        assert response.status == 401, action
    assert assistant.received == []


async def test_actions_on_a_closed_ticket_send_nothing(helpdesk, assistant):
    body, answer = await request_handoff(helpdesk)
    ended = handoff_ended(handoff_id=body["handoff_id"], conversation_id=body["conversation_id"])
    await deliver(helpdesk, ended)
    response = await helpdesk.post(f"/tickets/{answer['ticket_id']}/reply", data={"text": "Hi"})
    assert "This ticket is closed; nothing was sent." in await response.text()
    assert assistant.received == []


async def test_cross_site_form_posts_are_refused(helpdesk, assistant):
    _, answer = await request_handoff(helpdesk)
    response = await helpdesk.post(
        f"/tickets/{answer['ticket_id']}/join",
        headers={"Origin": "https://evil.example"},
    )
    assert response.status == 403
    assert assistant.received == []


# --- waiting-time estimate ----------------------------------------------------------------------


def test_wait_uses_the_mean_handling_time_of_recent_handbacks(database_url):
    engine = create_engine_for(database_url)
    try:
        sessions = init_database(engine)
        store = TicketStore(sessions)
        SessionStore(sessions, SECRET).issue(GRACE)  # one agent signed in and available
        store.set_presence(GRACE.login, "available")
        with sessions() as session, session.begin():
            now = utcnow()
            for index, seconds in enumerate((60, 120)):
                session.add(
                    Ticket(
                        ticket_id=f"HD-DONE{index}",
                        handoff_id=str(uuid.uuid4()),
                        conversation_id="c",
                        reason="complex",
                        priority="normal",
                        priority_rank=2,
                        queue="support",
                        language="en",
                        payload={},
                        state="closed",
                        created_at=now - timedelta(seconds=600),
                        joined_at=now - timedelta(seconds=seconds),
                        closed_at=now,
                        close_cause=HANDED_BACK,
                    )
                )
        store.process_event(handoff_requested())
        second = store.process_event(handoff_requested())
        third = store.process_event(handoff_requested())
        assert second.data["estimated_wait_seconds"] == 90
        assert third.data["estimated_wait_seconds"] == 180
    finally:
        engine.dispose()


# --- presentation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "label"),
    [
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0",
            "Edge 126 · Windows",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
            "Safari 17 · iOS",
        ),
        ("Mozilla/5.0 (X11; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0", "Firefox 126 · Linux"),
        ("Firefox 126", "Firefox 126"),  # already short: as it is
    ],
)
def test_browsers_are_named_shortly(value, label):
    assert browser_label(value) == label


async def test_the_ticket_page_names_the_browser_and_keeps_the_user_agent(helpdesk):
    agent_string = "Mozilla/5.0 (X11; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0"
    _, answer = await request_handoff(helpdesk, channel={"name": "socketio", "browser": agent_string})
    detail = await page(helpdesk, f"/tickets/{answer['ticket_id']}")
    assert f'title="{agent_string}">Firefox 126 · Linux</dd>' in detail


def test_only_fields_the_assistant_verified_are_verified():
    customer = {
        "name": "Anna de Vries",
        "email": "anna@example.nl",
        "phone": "+31 6 1234 5678",
        "customer_id": "C-7",
        "verified": {"name": True, "customer_id": True, "email": False, "phone": "yes"},
        "sources": {"name": "identity", "customer_id": "identity", "email": "channel", "phone": "conversation"},
    }
    fields = {f.key: (f.value, f.verified, f.trust) for f in customer_fields(customer)}
    assert fields == {
        "name": ("Anna de Vries", True, "verified"),
        "email": ("anna@example.nl", False, "given by the customer, unverified"),
        "phone": ("+31 6 1234 5678", False, "given by the customer, unverified"),  # only true counts
        "customer_id": ("C-7", True, "verified"),
    }
    # Tickets without the flags (older assistants, older tickets) show nothing as verified.
    assert [f.verified for f in customer_fields({"name": "Anna", "company": "Northwind"})] == [False, False]
    assert not is_verified({"name": "Anna", "verified": True}, "name")
    assert not is_verified(None, "name") and customer_fields(None) == []


def _trust_of(detail: str, key: str) -> str:
    cell = detail.split(f'data-field="{key}"', 1)[1].split("</dd>", 1)[0]
    return cell.split('data-verified="', 1)[1].split('"', 1)[0] + ("|verified" if ">verified<" in cell else "") + (
        "|unverified" if "given by the customer, unverified" in cell else ""
    )


async def test_the_ticket_page_marks_each_customer_field(helpdesk):
    customer = {
        "name": "Anna de Vries",
        "email": "anna@example.nl",
        "customer_id": "C-7",
        "verified": {"name": True, "email": False, "customer_id": True},
        "sources": {"name": "identity", "email": "channel", "customer_id": "identity"},
    }
    _, answer = await request_handoff(helpdesk, customer=customer)
    detail = await page(helpdesk, f"/tickets/{answer['ticket_id']}")
    assert _trust_of(detail, "name") == "true|verified"
    assert _trust_of(detail, "customer_id") == "true|verified"
    assert _trust_of(detail, "email") == "false|unverified"
    assert 'data-field="verified"' not in detail and 'data-field="sources"' not in detail
    inbox = await page(helpdesk, "/")
    assert "Anna de Vries" in inbox and 'title="verified">verified<' in inbox


async def test_a_ticket_without_flags_shows_every_field_unverified(helpdesk):
    _, answer = await request_handoff(helpdesk, customer={"name": "Mallory", "email": "m@example.com"})
    detail = await page(helpdesk, f"/tickets/{answer['ticket_id']}")
    assert _trust_of(detail, "name") == "false|unverified"
    assert _trust_of(detail, "email") == "false|unverified"
    assert ">verified<" not in detail
    inbox = await page(helpdesk, "/")
    assert 'title="verified">verified<' not in inbox and ">unverified<" in inbox
