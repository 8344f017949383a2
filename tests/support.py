"""Test helpers: a signed webhook receiver standing in for a helpdesk, and signed senders."""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from handoff.signing import SignatureError, sign_headers, verify_request

TEST_SECRET = "test-secret-0123456789abcdef"


@dataclass
class Received:
    headers: dict[str, str]
    raw: bytes
    body: dict[str, Any]
    signature_ok: bool
    at: float
    status: int = 0


@dataclass
class Receiver:
    """A helpdesk webhook on loopback: verifies signatures, records bodies, answers as told.

    Like a helpdesk keeping to the contract, it records a delivery it already accepted (same
    ``X-Handoff-Delivery`` id) only in ``duplicates``: a retry after a lost answer is not a second event.
    """

    secret: str = TEST_SECRET
    status: int = 200
    reply: dict[str, Any] = field(default_factory=lambda: {"ticket_id": "T-1", "estimated_wait_seconds": 120})
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    duplicates: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self
        self._cond = threading.Condition()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items()}
                try:
                    verify_request(receiver.secret, headers, raw)
                    ok = True
                except SignatureError:
                    ok = False
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {}
                if receiver.delay:
                    time.sleep(receiver.delay)
                status = receiver.status if ok else 401
                got = Received(headers, raw, body, ok, time.time())
                delivery = headers.get("X-Handoff-Delivery")
                with receiver._cond:
                    accepted = {
                        r.headers.get("X-Handoff-Delivery") for r in receiver.received if r.signature_ok and r.status < 300
                    }
                    if ok and delivery and delivery in accepted:
                        receiver.duplicates.append(got)
                    else:
                        got.status = status
                        receiver.received.append(got)
                    receiver._cond.notify_all()
                payload = json.dumps(receiver.reply if status < 300 else {"error": "no"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def events(self, event: str | None = None, conversation_id: str | None = None) -> list[dict[str, Any]]:
        with self._cond:
            return [
                r.body
                for r in self.received
                if (event is None or r.body.get("event") == event)
                and (conversation_id is None or r.body.get("conversation_id") == conversation_id)
            ]

    def wait_for(self, event: str, conversation_id: str | None = None, count: int = 1, timeout: float = 20) -> list[dict]:
        deadline = time.time() + timeout
        with self._cond:
            while True:
                found = [
                    r
                    for r in self.received
                    if r.body.get("event") == event
                    and (conversation_id is None or r.body.get("conversation_id") == conversation_id)
                ]
                if len(found) >= count:
                    return [r.body for r in found]
                remaining = deadline - time.time()
                if remaining <= 0:
                    raise AssertionError(
                        f"no {count} x {event} for {conversation_id} within {timeout} s; got "
                        f"{[r.body.get('event') for r in self.received]}"
                    )
                self._cond.wait(remaining)


def helpdesk_event(event: str, handoff_id: str, conversation_id: str, **fields: Any) -> dict[str, Any]:
    body = {
        "event": event,
        "event_id": str(uuid.uuid4()),
        "handoff_id": handoff_id,
        "conversation_id": conversation_id,
        "agent": {"name": "Sanne"},
    }
    body.update(fields)
    return body


def signed(body: dict[str, Any] | bytes, secret: str = TEST_SECRET, now: float | None = None) -> tuple[bytes, dict[str, str]]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    event_id = body.get("event_id", "x") if isinstance(body, dict) else "x"
    return raw, sign_headers(secret, raw, event_id, now=now)


# -- contract messages as the helpdesk and the assistant send them (docs/schemas) ---------------


def _ids() -> dict:
    return {
        "event_id": str(uuid.uuid4()),
        "handoff_id": str(uuid.uuid4()),
        "conversation_id": "5f1c2d3e-customer",
    }


def handoff_requested(**overrides) -> dict:
    body = {
        "event": "handoff.requested",
        **_ids(),
        "sent_at": "2024-05-01T12:00:00Z",
        "reason": "frustration",
        "reason_text": "The customer is frustrated after two failed answers about a refund.",
        "trigger": {
            "intent": "complain",
            "confidence": 0.93,
            "text": "THIS IS USELESS",
            "signals": ["caps", "repeated_fallback"],
        },
        "priority": "high",
        "queue": "support",
        "language": "en",
        "customer": {"name": "Ada Lovelace", "email": "ada@example.com"},
        "channel": {"name": "socketio", "browser": "Firefox 126", "page": "/orders"},
        "transcript": [
            {
                "role": "customer",
                "text": "where is my refund",
                "timestamp": "2024-05-01T11:58:00Z",
                "intent": "ask_refund",
                "confidence": 0.41,
            },
            {
                "role": "bot",
                "text": "Sorry, I did not get that.",
                "timestamp": "2024-05-01T11:58:01Z",
            },
            {
                "role": "customer",
                "text": "THIS IS USELESS",
                "timestamp": "2024-05-01T11:59:30+00:00",
                "intent": "complain",
                "confidence": 0.93,
            },
        ],
    }
    body.update(overrides)
    return body


def conversation_message(**overrides) -> dict:
    body = {
        "event": "conversation.message",
        **_ids(),
        "sent_at": "2024-05-01T12:01:00Z",
        "message": {"role": "customer", "text": "hello?", "timestamp": "2024-05-01T12:01:00Z"},
    }
    body.update(overrides)
    return body


def handoff_ended(**overrides) -> dict:
    body = {
        "event": "handoff.ended",
        **_ids(),
        "sent_at": "2024-05-01T12:05:00Z",
        "cause": "customer_left",
    }
    body.update(overrides)
    return body


def agent_event(event: str, **overrides) -> dict:
    body = {"event": event, **_ids(), "agent": {"name": "Grace"}}
    if event == "agent.message":
        body["text"] = "Hi, I am looking at your refund now."
    body.update(overrides)
    return body


def action_handoff_call(sender: str, text: str = "I want to talk to a person", padding: int = 0) -> dict[str, Any]:
    """What Rasa posts to the action server to run action_handoff for a made-up tracker in which
    ``sender`` asks for a person (``padding`` characters of metadata make the body larger)."""
    said = {
        "event": "user",
        "text": text,
        "timestamp": time.time(),
        "parse_data": {"intent": {"name": "request_human", "confidence": 0.97}, "text": text},
        "input_channel": "rest",
        "metadata": {"padding": "x" * padding} if padding else {},
    }
    return {
        "next_action": "action_handoff",
        "sender_id": sender,
        "tracker": {
            "sender_id": sender,
            "slots": {"language": "en"},
            "latest_message": said["parse_data"],
            "events": [said],
            "paused": False,
            "latest_action_name": "action_listen",
        },
        "domain": {},
        "version": "3.6.2",
    }

