"""Follow-up tasks: the follow_up.requested event, the agents' rules, privacy, and the page."""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient, TestServer

from handoff.privacy import Customer
from helpdesk import followups
from helpdesk.db import ProcessedEvent, Ticket, TicketEntry, create_engine_for, init_database
from helpdesk.followups import (
    FollowUp,
    FollowUpClosed,
    FollowUpNotFound,
    FollowUpStore,
    NotTheOwner,
    attach,
    record_follow_up,
    setup,
)
from tests.helpdesk_support import ALAN, GRACE, make_app, make_settings, request_handoff, sign_in

CONVERSATION = "5f1c2d3e-customer"


def follow_up_requested(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event": "follow_up.requested",
        "event_id": str(uuid.uuid4()),
        "handoff_id": str(uuid.uuid4()),
        "conversation_id": CONVERSATION,
        "sent_at": "2026-12-05T18:00:00Z",
        "follow_up_id": str(uuid.uuid4()),
        "origin": "out_of_hours",
        "method": "callback",
        "contact": {"phone": "+31 6 1234 5678"},
        "reason": "customer_request",
        "reason_text": "The customer asked for a person.",
        "queue": "support",
        "priority": "normal",
        "language": "nl",
        "customer": {"name": "Ada Lovelace", "email": "ada@example.com"},
        "due_at": "2026-12-07T12:00:00Z",
        "transcript": [
            {"role": "customer", "text": "bel me terug", "timestamp": "2026-12-05T17:59:00Z"},
        ],
    }
    body.update(overrides)
    return body


@pytest.fixture
def sessions(tmp_path):
    engine = create_engine_for(f"sqlite:///{tmp_path / 'followups.db'}")
    factory = init_database(engine)
    yield factory
    engine.dispose()


@pytest.fixture
def store(sessions) -> FollowUpStore:
    return FollowUpStore(sessions)


def record(sessions, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    with sessions() as session:
        status, answer = record_follow_up(session, body)
        if status == 200:
            session.commit()
        else:
            session.rollback()
        return status, answer


def add_ticket(sessions, handoff_id: str, conversation_id: str = CONVERSATION) -> str:
    with sessions() as session, session.begin():
        ticket = Ticket(
            ticket_id="HD-" + handoff_id[:8].upper(),
            handoff_id=handoff_id,
            conversation_id=conversation_id,
            reason="frustration",
            reason_text="",
            priority="high",
            priority_rank=1,
            queue="support",
            language="en",
            customer={},
            transcript=[],
            payload={},
            state="closed",
            close_cause="no_agent_timeout",
        )
        session.add(ticket)
        return ticket.ticket_id


def all_follow_ups(sessions) -> list[FollowUp]:
    with sessions() as session:
        return list(session.execute(sa.select(FollowUp).order_by(FollowUp.id)).scalars())


# --- follow_up.requested ---------------------------------------------------------------------------


def test_a_follow_up_is_recorded_once_and_linked_to_its_ticket(sessions):
    body = follow_up_requested()
    ticket_id = add_ticket(sessions, body["handoff_id"])

    first = record(sessions, body)
    again = record(sessions, {**body, "event_id": str(uuid.uuid4())})

    assert first == (200, {"follow_up_id": body["follow_up_id"]})
    assert again == first
    [follow_up] = all_follow_ups(sessions)
    assert follow_up.ticket_id == ticket_id
    assert follow_up.state == "open"
    assert follow_up.owner is None
    assert follow_up.contact == "+31 6 1234 5678"
    assert follow_up.due_at == datetime(2026, 12, 7, 12, 0)
    assert follow_up.transcript == body["transcript"]
    with sessions() as session:
        entries = session.execute(sa.select(TicketEntry.kind, TicketEntry.text)).all()
    assert entries == [
        ("follow_up", "Call the customer back on +31 6 1234 5678. Task on the Follow-ups page.")
    ]


def test_an_email_follow_up_without_a_ticket_is_kept_unlinked(sessions):
    body = follow_up_requested(method="email", contact={"email": "Ada@Example.com"})
    assert record(sessions, body) == (200, {"follow_up_id": body["follow_up_id"]})
    [follow_up] = all_follow_ups(sessions)
    assert follow_up.ticket_id is None
    assert follow_up.contact == "Ada@Example.com"
    assert follow_up.contact_kind == "email"


def test_due_at_with_an_offset_is_stored_as_naive_utc(sessions):
    record(sessions, follow_up_requested(due_at="2026-12-07T13:30:00+01:00"))
    [follow_up] = all_follow_ups(sessions)
    assert follow_up.due_at == datetime(2026, 12, 7, 12, 30)


def test_the_same_follow_up_id_for_another_handoff_is_refused(sessions):
    body = follow_up_requested()
    record(sessions, body)
    status, answer = record(sessions, {**body, "handoff_id": str(uuid.uuid4())})
    assert status == 400
    assert answer == {
        "error": "follow_up_mismatch",
        "message": "follow_up_id belongs to another handoff or conversation",
    }


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"contact": {"email": "ada@example.com"}}, "invalid_contact"),
        ({"method": "carrier_pigeon"}, "invalid_method"),
        ({"due_at": "next tuesday"}, "invalid_due_at"),
    ],
)
def test_malformed_follow_ups_are_refused(sessions, overrides, error):
    status, answer = record(sessions, follow_up_requested(**overrides))
    assert status == 400
    assert answer["error"] == error
    assert all_follow_ups(sessions) == []


