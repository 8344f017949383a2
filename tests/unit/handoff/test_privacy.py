"""Finding and erasing a customer's conversations in the three stores, and the retention period
(handoff/privacy.py, the stores' privacy methods, the customer.forget command, the schema)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import timedelta
from types import SimpleNamespace

import jwt
import pytest
import sqlalchemy as sa
from jsonschema import Draft202012Validator
from rasa.core.lock_store import InMemoryLockStore
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import ActionExecuted, BotUttered, SlotSet, UserUttered
from sanic import Sanic

from handoff import privacy
from handoff.privacy import Customer, Stores, TrackerEvents
from handoff.schemas import SCHEMA_DIR
from handoff.server.helpdesk_channel import HelpdeskInput
from handoff.server.tasks import TaskRunner
from handoff.store import DELIVERED, EXPIRED, HandoffStore, new_event
from handoff.tools import privacy_cli
from helpdesk.db import Ticket, create_engine_for, init_database
from helpdesk.store import TicketStore
from tests.support import signed

DAY = 86400.0
ANNA = {"name": "Anna de Vries", "email": "Anna@Example.com", "phone": "+31 6 1234 5678", "customer_id": "C-1001"}
BERT = {"name": "Bert Jansen", "email": "bert@example.com", "phone": "+31 6 8765 4321", "customer_id": "C-2002"}


class World:
    """Three SQLite stores in a temporary directory, seeded through their own code paths."""

    def __init__(self, tmp_path) -> None:
        self.tracker_url = f"sqlite:///{tmp_path / 'rasa.db'}"
        self.rasa_store = SQLTrackerStore(dialect="sqlite", db=str(tmp_path / "rasa.db"))
        self.tracker = TrackerEvents(self.rasa_store.engine)
        self.handoff = HandoffStore(f"sqlite:///{tmp_path / 'handoff.db'}")
        self.helpdesk_url = f"sqlite:///{tmp_path / 'helpdesk.db'}"
        self.helpdesk = TicketStore(init_database(create_engine_for(self.helpdesk_url)))
        self.stores = Stores(tracker=self.tracker, handoff=self.handoff, helpdesk=self.helpdesk)

    def events(self, sender: str, events: list) -> None:
        rows = [
            {
                "sender_id": sender,
                "type_name": e.type_name,
                "timestamp": e.timestamp,
                "intent_name": None,
                "action_name": None,
                "data": json.dumps(e.as_dict()),
            }
            for e in events
        ]
        with self.rasa_store.engine.begin() as connection:
            connection.execute(self.rasa_store.SQLEvent.__table__.insert(), rows)

    def conversation(self, sender: str, customer: dict, at: float | None = None, via: str = "metadata") -> str:
        """A conversation with a handoff, a relayed message and a ticket; the handoff id."""
        at = time.time() if at is None else at
        metadata = {"customer": customer} if via == "metadata" else {}
        events = [
            ActionExecuted("action_session_start", timestamp=at),
            UserUttered("I want to talk to a person", metadata=metadata, timestamp=at + 1),
            BotUttered("A colleague takes over.", timestamp=at + 2),
        ]
        if via == "slot":
            events.append(SlotSet("customer_email", customer["email"], timestamp=at + 3))
        self.events(sender, events)
        requested = new_event(
            "handoff.requested",
            str(uuid.uuid4()),
            sender,
            reason="customer_request",
            reason_text="The customer asked for a person.",
            priority="normal",
            queue="support",
            language="en",
            customer=customer if via == "metadata" else {},
            trigger={},
            channel={"name": "rest"},
            transcript=[{"role": "customer", "text": "I want to talk to a person", "timestamp": "2024-05-01T12:00:00Z"}],
        )
        handoff, outbox = self.handoff.create_handoff(requested, now=at + 1, tasks={"no_agent_timeout": 300})
        self.handoff.mark_delivered(outbox.event_id, '{"ticket_id": "HD-1"}')
        message = new_event("conversation.message", handoff.id, sender, message={"role": "customer", "text": "hello?", "timestamp": "2024-05-01T12:01:00Z"})
        with self.handoff.session() as session:
            self.handoff._add_outbox(session, message, at + 4)
        assert self.helpdesk.process_event(requested).status == 200
        assert self.helpdesk.process_event(message).status == 200
        if at < time.time() - DAY:
            with self.handoff.session() as session:
                session.execute(sa.text("UPDATE handoff_outbox SET delivered_at = :t WHERE delivered_at IS NOT NULL AND handoff_id = :h"), {"t": at + 2, "h": handoff.id})
            with self.helpdesk._sessions() as session, session.begin():
                ticket = session.execute(sa.select(Ticket).where(Ticket.handoff_id == handoff.id)).scalar_one()
                old = ticket.created_at - timedelta(seconds=time.time() - at)
                ticket.created_at = old
                for entry in ticket.entries:
                    entry.created_at = old
        return handoff.id

    def snapshot(self, sender: str) -> tuple[int, int, int, int]:
        """Rows of ``sender`` in each store: tracker events, handoffs, outbox entries, tickets."""
        with self.rasa_store.engine.connect() as connection:
            events = connection.execute(sa.text("SELECT COUNT(*) FROM events WHERE sender_id = :s"), {"s": sender}).scalar()
        handoffs = len(self.handoff.handoffs(sender))
        outbox = sum(len(self.handoff.events(h.id)) for h in self.handoff.handoffs(sender))
        with self.helpdesk._sessions() as session:
            tickets = session.execute(sa.select(sa.func.count(Ticket.id)).where(Ticket.conversation_id == sender)).scalar_one()
        return events, handoffs, outbox, tickets


@pytest.fixture
def world(tmp_path):
    w = World(tmp_path)
    yield w
    w.handoff.close()
    w.rasa_store.engine.dispose()
    w.helpdesk.engine.dispose()


EXPECTED_ANNA = {
    "tracker": {"conversations": 1, "events": 3},
    "handoff": {"handoffs": 1, "outbox": 2, "tasks": 1, "inbound_events": 0, "topics": 0, "records": 1, "wrapups": 0},
    "helpdesk": {"tickets": 1, "ticket_entries": 1, "ticket_wrapups": 0, "follow_ups": 0},
}


@pytest.mark.parametrize(
    "who",
    [
        Customer.parse("anna@example.com"),
        Customer.parse("ANNA@EXAMPLE.COM"),
        Customer.parse("C-1001"),
        Customer(phone=privacy.normalise_phone("+31-6-1234-5678")),
        Customer.from_mapping({"email": "anna@example.com"}),
    ],
)
def test_forget_erases_one_customer_from_every_store_and_leaves_the_other(world, who):
    world.conversation("anna-1", ANNA)
    world.conversation("bert-1", BERT)
    before = world.snapshot("bert-1")
    assert world.snapshot("anna-1") == (3, 1, 2, 1)

    result = privacy.forget(world.stores, who)

    assert result.conversations == ["anna-1"]
    assert result.counts == EXPECTED_ANNA
    assert world.snapshot("anna-1") == (0, 0, 0, 0)
    assert world.snapshot("bert-1") == before
    assert privacy.forget(world.stores, who).total == 0, "nothing left the second time"


def test_found_by_a_slot_alone_still_erases_the_ticket_of_that_conversation(world):
    world.conversation("anna-slot", ANNA, via="slot")
    world.conversation("bert-1", BERT)
    result = privacy.forget(world.stores, Customer.parse("anna@example.com"))
    assert result.conversations == ["anna-slot"]
    assert result.counts["tracker"]["events"] == 4 and result.counts["helpdesk"]["tickets"] == 1
    assert world.snapshot("anna-slot") == (0, 0, 0, 0)


@pytest.mark.parametrize("who", [Customer.parse("C-7007"), Customer.parse("Dirk@Example.com")])
def test_found_by_the_signed_identity_token_alone(world, who):
    token = jwt.encode({"sub": "C-7007", "email": "dirk@example.com", "exp": int(time.time()) + 600}, "k" * 32, algorithm="HS256")
    world.events("dirk-1", [UserUttered("hello", metadata={"customer_identity": token}, timestamp=time.time())])
    world.conversation("bert-1", BERT)
    before = world.snapshot("bert-1")
    result = privacy.forget(world.stores, who)
    assert result.conversations == ["dirk-1"]
    assert world.snapshot("dirk-1")[0] == 0
    assert world.snapshot("bert-1") == before


def test_the_sender_id_itself_can_be_the_customer_id(world):
    world.conversation("C-3003", {})
    world.conversation("bert-1", BERT)
    result = privacy.forget(world.stores, Customer.parse("C-3003"))
    assert result.conversations == ["C-3003"]
    assert world.snapshot("C-3003") == (0, 0, 0, 0)


def test_dry_run_counts_and_changes_nothing(world):
    world.conversation("anna-1", ANNA)
    world.conversation("anna-2", {"email": "anna@example.com"})
    world.conversation("bert-1", BERT)
    snapshots = {s: world.snapshot(s) for s in ("anna-1", "anna-2", "bert-1")}
    result = privacy.forget(world.stores, Customer.parse("anna@example.com"), dry_run=True)
    assert result.dry_run and result.conversations == ["anna-1", "anna-2"]
    assert result.counts["tracker"] == {"conversations": 2, "events": 6}
    assert result.counts["handoff"]["handoffs"] == 2 and result.counts["helpdesk"]["tickets"] == 2
    assert {s: world.snapshot(s) for s in snapshots} == snapshots
    assert privacy.forget(world.stores, Customer.parse("anna@example.com")).counts == result.counts


def test_an_unknown_customer_erases_nothing(world):
    world.conversation("anna-1", ANNA)
    result = privacy.forget(world.stores, Customer.parse("nobody@example.com"))
    assert result.conversations == [] and result.total == 0
    assert set(result.counts) == {"tracker", "handoff", "helpdesk"}
    assert world.snapshot("anna-1") == (3, 1, 2, 1)


def test_a_like_wildcard_in_the_customer_matches_only_itself(world):
    world.conversation("anna-1", ANNA)
    assert privacy.forget(world.stores, Customer.parse("%@example.com")).total == 0
    assert privacy.forget(world.stores, Customer.parse("C_1001")).total == 0
    assert world.snapshot("anna-1") == (3, 1, 2, 1)


def test_customer_parsing():
    assert Customer.parse(" Anna@Example.com ").as_dict() == {"email": "anna@example.com"}
    assert Customer.parse("+31 6 1234 5678").as_dict() == {"customer_id": "+31 6 1234 5678", "phone": "31612345678"}
    assert Customer.parse("C-1001").as_dict() == {"customer_id": "C-1001"}
    with pytest.raises(ValueError):
        Customer.parse("  ")
    with pytest.raises(ValueError):
        Customer.from_mapping({"email": "not-an-email", "phone": "12"})


# -- retention -------------------------------------------------------------------------------------


def test_retention_erases_only_conversations_past_the_period(world):
    long_ago = time.time() - 100 * DAY
    world.conversation("old-anna", ANNA, at=long_ago)
    world.conversation("new-bert", BERT)
    # An old handoff in a conversation that went on yesterday: the conversation is kept whole.
    world.conversation("old-then-new", {"email": "carla@example.com"}, at=long_ago)
    world.events("old-then-new", [UserUttered("hello again", timestamp=time.time() - DAY)])
    kept = {s: world.snapshot(s) for s in ("new-bert", "old-then-new")}

    assert privacy.expire(world.stores, dry_run=True).conversations == ["old-anna"]
    assert world.snapshot("old-anna") == (3, 1, 2, 1)
    result = privacy.expire(world.stores)
    assert result.conversations == ["old-anna"]
    assert result.counts["tracker"] == {"conversations": 1, "events": 3}
    assert result.counts["helpdesk"] == {"tickets": 1, "ticket_entries": 1, "ticket_wrapups": 0, "follow_ups": 0}
    assert world.snapshot("old-anna") == (0, 0, 0, 0)
    assert {s: world.snapshot(s) for s in kept} == kept


def test_retention_period_comes_from_the_environment(world, monkeypatch):
    world.conversation("ten-days", ANNA, at=time.time() - 10 * DAY)
    assert privacy.expire(world.stores).conversations == []
    monkeypatch.setenv("HANDOFF_RETENTION_DAYS", "7")
    assert privacy.expire(world.stores).conversations == ["ten-days"]
    monkeypatch.setenv("HANDOFF_RETENTION_DAYS", "0")
    with pytest.raises(privacy.SettingsError, match="more than 0"):
        privacy.retention_days()


def test_the_helpdesk_expires_its_own_tickets(world):
    world.conversation("old-anna", ANNA, at=time.time() - 100 * DAY)
    world.conversation("new-bert", BERT)
    assert world.helpdesk.expire() == {"tickets": 1, "ticket_entries": 1, "ticket_wrapups": 0, "follow_ups": 0}
    assert world.snapshot("old-anna")[3] == 0 and world.snapshot("new-bert")[3] == 1
    assert world.helpdesk.forget_customer(Customer.parse("bert@example.com")) == {"tickets": 1, "ticket_entries": 1, "ticket_wrapups": 0, "follow_ups": 0}


def test_the_rasa_server_runs_retention_on_its_tracker_store_and_handoff_database(world):
    world.conversation("old-anna", ANNA, at=time.time() - 100 * DAY)
    world.conversation("new-bert", BERT)
    app = SimpleNamespace(ctx=SimpleNamespace(agent=SimpleNamespace(tracker_store=world.rasa_store)))
    runner = TaskRunner(app, store=world.handoff)
    result = asyncio.run(runner.run_retention())
    assert result.conversations == ["old-anna"] and set(result.counts) == {"tracker", "handoff"}
    assert world.snapshot("old-anna")[:3] == (0, 0, 0)
    assert world.snapshot("old-anna")[3] == 1, "the helpdesk's tickets are the helpdesk's job"
    assert world.snapshot("new-bert") == (3, 1, 2, 1)
    assert asyncio.run(TaskRunner(SimpleNamespace(ctx=SimpleNamespace()), store=world.handoff).run_retention()) is None


# -- outbox bodies -----------------------------------------------------------------------------------


def test_delivered_bodies_are_cleared_and_given_up_ones_after_the_keep_period(world):
    handoff_id = world.conversation("anna-1", ANNA)
    entries = world.handoff.events(handoff_id)
    delivered = [e for e in entries if e.status == DELIVERED]
    assert delivered and all(e.body == "" for e in delivered), "the helpdesk has it: no transcript kept"
    assert delivered[0].response_body == '{"ticket_id": "HD-1"}' and delivered[0].delivered_at

    pending = next(e for e in entries if e.status != DELIVERED)
    world.handoff.mark_failed(pending.event_id, "gave up", time.time(), final_status=EXPIRED)
    # Still sendable again for a week (make outbox, --retry) ...
    assert privacy.expire(world.stores).counts["handoff"]["given_up_bodies_cleared"] == 0
    assert world.handoff.get_event(pending.event_id).body
    # ... then the body goes and --retry says no.
    with world.handoff.session() as session:
        session.execute(sa.text("UPDATE handoff_outbox SET created_at = :t WHERE event_id = :e"), {"t": time.time() - 8 * DAY, "e": pending.event_id})
    assert privacy.expire(world.stores).counts["handoff"]["given_up_bodies_cleared"] == 1
    cleared = world.handoff.get_event(pending.event_id)
    assert cleared.body == "" and cleared.status == EXPIRED
    assert world.handoff.retry_event(pending.event_id) is None
    # The customer is still found through the identifiers kept with the handoff.
    assert privacy.find(Stores(handoff=world.handoff), Customer.parse("anna@example.com")) == {"anna-1"}


# -- the command line -----------------------------------------------------------------------------------


def cli(world, capsys, *args: str) -> tuple[int, str, str]:
    status = privacy_cli.main(
        [
            *args,
            "--tracker-url", world.tracker_url,
            "--database-url", world.handoff.database_url,
            "--helpdesk-database-url", world.helpdesk_url,
        ]
    )
    out, err = capsys.readouterr()
    return status, out, err


def test_cli_forget_prints_the_counts_per_store(world, capsys):
    world.conversation("anna-1", ANNA)
    world.conversation("bert-1", BERT)
    status, out, _ = cli(world, capsys, "forget", "--customer", "anna@example.com", "--dry-run")
    assert status == 0 and "Dry run: nothing was changed." in out and "anna-1" in out
    assert world.snapshot("anna-1") == (3, 1, 2, 1)

    status, out, _ = cli(world, capsys, "forget", "--customer", "anna@example.com", "--json")
    assert status == 0
    report = json.loads(out)
    assert report["conversation_ids"] == ["anna-1"] and report["erased"] == EXPECTED_ANNA and not report["dry_run"]
    assert world.snapshot("anna-1") == (0, 0, 0, 0) and world.snapshot("bert-1") == (3, 1, 2, 1)

    status, out, _ = cli(world, capsys, "forget", "--email", "nobody@example.com")
    assert status == 0 and "Conversations: none found" in out and "0 events erased" in out


def test_cli_needs_a_customer_and_reads_the_tracker_store_from_endpoints(world, capsys, tmp_path, monkeypatch):
    with pytest.raises(SystemExit) as exited:
        privacy_cli.main(["forget"])
    assert exited.value.code == 2
    status, _, err = cli(world, capsys, "forget", "--customer", " ")
    assert status == 2 and "the customer is empty" in err

    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text(
        "action_endpoint:\n  url: ${NOT_SET_ANYWHERE}\ntracker_store:\n  type: handoff.server.tracker_store.HandoffSQLTrackerStore\n"
        "  dialect: sqlite\n  db: ${TRACKER_FILE}\n"
    )
    monkeypatch.setenv("TRACKER_FILE", world.tracker_url.removeprefix("sqlite:///"))
    assert str(privacy_cli.tracker_store_url(endpoints)) == world.tracker_url
    monkeypatch.delenv("TRACKER_FILE")
    with pytest.raises(privacy.SettingsError, match="TRACKER_FILE"):
        privacy_cli.tracker_store_url(endpoints)
    endpoints.write_text("tracker_store:\n  type: SQL\n  dialect: postgresql\n  url: db.internal:6543\n  db: rasa\n  username: u\n  password: p\n")
    url = privacy_cli.tracker_store_url(endpoints)
    assert url.render_as_string(hide_password=False) == "postgresql://u:p@db.internal:6543/rasa"


def test_cli_expire_leaves_missing_sqlite_files_uncreated(tmp_path, capsys):
    status = privacy_cli.main(
        [
            "expire",
            "--tracker-url", f"sqlite:///{tmp_path / 'none-rasa.db'}",
            "--database-url", f"sqlite:///{tmp_path / 'none-handoff.db'}",
            "--no-helpdesk",
        ]
    )
    out = capsys.readouterr().out
    assert status == 0 and "does not exist" in out
    assert not (tmp_path / "none-rasa.db").exists() and not (tmp_path / "none-handoff.db").exists()


# -- the customer.forget command and its schema ----------------------------------------------------------


def forget_command(**customer) -> dict:
    return {"event": "customer.forget", "event_id": str(uuid.uuid4()), "customer": customer}


def test_the_schema_is_valid_and_additive():
    schema = json.loads((SCHEMA_DIR / "customer.forget.json").read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)
    assert schema["properties"]["event"] == {"const": "customer.forget"}
    assert schema["additionalProperties"] is True and schema["properties"]["customer"]["additionalProperties"] is True


@pytest.mark.parametrize(
    "body, problem",
    [
        ({"event": "customer.forget", "event_id": str(uuid.uuid4())}, "'customer' is a required property"),
        (forget_command(), "at customer"),
        (forget_command(name="Anna"), "at customer"),
        (forget_command(email="no-at-sign"), "at customer.email"),
        ({**forget_command(email="a@b.nl"), "event_id": "x"}, "at event_id"),
        ({**forget_command(email="a@b.nl"), "dry_run": "yes"}, "at dry_run"),
        (forget_command(phone="12-34"), "at customer"),
    ],
)
def test_bad_commands_say_what_is_wrong(body, problem):
    with pytest.raises(ValueError, match=problem):
        privacy.parse_forget_command(json.dumps(body).encode())


def test_other_events_are_not_commands():
    assert privacy.parse_forget_command(json.dumps({"event": "agent.joined"}).encode()) is None
    body = {**forget_command(email="anna@example.com", future="ok"), "dry_run": True, "sent_at": "2024-05-01T12:00:00Z"}
    assert privacy.parse_forget_command(json.dumps(body).encode()) == body


@pytest.fixture
def channel(world, monkeypatch):
    monkeypatch.setenv("HANDOFF_DATABASE_URL", world.handoff.database_url)
    from handoff import settings as settings_module

    settings_module.get_settings.cache_clear()
    app = Sanic(f"forget-{uuid.uuid4().hex[:8]}")
    app.blueprint(HelpdeskInput().blueprint(lambda _message: None), url_prefix="/webhooks/helpdesk")
    app.ctx.agent = SimpleNamespace(tracker_store=world.rasa_store, lock_store=InMemoryLockStore())
    return app.test_client


def test_the_signed_command_erases_and_answers_the_counts(world, channel):
    world.conversation("anna-1", ANNA)
    world.conversation("bert-1", BERT)
    url = "/webhooks/helpdesk/webhook"
    body = forget_command(email="anna@example.com")
    raw, headers = signed(body)

    _, answer = channel.post(url, content=raw, headers={"Content-Type": "application/json"})
    assert answer.status == 401
    _, answer = channel.post(url, content=raw, headers={**headers, "X-Handoff-Signature": "sha256=" + "0" * 64})
    assert answer.status == 401
    assert world.snapshot("anna-1") == (3, 1, 2, 1), "a refused command erases nothing"

    dry_raw, dry_headers = signed({**forget_command(email="anna@example.com"), "dry_run": True})
    _, answer = channel.post(url, content=dry_raw, headers=dry_headers)
    assert answer.status == 200 and answer.json["dry_run"] is True and answer.json["conversation_ids"] == ["anna-1"]
    assert world.snapshot("anna-1") == (3, 1, 2, 1)

    _, answer = channel.post(url, content=raw, headers=headers)
    assert answer.status == 200, answer.body
    assert answer.json["conversation_ids"] == ["anna-1"] and answer.json["event_id"] == body["event_id"]
    assert answer.json["erased"] == {"tracker": EXPECTED_ANNA["tracker"], "handoff": EXPECTED_ANNA["handoff"]}
    assert world.snapshot("anna-1")[:3] == (0, 0, 0) and world.snapshot("bert-1") == (3, 1, 2, 1)

    raw, headers = signed(forget_command(customer_id="C-9999"))
    _, answer = channel.post(url, content=raw, headers=headers)
    assert answer.status == 200 and answer.json["conversation_ids"] == []
    assert answer.json["erased"]["tracker"] == {"conversations": 0, "events": 0}

    raw, headers = signed(forget_command())
    _, answer = channel.post(url, content=raw, headers=headers)
    assert answer.status == 400 and "customer.forget" in answer.json["error"]


def test_the_helpdesk_retention_loop_runs_a_pass_after_start(world):
    from helpdesk import retention

    world.conversation("old-anna", ANNA, at=time.time() - 100 * DAY)
    world.conversation("new-bert", BERT)

    async def run() -> None:
        task = asyncio.get_running_loop().create_task(retention.retention_loop(world.helpdesk, 90, first_delay=0))
        for _ in range(100):
            await asyncio.sleep(0.05)
            if world.snapshot("old-anna")[3] == 0:
                break
        task.cancel()

    asyncio.run(run())
    assert world.snapshot("old-anna")[3] == 0 and world.snapshot("new-bert")[3] == 1


def test_make_outbox_says_a_cleared_delivery_cannot_be_sent_again(world, capsys):
    from handoff.tools.outbox_cli import main as outbox_main

    handoff_id = world.conversation("anna-1", ANNA)
    pending = next(e for e in world.handoff.events(handoff_id) if e.status != DELIVERED)
    world.handoff.mark_failed(pending.event_id, "gave up", time.time(), final_status=EXPIRED)
    assert world.handoff.clear_given_up_bodies(time.time() + 60) == 1
    status = outbox_main(["--database-url", world.handoff.database_url, "--retry", pending.event_id])
    assert status == 3 and "can no longer be sent" in capsys.readouterr().err
