"""The ticket page's earlier contacts: which tickets and follow-ups are the same customer's."""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from helpdesk.db import Ticket, create_engine_for, init_database, priority_rank
from helpdesk.followups import FollowUp, FollowUpStore, record_follow_up
from helpdesk.history import Contact, contacts_for, earlier_contacts
from helpdesk.presentation import make_environment

START = datetime(2026, 12, 1, 9, 0)
_numbers = itertools.count(1)

VERIFIED_ADA = {
    "name": "Ada Lovelace",
    "email": "ada@example.com",
    "customer_id": "C-1",
    "verified": {"name": True, "email": True, "customer_id": True},
    "sources": {"name": "identity", "email": "identity", "customer_id": "identity"},
}


@pytest.fixture
def sessions(tmp_path):
    engine = create_engine_for(f"sqlite:///{tmp_path / 'history.db'}")
    factory = init_database(engine)
    yield factory
    engine.dispose()


def add_ticket(
    sessions,
    customer: dict[str, Any] | None = None,
    conversation_id: str | None = None,
    minutes: int = 0,
    **fields: Any,
) -> Ticket:
    number = next(_numbers)
    handoff_id = fields.pop("handoff_id", str(uuid.uuid4()))
    payload = fields.pop("payload", {})
    values = {
        "ticket_id": f"HD-{number:08X}",
        "handoff_id": handoff_id,
        "conversation_id": conversation_id or f"conversation-{number}",
        "reason": "frustration",
        "reason_text": "Frustrated about a refund.",
        "priority": "high",
        "priority_rank": priority_rank("high"),
        "queue": "support",
        "language": "en",
        "customer": customer or {},
        "transcript": [{"role": "customer", "text": f"turn {number}", "timestamp": "2026-12-01T09:00:00Z"}],
        "payload": payload,
        "state": "closed",
        "close_cause": "handed_back",
        "handback_note": None,
        "agent_name": "Grace",
        "created_at": START + timedelta(minutes=minutes),
    }
    values.update(fields)
    with sessions() as session, session.begin():
        ticket = Ticket(**values)
        session.add(ticket)
    return ticket


def add_follow_up(sessions, minutes: int = 0, **overrides: Any) -> str:
    body = {
        "event": "follow_up.requested",
        "event_id": str(uuid.uuid4()),
        "handoff_id": str(uuid.uuid4()),
        "conversation_id": f"conversation-{next(_numbers)}",
        "sent_at": "2026-12-01T09:00:00Z",
        "follow_up_id": str(uuid.uuid4()),
        "origin": "no_agent_timeout",
        "method": "callback",
        "contact": {"phone": "+31 6 1234 5678"},
        "reason": "customer_request",
        "reason_text": "",
        "queue": "support",
        "priority": "normal",
        "language": "en",
        "customer": {},
        "due_at": "2026-12-02T12:00:00Z",
        "transcript": [],
    }
    body.update(overrides)
    with sessions() as session, session.begin():
        status, answer = record_follow_up(session, body)
        assert status == 200, answer
    with sessions() as session, session.begin():
        follow_up = session.query(FollowUp).filter_by(follow_up_id=body["follow_up_id"]).one()
        follow_up.created_at = START + timedelta(minutes=minutes)
    return body["follow_up_id"]


def history(sessions, ticket: Ticket) -> list[Contact]:
    with sessions() as session:
        return earlier_contacts(session, ticket)


def summary(contacts: list[Contact]) -> list[tuple[str, str, bool]]:
    return [(c.id, c.matched_by, c.verified) for c in contacts]


def test_a_verified_customer_id_beats_everything_and_a_different_one_excludes(sessions):
    current = add_ticket(sessions, VERIFIED_ADA, minutes=100)
    same_id = add_ticket(
        sessions,
        {"customer_id": "C-1", "email": "other@example.com", "verified": {"customer_id": True}},
        minutes=10,
    )
    same_email = add_ticket(sessions, {"email": "ADA@example.com"}, minutes=20)
    other_verified = add_ticket(
        sessions,
        {"customer_id": "C-2", "email": "ada@example.com", "verified": {"customer_id": True, "email": True}},
        minutes=30,
    )

    contacts = history(sessions, current)

    assert summary(contacts) == [
        (same_email.ticket_id, "email", False),
        (same_id.ticket_id, "customer_id", True),
    ]
    assert other_verified.ticket_id not in [c.id for c in contacts]
    assert contacts[1].matched_text == "matched by verified customer id"
    assert contacts[0].matched_text == "matched by email the customer gave — unverified"