def test_a_handoff_of_another_conversation_is_refused(sessions):
    body = follow_up_requested()
    add_ticket(sessions, body["handoff_id"], conversation_id="someone-else")
    assert record(sessions, body)[1]["error"] == "conversation_mismatch"


def test_the_contact_is_verified_only_when_it_is_the_verified_detail():
    verified = {"phone": "+31612345678", "verified": {"phone": True}}
    assert FollowUp(method="callback", contact="+31 6 12345678", customer=verified).contact_verified
    other_number = FollowUp(method="callback", contact="+31 6 99999999", customer=verified)
    assert not other_number.contact_verified
    assert other_number.contact_trust == "given by the customer, unverified"
    typed = FollowUp(method="email", contact="a@b.nl", customer={"email": "a@b.nl"})
    assert not typed.contact_verified


# --- the list and the agents' rules -------------------------------------------------------------------


def test_open_follow_ups_come_by_due_time_then_arrival(sessions, store):
    late = follow_up_requested(due_at="2026-12-08T09:00:00Z")
    early = follow_up_requested(due_at="2026-12-07T09:00:00Z")
    same_a = follow_up_requested(due_at="2026-12-07T10:00:00Z")
    same_b = follow_up_requested(due_at="2026-12-07T10:00:00Z")
    for body in (late, early, same_a, same_b):
        record(sessions, body)
    store.close(early["follow_up_id"], "grace", "done")

    assert [f.follow_up_id for f in store.open_follow_ups()] == [
        same_a["follow_up_id"],
        same_b["follow_up_id"],
        late["follow_up_id"],
    ]
    assert [f.follow_up_id for f in store.recent_closed()] == [early["follow_up_id"]]
    assert store.count_open() == 3


def test_anyone_claims_an_unowned_follow_up_but_not_a_colleagues(sessions, store):
    body = follow_up_requested()
    record(sessions, body)
    follow_up_id = body["follow_up_id"]

    assert store.claim(follow_up_id, "grace").owner == "grace"
    assert store.claim(follow_up_id, "grace").owner == "grace"  # again: nothing changes
    with pytest.raises(NotTheOwner) as refused:
        store.claim(follow_up_id, "alan")
    assert refused.value.owner == "grace"
    assert str(refused.value) == (
        "grace has this follow-up; only they can reassign it. Nothing was changed."
    )
    assert store.get(follow_up_id).owner == "grace"


def test_the_owner_assigns_to_a_colleague(sessions, store):
    body = follow_up_requested()
    record(sessions, body)
    follow_up_id = body["follow_up_id"]

    assert store.assign(follow_up_id, "alan", by="grace").owner == "alan"  # nobody had it
    with pytest.raises(NotTheOwner):
        store.assign(follow_up_id, "grace", by="grace")  # alan has it now
    assert store.assign(follow_up_id, "grace", by="alan").owner == "grace"


