"""The answer to handoff.requested: agents available, the ticket's place in its own queue (priority
first, then age), and the wait from the free agents and each queue's average handling time."""

from __future__ import annotations

import itertools
import uuid
from datetime import timedelta

import pytest

from helpdesk.auth import Agent
from helpdesk.db import (
    ASSIGNED,
    CLOSED,
    HANDED_BACK,
    WAITING,
    Ticket,
    create_engine_for,
    init_database,
    priority_rank,
    utcnow,
)
from helpdesk.sessions import SessionStore
from helpdesk.store import TicketStore
from tests.helpdesk_support import SECRET
from tests.support import handoff_requested

_numbers = itertools.count(1)


class Desk:
    """A helpdesk database with made-up tickets and agents."""

    def __init__(self, factory) -> None:
        self.factory = factory
        self.store = TicketStore(factory)
        self.sessions = SessionStore(factory, SECRET)
        self.now = utcnow()

    def agent(self, login: str, status: str = "available", signed_in: bool = True) -> Agent:
        who = Agent(login=login, name=login.title(), password=f"{login}-password-123")
        if signed_in:
            self.sessions.issue(who)
        self.store.set_presence(login, status)
        return who

    def ticket(
        self,
        queue: str = "support",
        priority: str = "normal",
        minutes_ago: float = 10,
        state: str = WAITING,
        agent: str | None = None,
        handled_seconds: float | None = None,
        closed_minutes_ago: float = 1,
    ) -> str:
        ticket_id = f"HD-T{next(_numbers):07d}"
        closed_at = joined_at = None
        cause = None
        if handled_seconds is not None:
            state, cause = CLOSED, HANDED_BACK
            closed_at = self.now - timedelta(minutes=closed_minutes_ago)
            joined_at = closed_at - timedelta(seconds=handled_seconds)
        with self.factory() as session, session.begin():
            session.add(
                Ticket(
                    ticket_id=ticket_id,
                    handoff_id=str(uuid.uuid4()),
                    conversation_id=f"conversation-{ticket_id}",
                    reason="complex",
                    priority=priority,
                    priority_rank=priority_rank(priority),
                    queue=queue,
                    language="en",
                    payload={},
                    state=state,
                    agent_name=agent,
                    created_at=self.now - timedelta(minutes=minutes_ago),
                    joined_at=joined_at,
                    closed_at=closed_at,
                    close_cause=cause,
                )
            )
        return ticket_id

    def request(self, **fields) -> dict:
        fields.setdefault("priority", "normal")
        result = self.store.process_event(handoff_requested(**fields))
        assert result.status == 200, result.body
        data = result.data
        assert set(data) == {
            "ticket_id",
            "estimated_wait_seconds",
            "agents_available",
            "queue_position",
        }
        return data

    def answer(self, **fields) -> tuple[int | None, int, int]:
        data = self.request(**fields)
        return data["estimated_wait_seconds"], data["agents_available"], data["queue_position"]


@pytest.fixture
def desk():
    engine = create_engine_for("sqlite://")
    yield Desk(init_database(engine))
    engine.dispose()


def test_nobody_available_means_no_estimate(desk):
    desk.agent("grace", status="away")
    desk.agent("alan", status="offline")
    desk.agent("ada", status="available", signed_in=False)
    desk.ticket(minutes_ago=5)
    assert desk.answer() == (None, 0, 2)


def test_positions_count_only_the_same_queue_by_priority_then_age(desk):
    desk.agent("grace")
    # Grace is busy, so every position waits (no free agent).
    desk.ticket(state=ASSIGNED, agent="Grace", minutes_ago=30)
    desk.ticket(queue="support", priority="normal", minutes_ago=20)
    desk.ticket(queue="support", priority="high", minutes_ago=5)
    desk.ticket(queue="support", priority="low", minutes_ago=40)
    desk.ticket(queue="sales", priority="urgent", minutes_ago=50)
    desk.ticket(queue="sales", priority="normal", minutes_ago=50)

    # New tickets (each the newest, each staying in the queue); nothing handed back yet: 180 s.
    assert desk.answer(queue="support", priority="urgent") == (180, 1, 1)
    # Behind the urgent one just made and the older high one.
    assert desk.answer(queue="support", priority="high") == (3 * 180, 1, 3)
    assert desk.answer(queue="support", priority="low") == (6 * 180, 1, 6)  # after all five
    assert desk.answer(queue="sales", priority="high") == (2 * 180, 1, 2)  # behind sales' urgent
    assert desk.answer(queue="supervisor", priority="low") == (180, 1, 1)  # an empty queue


