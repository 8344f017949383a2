"""Rasa's lock stores, safe when a replica dies holding a conversation's lock.

Rasa serves a conversation's turns in order with a ticket lock (``rasa.core.lock``), kept in Redis
when several processes share the conversations (endpoints.scaled.yml) and in the process
otherwise (endpoints.yml). Two things in Rasa's stores break when a turn outlasts the lock's
lifetime, above all when a replica is killed in the middle of a turn:

1. A ticket expires ``lock_lifetime`` seconds after it was *issued*. A ticket taken while another
   turn holds the lock therefore expires about when the holder's does. When the holder dies (or
   runs past the lifetime), the waiters' tickets expire within moments of its ticket; a waiter
   that does not look in that moment (it looks once per ``wait_time_in_seconds``) finds its own
   ticket gone, and Rasa then waits until the lock is deleted, which may never happen. The turn
   hangs and the customer's request times out at the balancer.
2. Rasa's ``RedisLockStore`` reads, changes and writes back each lock without a transaction, so
   two processes that take a ticket at the same moment can overwrite each other's ticket, which
   then waits the same way.

:class:`HandoffRedisLockStore` and :class:`HandoffInMemoryLockStore` keep Rasa's algorithm
(tickets served in the order they were taken, a lock that expires when its holder is gone) and
change two things:

- A ticket lasts ``lock_lifetime`` from its owner's last sign of life. A waiting turn renews its
  ticket every time it looks, and the ticket is renewed once more when the turn starts, so the
  turn has the whole lifetime. A dead process's ticket expires ``lock_lifetime`` after its turn
  started or after it last looked.
- Every change of a lock is one step: one Redis transaction (``WATCH``/``MULTI``/``EXEC``, tried
  again when another process changed the lock in between). A lock without tickets is deleted,
  and a Redis key expires with its last ticket, so a dead process leaves nothing behind.

A waiter whose ticket is gone all the same (its process did not look for a whole lifetime, e.g.
a blocked event loop) gets Rasa's ``LockError`` at once rather than waiting forever; the REST and
socket.io channels then give the message to Rasa again (handoff/server/idempotency.py), and the
helpdesk channel answers 503 so that the helpdesk sends its event again.

Configure them in the endpoints in place of ``type: redis`` (the same keys) and ``type: in_memory``::

    lock_store:
      type: handoff.server.lock_store.HandoffRedisLockStore
      url: ${REDIS_HOST}
      port: ${REDIS_PORT}

    lock_store:
      type: handoff.server.lock_store.HandoffInMemoryLockStore
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncGenerator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from rasa.core import lock_store as rasa_lock_store
from rasa.core.lock import Ticket, TicketLock
from rasa.core.lock_store import InMemoryLockStore, LockError, RedisLockStore
from rasa.utils.endpoints import EndpointConfig

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: A waiting process looks at least this many times per lock lifetime, so that it renews its
#: ticket well before the ticket could expire.
LOOKS_PER_LIFETIME = 4


def _ticket(lock: TicketLock, number: int) -> Ticket | None:
    return next((ticket for ticket in lock.tickets if ticket.number == number), None)


class KeptAliveTickets:
    """Rasa's ticket lock with tickets renewed by their waiting owner (see the module).

    Mixed into a Rasa ``LockStore``; the store gives :meth:`_change`, which applies one change of
    a conversation's lock atomically.
    """

    def _change(
        self,
        conversation_id: str,
        change: Callable[[TicketLock | None], tuple[TicketLock | None, T]],
    ) -> T:
        """Apply ``change`` to the conversation's lock as one step.

        ``change`` gets the stored lock (None when there is none) and returns the lock to store
        (None, or one without tickets: the lock is deleted) and a result, which is returned. It
        may run more than once, so it only looks at what it is given.
        """
        raise NotImplementedError

    def issue_ticket(
        self, conversation_id: str, lock_lifetime: float = rasa_lock_store.LOCK_LIFETIME
    ) -> int:
        """Take the next ticket for the conversation's lock (creating the lock when there is none)."""

        return self._take(conversation_id, lock_lifetime)[0]

    def _take(self, conversation_id: str, lock_lifetime: float) -> tuple[int, TicketLock | None]:
        """Take the next ticket; with the lock when that ticket is served at once (no turn holds
        it or waits: one step instead of two)."""

        def issue(lock: TicketLock | None) -> tuple[TicketLock, tuple[int, TicketLock | None]]:
            lock = lock or self.create_lock(conversation_id)
            ticket = lock.issue_ticket(lock_lifetime)
            return lock, (ticket, lock if lock.now_serving == ticket else None)

        try:
            return self._change(conversation_id, issue)
        except Exception as exc:
            raise LockError(f"Error while acquiring lock. Error:\n{exc}") from exc

    def look(
        self, conversation_id: str, ticket: int, lock_lifetime: float
    ) -> TicketLock | bool | None:
        """Renew ``ticket`` and see whether it is served: the lock when it is, False when it waits,
        None when the ticket is gone (expired, or the lock was deleted)."""

        def renew(lock: TicketLock | None) -> tuple[TicketLock | None, TicketLock | bool | None]:
            if lock is None:
                return None, None
            lock.remove_expired_tickets()
            mine = _ticket(lock, ticket)
            if mine is None:
                return lock, None
            mine.expires = max(mine.expires, time.time() + lock_lifetime)
            return lock, (lock if lock.now_serving == ticket else False)

        return self._change(conversation_id, renew)

    def finish_serving(self, conversation_id: str, ticket_number: int) -> None:
        """Remove ``ticket_number`` (the lock is deleted when no ticket is left)."""

        def finish(lock: TicketLock | None) -> tuple[TicketLock | None, None]:
            if lock is not None:
                lock.remove_ticket_for(ticket_number)
            return lock, None

        self._change(conversation_id, finish)

    def cleanup(self, conversation_id: str, ticket_number: int) -> None:
        """Give up ``ticket_number``; the lock goes when nobody else holds or waits for it."""
        self.finish_serving(conversation_id, ticket_number)

    # -- waiting --------------------------------------------------------------------------------------

    @asynccontextmanager
    async def lock(
        self,
        conversation_id: str,
        lock_lifetime: float = rasa_lock_store.LOCK_LIFETIME,
        wait_time_in_seconds: float = 1,
    ) -> AsyncGenerator[TicketLock, None]:
        """Hold the conversation's lock for the block: wait for this ticket's turn, renewing it.

        Raises Rasa's ``LockError`` when the ticket is gone before its turn came.
        """
        ticket, served = self._take(conversation_id, lock_lifetime)
        try:
            yield served or await self._wait_for_turn(
                conversation_id, ticket, lock_lifetime, wait_time_in_seconds
            )
        finally:
            self.cleanup(conversation_id, ticket)

    async def _wait_for_turn(
        self, conversation_id: str, ticket: int, lock_lifetime: float, wait_time_in_seconds: float
    ) -> TicketLock:
        pause = min(wait_time_in_seconds, lock_lifetime / LOOKS_PER_LIFETIME)
        waited = False
        while True:
            seen = self.look(conversation_id, ticket, lock_lifetime)
            if isinstance(seen, TicketLock):
                if waited:
                    logger.debug("conversation %s: ticket %d served", conversation_id, ticket)
                return seen
            if seen is None:
                raise LockError(
                    f"Could not acquire lock for conversation_id '{conversation_id}': its ticket expired while it waited."
                )
            waited = True
            await asyncio.sleep(pause)


