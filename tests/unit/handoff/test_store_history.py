"""handoff.store: the earlier handoff a repeat contact carries, transfers, hand-back notes, and the
queue position a waiting customer hears."""

from __future__ import annotations

import uuid

from handoff.schemas import validate_outbound
from handoff.store import ASSIGNED, REQUESTED, TASK_NO_AGENT
from tests.support import handoff_requested


def open_handoff(store, *, conversation="conv-a", customer=None, now=1000.0, priority="normal", queue="support", text="where is my refund"):
    body = handoff_requested(
        handoff_id=str(uuid.uuid4()),
        conversation_id=conversation,
        customer=customer if customer is not None else {},
        priority=priority,
        queue=queue,
        transcript=[{"role": "customer", "text": text, "timestamp": "2026-12-01T09:00:00Z"}],
    )
    handoff, _ = store.create_handoff(body, now=now)
    return handoff, body


def unverified(**fields):
    return {**fields, "verified": {k: False for k in fields}, "sources": {k: "channel" for k in fields}}


def verified_id(customer_id, **fields):
    return {
        "customer_id": customer_id,
        **fields,
        "verified": {"customer_id": True, **{k: False for k in fields}},
        "sources": {"customer_id": "identity", **{k: "channel" for k in fields}},
    }


def test_a_first_contact_carries_no_earlier_handoff(store):
    _, body = open_handoff(store, customer=unverified(email="ada@example.com"))
    assert "previous_handoff" not in body


def test_the_same_conversation_carries_the_earlier_handoff_with_its_outcome_and_note(store):
    first, _ = open_handoff(store, now=1000.0, text="my parcel is lost")
    store.end_handoff(first.id, "handed_back")
    store.record_note(first.id, "Resent the parcel, tracking 3S123.")
    _, body = open_handoff(store, now=2000.0, text="still no parcel")
    previous = body["previous_handoff"]
    assert previous["handoff_id"] == first.id
    assert (previous["matched_by"], previous["verified"]) == ("conversation_id", False)
    assert (previous["outcome"], previous["note"]) == ("handed_back", "Resent the parcel, tracking 3S123.")
    assert [t["text"] for t in previous["transcript"]] == ["my parcel is lost"]
    assert previous["reason"] == "frustration" and previous["requested_at"].startswith("1970-01-01T00:16:40")
    validate_outbound(body)


def test_an_email_the_customer_gave_matches_another_conversation_unverified(store):
    first, _ = open_handoff(store, conversation="browser-1", customer=unverified(email="Ada@Example.com"), now=1000.0)
    _, body = open_handoff(store, conversation="browser-2", customer=unverified(email="ada@example.com"), now=2000.0)
    assert body["previous_handoff"]["handoff_id"] == first.id
    assert (body["previous_handoff"]["matched_by"], body["previous_handoff"]["verified"]) == ("email", False)


def test_a_verified_customer_id_wins_over_email_and_phone(store):
    by_id, _ = open_handoff(store, conversation="c-1", customer=verified_id("cust-42"), now=1000.0)
    by_email, _ = open_handoff(store, conversation="c-2", customer=unverified(email="ada@example.com"), now=1500.0)
    _, body = open_handoff(store, conversation="c-3", customer=verified_id("cust-42", email="ada@example.com"), now=2000.0)
    assert body["previous_handoff"]["handoff_id"] == by_id.id  # older, but matched by the verified id
    assert (body["previous_handoff"]["matched_by"], body["previous_handoff"]["verified"]) == ("customer_id", True)
    assert by_email.id != by_id.id


def test_an_unverified_customer_id_is_never_a_match(store):
    open_handoff(store, conversation="c-1", customer=unverified(customer_id="cust-42"), now=1000.0)
    _, body = open_handoff(store, conversation="c-2", customer=unverified(customer_id="cust-42"), now=2000.0)
    assert "previous_handoff" not in body


def test_a_phone_matches_by_its_digits_and_the_newest_earlier_handoff_is_taken(store):
    open_handoff(store, conversation="c-1", customer=unverified(phone="+31 6 1234 5678"), now=1000.0)
    newer, _ = open_handoff(store, conversation="c-2", customer=unverified(phone="+31612345678"), now=1500.0)
    _, body = open_handoff(store, conversation="c-3", customer=unverified(phone="+31-6-12345678"), now=2000.0)
    assert body["previous_handoff"]["handoff_id"] == newer.id
    assert body["previous_handoff"]["matched_by"] == "phone"


def test_records_are_erased_with_the_conversation(store):
    open_handoff(store, conversation="c-1", customer=unverified(email="ada@example.com"))
    assert store.erase_conversations(["c-1"], dry_run=True)["records"] == 1
    store.erase_conversations(["c-1"])
    _, body = open_handoff(store, conversation="c-2", customer=unverified(email="ada@example.com"), now=5000.0)
    assert "previous_handoff" not in body


def test_a_transfer_moves_the_handoff_to_the_queue_waiting_again_with_a_new_timer(store):
    handoff, _ = open_handoff(store)
    store.mark_assigned(handoff.id, "Sanne")
    assert store.get_handoff(handoff.id).state == ASSIGNED
    moved = store.transfer(handoff.id, "sales", no_agent_timeout=300)
    assert (moved.queue, moved.state, moved.agent_name) == ("sales", REQUESTED, None)
    assert [t.kind for t in store.tasks(handoff.id)] == [TASK_NO_AGENT]
    store.end_handoff(handoff.id, "handed_back")
    assert store.transfer(handoff.id, "support") is None  # not active any more


def test_the_queue_position_counts_only_who_is_served_first(store):
    # Same queue: an older normal one and a newer urgent one are ahead of a normal one; a newer
    # normal one, a low one, another queue's and an assigned one are not.
    older_normal, _ = open_handoff(store, conversation="c-1", now=100.0)
    newer_urgent_first, _ = open_handoff(store, conversation="c-2", now=300.0, priority="urgent")
    mine, _ = open_handoff(store, conversation="c-3", now=200.0)
    open_handoff(store, conversation="c-4", now=250.0)
    open_handoff(store, conversation="c-5", now=50.0, priority="low")
    open_handoff(store, conversation="c-6", now=10.0, queue="sales")
    assigned, _ = open_handoff(store, conversation="c-7", now=20.0, priority="urgent")
    store.mark_assigned(assigned.id, "Piet")
    assert store.waiting_ahead(mine) == 2
    assert store.waiting_ahead(newer_urgent_first) == 0
    assert store.waiting_ahead(older_normal) == 1  # the urgent one
