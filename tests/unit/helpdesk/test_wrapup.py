"""The agent's wrap-up: chosen with the hand-back (sent as ``wrap_up`` of agent.handback) or, for a
ticket the assistant ended, recorded in the helpdesk only; validated, kept, shown and erased."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient

from handoff.schemas import validate_inbound
from helpdesk import views
from helpdesk.db import Ticket, TicketWrapUp, utcnow
from helpdesk.keys import STORE_KEY
from helpdesk.store import TicketStore, WrapUpExists
from tests.helpdesk_support import deliver, page, request_handoff
from tests.support import handoff_ended

MISUNDERSTOOD = {"outcome": "resolved", "why": "bot_misunderstood", "intent": "ask_refund_status"}


def store_of(client: TestClient) -> TicketStore:
    return client.server.app[STORE_KEY]


async def claimed_ticket(client: TestClient) -> tuple[dict, str]:
    body, answer = await request_handoff(client)
    ticket = f"/tickets/{answer['ticket_id']}"
    await client.post(f"{ticket}/join")
    return body, ticket


async def ended_ticket(client: TestClient, cause: str = "customer_left") -> tuple[dict, str]:
    body, answer = await request_handoff(client)
    ended = handoff_ended(
        handoff_id=body["handoff_id"], conversation_id=body["conversation_id"], cause=cause
    )
    assert (await deliver(client, ended))[0] == 200
    return body, f"/tickets/{answer['ticket_id']}"


def selected(detail: str, name: str) -> str | None:
    """The selected option's value of the first select called ``name``."""
    select = re.search(rf'<select[^>]*name="{name}".*?</select>', detail, re.S)
    assert select, f"no select {name}"
    chosen = re.search(r'<option value="([^"]*)" selected>', select.group(0))
    return html.unescape(chosen.group(1)) if chosen else None


def options(detail: str, name: str) -> list[str]:
    select = re.search(rf'<select[^>]*name="{name}".*?</select>', detail, re.S)
    assert select, f"no select {name}"
    return [html.unescape(v) for v in re.findall(r'<option value="([^"]*)"', select.group(0))]


# --- the intents of the domain -------------------------------------------------------------------


def test_domain_intents_are_sorted_without_internal_ones(tmp_path):
    domain = tmp_path / "domain.yml"
    domain.write_text(
        "version: '3.1'\n"
        "intents:\n"
        "  - greet\n"
        "  - ask_refund_status:\n"
        "      use_entities: []\n"
        "  - EXTERNAL_handback\n"
        "  - nlu_fallback\n"
        "  - affirm\n"
        "  - greet\n",
        encoding="utf-8",
    )
    assert views.domain_intents(domain) == ("affirm", "ask_refund_status", "greet")


def test_an_unreadable_domain_lists_no_intents(tmp_path):
    assert views.domain_intents(tmp_path / "missing.yml") == ()
    broken = tmp_path / "broken.yml"
    broken.write_text("intents: [unclosed\n", encoding="utf-8")
    assert views.domain_intents(broken) == ()


def test_the_project_domain_is_read_once():
    intents = views.domain_intents()
    assert "ask_refund_status" in intents and "request_human" in intents
    assert not any(i.startswith("EXTERNAL_") for i in intents) and "nlu_fallback" not in intents
    assert list(intents) == sorted(intents)
    assert views.domain_intents() is intents  # cached


def test_labels_cover_every_code():
    from helpdesk.db import WRAP_UP_OUTCOMES, WRAP_UP_REASONS

    assert tuple(views.OUTCOME_LABELS) == WRAP_UP_OUTCOMES
    assert tuple(views.REASON_LABELS) == WRAP_UP_REASONS


# --- the hand-back form --------------------------------------------------------------------------