def test_an_unverified_customer_id_is_only_a_customer_given_match(sessions):
    current = add_ticket(sessions, {"customer_id": "C-9"}, minutes=50)
    other = add_ticket(
        sessions, {"customer_id": "C-9", "verified": {"customer_id": True}}, minutes=10
    )
    assert summary(history(sessions, current)) == [(other.ticket_id, "customer_id", False)]


def test_email_beats_phone_beats_the_conversation(sessions):
    current = add_ticket(
        sessions,
        {"email": "ada@example.com", "phone": "+31 6 1234 5678"},
        conversation_id="conv-a",
        minutes=100,
    )
    both = add_ticket(
        sessions,
        {"email": "ada@example.com", "phone": "0031-6-12345678"},
        conversation_id="conv-a",
        minutes=40,
    )
    phone = add_ticket(sessions, {"phone": "(+31) 6 12 34 56 78"}, minutes=30)
    conversation = add_ticket(sessions, {}, conversation_id="conv-a", minutes=20)
    add_ticket(sessions, {"email": "bob@example.com", "phone": "+31 6 9999 9999"}, minutes=10)

    assert summary(history(sessions, current)) == [
        (both.ticket_id, "email", False),
        (phone.ticket_id, "phone", False),
        (conversation.ticket_id, "conversation_id", False),
    ]


def test_own_ticket_is_left_out_and_the_newest_come_first_at_most_twenty(sessions):
    current = add_ticket(sessions, {"email": "ada@example.com"}, minutes=0)
    older = [add_ticket(sessions, {"email": "ada@example.com"}, minutes=-m) for m in range(1, 26)]

    contacts = history(sessions, current)

    assert [c.id for c in contacts] == [t.ticket_id for t in older[:20]]
    assert current.ticket_id not in [c.id for c in contacts]


def test_nothing_matches_a_stranger(sessions):
    current = add_ticket(sessions, {"email": "ada@example.com"})
    add_ticket(sessions, {"email": "bob@example.com"})
    add_ticket(sessions, {"name": "Ada Lovelace"})
    assert history(sessions, current) == []


def test_follow_ups_count_by_their_contact_and_customer(sessions):
    current = add_ticket(sessions, {"phone": "+31612345678"}, minutes=100)
    by_contact = add_follow_up(sessions, minutes=50, contact={"phone": "06 1234 5678 "})
    # 06... is not +316...: national and international forms are different digits
    by_phone = add_follow_up(sessions, minutes=40, contact={"phone": "+31 6 1234 5678"})
    own = add_follow_up(sessions, minutes=60, handoff_id=current.handoff_id, conversation_id=current.conversation_id)

    contacts = history(sessions, current)

    assert summary(contacts) == [(by_phone, "phone", False)]
    assert by_contact not in [c.id for c in contacts]
    assert own not in [c.id for c in contacts]
    [follow_up] = contacts
    assert (follow_up.kind, follow_up.outcome, follow_up.method) == ("follow_up", "open", "callback")
    assert follow_up.link == f"/follow-ups#follow-up-{by_phone}"
    assert follow_up.title == "Callback"


def test_outcome_and_note_of_earlier_contacts(sessions):
    current = add_ticket(sessions, {"email": "ada@example.com"}, minutes=100)
    add_ticket(
        sessions,
        {"email": "ada@example.com"},
        minutes=10,
        close_cause="handed_back",
        handback_note="Refund approved.",
    )
    add_ticket(sessions, {"email": "ada@example.com"}, minutes=20, close_cause="no_agent_available")
    add_ticket(sessions, {"email": "ada@example.com"}, minutes=30, state="waiting", close_cause=None)

    contacts = history(sessions, current)

    assert [(c.outcome, c.outcome_text, c.note) for c in contacts] == [
        ("open", "still open", None),
        ("no_agent_available", "nobody was available", None),
        ("handed_back", "handed back to the bot", "Refund approved."),
    ]