def test_closing_is_the_owners_and_claims_an_unowned_task(sessions, store):
    owned, unowned = follow_up_requested(), follow_up_requested()
    record(sessions, owned)
    record(sessions, unowned)
    store.claim(owned["follow_up_id"], "grace")

    with pytest.raises(NotTheOwner):
        store.close(owned["follow_up_id"], "alan", "done")
    closed = store.close(owned["follow_up_id"], "grace", "not_reached", "  voicemail, try again  ")
    assert (closed.state, closed.owner, closed.closed_by, closed.outcome_note) == (
        "not_reached",
        "grace",
        "grace",
        "voicemail, try again",
    )
    assert closed.closed_at is not None

    taken = store.close(unowned["follow_up_id"], "alan", "done", "")
    assert (taken.state, taken.owner, taken.outcome_note) == ("done", "alan", None)


def test_a_closed_or_unknown_follow_up_cannot_change(sessions, store):
    body = follow_up_requested()
    record(sessions, body)
    store.close(body["follow_up_id"], "grace", "done")

    for action in (
        lambda: store.claim(body["follow_up_id"], "grace"),
        lambda: store.assign(body["follow_up_id"], "alan", by="grace"),
        lambda: store.close(body["follow_up_id"], "grace", "not_reached"),
    ):
        with pytest.raises(FollowUpClosed, match="already closed"):
            action()
    with pytest.raises(FollowUpNotFound, match="There is no follow-up nope"):
        store.claim("nope", "grace")
    with pytest.raises(FollowUpNotFound):
        store.get("nope")
    with pytest.raises(ValueError, match="outcome must be one of done, not_reached"):
        store.close(body["follow_up_id"], "grace", "maybe")


# --- privacy -------------------------------------------------------------------------------------------


def test_a_customer_is_found_by_details_contact_and_lead(sessions, store):
    by_email = follow_up_requested(conversation_id="c-email")
    by_contact = follow_up_requested(
        conversation_id="c-phone", customer={}, contact={"phone": "06-12 34 56 78"}
    )
    by_id = follow_up_requested(conversation_id="c-id", customer={"customer_id": 4711})
    by_lead = follow_up_requested(
        conversation_id="c-lead",
        customer={},
        method="email",
        contact={"email": "x@y.nl"},
        lead={"answers": {"email": "LEAD@example.com"}, "score": 5},
    )
    someone_else = follow_up_requested(conversation_id="c-other", customer={"email": "bob@x.nl"})
    for body in (by_email, by_contact, by_id, by_lead, someone_else):
        record(sessions, body)

    assert store.find_conversations(Customer(email="ADA@example.com")) == {"c-email"}
    assert store.find_conversations(Customer(phone="0612345678")) == {"c-phone"}
    assert store.find_conversations(Customer(customer_id="4711")) == {"c-id"}
    assert store.find_conversations(Customer(email="lead@example.com")) == {"c-lead"}
    assert store.find_customer(Customer(email="nobody@example.com")) == set()


def test_erasing_conversations_removes_their_follow_ups_and_deliveries(sessions, store):
    mine, other = follow_up_requested(conversation_id="c-1"), follow_up_requested(conversation_id="c-2")
    for body in (mine, other):
        record(sessions, body)
    with sessions() as session, session.begin():
        session.add(
            ProcessedEvent(
                event_id=mine["event_id"],
                event="follow_up.requested",
                handoff_id=mine["handoff_id"],
                status=200,
                response="{}",
            )
        )

    assert store.erase_conversations(["c-1"], dry_run=True) == {"follow_ups": 1}
    assert len(all_follow_ups(sessions)) == 2
    assert store.erase_conversations(["c-1", "c-unknown"]) == {"follow_ups": 1}
    assert [f.conversation_id for f in all_follow_ups(sessions)] == ["c-2"]
    with sessions() as session:
        assert session.execute(sa.select(ProcessedEvent)).all() == []


def test_follow_ups_without_activity_since_the_cutoff_expire(sessions, store):
    old, recent = follow_up_requested(conversation_id="c-old"), follow_up_requested(conversation_id="c-new")
    for body in (old, recent):
        record(sessions, body)
    with sessions() as session, session.begin():
        session.execute(
            sa.update(FollowUp)
            .where(FollowUp.conversation_id == "c-old")
            .values(created_at=datetime(2020, 1, 1))
        )
    cutoff = datetime(2021, 1, 1)
    assert store.stale_conversations(cutoff.replace(tzinfo=timezone.utc).timestamp()) == {"c-old"}
    assert store.recent_among(["c-old", "c-new"], cutoff.replace(tzinfo=timezone.utc).timestamp()) == {
        "c-new"
    }
    assert store.expire_before(cutoff) == {"follow_ups": 1}
    assert [f.conversation_id for f in all_follow_ups(sessions)] == ["c-new"]


