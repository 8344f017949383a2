"""``python -m handoff.tools.outbox_cli``: what is stuck or given up, exit statuses, ``--json`` and ``--retry``."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import pytest

from handoff.delivery import Deliverer, OutboxWorker
from handoff.settings import PROJECT_ROOT
from handoff.store import DELIVERED, EXPIRED, PENDING, REJECTED, new_event, utc_iso
from handoff.tools.outbox_cli import main


def queue_handoff(store, conversation_id="c1", now=None):
    body = new_event(
        "handoff.requested", str(uuid.uuid4()), conversation_id, reason="customer_request", priority="normal", queue="support"
    )
    return store.create_handoff(body, now=now)


def queue_message(store, handoff, text="are you there?"):
    message = {"role": "customer", "text": text, "timestamp": "2024-01-01T00:00:00.000Z"}
    return store.enqueue(new_event("conversation.message", handoff.id, handoff.conversation_id, message=message))


def run(capsys, *args):
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def run_json(capsys, *args):
    status, out, _ = run(capsys, "--json", *args)
    return status, json.loads(out)


def test_an_empty_outbox_is_ok(capsys, store):
    status, out, _ = run(capsys)
    assert status == 0
    assert "0 pending" in out and "Status: ok (exit 0): nothing is stuck." in out


def test_a_new_delivery_is_queued_not_stuck(capsys, store):
    _, outbox = queue_handoff(store)
    status, report = run_json(capsys)
    assert status == 0 and report["status"] == "ok"
    [entry] = report["pending"]
    assert entry["event_id"] == outbox.event_id and entry["state"] == "queued" and entry["stuck"] is False
    assert entry["attempts"] == 0 and entry["last_error"] is None


async def test_a_failing_delivery_is_listed_as_retrying_with_its_error(capsys, receiver, settings, store):
    receiver.status = 503
    handoff, outbox = queue_handoff(store, "anna")
    message = queue_message(store, handoff)
    other, other_outbox = queue_handoff(store, "bert")
    assert not (await Deliverer(store, settings).deliver(outbox.event_id)).delivered

    status, report = run_json(capsys)
    assert status == 1 and report["status"] == "retrying" and report["exit_status"] == 1
    assert report["webhook_url"] == receiver.url
    by_id = {e["event_id"]: e for e in report["pending"]}
    failed = by_id[outbox.event_id]
    assert failed["state"] == "retrying" and failed["stuck"] is True and failed["attempts"] == 1
    assert failed["conversation_id"] == "anna" and failed["event"] == "handoff.requested"
    assert "HTTP 503" in failed["last_error"]
    assert failed["next_attempt_at"] == utc_iso(store.get_event(outbox.event_id).next_attempt_at)
    # The message queued behind it waits for it; the other handoff's delivery is merely queued.
    assert by_id[message.event_id]["state"] == "held_back"
    assert by_id[message.event_id]["waits_for"] == outbox.event_id
    assert by_id[other_outbox.event_id]["state"] == "queued"
    assert report["counts"]["pending"] == 3 and report["counts"]["retrying"] == 1 and report["counts"]["held_back"] == 1

    status, text, _ = run(capsys)
    assert status == 1
    line = next(line for line in text.splitlines() if outbox.event_id in line and "handoff.requested" in line)
    assert "conversation anna" in line and "1 attempt " in line and "next attempt" in line and "[retrying]" in line
    assert "last error: HTTP 503" in text
    assert f"waits for {outbox.event_id}" in text
    assert "Status: retrying (exit 1)" in text


def test_a_due_delivery_nobody_tried_is_overdue(capsys, store):
    # Queued two minutes ago and never tried: no outbox worker is running.
    queue_handoff(store, now=time.time() - 120)
    status, report = run_json(capsys)
    assert status == 1 and report["pending"][0]["state"] == "overdue"
    status, report = run_json(capsys, "--overdue", "300")
    assert status == 0 and report["pending"][0]["state"] == "queued"


async def test_rejected_and_expired_deliveries_are_given_up(capsys, receiver, settings, store):
    receiver.status = 400
    _, rejected = queue_handoff(store, "carla")
    assert not (await Deliverer(store, settings).deliver(rejected.event_id)).delivered
    _, expired = queue_handoff(store, "dirk")
    store.mark_failed(expired.event_id, "ClientConnectorError: Cannot connect", time.time() + 60, final_status=EXPIRED)
    assert {store.get_event(rejected.event_id).status, store.get_event(expired.event_id).status} == {REJECTED, EXPIRED}

    status, report = run_json(capsys)
    assert status == 2 and report["status"] == "given_up"
    assert [e["event_id"] for e in report["rejected"]] == [rejected.event_id]
    assert [e["event_id"] for e in report["expired"]] == [expired.event_id]
    assert "HTTP 400" in report["rejected"][0]["last_error"] and report["rejected"][0]["next_attempt_at"] is None
    assert report["counts"]["rejected"] == 1 and report["counts"]["expired"] == 1 and report["pending"] == []

    status, text, _ = run(capsys)
    assert status == 2
    assert "Rejected by the helpdesk" in text and "Expired" in text
    assert rejected.event_id in text and expired.event_id in text
    assert "last error: ClientConnectorError: Cannot connect" in text
    assert "Status: given_up (exit 2): 2 deliveries were given up." in text


async def test_retry_sends_the_same_event_again(capsys, receiver, settings, store):
    receiver.status = 400
    handoff, outbox = queue_handoff(store, "emma")
    assert not (await Deliverer(store, settings).deliver(outbox.event_id)).delivered
    assert store.get_event(outbox.event_id).status == REJECTED

    status, result = run_json(capsys, "--retry", outbox.event_id)
    assert status == 0 and result["errors"] == []
    [retried] = result["retried"]
    assert retried["event_id"] == outbox.event_id and retried["was"] == REJECTED
    again = store.get_event(outbox.event_id)
    assert again.status == PENDING and again.attempts == 0 and again.body == outbox.body

    # The helpdesk was fixed: the worker sends it with the same event id and the same bytes.
    receiver.status = 200
    assert await OutboxWorker(store, settings).run_once() == 1
    first, second = receiver.received
    assert second.raw == first.raw == outbox.body.encode()
    assert second.headers["X-Handoff-Delivery"] == first.headers["X-Handoff-Delivery"] == outbox.event_id
    assert store.get_event(outbox.event_id).status == DELIVERED
    assert run_json(capsys)[0] == 0


def test_retry_in_text_mode_says_what_happened(capsys, store):
    _, outbox = queue_handoff(store, "fenna")
    store.mark_failed(outbox.event_id, "gave up", time.time(), final_status=EXPIRED)
    status, out, err = run(capsys, "--retry", outbox.event_id)
    assert status == 0 and err == ""
    assert outbox.event_id in out and "was expired, is pending again" in out


def test_retry_refuses_unknown_and_not_given_up_events(capsys, store):
    _, pending = queue_handoff(store)
    unknown = str(uuid.uuid4())
    status, out, err = run(capsys, "--retry", pending.event_id, "--retry", unknown)
    assert status == 3 and out == ""
    assert f"{pending.event_id}: not retried: it is pending" in err
    assert f"{unknown}: not retried: no such event" in err
    assert store.get_event(pending.event_id).status == PENDING and store.get_event(pending.event_id).attempts == 0


def test_bad_arguments_exit_3(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--overdue", "soon"])
    assert exited.value.code == 3
    assert "--overdue" in capsys.readouterr().err


def test_limit_shortens_the_listing_not_the_counts(capsys, store):
    for n in range(3):
        _, outbox = queue_handoff(store, f"c{n}")
        store.mark_failed(outbox.event_id, "HTTP 502", time.time() + 30)
    status, report = run_json(capsys, "--limit", "2")
    assert status == 1 and len(report["pending"]) == 2 and report["counts"]["retrying"] == 3
    status, text, _ = run(capsys, "--limit", "2")
    assert "... and 1 more" in text


def test_store_counts_and_retry_only_given_up_entries(store):
    _, first = queue_handoff(store)
    _, second = queue_handoff(store, "c2")
    store.mark_failed(second.event_id, "HTTP 404", time.time(), final_status=REJECTED)
    assert store.count_events() == {PENDING: 1, REJECTED: 1}
    assert store.retry_event(first.event_id) is None  # pending: nothing to do
    retried = store.retry_event(second.event_id, now=1234.0)
    assert retried.status == PENDING and retried.attempts == 0 and retried.next_attempt_at == 1234.0
    assert retried.last_error == "HTTP 404" and retried.event_id == second.event_id
    assert store.count_events() == {PENDING: 2}
    assert [e.event_id for e in store.events(statuses=(PENDING,), limit=1)] == [first.event_id]


def test_the_module_runs_as_a_command(store):
    _, outbox = queue_handoff(store, "gijs")
    store.mark_failed(outbox.event_id, "ClientConnectorError: Cannot connect", time.time() + 30)
    done = subprocess.run(
        [sys.executable, "-m", "handoff.tools.outbox_cli", "--json"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1, done.stderr
    [entry] = json.loads(done.stdout)["pending"]
    assert entry["event_id"] == outbox.event_id and entry["state"] == "retrying"
