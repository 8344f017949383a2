"""Handoff analytics (handoff/analytics.py) on known data in the three databases: every figure."""

from __future__ import annotations

import os
import uuid
from datetime import date

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from handoff import analytics
from handoff.analytics import Period, compute, percentile
from handoff.store import create_db_engine
from tests.unit.handoff import analytics_data as data


def report_for(urls: dict[str, str], days: int, **kwargs):
    engines = {name: create_db_engine(url) for name, url in urls.items()}
    try:
        return compute(
            Period.last_days(days, now=data.NOW),
            tracker_engine=engines.get("tracker"),
            handoff_engine=engines.get("handoff"),
            helpdesk_engine=engines.get("helpdesk"),
            **kwargs,
        )
    finally:
        for engine in engines.values():
            engine.dispose()


@pytest.fixture(scope="module")
def sqlite_urls(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("analytics")
    urls = {name: f"sqlite:///{folder / (name + '.db')}" for name in ("tracker", "handoff", "helpdesk")}
    data.seed(urls["tracker"], urls["handoff"], urls["helpdesk"])
    return urls


@pytest.mark.parametrize("days, expected", [(7, data.EXPECTED_7), (30, data.EXPECTED_30)])
def test_every_figure_on_sqlite(sqlite_urls, days, expected):
    report = report_for(sqlite_urls, days)
    assert report.unavailable == {}
    assert data.figures(report) == expected
    assert set(report.sources) == {"tracker", "handoff", "helpdesk"}


def test_every_day_of_the_period_is_listed(sqlite_urls):
    report = report_for(sqlite_urls, 7)
    assert [d.day for d in report.per_day] == [date(2026, 11, n) for n in range(23, 31)]
    assert report.per_day[0].conversations == 0 and report.per_day[0].handoffs == 0


def test_the_period_bounds_are_since_inclusive_until_exclusive(sqlite_urls):
    # c1's first customer message is at 10:00:01 on the 28th; h1 was created at 10:00:21.
    period = Period(data.at("2026-11-28T10:00:01"), data.at("2026-11-28T10:00:21"))
    engines = {n: create_db_engine(u) for n, u in sqlite_urls.items()}
    report = compute(period, tracker_engine=engines["tracker"], handoff_engine=engines["handoff"], helpdesk_engine=engines["helpdesk"])
    assert report.conversations == 1
    assert report.handoffs == 0
    assert report.offers.made == 1  # at 10:00:11; accepted after the period ends, as stored now
    assert report.offers.accepted == 1
    for engine in engines.values():
        engine.dispose()


def test_rows_hold_every_figure_in_long_format(sqlite_urls):
    rows = report_for(sqlite_urls, 7).rows()
    as_dict = {(figure, key): value for figure, key, value in rows}
    assert len(as_dict) == len(rows)  # no (figure, key) twice
    assert as_dict[("conversations", "total")] == 5
    assert as_dict[("handoff_rate_by_language", "en")] == 66.67
    assert as_dict[("handoffs_by_intent", "sensitive (reason)")] == 1
    assert as_dict[("offers", "accepted_percent")] == 33.33
    assert as_dict[("time_to_agent", "p95_seconds")] == 30.0
    assert as_dict[("no_agent", "no_agent_timeout")] == 1
    assert as_dict[("follow_ups", "in_time_percent")] == 25.0
    assert as_dict[("wrap_ups", "false_percent")] == 50.0
    assert as_dict[("containment", "percent")] == 40.0
    assert as_dict[("conversations_per_day", "2026-11-29")] == 2
    assert not any(figure == "unavailable" for figure, _, _ in rows)


def test_missing_databases_make_figures_unavailable_not_zero(sqlite_urls):
    report = report_for({"handoff": sqlite_urls["handoff"]}, 7)
    assert report.handoffs == 3
    assert report.end_causes == data.EXPECTED_7["end_causes"]
    assert report.conversations is None
    assert report.handoff_rate is None
    assert report.containment is None
    assert report.offers is None
    assert report.time_to_agent is None
    assert report.follow_ups is None
    assert [(r.key, r.handoffs, r.per_100) for r in report.by_reason] == [
        ("complex", 1, None), ("customer_request", 1, None), ("sensitive", 1, None)
    ]
    # Without the helpdesk every handoff is listed under its reason, and that is said.
    assert {r.key for r in report.by_intent} == {"complex (reason)", "customer_request (reason)", "sensitive (reason)"}
    assert set(report.unavailable) == {
        "conversations", "offers", "time_to_agent", "follow_ups", "trigger_intents", "handoff_rate", "containment"
    }
    assert "tracker store (not configured)" in report.unavailable["conversations"]
    rows = {(f, k): v for f, k, v in report.rows()}
    assert rows[("conversations", "total")] == "unavailable"
    assert rows[("containment", "percent")] == "unavailable"
    assert rows[("handoffs", "total")] == 3


def test_only_the_tracker_store(sqlite_urls):
    report = report_for({"tracker": sqlite_urls["tracker"]}, 30)
    assert report.conversations == 9
    assert report.offers.made == 4 and report.offers.accepted == 2
    assert report.handoffs is None and report.by_reason is None and report.containment is None
    assert all(d.handoffs is None for d in report.per_day)
    assert "handoff database" in report.unavailable["containment"]


def test_no_wrap_up_table_yet_is_zero_wrap_ups_and_said(tmp_path):
    url = f"sqlite:///{tmp_path / 'handoff.db'}"
    data.seed_handoff(url, wrap_ups=False)
    report = report_for({"handoff": url}, 7)
    assert report.wrap_ups.total == 0
    assert "handoff_wrapups" in report.unavailable["wrap_ups"]
    rows = {(f, k): v for f, k, v in report.rows()}
    assert rows[("wrap_ups", "total")] == 0
    assert rows[("wrap_ups", "false_handoffs")] == "unavailable"


def test_wrap_ups_recorded_only_in_the_helpdesk_count_once_per_handoff(sqlite_urls):
    report = report_for({"helpdesk": sqlite_urls["helpdesk"]}, 30)
    assert (report.wrap_ups.total, report.wrap_ups.false_handoffs) == (2, 0)
    assert report.wrap_ups.by_why == {"other": 1, "customer_preference": 1}
    assert "wrap_ups" not in report.unavailable
    # With the handoff database too, h1's wrap-up is the one sent with the hand-back.
    assert report_for(sqlite_urls, 7).wrap_ups.by_why == {"bot_misunderstood": 1, "policy_needs_person": 1}


def test_a_database_without_its_table_is_unavailable(tmp_path):
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    sa.create_engine(empty).connect().close()
    report = report_for({"tracker": empty, "handoff": empty, "helpdesk": empty}, 7)
    assert report.conversations is None and report.handoffs is None and report.time_to_agent is None
    assert "has no table events" in report.unavailable["conversations"]
    assert "has no table handoffs" in report.unavailable["handoffs"]
    assert "has no table tickets" in report.unavailable["time_to_agent"]


def test_open_engine_does_not_create_a_missing_sqlite_file(tmp_path):
    path = tmp_path / "nothing.db"
    engine, why = analytics.open_engine(f"sqlite:///{path}")
    assert engine is None and "does not exist" in why
    assert not path.exists()


def test_nearest_rank_percentiles():
    values = [float(n) for n in range(1, 21)]
    assert percentile(values, 50) == 10.0
    assert percentile(values, 95) == 19.0
    assert percentile([5.0], 95) == 5.0
    assert percentile([], 50) is None


def test_offer_actions_come_from_handoff_rules():
    names = analytics.offer_actions()
    assert {"action_offer_handoff", "utter_offer_handoff_complex", "utter_offer_handoff_frustration",
            "utter_offer_handoff_again", "utter_confirm_handoff_request"} <= names
    assert "utter_offer_declined" not in names


def test_period_between():
    p = Period.between(data.SINCE_7, None, days=3)
    assert p.until == data.at("2026-11-26T12:00:00")
    p = Period.between(None, data.NOW, days=7)
    assert p.since == data.SINCE_7
    with pytest.raises(ValueError):
        Period.between(data.NOW, data.SINCE_7)


def test_tracker_store_url_from_endpoints(tmp_path, monkeypatch):
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text("tracker_store:\n  type: SQL\n  dialect: sqlite\n  db: var/rasa.db\n")
    assert str(analytics.tracker_store_url(endpoints)).endswith("/var/rasa.db")
    monkeypatch.setenv("PGPASS_X", "secret")
    endpoints.write_text(
        "tracker_store:\n  type: handoff.server.tracker_store.HandoffSQLTrackerStore\n  dialect: postgresql\n"
        "  url: db.example\n  port: 5433\n  username: rasa\n  password: ${PGPASS_X}\n  db: tracker\n"
    )
    url = analytics.tracker_store_url(endpoints)
    assert analytics.shown_url(url) == "postgresql://rasa:***@db.example:5433/tracker"


# --- PostgreSQL ----------------------------------------------------------------------------------


@pytest.fixture
def postgres_urls():
    """Three fresh PostgreSQL databases (TEST_POSTGRES_URL's server), dropped afterwards."""
    import psycopg2

    admin_url = make_url(os.environ.get("TEST_POSTGRES_URL") or "postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        admin = psycopg2.connect(admin_url.set(drivername="postgresql").render_as_string(hide_password=False), connect_timeout=5)
    except psycopg2.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable ({exc}); CI provides it, or set TEST_POSTGRES_URL.", pytrace=False)
    admin.autocommit = True
    names = {role: f"handoff_an_{role}_{uuid.uuid4().hex[:10]}" for role in ("tracker", "handoff", "helpdesk")}
    with admin.cursor() as cursor:
        for name in names.values():
            cursor.execute(f'CREATE DATABASE "{name}"')
    yield {role: admin_url.set(database=name).render_as_string(hide_password=False) for role, name in names.items()}
    with admin.cursor() as cursor:
        for name in names.values():
            cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
    admin.close()


@pytest.mark.postgres
def test_every_figure_on_postgresql(postgres_urls):
    data.seed(postgres_urls["tracker"], postgres_urls["handoff"], postgres_urls["helpdesk"])
    for days, expected in ((7, data.EXPECTED_7), (30, data.EXPECTED_30)):
        report = report_for(postgres_urls, days)
        assert report.unavailable == {}
        assert data.figures(report) == expected
