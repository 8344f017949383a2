"""Erasing a customer on the real servers: a conversation with a handoff, an agent's reply and a
hand-back through the embedded helpdesk, then `make forget` on the stack's databases, and the
signed customer.forget command on the Rasa server."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import time
import uuid

import pytest
import requests

from handoff.settings import PROJECT_ROOT
from tests.stack import BIN, Stack
from tests.support import signed

pytestmark = pytest.mark.e2e

RASA_TOKEN = "e2e-forget-token-" + uuid.uuid4().hex
ANNA = {"name": "Anna Forget-Test", "email": "anna.forget@example.org"}
BERT = {"name": "Bert Keep-Test", "email": "bert.keep@example.org"}
CARLA = {"name": "Carla Api-Test", "email": "carla.api@example.org", "customer_id": "C-77"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    running = Stack(tmp_path_factory.mktemp("forget"), with_helpdesk=True, rasa_auth_token=RASA_TOKEN).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def agent(stack):
    """A browser session signed in to the embedded helpdesk as Sanne."""
    return stack.sign_in("sanne")


def eventually(check, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.3)


def rows(stack, database: str, sql: str, *params) -> list[tuple]:
    with sqlite3.connect(stack.workdir / "var" / database, timeout=30) as connection:
        return connection.execute(sql, params).fetchall()


def count(stack, database: str, sql: str, *params) -> int:
    return rows(stack, database, sql, *params)[0][0]


def handed_off(stack, agent, sender: str, customer: dict) -> str:
    """A conversation that is handed off, answered by Sanne and handed back; its ticket id."""
    assert stack.say(sender, "hello", metadata={"customer": customer})
    told = " ".join(m.get("text", "") for m in stack.say(sender, "I want to talk to a person"))
    assert "colleague" in told.lower()

    def ticket_id():
        for found in re.findall(r"/tickets/(HD-[0-9A-F]+)", agent.get(stack.helpdesk_url + "/", timeout=10).text):
            if sender in agent.get(f"{stack.helpdesk_url}/tickets/{found}", timeout=10).text:
                return found
        return None

    ticket = eventually(ticket_id)
    assert ticket, "the handoff reached the inbox"
    answer = agent.post(f"{stack.helpdesk_url}/tickets/{ticket}/reply", data={"text": "Hello, Sanne here."}, allow_redirects=False, timeout=30)
    assert answer.status_code == 303
    answer = agent.post(f"{stack.helpdesk_url}/tickets/{ticket}/handback", data={"note": "done"}, allow_redirects=False, timeout=30)
    assert answer.status_code == 303
    assert stack.tracker(sender)["paused"] is False
    # Every outbox entry delivered (the ticket carries the whole exchange).
    assert eventually(lambda: count(stack, "handoff.db", "SELECT COUNT(*) FROM handoff_outbox WHERE conversation_id = ? AND status != 'delivered'", sender) == 0)
    return ticket


def held(stack, sender: str) -> tuple[int, int, int, int]:
    """Rows of ``sender``: tracker events, handoffs, outbox entries, helpdesk tickets."""
    return (
        count(stack, "rasa.db", "SELECT COUNT(*) FROM events WHERE sender_id = ?", sender),
        count(stack, "handoff.db", "SELECT COUNT(*) FROM handoffs WHERE conversation_id = ?", sender),
        count(stack, "handoff.db", "SELECT COUNT(*) FROM handoff_outbox WHERE conversation_id = ?", sender),
        count(stack, "helpdesk.db", "SELECT COUNT(*) FROM tickets WHERE conversation_id = ?", sender),
    )


def forget(stack, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", "forget", *args],
        cwd=PROJECT_ROOT, env=stack.env, capture_output=True, text=True, timeout=120,
    )


def test_make_forget_erases_a_customer_from_every_store(stack, agent):
    anna, bert = f"anna-{uuid.uuid4().hex[:8]}", f"bert-{uuid.uuid4().hex[:8]}"
    handed_off(stack, agent, anna, ANNA)
    assert stack.say(bert, "hello", metadata={"customer": BERT})
    before = held(stack, anna)
    bert_before = held(stack, bert)
    assert before[0] > 5 and before[1:] == (1, before[2], 1) and before[2] >= 1
    assert ANNA["email"] in json.dumps(stack.tracker(anna)["events"])
    # Delivered bodies are cleared: the outbox keeps no transcript.
    assert count(stack, "handoff.db", "SELECT COUNT(*) FROM handoff_outbox WHERE conversation_id = ? AND body != ''", anna) == 0

    missing = forget(stack)
    assert missing.returncode != 0 and "CUSTOMER=" in missing.stderr

    extra = f"FORGET_ARGS=--endpoints {stack.endpoints} --json"
    dry = forget(stack, f"CUSTOMER={ANNA['email'].upper()}", extra + " --dry-run")
    assert dry.returncode == 0, dry.stderr
    report = json.loads(dry.stdout[dry.stdout.index("{"):])
    assert report["dry_run"] and report["conversation_ids"] == [anna]
    assert held(stack, anna) == before

    done = forget(stack, f"CUSTOMER={ANNA['email']}", extra)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout[done.stdout.index("{"):])
    assert report["conversation_ids"] == [anna]
    erased = report["erased"]
    assert erased["tracker"] == {"conversations": 1, "events": before[0]}
    assert erased["handoff"]["handoffs"] == 1 and erased["handoff"]["outbox"] == before[2]
    assert erased["helpdesk"]["tickets"] == 1 and erased["helpdesk"]["ticket_entries"] >= 2
    assert set(report["stores"]) == {"tracker", "handoff", "helpdesk"}

    assert held(stack, anna) == (0, 0, 0, 0)
    assert held(stack, bert) == bert_before
    tracker = requests.get(f"{stack.rasa_url}/conversations/{anna}/tracker", params={"token": RASA_TOKEN}, timeout=30).json()
    assert not [e for e in tracker["events"] if e["event"] in ("user", "bot")], tracker["events"]
    assert ANNA["email"] not in json.dumps(tracker)
    for database, table in (("handoff.db", "handoff_customer_keys"), ("helpdesk.db", "tickets")):
        dump = json.dumps(rows(stack, database, f"SELECT * FROM {table}"))  # noqa: S608 - fixed names
        assert ANNA["email"] not in dump.lower()
    # The conversation can start afresh.
    assert stack.say(anna, "hello")


def test_an_unknown_customer_erases_nothing(stack):
    sender = f"kept-{uuid.uuid4().hex[:8]}"
    assert stack.say(sender, "hello", metadata={"customer": {"email": "kept@example.org"}})
    before = held(stack, sender)
    done = forget(stack, "CUSTOMER=nobody-at-all@example.org", f"FORGET_ARGS=--endpoints {stack.endpoints}")
    assert done.returncode == 0, done.stderr
    assert "Conversations: none found" in done.stdout
    assert "0 conversations, 0 events erased" in done.stdout and "0 tickets, 0 ticket entries, 0 ticket wrapups, 0 follow ups erased" in done.stdout
    assert held(stack, sender) == before


def test_the_signed_customer_forget_command(stack, agent):
    carla = f"carla-{uuid.uuid4().hex[:8]}"
    handed_off(stack, agent, carla, CARLA)
    before = held(stack, carla)
    url = f"{stack.rasa_url}/webhooks/helpdesk/webhook"
    body = {"event": "customer.forget", "event_id": str(uuid.uuid4()), "customer": {"customer_id": "C-77"}}
    raw, headers = signed(body)

    unsigned = requests.post(url, data=raw, headers={"Content-Type": "application/json"}, timeout=30)
    assert unsigned.status_code == 401
    forged = requests.post(url, data=raw, headers={**headers, "X-Handoff-Signature": "sha256=" + "0" * 64}, timeout=30)
    assert forged.status_code == 401
    assert held(stack, carla) == before, "a refused command erases nothing"

    answer = stack.helpdesk_event(body)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["conversation_ids"] == [carla] and result["event_id"] == body["event_id"]
    assert result["erased"]["tracker"] == {"conversations": 1, "events": before[0]}
    assert result["erased"]["handoff"]["handoffs"] == 1 and result["erased"]["handoff"]["outbox"] == before[2]
    assert held(stack, carla)[:3] == (0, 0, 0)
    tracker = requests.get(f"{stack.rasa_url}/conversations/{carla}/tracker", params={"token": RASA_TOKEN}, timeout=30).json()
    assert not [e for e in tracker["events"] if e["event"] in ("user", "bot")]
    # The helpdesk erases its own ticket (make forget, or TicketStore.forget_customer).
    assert held(stack, carla)[3] == 1
    done = subprocess.run(
        [str(BIN / "python"), "-m", "handoff.tools.privacy_cli", "forget", "--customer-id", "C-77", "--endpoints", str(stack.endpoints)],
        cwd=PROJECT_ROOT, env=stack.env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0 and "1 tickets" in done.stdout, done.stdout + done.stderr
    assert held(stack, carla) == (0, 0, 0, 0)
