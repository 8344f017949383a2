import dataclasses
import json
import time
import uuid

from handoff.delivery import Deliverer, OutboxWorker, backoff_delay
from handoff.store import DELIVERED, PENDING, REJECTED, new_event


def queue_handoff(store, conversation_id="c1"):
    body = new_event(
        "handoff.requested", str(uuid.uuid4()), conversation_id, reason="customer_request", priority="normal", queue="support"
    )
    handoff, outbox = store.create_handoff(body)
    return handoff, outbox


async def test_delivery_is_signed_and_returns_the_helpdesk_answer(receiver, settings, store):
    _, outbox = queue_handoff(store)
    result = await Deliverer(store, settings).deliver(outbox.event_id)
    assert result.delivered and result.response == {"ticket_id": "T-1", "estimated_wait_seconds": 120}
    [got] = receiver.received
    assert got.signature_ok
    assert got.headers["X-Handoff-Delivery"] == outbox.event_id
    assert got.raw == outbox.body.encode()
    assert store.get_event(outbox.event_id).status == DELIVERED


async def test_failed_attempt_is_kept_for_retry_with_the_same_bytes(receiver, settings, store):
    receiver.status = 503
    _, outbox = queue_handoff(store)
    result = await Deliverer(store, settings).deliver(outbox.event_id)
    assert not result.delivered and result.status == 503
    entry = store.get_event(outbox.event_id)
    assert entry.status == PENDING and entry.attempts == 1 and entry.next_attempt_at > time.time()
    assert "503" in entry.last_error
    # retry: same event id and the same bytes
    receiver.status = 200
    store.mark_failed(outbox.event_id, entry.last_error, next_attempt_at=0)
    assert (await Deliverer(store, settings).deliver(outbox.event_id)).delivered
    first, second = receiver.received
    assert first.raw == second.raw
    assert first.headers["X-Handoff-Delivery"] == second.headers["X-Handoff-Delivery"] == outbox.event_id


async def test_a_permanent_refusal_stops_retrying(receiver, settings, store):
    receiver.status = 400
    _, outbox = queue_handoff(store)
    assert not (await Deliverer(store, settings).deliver(outbox.event_id)).delivered
    assert store.get_event(outbox.event_id).status == REJECTED


async def test_unreachable_helpdesk_is_a_retryable_failure(settings, store):
    unreachable = dataclasses.replace(settings, helpdesk_webhook_url="http://127.0.0.1:9/webhook")
    _, outbox = queue_handoff(store)
    result = await Deliverer(store, unreachable).deliver(outbox.event_id, timeout=2)
    assert not result.delivered and result.error
    assert store.get_event(outbox.event_id).status == PENDING


async def test_worker_keeps_order_within_a_handoff(receiver, settings, store):
    handoff, first = queue_handoff(store)
    store.mark_failed(first.event_id, "down", next_attempt_at=time.time() + 60)  # in backoff
    store.enqueue(new_event("conversation.message", handoff.id, "c1", message={"role": "customer", "text": "hi", "timestamp": "x"}))
    other, _ = queue_handoff(store, "c2")
    worker = OutboxWorker(store, settings)
    assert await worker.run_once() == 1  # only the other handoff's entry
    assert [json.loads(r.raw)["conversation_id"] for r in receiver.received] == ["c2"]
    store.mark_failed(first.event_id, "down", next_attempt_at=0)
    assert await worker.run_once() == 2
    assert [r.body["event"] for r in receiver.received[1:]] == ["handoff.requested", "conversation.message"]


def test_backoff_grows_exponentially_with_jitter_and_a_cap():
    for attempts, ceiling in [(1, 1), (2, 2), (3, 4), (6, 32), (20, 60)]:
        delays = [backoff_delay(attempts) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1


async def test_retry_max_delay_caps_the_wait_before_the_next_attempt(receiver, monkeypatch, store):
    from handoff.settings import load_settings

    receiver.status = 503
    for cap in (2.0, 60.0):
        monkeypatch.setenv("HANDOFF_RETRY_MAX_DELAY", str(cap))
        capped = load_settings()
        _, outbox = queue_handoff(store, f"cap-{cap}")
        for _ in range(9):  # nine failures already: uncapped, the tenth would wait 256-512 s
            store.mark_failed(outbox.event_id, "down", next_attempt_at=0)
        before = time.time()
        assert not (await Deliverer(store, capped).deliver(outbox.event_id)).delivered
        after = time.time()
        entry = store.get_event(outbox.event_id)
        assert entry.attempts == 10
        assert before + cap / 2 <= entry.next_attempt_at <= after + cap
