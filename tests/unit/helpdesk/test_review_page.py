"""The console's Review page (helpdesk/review.py): the training-data candidates grouped by intent and
language, accept and reject recorded, and the same-origin check of the form posts."""

from __future__ import annotations

import re
import time

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient, TestServer

from handoff.review import candidate_id
from helpdesk import review
from helpdesk.db import create_engine_for, init_database
from helpdesk.review import (
    REVIEW_KEY,
    REVIEW_SOURCE_KEY,
    ReviewDecision,
    ReviewSource,
    attach,
    read_decisions,
    setup,
)
from tests.helpdesk_support import ALAN, GRACE, make_app, make_settings, sign_in
from tests.unit.handoff.test_review import Seed


@pytest.fixture
def stores(tmp_path):
    seed = Seed(tmp_path)
    seed.clock = time.time() - 3600  # the real clock: the page shows the last 30 days
    seed.handoff_with(
        "h1",
        "c1",
        "nl",
        [{"role": "customer", "text": "mijn geld terug van NW-123456 aub", "intent": "nlu_fallback", "confidence": 0.3}],
        intent="ask_refund_status",
        at=seed.clock,
    )
    seed.user("t1", "<b>kan</b> ik met ideal betalen", "ask_payment_methods", 0.45)
    seed.slot("t1", "language", "nl")
    seed.user("t2", "where is my parcel, mail bob@example.com", "ask_order_status", 0.5)
    yield seed
    seed.close()


@pytest.fixture
async def page_client(assistant, database_url, stores, tmp_path):
    """The helpdesk with the Review page on the seeded stores, and a browser signed in as Grace."""
    app = make_app(make_settings(assistant.url), database_url)
    setup(app)
    engine = create_engine_for(database_url)
    factory = init_database(engine)
    nlu = tmp_path / "nlu"
    nlu.mkdir()

    async def _attach(app):  # after the app's own start-up, which may attach the default sources
        attach(app, factory, ReviewSource(stores.handoff_url, stores.tracker_url, nlu_dir=nlu))

    app.on_startup.append(_attach)
    client = TestClient(TestServer(app))
    await client.start_server()
    await sign_in(client, GRACE)
    yield client, factory
    await client.close()
    engine.dispose()


REFUND = candidate_id("ask_refund_status", "nl", "mijn geld terug van ORDER_NUMBER aub")
IDEAL = candidate_id("ask_payment_methods", "nl", "<b>kan</b> ik met ideal betalen")
PARCEL = candidate_id("ask_order_status", "en", "where is my parcel, mail EMAIL")


def decisions(factory) -> list[tuple[str, str, str]]:
    with factory() as session:
        rows = session.execute(sa.select(ReviewDecision).order_by(ReviewDecision.id)).scalars().all()
        return [(r.candidate_id, r.decision, r.decided_by) for r in rows]


async def test_the_page_needs_a_signed_in_agent(assistant, database_url):
    app = make_app(make_settings(assistant.url), database_url)
    setup(app)
    setup(app)  # a second time changes nothing
    async with TestClient(TestServer(app)) as anonymous:
        page = await anonymous.get("/review", allow_redirects=False)
        assert page.status == 303
        assert page.headers["Location"] == "/login?next=/review"
        action = await anonymous.post(f"/review/{REFUND}", data={"decision": "accept"}, allow_redirects=False)
        assert action.status == 401


async def test_the_page_lists_the_candidates_by_intent_and_language(page_client):
    client, _ = page_client
    response = await client.get("/review")
    html = await response.text()
    assert response.status == 200
    assert "Content-Security-Policy" in response.headers
    assert "<title>Review (3 to decide) · Helpdesk</title>" in html
    groups = re.findall(r'data-intent="([a-z_]+)" data-language="([a-z]+)"', html)
    assert groups == [("ask_order_status", "en"), ("ask_payment_methods", "nl"), ("ask_refund_status", "nl")]
    rows = re.findall(r'data-candidate="([0-9a-f]+)" data-source="([a-z_]+)"', html)
    assert rows == [(PARCEL, "low_confidence"), (IDEAL, "low_confidence"), (REFUND, "misunderstood")]
    assert "where is my parcel, mail EMAIL" in html and "bob@example.com" not in html
    assert "mijn geld terug van ORDER_NUMBER aub" in html
    assert "&lt;b&gt;kan&lt;/b&gt; ik met ideal betalen" in html and "<b>kan</b>" not in html
    assert html.count('name="decision" value="accept"') == 3
    assert html.count('name="decision" value="reject"') == 3
    assert f'action="/review/{REFUND}"' in html


