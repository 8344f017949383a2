"""The action server entry point (handoff/server/action_server.py): token, encodings, size, start-up."""

from __future__ import annotations

import hashlib
import hmac
import json
import zlib

import pytest
from sanic import Sanic

from handoff.server import action_server
from handoff.server.action_server import (
    DEFAULT_MAX_BODY_BYTES,
    TOKEN_LABEL,
    action_token,
    bearer_matches,
    create_app,
    main,
    max_body_bytes,
)
from handoff.settings import DEVELOPMENT_SECRET, SettingsError
from tests.support import TEST_SECRET, action_handoff_call

TOKEN = "unit-actions-token-0123456789abcdef"
LIMIT = 64 * 1024


def action_call(sender: str, padding: int = 0) -> dict:
    """What Rasa posts to run action_handoff for ``sender`` (a made-up tracker)."""
    return action_handoff_call(sender, "get me a manager", padding)


@pytest.fixture
def app():
    Sanic.test_mode = True  # several apps named "rasa_sdk" in one process
    return create_app("actions", token=TOKEN, limit=LIMIT)


def post(app, body: bytes, headers: dict[str, str]):
    _, answer = app.test_client.post("/webhook", content=body, headers=headers)
    return answer


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def nothing_happened(store, receiver, sender):
    assert store.handoffs(sender) == []
    assert receiver.received == []


# -- the token ------------------------------------------------------------------------------------


def test_development_token_is_derived_from_the_helpdesk_secret():
    expected = hmac.new(TEST_SECRET.encode(), TOKEN_LABEL, hashlib.sha256).hexdigest()
    assert action_token({"HELPDESK_SECRET": TEST_SECRET}) == expected
    assert action_token({"HELPDESK_SECRET": TEST_SECRET, "HANDOFF_ENV": "test"}) == expected
    # Deterministic: the action server and every Rasa starter compute the same value.
    assert action_token({"HELPDESK_SECRET": TEST_SECRET}) == action_token({"HELPDESK_SECRET": TEST_SECRET})
    assert action_token({"HELPDESK_SECRET": "another-secret"}) != expected
    default = hmac.new(DEVELOPMENT_SECRET.encode(), TOKEN_LABEL, hashlib.sha256).hexdigest()
    assert action_token({}) == default and action_token({"ACTIONS_TOKEN": "  "}) == default
    assert TEST_SECRET not in expected


def test_explicit_token_wins():
    assert action_token({"ACTIONS_TOKEN": TOKEN, "HELPDESK_SECRET": TEST_SECRET}) == TOKEN
    assert action_token({"ACTIONS_TOKEN": TOKEN, "HANDOFF_ENV": "production"}) == TOKEN


def test_outside_development_the_token_is_required():
    with pytest.raises(SettingsError, match="ACTIONS_TOKEN is not set while HANDOFF_ENV='production'"):
        action_token({"HANDOFF_ENV": "production", "HELPDESK_SECRET": "a-long-production-secret-value"})
    with pytest.raises(SettingsError, match="at least 16"):
        action_token({"HANDOFF_ENV": "production", "ACTIONS_TOKEN": "short"})


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        (f"Bearer {TOKEN}", True),
        (f"bearer {TOKEN}", True),
        (f"Bearer  {TOKEN} ", True),
        (None, False),
        ("", False),
        ("Bearer", False),
        ("Bearer ", False),
        (f"Basic {TOKEN}", False),
        (TOKEN, False),
        (f"Bearer {TOKEN[:-1]}", False),
        (f"Bearer {TOKEN}x", False),
        ("Bearer wrong-token", False),
    ],
)
def test_bearer_matches(header, ok):
    assert bearer_matches(header, TOKEN) is ok


def test_an_empty_token_is_refused():
    Sanic.test_mode = True
    with pytest.raises(ValueError):
        create_app("actions", token="")


def test_max_body_bytes():
    assert max_body_bytes({}) == DEFAULT_MAX_BODY_BYTES
    assert max_body_bytes({"ACTIONS_MAX_BODY_BYTES": "1000"}) == 1000
    for bad in ("0", "-1", "lots"):
        with pytest.raises(SettingsError, match="ACTIONS_MAX_BODY_BYTES"):
            max_body_bytes({"ACTIONS_MAX_BODY_BYTES": bad})


# -- the HTTP contract ----------------------------------------------------------------------------


def test_health_is_open(app):
    _, answer = app.test_client.get("/health")
    assert answer.status == 200 and answer.json == {"status": "ok"}


def test_actions_list_needs_the_token(app):
    _, refused = app.test_client.get("/actions")
    assert refused.status == 401 and refused.headers["WWW-Authenticate"] == "Bearer"
    assert "action_handoff" not in refused.text
    _, listed = app.test_client.get("/actions", headers=auth())
    assert listed.status == 200
    assert {"name": "action_handoff"} in listed.json


