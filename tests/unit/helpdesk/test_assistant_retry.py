"""The embedded helpdesk sends an agent's event again, with the same event_id, after a temporary failure."""

from __future__ import annotations

import pytest

from helpdesk import assistant as assistant_module
from tests.helpdesk_support import page, request_handoff


@pytest.fixture(autouse=True)
def short_pauses(monkeypatch):
    monkeypatch.setattr(assistant_module, "RETRY_PAUSE_CAP_SECONDS", 0.01)


async def test_a_busy_assistant_gets_the_same_event_again_and_the_reply_is_recorded_once(helpdesk, assistant):
    _, answer = await request_handoff(helpdesk)
    ticket = f"/tickets/{answer['ticket_id']}"
    assistant.failures = [(503, {"Retry-After": "1"}), (502, {})]

    response = await helpdesk.post(f"{ticket}/join")
    assert "banner error" not in await response.text()
    joined = [body for body in assistant.bodies if body["event"] == "agent.joined"]
    assert len(joined) == 3 and len({body["event_id"] for body in joined}) == 1
    # Each try is signed again (the stand-in assistant verifies every signature).
    assert [headers["X-Handoff-Delivery"] for headers, _ in assistant.received] == [joined[0]["event_id"]] * 3

    response = await helpdesk.post(f"{ticket}/reply", data={"text": "Hello, Grace here."})
    assert "banner error" not in await response.text()
    assert (await page(helpdesk, ticket)).count("Hello, Grace here.") == 1


async def test_an_assistant_busy_every_time_is_shown_after_the_last_try(helpdesk, assistant):
    _, answer = await request_handoff(helpdesk)
    ticket = f"/tickets/{answer['ticket_id']}"
    assistant.failures = [(503, {"Retry-After": "1"})] * assistant_module.ATTEMPTS

    response = await helpdesk.post(f"{ticket}/join")
    detail = await response.text()
    assert f"the assistant answered 503: temporary failure (tried {assistant_module.ATTEMPTS} times)" in detail
    assert len(assistant.bodies) == assistant_module.ATTEMPTS
    assert "Grace joined" not in detail


async def test_a_refusal_is_not_sent_again(helpdesk, assistant):
    _, answer = await request_handoff(helpdesk)
    assistant.failures = [(409, {})]
    response = await helpdesk.post(f"/tickets/{answer['ticket_id']}/join")
    assert "the assistant answered 409" in await response.text()
    assert len(assistant.bodies) == 1
