"""handoff.idempotency: customer message ids, and the claims and replies kept for them.

The same contract is checked on the in-memory store and on the Redis store (the Redis on
127.0.0.1:6379, keys under a prefix of their own; marker ``redis``).
"""

from __future__ import annotations

import time
import uuid

import pytest

from handoff.idempotency import (
    DONE,
    PENDING,
    InvalidMessageId,
    MemoryReplyStore,
    RedisReplyStore,
    key_of,
    message_id_of,
)

REDIS_URL = "redis://127.0.0.1:6379/0"
REPLY = [{"recipient_id": "anna", "text": "We are open from 8 to 20."}]


# -- message ids ----------------------------------------------------------------------------------


def test_message_id_from_the_body_or_its_metadata():
    assert message_id_of({"message_id": "m-1"}) == "m-1"
    assert message_id_of({"sender": "anna"}, {"message_id": "m-2"}) == "m-2"
    assert message_id_of({"message_id": "m-1"}, {"message_id": "m-2"}) == "m-1"
    assert message_id_of({"sender": "anna"}) is None
    assert message_id_of({"message_id": None}, None) is None
    assert message_id_of(None, None) is None
    assert message_id_of({"message_id": str(uuid.uuid4())})  # a UUID
    assert message_id_of({"message_id": "01HZX3C9R7:web.7_a"})


@pytest.mark.parametrize("value", ["", "x" * 129, "has space", "ünï", "a/b", 42, ["m-1"], {"id": 1}, True])
def test_invalid_message_ids_are_refused(value):
    with pytest.raises(InvalidMessageId, match="message_id must be a string of 1 to 128"):
        message_id_of({"message_id": value})


def test_keys_hide_the_sender_and_the_id_and_keep_them_apart():
    key = key_of("p:message:", "anna@example.com", "m-1")
    assert key.startswith("p:message:") and "anna" not in key and "m-1" not in key
    assert key != key_of("p:message:", "bob", "m-1") != key_of("p:message:", "anna@example.com", "m-2")
    # The separator keeps ("ab", "c") and ("a", "bc") apart.
    assert key_of("", "ab", "c") != key_of("", "a", "bc")


# -- the stores -----------------------------------------------------------------------------------


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def store(request):
    if request.param == "memory":
        yield MemoryReplyStore()
        return
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=5, socket_timeout=5)
    prefix = f"test{uuid.uuid4().hex[:10]}:message:"
    yield RedisReplyStore(client, prefix)
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)
    client.close()


def test_a_message_is_claimed_once_then_answered_with_its_reply(store):
    assert store.get("anna", "m-1") is None
    owner = store.claim("anna", "m-1", 30)
    assert owner
    assert store.claim("anna", "m-1", 30) is None, "a second claim of the same message"
    seen = store.get("anna", "m-1")
    assert (seen.state, seen.owner, seen.reply) == (PENDING, owner, None)
    # Other senders and other ids are other messages.
    assert store.claim("bob", "m-1", 30) and store.claim("anna", "m-2", 30)

    store.finish("anna", "m-1", REPLY, 60)
    seen = store.get("anna", "m-1")
    assert (seen.state, seen.reply) == (DONE, REPLY)
    assert store.claim("anna", "m-1", 30) is None, "a handled message is not taken again"


def test_a_released_claim_can_be_taken_again_but_only_its_owner_releases(store):
    owner = store.claim("anna", "m-1", 30)
    store.release("anna", "m-1", "someone-else")
    assert store.get("anna", "m-1").state == PENDING
    store.release("anna", "m-1", owner)
    assert store.get("anna", "m-1") is None
    assert store.claim("anna", "m-1", 30)


def test_a_release_after_the_reply_keeps_the_reply(store):
    owner = store.claim("anna", "m-1", 30)
    store.finish("anna", "m-1", REPLY, 60)
    store.release("anna", "m-1", owner)
    assert store.get("anna", "m-1").reply == REPLY


def test_claims_and_replies_expire(store):
    store.claim("anna", "m-1", 0.2)
    store.claim("anna", "m-2", 30)
    store.finish("anna", "m-2", REPLY, 0.2)
    time.sleep(0.35)
    assert store.get("anna", "m-1") is None, "the claim of a process that died expires"
    assert store.get("anna", "m-2") is None
    assert store.claim("anna", "m-1", 30)


def test_an_empty_reply_is_a_reply(store):
    """A message during a handoff gets no bot answer: it is still handled."""
    store.claim("anna", "m-1", 30)
    store.finish("anna", "m-1", [], 60)
    assert store.get("anna", "m-1").reply == []


def test_the_memory_store_drops_the_oldest_keys_beyond_its_size():
    store = MemoryReplyStore(max_keys=3)
    for n in range(5):
        store.finish("anna", f"m-{n}", REPLY, 60)
    assert [store.get("anna", f"m-{n}") is not None for n in range(5)] == [False, False, True, True, True]


@pytest.mark.redis
def test_the_redis_store_ignores_a_value_that_is_not_its_own():
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=5, socket_timeout=5)
    prefix = f"test{uuid.uuid4().hex[:10]}:message:"
    store = RedisReplyStore(client, prefix)
    try:
        client.set(key_of(prefix, "anna", "m-1"), b"\x80 not json")
        assert store.get("anna", "m-1") is None
    finally:
        for key in client.scan_iter(f"{prefix}*"):
            client.delete(key)
        client.close()


# -- the contract's schema ------------------------------------------------------------------------


def test_the_customer_message_schema():
    import json

    from jsonschema import Draft202012Validator

    from handoff.schemas import SCHEMA_DIR

    schema = json.loads((SCHEMA_DIR / "customer.message.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    for body in (
        {"sender": "anna", "message": "where is my order?", "message_id": str(uuid.uuid4())},
        {"sender": "anna", "message": "hi", "metadata": {"message_id": "m-1", "page": "/"}},
        {"sender": "anna", "message": "hi"},
        {"message": "hi", "session_id": "abc", "message_id": "web-1"},
    ):
        assert not list(validator.iter_errors(body)), body
    for bad in ("", "a b", "x" * 129):
        assert list(validator.iter_errors({"sender": "anna", "message": "hi", "message_id": bad})), bad
        with pytest.raises(InvalidMessageId):
            message_id_of({"message_id": bad})