class HandoffRedisLockStore(KeptAliveTickets, RedisLockStore):
    """Rasa's ``RedisLockStore`` with tickets kept alive by their waiting owner and atomic changes.

    Takes the keyword arguments of ``RedisLockStore`` (``host``, ``port``, ``db``, ``password``,
    ``key_prefix``, ...), or the ``lock_store`` section of the endpoints as Rasa passes it.
    """

    def __init__(self, endpoint_config: EndpointConfig | None = None, **kwargs: Any) -> None:
        if endpoint_config is not None:
            kwargs = {
                "host": endpoint_config.url or "localhost",
                **endpoint_config.kwargs,
                **kwargs,
            }
        super().__init__(**kwargs)

    # -- one transaction per change -----------------------------------------------------------------

    def _change(
        self,
        conversation_id: str,
        change: Callable[[TicketLock | None], tuple[TicketLock | None, T]],
    ) -> T:
        """One Redis transaction, run again when another process changed the lock in between; the
        key expires a second after the lock's last ticket."""
        key = self.key_prefix + conversation_id

        def transaction(pipe: Any) -> T:
            raw = pipe.get(key)
            lock = TicketLock.from_dict(json.loads(raw)) if raw else None
            new, result = change(lock)
            pipe.multi()
            if new is None or not new.tickets:
                pipe.delete(key)
            else:
                last = max(ticket.expires for ticket in new.tickets)
                pipe.set(key, new.dumps(), px=max(1, int((last - time.time()) * 1000)) + 1000)
            return result

        return self.red.transaction(transaction, key, value_from_callable=True)


class HandoffInMemoryLockStore(KeptAliveTickets, InMemoryLockStore):
    """Rasa's ``InMemoryLockStore`` (one Rasa process) with tickets kept alive by their waiting
    owner: a turn queued behind one that outlasts the lock's lifetime runs after it, rather than
    waiting until the lock is deleted."""

    def __init__(self, endpoint_config: EndpointConfig | None = None) -> None:
        super().__init__()

    def _change(
        self,
        conversation_id: str,
        change: Callable[[TicketLock | None], tuple[TicketLock | None, T]],
    ) -> T:
        new, result = change(self.conversation_locks.get(conversation_id))
        if new is None or not new.tickets:
            self.conversation_locks.pop(conversation_id, None)
        else:
            self.conversation_locks[conversation_id] = new
        return result