async def test_accept_and_reject_are_recorded_and_shown(page_client, assistant):
    client, factory = page_client
    accepted = await client.post(f"/review/{REFUND}", data={"decision": "accept"}, allow_redirects=False)
    assert accepted.status == 303 and accepted.headers["Location"] == "/review"
    rejected = await client.post(f"/review/{PARCEL}", data={"decision": "reject", "days": "7"}, allow_redirects=False)
    assert rejected.headers["Location"] == "/review?days=7"
    assert decisions(factory) == [(REFUND, "accept", "grace"), (PARCEL, "reject", "grace")]

    html = await (await client.get("/review")).text()
    assert "<title>Review (1 to decide) · Helpdesk</title>" in html
    assert re.search(rf'id="candidate-{REFUND}" class="candidate accepted"', html)
    assert re.search(rf'id="candidate-{PARCEL}" class="candidate rejected"', html)
    assert "Accepted <span class=\"muted small\">by grace" in html

    # Changing one's mind: the same row, the new decision and who made it.
    other = TestClient(client.server)
    await other.start_server()
    await sign_in(other, ALAN)
    await other.post(f"/review/{PARCEL}", data={"decision": "accept"}, allow_redirects=False)
    await other.session.close()
    assert decisions(factory) == [(REFUND, "accept", "grace"), (PARCEL, "accept", "alan")]


async def test_make_review_reads_the_decisions(page_client, database_url):
    client, _ = page_client
    await client.post(f"/review/{IDEAL}", data={"decision": "reject"}, allow_redirects=False)
    assert read_decisions(database_url) == {IDEAL: "reject"}


async def test_a_wrong_decision_or_candidate_changes_nothing(page_client):
    client, factory = page_client
    wrong = await client.post(f"/review/{REFUND}", data={"decision": "maybe"})
    assert "Choose Accept or Reject." in await wrong.text()
    unknown = await client.post("/review/0123456789abcdef", data={"decision": "accept"})
    assert "That candidate is no longer in the list; nothing was changed." in await unknown.text()
    assert decisions(factory) == []


async def test_a_post_from_another_site_is_refused(page_client):
    client, factory = page_client
    response = await client.post(
        f"/review/{REFUND}", data={"decision": "reject"}, headers={"Origin": "https://evil.example"}, allow_redirects=False
    )
    assert response.status == 403
    assert decisions(factory) == []


async def test_attach_creates_the_table_in_an_older_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine_for(url)
    factory = init_database(engine)
    ReviewDecision.__table__.drop(engine)
    from aiohttp import web

    app = web.Application()
    attach(app, factory, ReviewSource(None, None))
    assert sa.inspect(engine).has_table("review_decisions")
    assert isinstance(app[REVIEW_KEY], review.ReviewStore)
    assert app[REVIEW_SOURCE_KEY].collect(30).notes == [
        "tracker store: not available: nlu_fallback and low-confidence messages are left out",
        "handoff database: not available: messages the bot misunderstood are left out",
    ]
    engine.dispose()


async def test_by_default_the_candidates_come_from_the_settings_and_endpoints_yml(assistant, database_url):
    from handoff.databases import tracker_store_url
    from helpdesk.keys import SETTINGS_KEY

    app = make_app(make_settings(assistant.url), database_url)
    engine = create_engine_for(database_url)
    attach(app, init_database(engine))
    source = app[REVIEW_SOURCE_KEY]
    assert source.handoff_url == app[SETTINGS_KEY].database_url
    assert source.tracker_url == tracker_store_url()
    engine.dispose()
