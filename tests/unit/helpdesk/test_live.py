"""Live console: server-sent events announce new tickets, customer messages and agent actions, and
the pages fetch their changed parts as HTML fragments."""

# The shared fixtures (helpdesk, alan, assistant, database_url) are imported from test_helpdesk;
# test functions name them as parameters, which ruff reads as redefinitions.
# ruff: noqa: F811

from __future__ import annotations

import asyncio
import json

import pytest

from helpdesk.live import RESYNC, Change, LiveUpdates
from helpdesk.locks import TicketLocks
from tests.helpdesk_support import deliver, request_handoff
from tests.support import conversation_message, handoff_ended


class EventStream:
    """Reads ``GET /events`` as a browser's EventSource would."""

    def __init__(self, response) -> None:
        self.response = response
        self.lines: list[str] = []

    async def next_event(self, timeout: float = 5.0) -> dict:
        event: dict = {}
        while True:
            raw = await asyncio.wait_for(self.response.content.readline(), timeout)
            if not raw:
                raise AssertionError("the stream ended")
            line = raw.decode().rstrip("\n")
            self.lines.append(line)
            if line.startswith("event: "):
                event["event"] = line[7:]
            elif line.startswith("data: "):
                event["data"] = json.loads(line[6:])
            elif line == "" and "data" in event:
                return event


@pytest.fixture
async def stream(helpdesk):
    response = await helpdesk.get("/events")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert response.headers["Cache-Control"].startswith("no-cache")
    yield EventStream(response)
    response.close()


async def test_new_tickets_messages_and_actions_are_announced(helpdesk, stream):
    body, answer = await request_handoff(helpdesk, customer={"name": "Secret Name"})
    ticket_id = answer["ticket_id"]
    assert await stream.next_event() == {
        "event": "ticket",
        "data": {"kind": "created", "ticket_id": ticket_id},
    }

    message = conversation_message(
        handoff_id=body["handoff_id"], conversation_id=body["conversation_id"]
    )
    await deliver(helpdesk, message)
    await deliver(helpdesk, message)  # a repeated delivery changes nothing and says nothing
    assert (await stream.next_event())["data"] == {"kind": "message", "ticket_id": ticket_id}

    await helpdesk.post(f"/tickets/{ticket_id}/join")
    assert (await stream.next_event())["data"] == {
        "kind": "claimed",
        "ticket_id": ticket_id,
        "agent": "Grace",
    }
    await helpdesk.post(f"/tickets/{ticket_id}/reply", data={"text": "Hello"})
    assert (await stream.next_event())["data"]["kind"] == "replied"
    await helpdesk.post(f"/tickets/{ticket_id}/handback")
    assert (await stream.next_event())["data"]["kind"] == "closed"

    # The stream names tickets, never what anyone wrote or who the customer is.
    text = "\n".join(stream.lines)
    assert "Secret Name" not in text and "Hello" not in text
    assert stream.lines[0] == "retry: 2000"


async def test_the_assistant_ending_a_handoff_is_announced(helpdesk, stream):
    body, answer = await request_handoff(helpdesk)
    await stream.next_event()
    ended = handoff_ended(handoff_id=body["handoff_id"], conversation_id=body["conversation_id"])
    await deliver(helpdesk, ended)
    assert (await stream.next_event())["data"] == {
        "kind": "closed",
        "ticket_id": answer["ticket_id"],
    }


async def test_refused_actions_announce_nothing(helpdesk, alan, stream):
    _, answer = await request_handoff(helpdesk)
    await stream.next_event()
    ticket = f"/tickets/{answer['ticket_id']}"
    await helpdesk.post(f"{ticket}/join")
    await stream.next_event()
    await alan.post(f"{ticket}/reply", data={"text": "over your head"})
    with pytest.raises(asyncio.TimeoutError):
        await stream.next_event(timeout=0.3)


