"""Rasa's SQL tracker store, reading and writing each turn once.

Rasa 3.6's ``SQLTrackerStore`` does more database work per customer message than the turn needs:

- ``save`` first streams the new events to the event broker, and to find them it reads and
  rebuilds the whole conversation a second time (``stream_events`` calls ``retrieve``); then it
  counts the stored events again to know which ones to insert;
- every read and write builds its ORM query anew (SQLAlchemy's cache-key work on each call);
- on SQLite it opens a new connection for every session and commits with a rollback journal.

``HandoffSQLTrackerStore`` keeps the table, the rows and what reaches the event broker exactly as
Rasa's: the same events, in the same order, before they are inserted. It counts the stored events
of the current session once per save, publishes and inserts the rest in one transaction, reads the
current session with one prepared statement, and gives a SQLite file pooled connections in WAL
mode (:func:`handoff.store.create_db_engine`). PostgreSQL keeps Rasa's own engine and pool.

Configure it in ``endpoints.yml`` with the same keys as Rasa's ``type: SQL``::

    tracker_store:
      type: handoff.server.tracker_store.HandoffSQLTrackerStore
      dialect: sqlite
      db: var/rasa.db
"""

from __future__ import annotations

import itertools
import json
import logging
from typing import Any

import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import Event, SessionStarted
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import INTENT_NAME_KEY

from handoff.store import create_db_engine

logger = logging.getLogger(__name__)


class HandoffSQLTrackerStore(SQLTrackerStore):
    """``SQLTrackerStore`` with one read and one write per turn (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.engine.dialect.name == "sqlite":
            url = self.engine.url
            self.engine.dispose()
            # The ORM sessions of Rasa's other methods (keys, all sessions) use it too.
            self.engine = create_db_engine(url, future=False)
            self.sessionmaker = sa.orm.session.sessionmaker(bind=self.engine)
        table = self.SQLEvent.__table__
        quote = self.engine.dialect.identifier_preparer.quote
        name, sender, kind, timestamp = (quote(c) for c in (table.name, "sender_id", "type_name", "timestamp"))
        # Events since the latest session start (all of them when none started), as Rasa's
        # `_event_query(fetch_events_from_all_sessions=False)`, in the order they were stored.
        current_session = (
            f"FROM {name} e WHERE e.{sender} = :sender_id AND ("
            f"e.{timestamp} >= (SELECT MAX(s.{timestamp}) FROM {name} s"
            f" WHERE s.{sender} = :sender_id AND s.{kind} = :session_started)"
            f" OR NOT EXISTS (SELECT 1 FROM {name} s"
            f" WHERE s.{sender} = :sender_id AND s.{kind} = :session_started))"
        )
        self._select_session = sa.text(f"SELECT e.data {current_session} ORDER BY e.id")
        self._count_session = sa.text(f"SELECT COUNT(*) {current_session}")
        self._insert = table.insert()

    @staticmethod
    def _params(sender_id: str) -> dict[str, str]:
        return {"sender_id": sender_id, "session_started": SessionStarted.type_name}

    async def _retrieve(self, sender_id: str, fetch_events_from_all_sessions: bool) -> DialogueStateTracker | None:
        if fetch_events_from_all_sessions:
            return await super()._retrieve(sender_id, fetch_events_from_all_sessions)
        with self.session_scope() as session:
            rows = session.execute(self._select_session, self._params(sender_id)).all()
        if not self.domain or not rows:
            return None
        return DialogueStateTracker.from_dict(sender_id, [json.loads(data) for (data,) in rows], self.domain.slots)

    async def save(self, tracker: DialogueStateTracker) -> None:
        """Publish the events not stored yet to the event broker, then insert them."""
        with self.session_scope() as session:
            stored = session.execute(self._count_session, self._params(tracker.sender_id)).scalar() or 0
            new_events = list(itertools.islice(tracker.events, stored, len(tracker.events)))
            rows = []
            for event in new_events:
                data = event.as_dict()
                rows.append(self._row(tracker.sender_id, event, data))
                if self.event_broker is not None:
                    self.event_broker.publish({"sender_id": tracker.sender_id, **data})
            if rows:
                session.execute(self._insert, rows)
            session.commit()
        logger.debug("Tracker with sender_id '%s' stored to database", tracker.sender_id)

    @staticmethod
    def _row(sender_id: str, event: Event, data: dict[str, Any]) -> dict[str, Any]:
        """The ``events`` row Rasa's ``SQLTrackerStore.save`` writes for ``event``."""
        return {
            "sender_id": sender_id,
            "type_name": event.type_name,
            "timestamp": data.get("timestamp"),
            "intent_name": (data.get("parse_data") or {}).get("intent", {}).get(INTENT_NAME_KEY),
            "action_name": data.get("name"),
            "data": json.dumps(data),
        }


def sql_engine(tracker_store: Any) -> sa.engine.Engine | None:
    """The database engine of the SQL tracker store inside Rasa's wrappers (``FailSafeTrackerStore``,
    ``AwaitableTrackerStore``), for erasing conversations (:mod:`handoff.privacy`); None when the
    tracker store is not an SQL one."""
    store = tracker_store
    for _ in range(5):
        if isinstance(store, SQLTrackerStore):
            return store.engine
        store = getattr(store, "_tracker_store", None)
        if store is None:
            return None
    return None
