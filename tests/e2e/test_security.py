"""Security of the handoff loop on the real servers: the Rasa HTTP API behind a token, start-up
refusals outside development, request size limits, and logs without transcripts or personal data.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
import uuid

import pytest
import requests

from handoff.settings import PROJECT_ROOT
from tests.stack import BIN, MODEL, Stack
from tests.support import TEST_SECRET

pytestmark = pytest.mark.e2e

RASA_TOKEN = "e2e-rasa-token-" + uuid.uuid4().hex
#: Personal data and sentences that go through a whole handoff and must appear in no log.
CUSTOMER = {"name": "Quentin Zwartbol-Okafor", "email": "q.zwartbol-7731@example.org", "phone": "+31 6 9876 5432"}
SAID_BEFORE = "hello, this is Quentin Zwartbol-Okafor from Lindenlaan 77 in Zevenhuizen"
SAID_DURING = "my neighbour at Lindenlaan 77 signed for parcel ZX-4471-QQ without asking me"
AGENT_REPLY = "Dear Quentin, parcel ZX-4471-QQ goes back to Lindenlaan 77 tomorrow morning."
HANDBACK_NOTE = "Verified by phone; refund reference RF-88130-KLM agreed."
SECRETS = [
    *CUSTOMER.values(),
    "Zwartbol",
    "98765432",
    "9876 5432",
    "Lindenlaan",
    "ZX-4471-QQ",
    "RF-88130-KLM",
    SAID_BEFORE,
    SAID_DURING,
    AGENT_REPLY,
    HANDBACK_NOTE,
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    running = Stack(tmp_path_factory.mktemp("security"), with_helpdesk=True, rasa_auth_token=RASA_TOKEN).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def agent(stack):
    """A browser session signed in to the embedded helpdesk as Sanne."""
    return stack.sign_in("sanne")


def eventually(check, timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


# -- the Rasa HTTP API ----------------------------------------------------------------------------


def test_the_rasa_http_api_needs_the_token(stack):
    sender = f"api-{uuid.uuid4().hex[:8]}"
    assert stack.say(sender, "hello")  # channels need no token
    url = f"{stack.rasa_url}/conversations/{sender}/tracker"
    assert requests.get(url, timeout=10).status_code == 401
    assert requests.get(url, params={"token": "wrong"}, timeout=10).status_code == 401
    # Rasa 3.6 takes the token only as ?token=; a bearer header is for its JWT option.
    assert requests.get(url, headers={"Authorization": f"Bearer {RASA_TOKEN}"}, timeout=10).status_code == 401
    answer = requests.get(url, params={"token": RASA_TOKEN}, timeout=10)
    assert answer.status_code == 200 and answer.json()["sender_id"] == sender
    events = f"{stack.rasa_url}/conversations/{sender}/tracker/events"
    assert requests.post(events, json={"event": "pause"}, timeout=10).status_code == 401
    assert stack.tracker(sender)["paused"] is False
    assert requests.get(f"{stack.rasa_url}/status", timeout=10).status_code == 401


# -- a handoff with personal data, and the logs ------------------------------------------------------


def test_a_handoff_with_personal_data_leaves_none_of_it_in_the_logs(stack, agent):
    sender = f"private-{uuid.uuid4().hex[:8]}"
    assert stack.say(sender, SAID_BEFORE, metadata={"customer": CUSTOMER})
    told = " ".join(m.get("text", "") for m in stack.say(sender, "I want to talk to a person"))
    assert "colleague" in told.lower()

    def ticket_id():
        for found in re.findall(r"/tickets/(HD-[0-9A-F]+)", agent.get(stack.helpdesk_url + "/", timeout=10).text):
            if sender in agent.get(f"{stack.helpdesk_url}/tickets/{found}", timeout=10).text:
                return found
        return None

    ticket = eventually(ticket_id)
    assert ticket, "the handoff reached the inbox"
    page = agent.get(f"{stack.helpdesk_url}/tickets/{ticket}", timeout=10).text
    assert CUSTOMER["email"] in page and "Lindenlaan 77" in page  # the agent does see it

    assert stack.say(sender, SAID_DURING) == []
    assert eventually(lambda: SAID_DURING in agent.get(f"{stack.helpdesk_url}/tickets/{ticket}", timeout=10).text)

    answer = agent.post(f"{stack.helpdesk_url}/tickets/{ticket}/reply", data={"text": AGENT_REPLY}, allow_redirects=False, timeout=30)
    assert answer.status_code == 303
    events = stack.tracker(sender)["events"]
    assert AGENT_REPLY in [e.get("text") for e in events if (e.get("metadata") or {}).get("handoff_role") == "agent"]

    answer = agent.post(
        f"{stack.helpdesk_url}/tickets/{ticket}/handback", data={"note": HANDBACK_NOTE}, allow_redirects=False, timeout=30
    )
    assert answer.status_code == 303
    assert stack.tracker(sender)["paused"] is False
    assert stack.say(sender, "how long does delivery take?"), "the bot answers again"
    time.sleep(1.0)  # let the last outbox deliveries and their log lines land

    logs = sorted(stack.workdir.glob("*.log"))
    assert {p.stem for p in logs} >= {"rasa", "actions", "helpdesk"}
    assert "helpdesk event agent.message for handoff" in (stack.workdir / "rasa.log").read_text()  # it does log
    leaks = []
    for path in logs:
        text = path.read_text(errors="replace").lower()
        leaks += [f"{path.name}: {s!r}" for s in SECRETS if s.lower() in text]
    assert not leaks, "\n".join(leaks)


# -- request size limits ------------------------------------------------------------------------------


def chunked(size: int, piece: bytes = b"x" * 65536):
    """A body of ``size`` bytes sent with Transfer-Encoding: chunked (no Content-Length)."""
    sent = 0
    while sent < size:
        part = piece[: size - sent]
        sent += len(part)
        yield part


@pytest.mark.parametrize("how", ["content-length", "chunked"])
def test_oversized_bodies_are_413(stack, how):
    big = 300 * 1024  # over HANDOFF_MAX_BODY_BYTES (256 KiB)

    def body():
        return chunked(big) if how == "chunked" else b"x" * big

    headers = {"Content-Type": "application/json"}
    assert requests.post(f"{stack.rasa_url}/webhooks/helpdesk/webhook", data=body(), headers=headers, timeout=30).status_code == 413
    assert requests.post(f"{stack.helpdesk_url}/webhook", data=body(), headers=headers, timeout=30).status_code == 413
    # A customer's message is limited much lower (HANDOFF_MAX_MESSAGE_BYTES, 16 KiB).
    rest = f"{stack.rasa_url}/webhooks/rest/webhook"
    assert requests.post(rest, data=(chunked(20 * 1024) if how == "chunked" else b"x" * 20 * 1024), headers=headers, timeout=30).status_code == 413
    assert stack.say(f"after-{how}-{uuid.uuid4().hex[:6]}", "hello"), "normal messages still work"


def test_a_customer_message_over_the_character_limit_is_413(stack):
    sender = f"long-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    answer = requests.post(f"{stack.rasa_url}/webhooks/rest/webhook", json={"sender": sender, "message": "parcel " * 1000}, timeout=30)
    assert answer.status_code == 413 and "5000" in answer.json()["error"]
    assert time.monotonic() - started < 5, "refused before NLU"
    tracker = requests.get(f"{stack.rasa_url}/conversations/{sender}/tracker", params={"token": RASA_TOKEN}, timeout=10).json()
    assert not [e for e in tracker["events"] if e["event"] == "user"]
    assert stack.say(sender, "parcel " * 700), "5000 characters or fewer are answered"


# -- start-up refusals ---------------------------------------------------------------------------------


def production_env(tmp_path, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"HELPDESK_SECRET", "RASA_AUTH_TOKEN", "RASA_TOKEN", "HELPDESK_WEBHOOK_URL"}
    }
    env.update(
        HANDOFF_ENV="production",
        HANDOFF_VAR_DIR=str(tmp_path / "var"),
        RASA_TELEMETRY_ENABLED="false",
        TF_CPP_MIN_LOG_LEVEL="2",
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


def test_without_helpdesk_secret_nothing_starts_outside_development(tmp_path):
    # ACTIONS_TOKEN set: endpoints.yml needs it, and the missing secret is what is refused here.
    env = production_env(tmp_path, RASA_PORT="1", ACTIONS_PORT="1", HELPDESK_PORT="1", ACTIONS_TOKEN="e2e-actions-token-" + uuid.uuid4().hex)
    commands = {
        "action server": [str(BIN / "python"), "-m", "handoff.server.action_server", "--port", "1"],
        "rasa server": [
            str(BIN / "rasa"), "run", "--enable-api", "--auth-token", "x", "--interface", "127.0.0.1", "--port", "1",
            "--model", str(MODEL), "--credentials", "credentials.yml", "--endpoints", "endpoints.yml",
        ],
        "helpdesk": [str(BIN / "python"), "-m", "helpdesk"],
    }
    started = {
        name: subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for name, command in commands.items()
    }
    for name, process in started.items():
        try:
            output, _ = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            pytest.fail(f"the {name} started without HELPDESK_SECRET in production")
        text = output.decode(errors="replace")
        assert process.returncode != 0, f"{name} exited 0:\n{text[-2000:]}"
        assert "HELPDESK_SECRET is not set" in text and "HANDOFF_ENV='production'" in text, f"{name}:\n{text[-2000:]}"
        assert "Traceback" not in text, f"{name} should say it plainly:\n{text[-3000:]}"


def test_run_script_refuses_an_open_http_api_outside_development(tmp_path):
    env = production_env(tmp_path, HELPDESK_SECRET=TEST_SECRET)
    started = time.monotonic()
    done = subprocess.run(["bash", "scripts/run.sh"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "RASA_AUTH_TOKEN is not set" in done.stderr and "HTTP API" in done.stderr, done.stderr
    assert time.monotonic() - started < 10, "refused before starting anything"
    assert "==>" not in done.stdout  # nothing was started
