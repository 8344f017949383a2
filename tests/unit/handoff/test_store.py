import time
import uuid

from handoff.lifecycle import EndCause
from handoff.store import ASSIGNED, DELIVERED, ENDED, PENDING, REQUESTED, new_event


def payload(conversation_id="c1"):
    return new_event(
        "handoff.requested",
        str(uuid.uuid4()),
        conversation_id,
        reason="customer_request",
        priority="normal",
        queue="support",
        language="nl",
    )


def test_create_records_handoff_and_queues_its_payload(store):
    body = payload()
    handoff, outbox = store.create_handoff(body)
    assert handoff.state == REQUESTED and handoff.language == "nl"
    assert store.active_handoff("c1").id == handoff.id
    assert outbox.status == PENDING and outbox.event_id == body["event_id"]
    assert outbox.event_type == "handoff.requested"


def test_handoff_ends_once(store):
    handoff, _ = store.create_handoff(payload())
    assert store.mark_assigned(handoff.id, "Sanne")
    assert store.get_handoff(handoff.id).state == ASSIGNED
    assert store.end_handoff(handoff.id, EndCause.HANDED_BACK) is True
    assert store.end_handoff(handoff.id, EndCause.HANDED_BACK) is False
    ended = store.get_handoff(handoff.id)
    assert ended.state == ENDED and ended.end_cause == "handed_back" and ended.ended_at
    assert store.active_handoff("c1") is None
    assert store.mark_assigned(handoff.id, "Piet") is False


def test_end_and_enqueue_is_atomic(store):
    handoff, _ = store.create_handoff(payload())
    body = new_event("handoff.ended", handoff.id, "c1", cause="customer_restart")
    assert store.end_and_enqueue(handoff.id, "customer_restart", body)
    again = new_event("handoff.ended", handoff.id, "c1", cause="session_expired")
    assert not store.end_and_enqueue(handoff.id, "session_expired", again)
    assert [e.event_type for e in store.events(handoff.id)] == ["handoff.requested", "handoff.ended"]


def test_claim_is_exclusive_until_the_lease_runs_out(store):
    _, outbox = store.create_handoff(payload())
    now = time.time()
    assert store.claim(outbox.event_id, 10, now=now) is not None
    assert store.claim(outbox.event_id, 10, now=now + 1) is None
    assert store.claim(outbox.event_id, 10, now=now + 11) is not None
    store.mark_delivered(outbox.event_id, '{"ok":1}')
    assert store.claim(outbox.event_id, 10, now=now + 100) is None
    delivered = store.get_event(outbox.event_id)
    assert delivered.status == DELIVERED and delivered.attempts == 1


def test_inbound_event_ids_are_recorded_once(store):
    assert store.record_inbound("e1", "h1", "agent.message") is True
    assert store.record_inbound("e1", "h1", "agent.message") is False
    assert store.inbound_seen("e1") and not store.inbound_seen("e2")


def test_records_survive_a_new_store_on_the_same_database(settings, store):
    from handoff.store import HandoffStore

    handoff, _ = store.create_handoff(payload("c-keep"))
    other = HandoffStore(settings.database_url)
    try:
        assert other.active_handoff("c-keep").id == handoff.id
    finally:
        other.close()