async def test_the_hand_back_form_has_the_wrap_up(helpdesk):
    _, ticket = await claimed_ticket(helpdesk)
    detail = await page(helpdesk, ticket)
    form = re.search(r'<form class="handback".*?</form>', detail, re.S).group(0)
    assert options(form, "outcome") == ["", "resolved", "needs_follow_up", "not_resolved"]
    assert options(form, "why") == [
        "",
        "bot_misunderstood",
        "missing_knowledge",
        "policy_needs_person",
        "customer_preference",
        "technical_failure",
        "other",
    ]
    assert options(form, "intent") == ["", views.NEW_TOPIC, *views.domain_intents()]
    assert re.search(r'<select[^>]*name="outcome" required', form)
    assert re.search(r'<select[^>]*name="why" required data-wrapup-why="bot_misunderstood"', form)
    assert "data-wrapup-intent" in form
    assert "Policy needs a person" in form and "Needs follow-up" in form
    assert "<script" not in form  # no inline script: console.js shows the intent choice


async def test_hand_back_sends_the_wrap_up_and_keeps_it(helpdesk, assistant):
    body, ticket = await claimed_ticket(helpdesk)
    response = await helpdesk.post(
        f"{ticket}/handback", data={"note": "Refund paid Monday.", **MISUNDERSTOOD}
    )
    assert response.status == 200
    sent = assistant.bodies[-1]
    assert validate_inbound(sent) is sent
    assert sent["event"] == "agent.handback"
    assert sent["note"] == "Refund paid Monday."
    assert sent["wrap_up"] == {
        "outcome": "resolved",
        "why": "bot_misunderstood",
        "intent": "ask_refund_status",
        "new_topic": False,
    }
    detail = await response.text()
    assert "closed: handed back to the bot by Grace" in detail
    done = re.search(r'<dl class="wrapup-done".*?</dl>', detail, re.S).group(0)
    assert "Resolved · Bot misunderstood · the customer meant <code>ask_refund_status</code>" in done
    assert "Grace" in done
    assert "Save wrap-up" not in detail  # wrapped up: no second form

    [kept] = store_of(helpdesk).wrap_ups()
    assert kept["ticket_id"] == ticket.rsplit("/", 1)[1]
    assert kept["handoff_id"] == body["handoff_id"]
    assert kept["conversation_id"] == body["conversation_id"]
    assert kept["close_cause"] == "handed_back"
    assert (kept["outcome"], kept["why"], kept["intent"], kept["new_topic"]) == (
        "resolved",
        "bot_misunderstood",
        "ask_refund_status",
        False,
    )
    assert (kept["note"], kept["author"]) == ("Refund paid Monday.", "Grace")


async def test_new_topic_is_sent_as_new_topic_without_an_intent(helpdesk, assistant):
    _, ticket = await claimed_ticket(helpdesk)
    choices = {"outcome": "not_resolved", "why": "bot_misunderstood", "intent": views.NEW_TOPIC}
    await helpdesk.post(f"{ticket}/handback", data=choices)
    assert assistant.bodies[-1]["wrap_up"] == {
        "outcome": "not_resolved",
        "why": "bot_misunderstood",
        "intent": None,
        "new_topic": True,
    }
    assert "note" not in assistant.bodies[-1]
    detail = await page(helpdesk, ticket)
    assert "Not resolved · Bot misunderstood · a new topic" in detail
    [kept] = store_of(helpdesk).wrap_ups()
    assert (kept["intent"], kept["new_topic"], kept["note"]) == (None, True, None)


async def test_the_intent_is_ignored_unless_the_bot_misunderstood(helpdesk, assistant):
    _, ticket = await claimed_ticket(helpdesk)
    choices = {"outcome": "needs_follow_up", "why": "policy_needs_person", "intent": "ask_refund_status"}
    await helpdesk.post(f"{ticket}/handback", data=choices)
    assert assistant.bodies[-1]["wrap_up"] == {
        "outcome": "needs_follow_up",
        "why": "policy_needs_person",
        "intent": None,
        "new_topic": False,
    }
    [kept] = store_of(helpdesk).wrap_ups()
    assert kept["intent"] is None