# --- the page ------------------------------------------------------------------------------------------

NOW = datetime(2026, 12, 7, 11, 0, tzinfo=timezone.utc)


@pytest.fixture
async def app_client(assistant, database_url, monkeypatch):
    """The helpdesk with the Follow-ups page, a browser signed in as Grace, and the store."""
    monkeypatch.setattr(followups, "now", lambda: NOW)
    app = make_app(make_settings(assistant.url), database_url)
    setup(app)
    engine = create_engine_for(database_url)
    factory = init_database(engine)

    async def _attach(app):
        if followups.FOLLOW_UPS_KEY not in app:  # create_app may attach the store itself
            attach(app, factory)

    app.on_startup.append(_attach)
    client = TestClient(TestServer(app))
    await client.start_server()
    await sign_in(client, GRACE)
    yield client, factory
    await client.close()
    engine.dispose()


async def _post(client: TestClient, path: str, **data: str):
    return await client.post(path, data=data, allow_redirects=False)


async def test_the_page_needs_a_signed_in_agent(assistant, database_url):
    app = make_app(make_settings(assistant.url), database_url)
    setup(app)
    setup(app)  # a second time changes nothing
    async with TestClient(TestServer(app)) as anonymous:
        page = await anonymous.get("/follow-ups", allow_redirects=False)
        assert page.status == 303
        assert page.headers["Location"] == "/login?next=/follow-ups"
        action = await anonymous.post("/follow-ups/x/claim", allow_redirects=False)
        assert action.status == 401


async def test_the_page_lists_open_tasks_by_due_time_with_overdue_marked(app_client):
    client, sessions = app_client
    overdue = follow_up_requested(
        due_at="2026-12-07T09:00:00Z",
        customer={"name": "<b>Ada</b>", "email": "ada@example.com"},
    )
    later = follow_up_requested(
        due_at="2026-12-07T15:00:00Z", method="email", contact={"email": "bob@example.com"}
    )
    record(sessions, later)
    record(sessions, overdue)

    response = await client.get("/follow-ups")
    html = await response.text()
    assert response.status == 200
    assert "Content-Security-Policy" in response.headers
    assert "<title>Follow-ups (2 open) · Helpdesk</title>" in html
    assert html.index(overdue["follow_up_id"]) < html.index(later["follow_up_id"])
    assert html.count('class="follow-up overdue"') == 1
    assert "by 2 h" in html
    assert "due in 4 h" in html
    assert "&lt;b&gt;Ada&lt;/b&gt;" in html and "<b>Ada</b>" not in html
    assert 'href="tel:+31612345678"' in html
    assert 'href="mailto:bob@example.com"' in html
    assert html.count(">given by the customer, unverified</span>") == 2
    assert "<summary>Transcript (1 turn)</summary>" in html
    assert "bel me terug" in html
    assert '<option value="alan">Alan</option>' in html
    assert '<option value="grace">Grace</option>' in html
    assert html.count('action="/follow-ups/' + overdue["follow_up_id"] + '/claim"') == 1
    assert "outside business hours" in html


async def test_the_page_links_the_ticket(app_client):
    client, sessions = app_client
    handoff, answer = await request_handoff(client)
    record(sessions, follow_up_requested(handoff_id=handoff["handoff_id"]))
    html = await (await client.get("/follow-ups")).text()
    assert f'<a href="/tickets/{answer["ticket_id"]}">{answer["ticket_id"]}</a>' in html