def test_equal_priority_is_served_oldest_first(desk):
    desk.agent("grace")
    desk.ticket(state=ASSIGNED, agent="Grace")
    first = desk.request(priority="normal")
    second = desk.request(priority="normal")
    assert (first["queue_position"], second["queue_position"]) == (1, 2)


def test_free_agents_take_the_first_positions_at_once(desk):
    for login in ("grace", "alan", "ada"):
        desk.agent(login)
    desk.agent("bob", status="away")  # away: not counted, even while free
    desk.ticket(state=ASSIGNED, agent="Grace")  # Grace is busy; Alan and Ada are free
    desk.ticket(state=ASSIGNED, agent="Bob")
    desk.ticket(state=CLOSED, agent="Alan", handled_seconds=100)  # a closed ticket: Alan is free
    desk.ticket(queue="support", minutes_ago=3)

    assert desk.answer() == (0, 3, 2)  # 2 free agents for position 2
    # Position 3: (3 - 2 free) / 3 available -> 1 round of the support average (100 s).
    assert desk.answer() == (100, 3, 3)
    # Position 6: ceil((6 - 2) / 3) = 2 rounds.
    desk.ticket(queue="support", minutes_ago=2)
    desk.ticket(queue="support", minutes_ago=1)
    assert desk.answer() == (200, 3, 6)


def test_each_queue_has_its_own_average_handling_time(desk):
    desk.agent("grace")
    desk.ticket(state=ASSIGNED, agent="Grace")
    for seconds in (100, 200):
        desk.ticket(queue="support", handled_seconds=seconds)
    desk.ticket(queue="sales", handled_seconds=1000)
    desk.ticket(queue="sales", minutes_ago=2)

    assert desk.answer(queue="support") == (150, 1, 1)
    assert desk.answer(queue="sales") == (2 * 1000, 1, 2)
    # No hand-back in the supervisor queue: the mean of all queues, (100 + 200 + 1000) / 3.
    assert desk.answer(queue="supervisor") == (433, 1, 1)


def test_the_average_is_over_the_last_twenty_hand_backs(desk):
    desk.agent("grace")
    desk.ticket(state=ASSIGNED, agent="Grace")
    for index in range(5):  # the oldest five took long
        desk.ticket(queue="support", handled_seconds=3000, closed_minutes_ago=100 + index)
    for index in range(20):
        desk.ticket(queue="support", handled_seconds=60, closed_minutes_ago=10 + index)
    assert desk.answer(queue="support") == (60, 1, 1)


def test_no_hand_backs_anywhere_means_180_seconds_per_round(desk):
    desk.agent("grace")
    desk.agent("alan")
    desk.ticket(state=ASSIGNED, agent="Grace")
    desk.ticket(state=ASSIGNED, agent="Alan")
    for minutes in (3, 2, 1):
        desk.ticket(queue="supervisor", minutes_ago=minutes)
    # Position 4, nobody free, 2 available: ceil(4 / 2) = 2 rounds of 180 s.
    assert desk.answer(queue="supervisor") == (360, 2, 4)


def test_a_repeated_delivery_is_answered_as_the_first_time(desk):
    desk.agent("grace")
    body = handoff_requested()
    first = desk.store.process_event(body)
    desk.store.set_presence("grace", "offline")
    again = desk.store.process_event(body)
    assert again.duplicate and again.body == first.body
    assert first.data["agents_available"] == 1 and first.data["estimated_wait_seconds"] == 0


def test_a_new_request_for_a_ticket_already_taken_is_first_in_line(desk):
    desk.agent("grace")
    desk.ticket(state=ASSIGNED, agent="Grace")
    body = handoff_requested()
    answer = desk.store.process_event(body).data
    assert (answer["estimated_wait_seconds"], answer["queue_position"]) == (180, 1)
    with desk.factory() as session, session.begin():
        ticket = session.query(Ticket).filter_by(ticket_id=answer["ticket_id"]).one()
        ticket.state, ticket.agent_name = ASSIGNED, "Grace"
    body["event_id"] = str(uuid.uuid4())
    again = desk.store.process_event(body).data
    assert again == {**answer, "estimated_wait_seconds": 0, "queue_position": 1}