@pytest.mark.parametrize(
    ("choices", "message"),
    [
        ({"why": "other"}, "Wrap-up: choose the outcome (resolved, needs follow-up or not resolved)."),
        ({"outcome": "", "why": "other"}, "Wrap-up: choose the outcome"),
        ({"outcome": "maybe", "why": "other"}, "Wrap-up: there is no outcome &#39;maybe&#39;."),
        ({"outcome": "resolved"}, "Wrap-up: choose why a person was needed."),
        ({"outcome": "resolved", "why": "bored"}, "there is no reason &#39;bored&#39; for needing a person"),
        (
            {"outcome": "resolved", "why": "bot_misunderstood", "intent": ""},
            "choose which intent the customer&#39;s message should have been, or “new topic”",
        ),
        (
            {"outcome": "resolved", "why": "bot_misunderstood", "intent": "ask_for_a_pony"},
            "Wrap-up: &#39;ask_for_a_pony&#39; is not an intent of the assistant&#39;s domain.",
        ),
        (
            {"outcome": "resolved", "why": "bot_misunderstood", "intent": "EXTERNAL_handback"},
            "&#39;EXTERNAL_handback&#39; is not an intent of the assistant&#39;s domain",
        ),
    ],
    ids=["no outcome", "empty outcome", "unknown outcome", "no why", "unknown why", "no intent", "unknown intent", "internal intent"],
)
async def test_an_incomplete_wrap_up_sends_nothing_and_keeps_the_drafts(helpdesk, assistant, choices, message):
    _, ticket = await claimed_ticket(helpdesk)
    sent_before = len(assistant.bodies)
    data = {"note": "Half done.", "text": "unsent reply", **choices}
    response = await helpdesk.post(f"{ticket}/handback", data=data)
    detail = await response.text()
    assert 'class="banner error"' in detail
    assert message in detail
    assert len(assistant.bodies) == sent_before  # nothing sent
    assert "You are handling this conversation." in detail  # still open
    assert 'value="Half done."' in detail
    assert ">unsent reply</textarea>" in detail
    for name in ("outcome", "why", "intent"):
        wanted = choices.get(name) or None
        if wanted is not None and wanted not in options(detail, name):
            wanted = None  # an unknown value cannot be selected again
        assert selected(detail, name) == wanted
    assert store_of(helpdesk).wrap_ups() == []


async def test_a_page_without_the_wrap_up_hands_back_without_one(helpdesk, assistant):
    _, ticket = await claimed_ticket(helpdesk)
    await helpdesk.post(f"{ticket}/handback", data={"note": "Done."})
    assert "wrap_up" not in assistant.bodies[-1]
    assert store_of(helpdesk).wrap_ups() == []
    detail = await page(helpdesk, ticket)
    assert "closed: handed back to the bot by Grace" in detail
    assert 'action="' + ticket + '/wrapup"' in detail  # it can still be wrapped up, for the record


async def test_a_refused_hand_back_keeps_the_wrap_up_choices(helpdesk, assistant):
    _, ticket = await claimed_ticket(helpdesk)
    assistant.status = 400
    assistant.answer = {"error": "agent.handback: at wrap_up.intent: 'ask_refund_status' is not an intent of the assistant's domain"}
    response = await helpdesk.post(f"{ticket}/handback", data={"note": "n", **MISUNDERSTOOD})
    detail = await response.text()
    assert "Hand-back failed: the assistant answered 400: agent.handback: at wrap_up.intent" in detail
    assert selected(detail, "outcome") == "resolved"
    assert selected(detail, "why") == "bot_misunderstood"
    assert selected(detail, "intent") == "ask_refund_status"
    assert 'value="n"' in detail
    assert store_of(helpdesk).wrap_ups() == []
    assert "Send reply" in detail  # still open


async def test_handing_back_a_colleagues_conversation_keeps_the_choices(helpdesk, alan, assistant):
    _, ticket = await claimed_ticket(helpdesk)  # Grace has it
    response = await alan.post(f"{ticket}/handback", data=MISUNDERSTOOD)
    detail = await response.text()
    assert "Grace is handling this conversation; nothing was sent." in detail
    assert [b["event"] for b in assistant.bodies] == ["agent.joined"]
    # The form is disabled for Alan, but keeps what he chose.
    assert selected(detail, "why") == "bot_misunderstood"


# --- a ticket the assistant ended ----------------------------------------------------------------