async def test_the_inbox_fragments_follow_the_queue(helpdesk):
    empty = await (await helpdesk.get("/partials/inbox")).json()
    assert empty["waiting"] == 0 and "Nobody is waiting" in empty["html"]["queue"]

    _, low = await request_handoff(helpdesk, priority="low")
    _, urgent = await request_handoff(helpdesk, priority="urgent", reason="urgent")
    data = await (await helpdesk.get("/partials/inbox")).json()
    assert data["waiting"] == 2 and data["open"] == 2
    queue = data["html"]["queue"]
    assert queue.index(urgent["ticket_id"]) < queue.index(low["ticket_id"])
    assert "Urgent matter" in queue

    await helpdesk.post(f"/tickets/{low['ticket_id']}/join")
    data = await (await helpdesk.get("/partials/inbox")).json()
    assert data["waiting"] == 1
    in_progress = data["html"]["queue"].split("In progress", 1)[1]
    assert low["ticket_id"] in in_progress and "with Grace" in in_progress


async def test_the_ticket_fragments_follow_the_conversation(helpdesk, alan):
    body, answer = await request_handoff(helpdesk)
    path = f"/partials/tickets/{answer['ticket_id']}"
    message = conversation_message(
        handoff_id=body["handoff_id"], conversation_id=body["conversation_id"]
    )
    message["message"]["text"] = "Are you still there?"
    await deliver(helpdesk, message)

    data = await (await helpdesk.get(path)).json()
    assert set(data["html"]) == {"ticket-head", "timeline", "work", "sidebar", "presence"}
    assert "Are you still there?" in data["html"]["timeline"].split("Since the handoff", 1)[1]
    assert "Claim" in data["html"]["work"]
    assert data["state"] == "waiting"

    await alan.post(f"/tickets/{answer['ticket_id']}/join")
    data = await (await helpdesk.get(path)).json()
    assert (data["state"], data["agent"]) == ("assigned", "Alan")
    assert "Take over from Alan" in data["html"]["work"]
    assert "with Alan" in data["html"]["ticket-head"]
    mine = await (await alan.get(path)).json()
    assert "You are handling this conversation." in mine["html"]["work"]

    missing = await helpdesk.get("/partials/tickets/HD-00000000")
    assert missing.status == 404


async def test_the_pages_load_the_live_script(helpdesk):
    _, answer = await request_handoff(helpdesk)
    for path in ("/", f"/tickets/{answer['ticket_id']}"):
        html = await (await helpdesk.get(path)).text()
        assert 'data-live="1"' in html
        assert '<script src="/static/console.js" defer></script>' in html
    script = await helpdesk.get("/static/console.js")
    assert script.status == 200
    assert "EventSource" in await script.text()


async def test_streams_end_when_the_helpdesk_stops():
    live = LiveUpdates()
    async with live.subscribe() as queue:
        live.publish("created", "HD-1")
        live.close()
        assert await queue.get() is None  # pending changes give way to the end
    assert live.subscriber_count == 0
    async with live.subscribe() as late:
        assert await late.get() is None


async def test_a_stalled_page_is_told_to_fetch_everything_again():
    live = LiveUpdates()
    async with live.subscribe() as queue:
        for index in range(300):
            live.publish("message", f"HD-{index}")
        changes = []
        while not queue.empty():
            changes.append(queue.get_nowait())
    assert RESYNC in changes
    assert len(changes) < 300
    assert Change("message", "HD-299") in changes


async def test_ticket_locks_serve_one_at_a_time_and_are_forgotten():
    locks = TicketLocks()
    order: list[str] = []

    async def act(name: str) -> None:
        async with locks.hold("HD-1"):
            order.append(f"{name} start")
            await asyncio.sleep(0.01)
            order.append(f"{name} end")

    await asyncio.gather(act("a"), act("b"))
    assert order in (
        ["a start", "a end", "b start", "b end"],
        ["b start", "b end", "a start", "a end"],
    )
    assert len(locks) == 0
