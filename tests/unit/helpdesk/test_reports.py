"""The console's Reports page (helpdesk/reports.py): the figures of the last 7 and 30 days."""

from __future__ import annotations

import re

import pytest
from aiohttp.test_utils import TestClient, TestServer

from helpdesk import reports
from helpdesk.reports import REPORTS_KEY, ReportSources, period_days
from tests.helpdesk_support import GRACE, make_app, make_settings, sign_in
from tests.unit.handoff import analytics_data as data


@pytest.fixture
def urls(tmp_path) -> dict[str, str]:
    urls = {name: f"sqlite:///{tmp_path / (name + '.db')}" for name in ("tracker", "handoff", "helpdesk")}
    data.seed(urls["tracker"], urls["handoff"], urls["helpdesk"])
    return urls


async def console(assistant, urls: dict[str, str], monkeypatch, tracker_url: str | None = None) -> TestClient:
    monkeypatch.setenv("HANDOFF_NOW", data.NOW.isoformat())
    app = make_app(make_settings(assistant.url, database_url=urls["handoff"]), urls["helpdesk"])
    reports.setup(app)  # nothing when the app has the page already
    sources = app[REPORTS_KEY]
    reports.setup(app, ReportSources())  # a second call changes nothing
    assert app[REPORTS_KEY] is sources
    sources.configure(tracker_url=tracker_url or urls["tracker"])
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


def cells(page: str, section: str) -> list[list[str]]:
    """The table rows of one section of the page, as text."""
    part = re.search(rf'data-section="{section}">(.*?)</section>', page, re.S).group(1)
    return [re.findall(r"<td>(.*?)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", part, re.S) if "<td>" in row]


def number(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


@pytest.mark.parametrize("days, expected", [(7, data.EXPECTED_7), (30, data.EXPECTED_30)])
async def test_the_page_shows_every_figure(assistant, urls, monkeypatch, days, expected):
    client = await console(assistant, urls, monkeypatch)
    try:
        await sign_in(client, GRACE)
        response = await client.get(f"/reports?days={days}")
        assert response.status == 200
        page = await response.text()
    finally:
        await client.close()
    assert f"last {days} days" in page
    summary = dict(cells(page, "summary"))
    assert summary["Conversations"] == str(expected["conversations"])
    assert summary["Handoffs"] == str(expected["handoffs"])
    assert summary["Handoffs per 100 conversations"] == number(expected["handoff_rate"])
    c = expected["containment"]
    assert summary["Containment (never needed a person)"] == f"{number(c['percent'])} % ({c['without_handoff']} of {c['conversations']})"
    assert summary["Customers who gave up waiting"] == str(expected["gave_up"])
    assert summary["No agent joined in time"] == str(expected["no_agent_timeouts"])
    assert summary["Nobody available"] == str(expected["no_agent_available"])
    assert summary["Out of hours"] == str(expected["out_of_hours"])
    per_day = {row[0]: (row[1], row[2]) for row in cells(page, "per_day")}
    assert len(per_day) == days + 1  # a period of whole days from noon touches one day more
    for day, (conversations, handoffs) in expected["per_day"].items():
        assert per_day[day] == (str(conversations), str(handoffs))
    for section in ("by_reason", "by_intent"):
        shown = {row[0]: (row[1], row[3]) for row in cells(page, section)}
        assert shown == {key: (str(n), number(rate)) for key, (n, rate) in expected[section].items()}
    shown = {row[0]: tuple(row[1:]) for row in cells(page, "by_language")}
    assert shown == {key: (str(n), str(conv), number(rate)) for key, (n, conv, rate) in expected["by_language"].items()}
    offers = dict(cells(page, "offers"))
    o = expected["offers"]
    assert offers["Made"] == str(o["made"])
    assert offers["Accepted"].startswith(f"{o['accepted']} (")
    assert offers["Declined"] == str(o["declined"])
    assert offers["… said no"] == str(o["said_no"])
    assert offers["… no handoff otherwise"] == str(o["no_handoff"])
    wait = dict(cells(page, "time_to_agent"))
    t = expected["time_to_agent"]
    assert (wait["Tickets"], wait["Joined by an agent"]) == (str(t["tickets"]), str(t["joined"]))
    assert (wait["p50"], wait["p95"]) == {7: ("30 s", "30 s"), 30: ("90 s", "10.0 min")}[days]
    assert dict(cells(page, "end_causes")) == {k: str(v) for k, v in expected["end_causes"].items()}
    follow_ups = dict(cells(page, "follow_ups"))
    f = expected["follow_ups"]
    assert follow_ups["Due"] == str(f["due"])
    assert follow_ups["Done in time"] == f"{f['done_in_time']} ({number(f['in_time_percent'])} %)"
    assert (follow_ups["Done late"], follow_ups["Not reached"], follow_ups["Still open"]) == (str(f["done_late"]), str(f["not_reached"]), str(f["open"]))
    wrap = dict(cells(page, "wrap_ups"))
    w = expected["wrap_ups"]
    assert wrap["Wrap-ups"] == str(w["total"])
    assert wrap["Bot could have answered (false handoffs)"].startswith(f"{w['false_handoffs']} (")
    assert {k[2:].replace(" ", "_"): int(v) for k, v in wrap.items() if k.startswith("… ")} == w["by_why"]
    # The plots are inline PNG images (the console's CSP allows data: images), nothing else.
    assert page.count('src="data:image/png;base64,') == 6
    assert 'data-unavailable="' not in page


async def test_the_default_period_is_seven_days(assistant, urls, monkeypatch):
    client = await console(assistant, urls, monkeypatch)
    try:
        await sign_in(client, GRACE)
        page = await (await client.get("/reports")).text()
        other = await (await client.get("/reports?days=365")).text()
    finally:
        await client.close()
    assert dict(cells(page, "summary"))["Conversations"] == "5"
    assert dict(cells(other, "summary"))["Conversations"] == "5"
    assert '<a href="/reports?days=30">Last 30 days</a>' in page
    assert period_days("30") == 30 and period_days("x") == 7 and period_days(None) == 7


async def test_a_missing_tracker_store_is_said_not_invented(assistant, urls, monkeypatch, tmp_path):
    client = await console(assistant, urls, monkeypatch, tracker_url=f"sqlite:///{tmp_path / 'none.db'}")
    try:
        await sign_in(client, GRACE)
        page = await (await client.get("/reports?days=7")).text()
    finally:
        await client.close()
    assert not (tmp_path / "none.db").exists()
    summary = dict(cells(page, "summary"))
    assert summary["Conversations"] == "—" and summary["Handoffs"] == "3"
    assert 'data-unavailable="offers"' in page and "needs the tracker store" in page
    assert dict(cells(page, "end_causes")) == {"handed_back": "1", "customer_left": "1", "no_agent_timeout": "1"}


async def test_signed_in_agents_only(assistant, urls, monkeypatch):
    client = await console(assistant, urls, monkeypatch)
    try:
        response = await client.get("/reports", allow_redirects=False)
        assert response.status in (302, 303)
        assert response.headers["Location"].startswith("/login")
        assert isinstance(client.app[REPORTS_KEY], ReportSources)
    finally:
        await client.close()
