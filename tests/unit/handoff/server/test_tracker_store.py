"""HandoffSQLTrackerStore stores, reads and publishes exactly what Rasa's SQLTrackerStore does."""

from __future__ import annotations

import json
import os
import uuid

import psycopg2
import pytest
import sqlalchemy as sa
from rasa.core.brokers.broker import EventBroker
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    BotUttered,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker
from sqlalchemy.engine import make_url

from handoff.server.tracker_store import HandoffSQLTrackerStore
from handoff.settings import PROJECT_ROOT

DOMAIN = Domain.from_path(PROJECT_ROOT / "domain.yml")


class CollectingBroker(EventBroker):
    def __init__(self) -> None:
        self.published: list[dict] = []

    def publish(self, event: dict) -> None:
        self.published.append(event)


def user(text: str, intent: str, at: float) -> UserUttered:
    return UserUttered(text, {"name": intent, "confidence": 0.9}, parse_data={"intent": {"name": intent, "confidence": 0.9}, "text": text}, timestamp=at)


def session(at: float) -> list:
    return [ActionExecuted("action_session_start", timestamp=at), SessionStarted(timestamp=at), ActionExecuted("action_listen", timestamp=at)]


def turn(text: str, intent: str, at: float) -> list:
    return [
        user(text, intent, at),
        SlotSet("language", "nl", timestamp=at),
        ActionExecuted("utter_greet", timestamp=at + 0.1),
        BotUttered("Hallo!", timestamp=at + 0.1),
        ActionExecuted("action_listen", timestamp=at + 0.2),
    ]


async def play(store, sender: str) -> list[DialogueStateTracker | None]:
    """Two turns saved one by one, then a new session with one more turn; what each read gave."""
    seen = []
    tracker = DialogueStateTracker.from_events(sender, session(100.0), DOMAIN.slots)
    await store.save(tracker)
    for n, at in enumerate((101.0, 102.0)):
        tracker = await store.retrieve(sender)
        seen.append(tracker)
        for event in turn(f"hoi {n}", "greet", at):
            tracker.update(event)
        await store.save(tracker)
    tracker = await store.retrieve(sender)
    for event in session(200.0) + turn("weer hier", "greet", 201.0):
        tracker.update(event)
    await store.save(tracker)
    seen.append(await store.retrieve(sender))
    seen.append(await store.retrieve_full_tracker(sender))
    return seen


def rows(engine: sa.engine.Engine, sender: str) -> list[tuple]:
    with engine.connect() as connection:
        result = connection.execute(
            sa.text("SELECT sender_id, type_name, timestamp, intent_name, action_name, data FROM events WHERE sender_id = :s ORDER BY id"),
            {"s": sender},
        )
        return [(*row[:5], json.loads(row[5])) for row in result]


def dump(tracker: DialogueStateTracker | None) -> list[dict] | None:
    return None if tracker is None else [event.as_dict() for event in tracker.events]


async def check_same_as_rasa(make_store) -> None:
    sender = f"conv-{uuid.uuid4()}"
    rasa_broker, ours_broker = CollectingBroker(), CollectingBroker()
    rasa_store = make_store(SQLTrackerStore, rasa_broker)
    ours = make_store(HandoffSQLTrackerStore, ours_broker)

    rasa_seen = await play(rasa_store, sender)
    rasa_rows = rows(rasa_store.engine, sender)
    with rasa_store.engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM events WHERE sender_id = :s"), {"s": sender})
    ours_seen = await play(ours, sender)

    assert rows(ours.engine, sender) == rasa_rows
    assert len(rasa_rows) == 3 + 2 * 5 + 3 + 5
    assert ours_broker.published == rasa_broker.published
    assert [dump(t) for t in ours_seen] == [dump(t) for t in rasa_seen]
    # The current session only, then the whole conversation.
    assert len(ours_seen[-2].events) == 8 and len(ours_seen[-1].events) == len(rasa_rows)
    assert ours_seen[-2].get_slot("language") == "nl"
    assert await ours.retrieve("nobody") is None


async def test_same_rows_events_and_publications_as_rasa_on_sqlite(tmp_path):
    def make(cls, broker):
        return cls(domain=DOMAIN, dialect="sqlite", db=str(tmp_path / "rasa.db"), event_broker=broker)

    await check_same_as_rasa(make)


async def test_sqlite_file_gets_pooled_connections_in_wal_mode(tmp_path):
    store = HandoffSQLTrackerStore(domain=DOMAIN, dialect="sqlite", db=str(tmp_path / "rasa.db"))
    assert isinstance(store.engine.pool, sa.pool.QueuePool)
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


@pytest.fixture
def postgres_database():
    """A fresh PostgreSQL database (TEST_POSTGRES_URL's server), dropped afterwards."""
    admin_url = make_url(os.environ.get("TEST_POSTGRES_URL") or "postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        admin = psycopg2.connect(admin_url.set(drivername="postgresql").render_as_string(hide_password=False), connect_timeout=5)
    except psycopg2.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable ({exc}); CI provides it, or set TEST_POSTGRES_URL.", pytrace=False)
    admin.autocommit = True
    name = f"handoff_ts_{uuid.uuid4().hex[:12]}"
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    yield admin_url.set(database=name)
    with admin.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
    admin.close()


@pytest.mark.postgres
async def test_same_rows_events_and_publications_as_rasa_on_postgresql(postgres_database):
    url = postgres_database

    def make(cls, broker):
        return cls(
            domain=DOMAIN, dialect="postgresql", host=url.host, port=url.port or 5432,
            db=url.database, username=url.username, password=url.password, event_broker=broker,
        )

    store = make(HandoffSQLTrackerStore, None)
    assert store.engine.dialect.name == "postgresql"
    await check_same_as_rasa(make)
    for engine in (store.engine,):
        engine.dispose()
