"""Limits on customers' messages (handoff/server/limits.py), on a Sanic app with Rasa's REST channel."""

from __future__ import annotations

import json
import uuid

import pytest
from rasa.core.channels.channel import register
from rasa.core.channels.rest import RestInput
from rasa.core.channels.socketio import SocketIOInput
from sanic import Sanic

from handoff.server.helpdesk_channel import HelpdeskInput
from handoff.server.limits import limit_socketio, too_long_text

REST = "/webhooks/rest/webhook"


class Agent:
    """Stands in for Rasa's agent: records what reaches NLU and answers nothing."""

    processor = None  # no model: handoff/server/tasks.py's runner then has nothing to do

    def __init__(self) -> None:
        self.handled: list[str] = []

    async def handle_message(self, message) -> None:
        self.handled.append(message.text)


@pytest.fixture
def server():
    app = Sanic(f"limits-{uuid.uuid4().hex[:8]}")
    register([RestInput(), HelpdeskInput()], app, route="/webhooks/")
    app.ctx.agent = Agent()
    return app


def post_over_limit(server, **kwargs):
    """``(request, status)`` of a POST the server refuses for its size.

    Sanic answers 413 and closes the connection as soon as the limit is passed; a client still
    sending the rest of its body may find the connection closed before it reads the answer, and
    sanic-testing then has no response to return: the status is None. Either way it was refused.
    """
    try:
        request, answer = server.test_client.post(REST, headers={"Content-Type": "application/json"}, **kwargs)
    except ValueError as closed:
        # How the closed connection shows depends on the moment it closes: no response, or the
        # transport already closed under the client's write.
        shown = str(closed)
        assert any(sign in shown for sign in ("None])", "No response returned", "the handler is closed")), closed
        return None, None
    return request, answer.status


def test_a_normal_message_reaches_the_agent(server):
    _, answer = server.test_client.post(REST, json={"sender": "anna", "message": "where is my parcel?"})
    assert answer.status == 200
    assert server.ctx.agent.handled == ["where is my parcel?"]


def test_a_message_over_the_character_limit_is_413_before_nlu(server, settings):
    text = "a" * (settings.max_message_chars + 1)
    _, answer = server.test_client.post(REST, json={"sender": "anna", "message": text})
    assert answer.status == 413 and str(settings.max_message_chars) in answer.json["error"]
    assert server.ctx.agent.handled == []


def test_a_message_at_the_character_limit_is_taken(server, settings):
    text = "é" * settings.max_message_chars  # two bytes each in UTF-8: under the byte limit
    body = json.dumps({"sender": "anna", "message": text}, ensure_ascii=False).encode()
    _, answer = server.test_client.post(REST, content=body, headers={"Content-Type": "application/json"})
    assert answer.status == 200 and server.ctx.agent.handled == [text]


def test_a_body_over_the_byte_limit_is_413(server, settings):
    body = b'{"sender": "anna", "message": "hi", "metadata": {"x": "' + b"x" * settings.max_message_bytes + b'"}}'
    _, status = post_over_limit(server, content=body)
    assert status in (413, None)
    assert server.ctx.agent.handled == []


def test_a_chunked_body_over_the_byte_limit_is_413(server, settings):
    async def chunks():
        yield b'{"sender": "anna", "message": "'
        for _ in range(settings.max_message_bytes // 1024 + 1):
            yield b"y" * 1024
        yield b'"}'

    request, status = post_over_limit(server, content=chunks())
    assert status in (413, None)
    if request is not None:
        assert "content-length" not in request.headers  # sent chunked
    assert server.ctx.agent.handled == []


def test_the_helpdesk_webhook_keeps_its_own_larger_limit(server, settings):
    # Larger than a customer's message, smaller than HANDOFF_MAX_BODY_BYTES: refused for its
    # signature (401), not for its size.
    _, answer = server.test_client.post("/webhooks/helpdesk/webhook", content=b"x" * (settings.max_message_bytes * 2))
    assert answer.status == 401


def test_too_long_text_reads_message_or_text():
    assert too_long_text(b'{"message": "abcdef"}', 5) == 6
    assert too_long_text(b'{"text": "abcdef"}', 5) == 6
    assert too_long_text(b'{"message": "abcde"}', 5) is None
    assert too_long_text(b"not json", 5) is None
    assert too_long_text(b'["abcdef"]', 5) is None


def test_socketio_packets_are_limited(settings):
    channel = SocketIOInput()
    channel.blueprint(lambda _message: None)
    assert channel.sio.eio.max_http_buffer_size == 1_000_000  # engine.io's default
    limit_socketio([RestInput(), channel], settings)
    assert channel.sio.eio.max_http_buffer_size == settings.max_message_bytes