async def test_a_ticket_the_assistant_ended_is_wrapped_up_in_the_helpdesk_only(helpdesk, assistant):
    body, ticket = await ended_ticket(helpdesk)
    detail = await page(helpdesk, ticket)
    form = re.search(r'<form class="wrapup-form".*?</form>', detail, re.S).group(0)
    assert f'action="{ticket}/wrapup"' in form
    assert "nothing is sent" in form
    assert options(form, "intent") == ["", views.NEW_TOPIC, *views.domain_intents()]
    assert 'id="wrapup-note"' in form

    response = await helpdesk.post(
        f"{ticket}/wrapup",
        data={"outcome": "not_resolved", "why": "technical_failure", "note": "Chat dropped."},
    )
    assert response.status == 200
    detail = await response.text()
    assert "Wrap-up recorded." in detail
    assert "Not resolved · Technical failure" in detail
    assert "&ldquo;Chat dropped.&rdquo;" in detail
    assert "Save wrap-up" not in detail
    assert assistant.bodies == []  # nothing sent: the handoff is over

    [kept] = store_of(helpdesk).wrap_ups()
    assert kept["handoff_id"] == body["handoff_id"]
    assert kept["close_cause"] == "customer_left"
    assert (kept["outcome"], kept["why"], kept["intent"], kept["new_topic"]) == (
        "not_resolved",
        "technical_failure",
        None,
        False,
    )
    assert (kept["note"], kept["author"]) == ("Chat dropped.", "Grace")


async def test_a_ticket_is_wrapped_up_once(helpdesk, alan):
    _, ticket = await ended_ticket(helpdesk)
    await helpdesk.post(f"{ticket}/wrapup", data=MISUNDERSTOOD)
    response = await alan.post(f"{ticket}/wrapup", data={"outcome": "resolved", "why": "other"})
    detail = await response.text()
    assert "This ticket was wrapped up already by Grace; nothing was changed." in detail
    [kept] = store_of(helpdesk).wrap_ups()
    assert (kept["why"], kept["intent"], kept["author"]) == ("bot_misunderstood", "ask_refund_status", "Grace")


async def test_a_handed_back_ticket_with_a_wrap_up_takes_no_second_one(helpdesk):
    _, ticket = await claimed_ticket(helpdesk)
    await helpdesk.post(f"{ticket}/handback", data={"outcome": "resolved", "why": "customer_preference"})
    response = await helpdesk.post(f"{ticket}/wrapup", data={"outcome": "resolved", "why": "other"})
    assert "wrapped up already by Grace" in await response.text()
    [kept] = store_of(helpdesk).wrap_ups()
    assert kept["why"] == "customer_preference"


async def test_an_open_ticket_is_wrapped_up_with_its_hand_back(helpdesk, assistant):
    _, ticket = await claimed_ticket(helpdesk)
    response = await helpdesk.post(f"{ticket}/wrapup", data={"outcome": "resolved", "why": "other"})
    detail = await response.text()
    assert "This ticket is still open: its wrap-up goes with the hand-back." in detail
    assert selected(detail, "why") == "other"
    assert [b["event"] for b in assistant.bodies] == ["agent.joined"]
    assert store_of(helpdesk).wrap_ups() == []


async def test_an_incomplete_wrap_up_of_a_closed_ticket_keeps_the_drafts(helpdesk):
    _, ticket = await ended_ticket(helpdesk)
    response = await helpdesk.post(
        f"{ticket}/wrapup", data={"outcome": "resolved", "why": "bot_misunderstood", "note": "Meant refunds."}
    )
    detail = await response.text()
    assert "the bot misunderstood, so choose which intent" in detail
    assert selected(detail, "outcome") == "resolved"
    assert selected(detail, "why") == "bot_misunderstood"
    assert 'value="Meant refunds."' in detail
    assert store_of(helpdesk).wrap_ups() == []


async def test_the_wrap_up_of_a_closed_ticket_needs_its_fields(helpdesk):
    _, ticket = await ended_ticket(helpdesk)
    response = await helpdesk.post(f"{ticket}/wrapup", data={})
    assert "Wrap-up: choose the outcome" in await response.text()
    assert store_of(helpdesk).wrap_ups() == []


