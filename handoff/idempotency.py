"""Customer message ids: a message that arrives twice is handled once.

A customer's message may carry a client message id (REST: ``message_id`` in the body or in its
``metadata``; socket.io: ``message_id`` in the ``user_uttered`` payload; docs/HANDOFF_CONTRACT.md).
The same message can arrive twice: the balancer sends it again to another replica when the first
one died before answering, the web chat sends it again after a reconnect when it got no
acknowledgement, a client retries after a timeout. The Rasa server (handoff/server/idempotency.py)
handles each (sender, message id) once and answers a repeat with the stored reply.

Each key goes through three states in a :class:`ReplyStore`:

- absent: nobody has taken the message;
- ``pending``: one process claimed it and runs the turn, for at most ``claim_seconds`` (the
  conversation lock's lifetime); when that process dies the claim expires and another process
  takes over;
- ``done``: the reply is kept for ``ttl`` seconds (``HANDOFF_MESSAGE_ID_TTL``, a day).

:class:`RedisReplyStore` keeps them in Redis, shared by every replica (the Redis of the lock store,
endpoints.scaled.yml); :class:`MemoryReplyStore` in the process (one Rasa server, endpoints.yml).
Keys are hashes of the sender and the message id, so neither appears in Redis.
"""

from __future__ import annotations

import abc
import hashlib
import json
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: The field that carries a client message id (in a body, its ``metadata`` or a socket.io payload).
MESSAGE_ID_FIELD = "message_id"
MAX_MESSAGE_ID_LENGTH = 128
#: What a message id may be: a UUID, a ULID, a counter with a client prefix, ...
MESSAGE_ID = re.compile(rf"[A-Za-z0-9._:-]{{1,{MAX_MESSAGE_ID_LENGTH}}}")
PENDING, DONE = "pending", "done"
#: How many keys the in-memory store keeps at most (the oldest go first).
MAX_MEMORY_KEYS = 100_000


class InvalidMessageId(ValueError):
    """A message id that is not a string of 1 to 128 letters, digits and ``. _ : -``."""


def check_message_id(value: Any) -> str:
    """``value`` when it is a valid message id; :class:`InvalidMessageId` otherwise."""
    if not isinstance(value, str) or not MESSAGE_ID.fullmatch(value):
        raise InvalidMessageId(
            f"{MESSAGE_ID_FIELD} must be a string of 1 to {MAX_MESSAGE_ID_LENGTH} letters, digits, '.', '_', ':' or '-'"
        )
    return value


def message_id_of(body: Mapping[str, Any] | None, metadata: Mapping[str, Any] | None = None) -> str | None:
    """The client message id of a message: ``body["message_id"]``, else ``metadata["message_id"]``.

    None when neither is given (or both are null); :class:`InvalidMessageId` when the one given is
    not a valid id.
    """
    for source in (body, metadata):
        if isinstance(source, Mapping) and source.get(MESSAGE_ID_FIELD) is not None:
            return check_message_id(source[MESSAGE_ID_FIELD])
    return None


def key_of(prefix: str, sender_id: str, message_id: str) -> str:
    digest = hashlib.sha256(f"{sender_id}\x00{message_id}".encode()).hexdigest()
    return f"{prefix}{digest}"


@dataclass(frozen=True)
class Seen:
    """What the store holds for a message: ``pending`` (with the claim's owner and when it was
    claimed, epoch seconds) or ``done`` (with the reply)."""

    state: str
    reply: list[dict[str, Any]] | None = None
    owner: str | None = None
    claimed_at: float | None = None


class ReplyStore(abc.ABC):
    """Claims and replies of customer message ids (see the module's docstring)."""

    @abc.abstractmethod
    def get(self, sender_id: str, message_id: str) -> Seen | None:
        """The message's state, or None when nobody has taken it (or its claim expired)."""

    @abc.abstractmethod
    def claim(self, sender_id: str, message_id: str, seconds: float) -> str | None:
        """Take the message for ``seconds``; the claim's owner token, or None when it is taken."""

    @abc.abstractmethod
    def finish(self, sender_id: str, message_id: str, reply: list[dict[str, Any]], ttl: float) -> None:
        """Keep ``reply`` as the answer to the message for ``ttl`` seconds."""

    @abc.abstractmethod
    def release(self, sender_id: str, message_id: str, owner: str) -> None:
        """Give up a claim (the turn failed): the message may be taken again."""

    def close(self) -> None:  # noqa: B027 - optional
        """Release what the store holds open."""