def test_the_right_token_runs_the_action(app, receiver, store):
    answer = post(app, json.dumps(action_call("unit-ok")).encode(), auth())
    assert answer.status == 200
    assert [e["event"] for e in answer.json["events"]] == ["slot", "pause", "action"]
    assert len(store.handoffs("unit-ok")) == 1


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "application/json"},
        auth("wrong-token-0123456789abcdef"),
        {"Authorization": f"Basic {TOKEN}", "Content-Type": "application/json"},
        {"Authorization": f"Bearer {TOKEN[:-1]}", "Content-Type": "application/json"},
    ],
    ids=["no token", "wrong token", "basic scheme", "prefix of the token"],
)
def test_webhook_without_the_token_runs_nothing(app, receiver, store, headers):
    answer = post(app, json.dumps(action_call("unit-401")).encode(), headers)
    assert answer.status == 401
    assert answer.json == {"error": "a valid Authorization: Bearer token is required"}
    nothing_happened(store, receiver, "unit-401")


@pytest.mark.parametrize("encoding", ["deflate", "gzip", "br", "identity, deflate", "DEFLATE"])
def test_compressed_bodies_are_refused(app, receiver, store, encoding):
    body = zlib.compress(json.dumps(action_call("unit-415")).encode())
    answer = post(app, body, {**auth(), "Content-Encoding": encoding})
    assert answer.status == 415
    nothing_happened(store, receiver, "unit-415")


def test_identity_encoding_is_plain(app, receiver, store):
    answer = post(app, json.dumps(action_call("unit-identity")).encode(), {**auth(), "Content-Encoding": "identity"})
    assert answer.status == 200 and len(store.handoffs("unit-identity")) == 1


def test_a_deflate_bomb_is_not_inflated(app, receiver, store):
    """About 1000x: a few kB that would inflate to megabytes."""
    inflated = json.dumps(action_call("unit-bomb", padding=8 * 1024 * 1024)).encode()
    body = zlib.compress(inflated, 9)
    assert len(inflated) / len(body) > 500
    answer = post(app, body, {**auth(), "Content-Encoding": "deflate"})
    assert answer.status == 415
    nothing_happened(store, receiver, "unit-bomb")


def test_a_body_over_the_limit_is_refused(app, receiver, store):
    body = json.dumps(action_call("unit-413", padding=LIMIT)).encode()
    assert len(body) > LIMIT
    try:
        answer = post(app, body, auth())
    except Exception:  # noqa: BLE001 - on a busy machine the close may come before the 413 is read
        answer = None
    assert answer is None or answer.status == 413
    nothing_happened(store, receiver, "unit-413")


def test_a_body_under_the_limit_is_taken(app, receiver, store):
    body = json.dumps(action_call("unit-under", padding=LIMIT // 2)).encode()
    assert post(app, body, auth()).status == 200
    assert len(store.handoffs("unit-under")) == 1


def test_a_chunked_body_over_the_limit_is_refused(app, receiver, store):
    def chunks():
        piece = json.dumps(action_call("unit-chunked", padding=LIMIT)).encode()
        for start in range(0, len(piece), 4096):
            yield piece[start : start + 4096]

    try:
        answer = post(app, chunks(), auth())
    except Exception:  # noqa: BLE001 - the server may close the connection before the 413 is read
        answer = None
    assert answer is None or answer.status == 413
    nothing_happened(store, receiver, "unit-chunked")


def test_errors_do_not_echo_the_request(app, receiver, store):
    _, answer = app.test_client.get("/no-such-route", headers=auth())
    # rasa_sdk's own handler would answer 500 with the request body; Sanic's errors keep their status.
    assert answer.status == 404 and set(answer.json) == {"error"}


# -- starting it ----------------------------------------------------------------------------------


def test_print_token(monkeypatch, capsys):
    monkeypatch.delenv("ACTIONS_TOKEN", raising=False)
    assert main(["--print-token"]) == 0
    assert capsys.readouterr().out.strip() == action_token({"HELPDESK_SECRET": TEST_SECRET})
    monkeypatch.setenv("ACTIONS_TOKEN", TOKEN)
    assert main(["--print-token"]) == 0
    assert capsys.readouterr().out.strip() == TOKEN


def test_print_token_outside_development_without_one(monkeypatch, capsys):
    monkeypatch.delenv("ACTIONS_TOKEN", raising=False)
    monkeypatch.setenv("HANDOFF_ENV", "production")
    assert main(["--print-token"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "ACTIONS_TOKEN is not set" in captured.err


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"HANDOFF_ENV": "production", "HELPDESK_SECRET": "a-long-production-secret-value"}, "ACTIONS_TOKEN is not set"),
        ({"HANDOFF_ENV": "production", "ACTIONS_TOKEN": TOKEN, "HELPDESK_SECRET": ""}, "HELPDESK_SECRET is not set"),
        ({"ACTIONS_HOST": "0.0.0.0"}, "ACTIONS_HOST=0.0.0.0 exposes the action server"),
        ({"ACTIONS_HOST": "192.0.2.2", "HANDOFF_ENV": "dev"}, "ACTIONS_HOST=192.0.2.2 exposes"),
        ({"COMPRESS_ACTION_SERVER_REQUEST": "true"}, "COMPRESS_ACTION_SERVER_REQUEST is set"),
        ({"ACTIONS_MAX_BODY_BYTES": "x"}, "ACTIONS_MAX_BODY_BYTES"),
    ],
)
def test_refuses_to_start(monkeypatch, capsys, environ, message):
    started = []
    monkeypatch.setattr(action_server, "create_app", lambda *a, **k: started.append(a))
    monkeypatch.delenv("ACTIONS_TOKEN", raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert main([]) == 2
    assert message in capsys.readouterr().err
    assert started == []
