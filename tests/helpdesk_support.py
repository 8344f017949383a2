"""Helpers for the embedded helpdesk's tests: agents, a stand-in assistant, signed deliveries."""

from __future__ import annotations

import dataclasses
import json
import uuid
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from handoff.settings import load_settings
from handoff.signing import SignatureError, sign_headers, verify_request
from helpdesk.app import create_app
from helpdesk.auth import Agent, AgentDirectory
from tests.support import handoff_requested

SECRET = "helpdesk-test-secret-0123456789"
GRACE = Agent(login="grace", name="Grace", password="grace-password-1")
ALAN = Agent(login="alan", name="Alan", password="alan-password-2")


def make_agents() -> AgentDirectory:
    return AgentDirectory([GRACE, ALAN])


class StandInAssistant:
    """The assistant's ``/webhooks/helpdesk/webhook``: verifies signatures, records bodies and
    answers with ``status`` / ``answer``."""

    def __init__(self) -> None:
        self.url = ""  # set once the test server runs
        self.received: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.status = 200
        self.answer: dict[str, Any] = {"status": "ok"}
        # Answered first, one per request, before ``status``: (status, headers).
        self.failures: list[tuple[int, dict[str, str]]] = []
        self.app = web.Application()
        self.app.router.add_post("/webhooks/helpdesk/webhook", self._handle)

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            verify_request(SECRET, request.headers, raw, tolerance=300)
        except SignatureError as exc:
            return web.json_response({"message": str(exc)}, status=401)
        self.received.append((dict(request.headers), json.loads(raw)))
        if self.failures:
            status, headers = self.failures.pop(0)
            return web.json_response({"error": "temporary failure"}, status=status, headers=headers)
        return web.json_response(self.answer, status=self.status)

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [body for _headers, body in self.received]


def make_settings(rasa_url: str, **overrides: Any):
    return dataclasses.replace(
        load_settings(), secret=SECRET, rasa_url=rasa_url, delivery_timeout=5.0, **overrides
    )


def make_app(settings, database_url: str) -> web.Application:
    return create_app(settings, database_url=database_url, agents=make_agents())


async def sign_in(client: TestClient, agent: Agent = GRACE) -> None:
    """Sign ``client`` in as ``agent`` through the sign-in form."""
    response = await client.post(
        "/login",
        data={"login": agent.login, "password": agent.password},
        allow_redirects=False,
    )
    assert response.status == 303, await response.text()


async def deliver(client: TestClient, body: Any, *, raw: bytes | None = None, **sign: Any):
    """POST a signed body to /webhook; return (status, parsed JSON answer)."""
    data = raw if raw is not None else json.dumps(body).encode()
    event_id = body.get("event_id", str(uuid.uuid4())) if isinstance(body, dict) else "x"
    headers = sign_headers(sign.pop("secret", SECRET), data, event_id, **sign)
    response = await client.post("/webhook", data=data, headers=headers)
    return response.status, await response.json()


async def request_handoff(client: TestClient, **fields: Any) -> tuple[dict, dict]:
    body = handoff_requested(**fields)
    status, answer = await deliver(client, body)
    assert status == 200, answer
    return body, answer


async def page(client: TestClient, path: str) -> str:
    response = await client.get(path)
    assert response.status == 200
    return await response.text()
