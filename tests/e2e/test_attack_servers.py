"""Attacks on the servers of the default stack (what `make run` starts): the action server's
webhook without the token, compressed and oversized bodies, addresses other machines reach, and
cross-origin calls to the Rasa server. Each attack is refused, and nothing changes.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import uuid
import zlib

import pytest
import requests

from handoff.settings import PROJECT_ROOT
from handoff.store import HandoffStore
from tests.stack import BIN, free_port
from tests.support import action_handoff_call

pytestmark = pytest.mark.e2e

EVIL = "http://evil.example"


def made_up_call(sender: str, padding: int = 0) -> dict:
    """A tracker nobody had: the customer asks for a person, so action_handoff would open a ticket."""
    return action_handoff_call(sender, padding=padding)


@pytest.fixture(scope="module")
def handoffs(stack):
    store = HandoffStore(f"sqlite:///{stack.workdir / 'var' / 'handoff.db'}")
    yield store
    store.close()


def webhook(stack) -> str:
    return f"{stack.actions_url}/webhook"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def assert_nothing_happened(stack, handoffs, helpdesk, sender: str) -> None:
    """No handoff record, nothing sent to the helpdesk, no conversation in Rasa for ``sender``."""
    time.sleep(1.0)  # room for an outbox pass (0.3 s in the stack) to send anything recorded
    assert handoffs.handoffs(sender) == []
    assert [r.body for r in helpdesk.received if r.body.get("conversation_id") == sender] == []
    assert conversation(stack, sender) == []


def conversation(stack, sender: str) -> list[dict]:
    """What was said or done in ``sender``'s conversation (Rasa's bookkeeping events left out)."""
    events = stack.tracker(sender).get("events") or []
    return [e for e in events if e["event"] not in ("action", "session_started", "slot")]


def non_loopback_addresses() -> list[str]:
    found = set()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.123", 9))  # no packet is sent: picks the outgoing address
            found.add(probe.getsockname()[0])
    except OSError:
        pass
    try:
        found.update(socket.gethostbyname_ex(socket.gethostname())[2])
    except OSError:
        pass
    return sorted(a for a in found if not a.startswith("127.") and a != "0.0.0.0")


# -- the action server --------------------------------------------------------------------------


def test_the_right_token_runs_the_action(stack, handoffs, helpdesk):
    """The control: the same made-up call with the stack's token does open a handoff, so the
    refusals below are the token's doing."""
    sender = f"attack-ok-{uuid.uuid4().hex[:8]}"
    answer = requests.post(webhook(stack), json=made_up_call(sender), headers=bearer(stack.actions_token), timeout=30)
    assert answer.status_code == 200
    assert len(handoffs.handoffs(sender)) == 1
    helpdesk.wait_for("handoff.requested", sender)


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "application/json"},
        bearer("wrong-token-" + uuid.uuid4().hex),
        {"Authorization": "Basic YWRtaW46YWRtaW4=", "Content-Type": "application/json"},
    ],
    ids=["no token", "wrong token", "basic auth"],
)
def test_webhook_without_the_token_is_refused_and_runs_nothing(stack, handoffs, helpdesk, headers):
    sender = f"attack-401-{uuid.uuid4().hex[:8]}"
    answer = requests.post(webhook(stack), json=made_up_call(sender), headers=headers, timeout=30)
    assert answer.status_code == 401
    assert "events" not in answer.json()
    assert_nothing_happened(stack, handoffs, helpdesk, sender)


def test_action_list_needs_the_token(stack):
    refused = requests.get(f"{stack.actions_url}/actions", timeout=10)
    assert refused.status_code == 401 and "action_handoff" not in refused.text
    listed = requests.get(f"{stack.actions_url}/actions", headers=bearer(stack.actions_token), timeout=10)
    assert listed.status_code == 200 and {"name": "action_handoff"} in listed.json()
    assert requests.get(f"{stack.actions_url}/health", timeout=10).status_code == 200


def test_refused_before_the_body_is_read(stack, handoffs, helpdesk):
    """A request announcing a megabyte and sending none of it is answered 401 at once."""
    sender = f"attack-early-{uuid.uuid4().hex[:8]}"
    with socket.create_connection(("127.0.0.1", stack.actions_port), timeout=10) as conn:
        conn.sendall(
            b"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000000\r\n\r\n"
        )
        started = time.monotonic()
        head = conn.recv(4096)
    assert head.startswith(b"HTTP/1.1 401"), head[:200]
    assert time.monotonic() - started < 5
    assert_nothing_happened(stack, handoffs, helpdesk, sender)


@pytest.mark.parametrize("encoding", ["deflate", "gzip"])
def test_compressed_body_is_refused_and_runs_nothing(stack, handoffs, helpdesk, encoding):
    """Even with the token: about 1000x deflate would inflate a few kB into megabytes."""
    sender = f"attack-415-{uuid.uuid4().hex[:8]}"
    raw = json.dumps(made_up_call(sender, padding=4 * 1024 * 1024)).encode()
    body = zlib.compress(raw, 9)
    assert len(raw) / len(body) > 500
    headers = {**bearer(stack.actions_token), "Content-Encoding": encoding}
    answer = requests.post(webhook(stack), data=body, headers=headers, timeout=30)
    assert answer.status_code == 415
    assert_nothing_happened(stack, handoffs, helpdesk, sender)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_oversized_body_is_refused_and_runs_nothing(stack, handoffs, helpdesk, chunked):
    """Over ACTIONS_MAX_BODY_BYTES (4 MiB) with the token. The server may close the connection
    before the 413 is read; either way nothing is handled."""
    sender = f"attack-413-{uuid.uuid4().hex[:8]}"
    raw = json.dumps(made_up_call(sender, padding=5 * 1024 * 1024)).encode()
    data = (raw[i : i + 65536] for i in range(0, len(raw), 65536)) if chunked else raw
    try:
        status = requests.post(webhook(stack), data=data, headers=bearer(stack.actions_token), timeout=30).status_code
    except requests.ConnectionError:
        status = None
    assert status in (413, None)
    assert_nothing_happened(stack, handoffs, helpdesk, sender)
    assert requests.get(f"{stack.actions_url}/health", timeout=10).status_code == 200  # still serving