def previous(handoff_id: str, **fields: Any) -> dict[str, Any]:
    value = {
        "handoff_id": handoff_id,
        "conversation_id": "earlier-conversation",
        "requested_at": "2026-11-30T15:00:00Z",
        "reason": "bot_failure",
        "reason_text": "The bot could not answer.",
        "outcome": "no_agent_timeout",
        "note": None,
        "matched_by": "email",
        "verified": False,
        "transcript": [{"role": "customer", "text": "hello <there>", "timestamp": "2026-11-30T14:59:00Z"}],
    }
    value.update(fields)
    return value


def test_a_previous_handoff_the_assistant_reported_is_added_when_not_known_here(sessions):
    earlier_handoff = str(uuid.uuid4())
    current = add_ticket(
        sessions,
        {"email": "ada@example.com"},
        minutes=100,
        payload={"previous_handoff": previous(earlier_handoff)},
    )
    local = add_ticket(sessions, {"email": "ada@example.com"}, minutes=10)

    contacts = history(sessions, current)

    assert summary(contacts) == [
        (local.ticket_id, "email", False),
        (earlier_handoff, "email", False),
    ]
    reported = contacts[1]
    assert reported.reported
    assert reported.link is None
    assert reported.when == datetime(2026, 11, 30, 15, 0)
    assert reported.outcome_text == "no agent joined in time"


def test_a_previous_handoff_known_here_is_not_listed_twice(sessions):
    known = add_ticket(sessions, {"email": "ada@example.com"}, minutes=10)
    current = add_ticket(
        sessions,
        {"email": "ada@example.com"},
        minutes=100,
        payload={"previous_handoff": previous(known.handoff_id)},
    )
    assert summary(history(sessions, current)) == [(known.ticket_id, "email", False)]


def test_contacts_for_opens_its_own_session(sessions):
    current = add_ticket(sessions, {"email": "ada@example.com"}, minutes=100)
    other = add_ticket(sessions, {"email": "ada@example.com"}, minutes=10)
    assert [c.id for c in contacts_for(sessions, current)] == [other.ticket_id]


def test_the_section_names_how_each_contact_was_matched(sessions):
    current = add_ticket(
        sessions,
        VERIFIED_ADA,
        minutes=100,
        payload={"previous_handoff": previous(str(uuid.uuid4()), note="<b>call back</b>")},
    )
    add_ticket(sessions, {"customer_id": "C-1", "verified": {"customer_id": True}}, minutes=10)
    add_ticket(sessions, {"email": "ada@example.com"}, minutes=20, handback_note="Sent <the> form.")

    contacts = history(sessions, current)
    html = make_environment().get_template("_ticket_history.html").render(
        contacts=contacts, ticket=current
    )

    assert "<h3>Earlier contacts <span class=\"count\">3</span></h3>" in html
    assert "matched by verified customer id" in html
    assert html.count("matched by email the customer gave — unverified") == 2
    assert html.count("reported by the assistant") == 1
    assert "Hand-back note:</span> &ldquo;Sent &lt;the&gt; form.&rdquo;" in html
    assert "&lt;b&gt;call back&lt;/b&gt;" in html
    assert "hello &lt;there&gt;" in html
    assert html.count("<details class=\"transcript\">") == 3
    assert html.index("Sent &lt;the&gt; form.") < html.index("&lt;b&gt;call back&lt;/b&gt;")


def test_the_section_without_contacts(sessions):
    html = make_environment().get_template("_ticket_history.html").render(contacts=[])
    assert "No earlier contact of this customer." in html


def test_a_follow_up_shows_who_closed_it_and_how(sessions):


    current = add_ticket(sessions, {"email": "ada@example.com"}, minutes=100)
    follow_up_id = add_follow_up(
        sessions, minutes=10, method="email", contact={"email": "Ada@Example.com"}
    )
    FollowUpStore(sessions).close(follow_up_id, "piet.jansen", "not_reached", "No answer.")

    [contact] = history(sessions, current)

    assert (contact.matched_by, contact.agent, contact.outcome_text, contact.note) == (
        "email",
        "Piet Jansen",
        "follow-up: customer not reached",
        "No answer.",
    )
    assert contact.title == "Email answer"