def _encode(seen: Seen) -> str:
    data = {"state": seen.state, "reply": seen.reply, "owner": seen.owner, "claimed_at": seen.claimed_at}
    return json.dumps(data, default=str, separators=(",", ":"))


def _decode(raw: str | bytes | None) -> Seen | None:
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        return Seen(str(data["state"]), data.get("reply"), data.get("owner"), data.get("claimed_at"))
    except (ValueError, KeyError, TypeError):
        return None  # not ours, or damaged: as if absent


class MemoryReplyStore(ReplyStore):
    """Claims and replies in this process (one Rasa server): at most ``max_keys``, oldest dropped first."""

    def __init__(self, max_keys: int = MAX_MEMORY_KEYS, clock: Any = time.monotonic) -> None:
        self._entries: OrderedDict[str, tuple[float, Seen]] = OrderedDict()
        self._lock = threading.Lock()
        self._max_keys = max_keys
        self._clock = clock

    def _key(self, sender_id: str, message_id: str) -> str:
        return key_of("", sender_id, message_id)

    def _live(self, key: str) -> Seen | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, seen = entry
        if expires <= self._clock():
            del self._entries[key]
            return None
        return seen

    def _put(self, key: str, seen: Seen, seconds: float) -> None:
        self._entries.pop(key, None)
        self._entries[key] = (self._clock() + seconds, seen)
        while len(self._entries) > self._max_keys:
            self._entries.popitem(last=False)

    def get(self, sender_id: str, message_id: str) -> Seen | None:
        with self._lock:
            return self._live(self._key(sender_id, message_id))

    def claim(self, sender_id: str, message_id: str, seconds: float) -> str | None:
        key = self._key(sender_id, message_id)
        with self._lock:
            if self._live(key) is not None:
                return None
            owner = uuid.uuid4().hex
            self._put(key, Seen(PENDING, owner=owner, claimed_at=time.time()), seconds)
            return owner

    def finish(self, sender_id: str, message_id: str, reply: list[dict[str, Any]], ttl: float) -> None:
        with self._lock:
            self._put(self._key(sender_id, message_id), Seen(DONE, reply=list(reply)), ttl)

    def release(self, sender_id: str, message_id: str, owner: str) -> None:
        key = self._key(sender_id, message_id)
        with self._lock:
            seen = self._live(key)
            if seen is not None and seen.state == PENDING and seen.owner == owner:
                del self._entries[key]


# Deletes the key only while it still holds this claim (another process may have taken over).
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisReplyStore(ReplyStore):
    """Claims and replies in Redis, shared by every Rasa process.

    Args:
        client: a ``redis.Redis`` client (the lock store's: the same server and database).
        prefix: the keys' prefix, e.g. ``northwind:message:``.
    """

    def __init__(self, client: Any, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self._claims: dict[str, str] = {}  # key -> the value of this process's claim on it (for release)

    def _key(self, sender_id: str, message_id: str) -> str:
        return key_of(self.prefix, sender_id, message_id)

    def get(self, sender_id: str, message_id: str) -> Seen | None:
        return _decode(self.client.get(self._key(sender_id, message_id)))

    def claim(self, sender_id: str, message_id: str, seconds: float) -> str | None:
        owner = uuid.uuid4().hex
        value = _encode(Seen(PENDING, owner=owner, claimed_at=time.time()))
        key = self._key(sender_id, message_id)
        if not self.client.set(key, value, nx=True, px=max(int(seconds * 1000), 1)):
            return None
        self._claims[key] = value
        return owner

    def finish(self, sender_id: str, message_id: str, reply: list[dict[str, Any]], ttl: float) -> None:
        key = self._key(sender_id, message_id)
        self._claims.pop(key, None)
        self.client.set(key, _encode(Seen(DONE, reply=list(reply))), px=max(int(ttl * 1000), 1))

    def release(self, sender_id: str, message_id: str, owner: str) -> None:
        key = self._key(sender_id, message_id)
        value = self._claims.get(key)
        claim = _decode(value)
        if claim is not None and claim.owner == owner:
            del self._claims[key]
            self.client.eval(_RELEASE, 1, key, value)