# -- addresses ----------------------------------------------------------------------------------


def test_servers_listen_on_loopback_only(stack):
    addresses = non_loopback_addresses()
    if not addresses:
        pytest.skip("this machine has no non-loopback address")
    for address in addresses:
        for name, port in (("action server", stack.actions_port), ("rasa", stack.rasa_port)):
            with pytest.raises(OSError):
                socket.create_connection((address, port), timeout=3).close()
                pytest.fail(f"the {name} answers on {address}:{port}")
    # ... and they do answer on loopback.
    for port in (stack.actions_port, stack.rasa_port):
        socket.create_connection(("127.0.0.1", port), timeout=3).close()


def development_env(tmp_path, **extra: str) -> dict[str, str]:
    drop = {"HANDOFF_ENV", "ACTIONS_TOKEN", "HELPDESK_WEBHOOK_URL", "HELPDESK_AGENTS", "RASA_CORS_ORIGINS"}
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.endswith("_HOST")}
    env.update(HANDOFF_VAR_DIR=str(tmp_path / "var"), PYTHONUNBUFFERED="1", RASA_TELEMETRY_ENABLED="false", **extra)
    return env


@pytest.mark.parametrize(
    ("variable", "command"),
    [
        ("ACTIONS_HOST", [str(BIN / "python"), "-m", "handoff.server.action_server"]),
        ("HELPDESK_HOST", [str(BIN / "python"), "-m", "helpdesk"]),
        ("WEBCHAT_HOST", [str(BIN / "python"), "-m", "webchat"]),
        ("RASA_HOST", ["bash", "scripts/run.sh"]),
    ],
)
@pytest.mark.parametrize("host", ["0.0.0.0", "public"])
def test_services_refuse_a_public_address_in_development(tmp_path, variable, command, host):
    if host == "public":
        addresses = non_loopback_addresses()
        if not addresses:
            pytest.skip("this machine has no non-loopback address")
        host = addresses[0]
    port = free_port()
    ports = {name: str(port) for name in ("ACTIONS_PORT", "HELPDESK_PORT", "WEBCHAT_PORT", "RASA_PORT")}
    env = development_env(tmp_path, **{variable: host}, **ports)
    done = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert f"{variable}={host} exposes" in done.stderr and "HANDOFF_ENV=production" in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    # Nothing was started: no listener on the port, no development password printed, no database.
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    assert "password: " not in done.stdout + done.stderr
    assert "==>" not in done.stdout
    assert not (tmp_path / "var" / "helpdesk.db").exists() and not (tmp_path / "var" / "handoff.db").exists()


def test_action_server_refuses_to_start_without_a_token_outside_development(tmp_path):
    port = free_port()
    env = development_env(tmp_path, HANDOFF_ENV="production", HELPDESK_SECRET="a-long-production-secret-" + uuid.uuid4().hex, ACTIONS_PORT=str(port))
    done = subprocess.run([str(BIN / "python"), "-m", "handoff.server.action_server"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "ACTIONS_TOKEN is not set while HANDOFF_ENV='production'" in done.stderr and "Traceback" not in done.stderr
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


# -- CORS on the Rasa server --------------------------------------------------------------------


def test_cors_answers_the_web_chat_origin_only(stack):
    webchat_origins = [f"http://127.0.0.1:{stack.webchat_port}", f"http://localhost:{stack.webchat_port}"]
    for path in ("/", "/socket.io/?EIO=4&transport=polling"):
        evil = requests.get(stack.rasa_url + path, headers={"Origin": EVIL}, timeout=10)
        assert "Access-Control-Allow-Origin" not in evil.headers, (path, dict(evil.headers))
        for origin in webchat_origins:
            allowed = requests.get(stack.rasa_url + path, headers={"Origin": origin}, timeout=10)
            assert allowed.headers.get("Access-Control-Allow-Origin") == origin, (path, dict(allowed.headers))


def test_cross_origin_preflight_for_the_http_api_is_not_granted(stack):
    """A page on another origin cannot get the browser to post events into a conversation: the
    preflight is not granted, so the browser never sends the request, and the tracker is untouched."""
    sender = f"attack-cors-{uuid.uuid4().hex[:8]}"
    url = f"{stack.rasa_url}/conversations/{sender}/tracker/events"
    preflight = requests.options(
        url,
        headers={"Origin": EVIL, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"},
        timeout=10,
    )
    assert "Access-Control-Allow-Origin" not in preflight.headers
    assert "Access-Control-Allow-Methods" not in preflight.headers
    assert conversation(stack, sender) == []
    granted = requests.options(
        url,
        headers={
            "Origin": f"http://127.0.0.1:{stack.webchat_port}",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
        timeout=10,
    )
    assert granted.headers.get("Access-Control-Allow-Origin") == f"http://127.0.0.1:{stack.webchat_port}"