async def test_wrap_up_of_an_unknown_ticket_is_404(helpdesk):
    response = await helpdesk.post("/tickets/HD-00000000/wrapup", data={"outcome": "resolved", "why": "other"})
    assert response.status == 404


async def test_wrap_up_from_another_site_is_refused(helpdesk):
    _, ticket = await ended_ticket(helpdesk)
    response = await helpdesk.post(
        f"{ticket}/wrapup",
        data={"outcome": "resolved", "why": "other"},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status == 403
    assert store_of(helpdesk).wrap_ups() == []


async def test_wrap_up_needs_a_signed_in_agent(helpdesk):
    _, ticket = await ended_ticket(helpdesk)
    await helpdesk.post("/logout")
    response = await helpdesk.post(
        f"{ticket}/wrapup", data={"outcome": "resolved", "why": "other"}, allow_redirects=False
    )
    assert response.status in (303, 401)
    assert store_of(helpdesk).wrap_ups() == []


# --- the store -----------------------------------------------------------------------------------


async def test_the_store_keeps_reads_and_erases_wrap_ups(helpdesk):
    first, first_ticket = await ended_ticket(helpdesk)
    second, second_ticket = await claimed_ticket(helpdesk)
    store = store_of(helpdesk)
    first_id, second_id = first_ticket.rsplit("/", 1)[1], second_ticket.rsplit("/", 1)[1]
    start = utcnow() - timedelta(seconds=1)

    store.record_wrap_up(first_id, "Grace", {"outcome": "resolved", "why": "missing_knowledge"})
    store.record_handback(second_id, "Grace", "Done.", {"outcome": "resolved", "why": "bot_misunderstood", "new_topic": True})
    with pytest.raises(WrapUpExists) as caught:
        store.record_wrap_up(first_id, "Alan", {"outcome": "resolved", "why": "other"})
    assert caught.value.author == "Grace"
    with pytest.raises(ValueError, match="unknown wrap-up outcome"):
        store.record_wrap_up(second_id, "Alan", {"outcome": "fine", "why": "other"})

    kept = store.wrap_up(first_id)
    assert isinstance(kept, TicketWrapUp)
    assert kept.as_wrap_up() == {"outcome": "resolved", "why": "missing_knowledge", "intent": None, "new_topic": False}
    assert [w["ticket_id"] for w in store.wrap_ups()] == [first_id, second_id]
    assert [w["ticket_id"] for w in store.wrap_ups(since=start)] == [first_id, second_id]
    assert store.wrap_ups(since=utcnow() + timedelta(minutes=1)) == []
    assert store.wrap_ups()[1]["new_topic"] is True and store.wrap_ups()[1]["note"] == "Done."

    # Both tickets share the test conversation id; erasing it takes their wrap-ups with them.
    conversation = first["conversation_id"]
    assert second["conversation_id"] == conversation
    counts = store.erase_conversations([conversation], dry_run=True)
    assert (counts["tickets"], counts["ticket_wrapups"]) == (2, 2)
    assert len(store.wrap_ups()) == 2
    counts = store.erase_conversations([conversation])
    assert (counts["tickets"], counts["ticket_wrapups"]) == (2, 2)
    assert store.wrap_ups() == []
    with store._sessions() as session:
        assert session.execute(sa.select(sa.func.count(TicketWrapUp.id))).scalar_one() == 0
        assert session.execute(sa.select(sa.func.count(Ticket.id))).scalar_one() == 0


async def test_a_repeated_hand_back_record_replaces_the_wrap_up(helpdesk):
    _, ticket = await claimed_ticket(helpdesk)
    ticket_id = ticket.rsplit("/", 1)[1]
    store = store_of(helpdesk)
    store.record_handback(ticket_id, "Grace", None, {"outcome": "resolved", "why": "other"})
    store.record_handback(ticket_id, "Grace", None, {"outcome": "not_resolved", "why": "other"})
    assert [w["outcome"] for w in store.wrap_ups()] == ["not_resolved"]
