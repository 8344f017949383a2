"""Log lines on failure paths carry ids and statuses, never what the customer wrote."""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiohttp.test_utils import TestClient, TestServer

from handoff.delivery import Deliverer
from handoff.settings import load_settings
from handoff.signing import sign_headers
from handoff.store import new_event
from helpdesk.app import create_app
from helpdesk.auth import Agent, AgentDirectory
from tests.support import handoff_requested

PRIVATE = "Quentin Zwartbol, Lindenlaan 77, +31 6 9876 5432"


@pytest.fixture
def echoing_helpdesk(monkeypatch, settings):
    """A helpdesk that refuses every event with 400 and quotes the body back in its answer."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            quoted = json.loads(raw)["transcript"][0]["text"]
            payload = json.dumps({"error": f"cannot take the transcript: {quoted}"}).encode()
            self.send_response(400)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield dataclasses.replace(settings, helpdesk_webhook_url=f"http://127.0.0.1:{server.server_address[1]}/webhook")
    server.shutdown()
    server.server_close()


async def test_a_refused_delivery_logs_the_status_not_the_answer(echoing_helpdesk, store, caplog):
    body = new_event(
        "handoff.requested", str(uuid.uuid4()), "anna", reason="customer_request", priority="normal",
        queue="support", transcript=[{"role": "customer", "text": PRIVATE}],
    )
    _, outbox = store.create_handoff(body)
    with caplog.at_level(logging.DEBUG):
        result = await Deliverer(store, echoing_helpdesk).deliver(outbox.event_id)
    assert result.status == 400 and PRIVATE in result.error  # kept for `make outbox`
    assert PRIVATE in store.get_event(outbox.event_id).last_error
    assert "HTTP 400" in caplog.text and outbox.event_id in caplog.text
    assert "Zwartbol" not in caplog.text


async def test_the_inbox_logs_no_values_of_a_body_it_refuses(tmp_path, caplog):
    settings = dataclasses.replace(load_settings(), secret="privacy-secret-0123456789")
    app = create_app(settings, database_url=f"sqlite:///{tmp_path / 'hd.db'}", agents=AgentDirectory([Agent("g", "G", "pw-123456789")]))
    body = handoff_requested(priority=PRIVATE)  # not one of the priorities: the schema quotes it
    raw = json.dumps(body).encode()
    async with TestClient(TestServer(app)) as client:
        with caplog.at_level(logging.DEBUG):
            answer = await client.post("/webhook", data=raw, headers=sign_headers(settings.secret, raw, body["event_id"]))
            message = (await answer.json())["message"]
    assert answer.status == 400 and "Zwartbol" in message  # the sender is told what is wrong
    assert "rejected a webhook body (handoff.requested" in caplog.text
    assert "Zwartbol" not in caplog.text
