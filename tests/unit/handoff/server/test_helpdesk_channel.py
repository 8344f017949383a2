"""The helpdesk channel's refusals, found by fuzzing it (tests/e2e/test_fuzz.py), on a Sanic app.

Each case reaches the channel over HTTP (sanic-testing) and must be refused with the right 4xx
before anything is looked up or stored.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
from sanic import Sanic

from handoff import settings as settings_module
from handoff.server.helpdesk_channel import (
    HandoffSettingsError,
    HelpdeskInput,
    parse_body,
    unstorable_text,
)
from handoff.signing import SignatureError, verify_request
from tests.support import helpdesk_event, signed

URL = "/webhooks/helpdesk/webhook"


@pytest.fixture
def client():
    app = Sanic(f"channel-{uuid.uuid4().hex[:8]}")
    app.blueprint(HelpdeskInput().blueprint(lambda _message: None), url_prefix="/webhooks/helpdesk")
    return app.test_client


def post(client, raw: bytes, headers: dict):
    _, answer = client.post(URL, content=raw, headers=headers)
    return answer


def event(**fields):
    body = helpdesk_event("agent.message", str(uuid.uuid4()), "anna", text="hello")
    body.update(fields)
    return body


def test_oversized_body_with_content_length_is_413(client, settings):
    raw, headers = signed(b"x" * (settings.max_body_bytes + 1))
    answer = post(client, raw, headers)
    assert answer.status == 413 and str(settings.max_body_bytes) in answer.json["error"]


def test_oversized_chunked_body_without_content_length_is_413(client, settings):
    chunk = b"y" * 65536
    count = settings.max_body_bytes // len(chunk) + 2

    async def chunks():  # no length known up front: sent with Transfer-Encoding: chunked
        for _ in range(count):
            yield chunk

    request, answer = client.post(URL, content=chunks(), headers={"Content-Type": "application/json"})
    assert request.headers.get("transfer-encoding") == "chunked" and "content-length" not in request.headers
    assert answer.status == 413 and str(settings.max_body_bytes) in answer.json["error"]


def test_a_body_at_the_limit_is_read(client, settings):
    raw = b" " * settings.max_body_bytes
    _, headers = signed(raw)
    answer = post(client, raw, headers)
    assert answer.status == 400 and "JSON" in answer.json["error"]  # read, signed, not JSON


@pytest.mark.parametrize("timestamp", ["²", "١٧٩٥٤٤٦٣٦٧", "１７９５４４６３６７"])
def test_non_ascii_digits_in_the_timestamp_are_401(client, timestamp):
    raw, headers = signed(event())
    headers["X-Handoff-Timestamp"] = timestamp.encode()
    assert post(client, raw, headers).status == 401


def test_verify_request_refuses_non_ascii_digits():
    digits = "".join(chr(0x660 + int(c)) for c in str(int(time.time())))
    for timestamp in ("²", digits):
        with pytest.raises(SignatureError):
            verify_request("secret", {"X-Handoff-Timestamp": timestamp, "X-Handoff-Signature": "sha256=00"}, b"{}")


@pytest.mark.parametrize(
    "body",
    [
        event(text="hello\ud800"),
        event(agent={"name": "Sanne\udfff"}),
        event(text="hello\x00there"),
        event(agent={"name": "Sanne", "team\ud83d": "x"}),
    ],
    ids=["lone surrogate in text", "lone surrogate in name", "NUL", "surrogate in a key"],
)
def test_unstorable_strings_are_400(client, body):
    raw, headers = signed(body)  # json.dumps escapes them: valid JSON syntax
    answer = post(client, raw, headers)
    assert answer.status == 400 and "NUL character or a lone surrogate" in answer.json["error"]


@pytest.mark.parametrize("field", ["event_id", "handoff_id"])
def test_non_canonical_uuids_are_400(client, field):
    body = event()
    body[field] = body[field] + "----"  # jsonschema's "uuid" format takes it
    answer = post(client, *signed(body))
    assert answer.status == 400 and field in answer.json["error"]


@pytest.mark.parametrize(
    "raw",
    [b"[" * 50000, b'{"a":' * 40000 + b"1" + b"}" * 40000],
    ids=["unclosed", "closed"],
)
def test_deep_nesting_is_400(client, raw):
    answer = post(client, *signed(raw))
    assert answer.status == 400 and "JSON" in answer.json["error"]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32"])
def test_json_that_is_not_utf8_is_400(client, encoding):
    raw = json.dumps(event()).encode(encoding)
    answer = post(client, *signed(raw))
    assert answer.status == 400 and "UTF-8" in answer.json["error"]


def test_parse_body_accepts_a_valid_event():
    body = event(text="Grüße, Anna 👋")
    assert parse_body(json.dumps(body, ensure_ascii=False).encode()) == body
    assert not unstorable_text(body)


def test_channel_refuses_to_start_with_the_default_secret_outside_development(monkeypatch):
    monkeypatch.setenv("HANDOFF_ENV", "production")
    monkeypatch.delenv("HELPDESK_SECRET")
    settings_module.get_settings.cache_clear()
    with pytest.raises(HandoffSettingsError, match="HELPDESK_SECRET"):
        HelpdeskInput.from_credentials(None)