async def test_claim_assign_and_close_through_the_page(app_client):
    client, sessions = app_client
    body = follow_up_requested()
    record(sessions, body)
    base = f"/follow-ups/{body['follow_up_id']}"
    store = FollowUpStore(sessions)

    response = await _post(client, base + "/claim")
    assert response.status == 303
    assert response.headers["Location"] == "/follow-ups"
    assert store.get(body["follow_up_id"]).owner == "grace"

    response = await _post(client, base + "/assign", login="alan")
    assert response.status == 303
    assert store.get(body["follow_up_id"]).owner == "alan"
    html = await (await client.get("/follow-ups")).text()
    assert "Assigned to Alan." in html
    assert "Alan has it" in html

    alan = TestClient(client.server)
    await alan.start_server()
    await sign_in(alan, ALAN)
    try:
        await _post(alan, base + "/close", outcome="done", note="called, <sorted>")
        html = await (await alan.get("/follow-ups")).text()
    finally:
        await alan.session.close()
    closed = store.get(body["follow_up_id"])
    assert (closed.state, closed.closed_by, closed.outcome_note) == ("done", "alan", "called, <sorted>")
    assert "No follow-up is open." in html
    assert "&ldquo;called, &lt;sorted&gt;&rdquo;" in html


async def test_refusals_are_shown_once_and_keep_the_note(app_client):
    client, sessions = app_client
    body = follow_up_requested()
    record(sessions, body)
    FollowUpStore(sessions).claim(body["follow_up_id"], "alan")
    base = f"/follow-ups/{body['follow_up_id']}"

    await _post(client, base + "/claim")
    html = await (await client.get("/follow-ups")).text()
    assert "alan has this follow-up; only they can reassign it. Nothing was changed." in html
    assert "Nothing was changed" not in await (await client.get("/follow-ups")).text()

    await _post(client, "/follow-ups/unknown/close", outcome="done", note="x")
    assert "There is no follow-up unknown." in await (await client.get("/follow-ups")).text()

    await _post(client, base + "/assign", login="nobody")
    assert "Choose a colleague" in await (await client.get("/follow-ups")).text()

    await _post(client, base + "/close", outcome="later", note="try tomorrow")
    assert "Choose Done or Not reached." in await (await client.get("/follow-ups")).text()


async def test_a_kept_note_returns_in_its_own_row(app_client):
    client, sessions = app_client
    body = follow_up_requested()
    record(sessions, body)
    base = f"/follow-ups/{body['follow_up_id']}"
    await _post(client, base + "/close", outcome="later", note="try tomorrow")
    html = await (await client.get("/follow-ups")).text()
    assert 'placeholder="Note (optional)" value="try tomorrow"' in html


async def test_posts_from_other_sites_are_refused(app_client):
    client, sessions = app_client
    body = follow_up_requested()
    record(sessions, body)
    response = await client.post(
        f"/follow-ups/{body['follow_up_id']}/claim",
        headers={"Origin": "https://evil.example"},
        allow_redirects=False,
    )
    assert response.status == 403
    assert FollowUpStore(sessions).get(body["follow_up_id"]).owner is None


def test_now_falls_back_to_real_time_without_the_business_clock(monkeypatch):
    def missing(name):
        raise ImportError(name)

    monkeypatch.setattr(followups.importlib, "import_module", missing)
    moment = followups.now()
    assert moment.tzinfo is not None
    assert abs(moment - datetime.now(timezone.utc)) < timedelta(minutes=1)


def test_rows_mark_overdue_relative_to_the_given_time():
    due = FollowUp(due_at=datetime(2026, 12, 7, 10, 0), owner="grace")
    [row] = followups.rows([due], NOW, {"grace": "Grace"})
    assert (row.overdue, row.seconds, row.owner_name) == (True, 3600.0, "Grace")
    [row] = followups.rows([due], NOW - timedelta(hours=2), {})
    assert (row.overdue, row.seconds, row.owner_name) == (False, 3600.0, "grace")


def test_now_is_the_business_clock_when_there_is_one(monkeypatch):
    pytest.importorskip("handoff.hours")
    monkeypatch.setenv("HANDOFF_ENV", "development")
    monkeypatch.setenv("HANDOFF_NOW", "2026-12-07T10:00:00+01:00")
    assert followups.now() == datetime(2026, 12, 7, 9, 0, tzinfo=timezone.utc)


def test_the_store_part_imports_no_web_module():
    """helpdesk.store may import this module (privacy hooks): it must not import helpdesk.keys,
    which imports helpdesk.store."""
    code = (
        "import sys, helpdesk.followups, helpdesk.history; "
        "print(sorted(m for m in ('helpdesk.keys', 'helpdesk.store', 'helpdesk.views') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
