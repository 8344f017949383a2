"""The "Reports" page: how handoffs went in the last 7 or 30 days (``GET /reports?days=7|30``).

The figures are :mod:`handoff.analytics`'s, the same as ``make report``'s: from this helpdesk's
own database, the handoff database (``settings.database_url``) and the tracker store named in
endpoints.yml. A database that is not there leaves its figures out, and the page says so.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import threading
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from aiohttp import web

from handoff import analytics
from handoff.analytics import HANDOFF, HELPDESK, TRACKER, Period, Report, Section
from handoff.hours import now as clock
from handoff.triggers import RulesError

# helpdesk.keys and helpdesk.views are imported by the page's handler when it runs, not here
# (as in helpdesk.followups).

logger = logging.getLogger("helpdesk.reports")

#: The periods the page offers, in days; the first is the default.
PERIODS = (7, 30)


class ReportSources:
    """Where the page reads the handoff database and the tracker store: the URLs given, else the
    settings' ``database_url`` and endpoints.yml's tracker store. Engines are made on first use
    and kept; a SQLite file that does not exist yet is looked for again on the next visit."""

    def __init__(self, handoff_url: str | None = None, tracker_url: str | None = None, endpoints: Path | None = None) -> None:
        self.handoff_url = handoff_url
        self.tracker_url = tracker_url
        self.endpoints = endpoints
        self._engines: dict[str, sa.engine.Engine] = {}
        self._lock = threading.Lock()

    def configure(self, handoff_url: str | None = None, tracker_url: str | None = None, endpoints: Path | None = None) -> None:
        """Read from these instead (the tests' databases)."""
        self.close()
        self.handoff_url, self.tracker_url, self.endpoints = handoff_url, tracker_url, endpoints

    def sources(self, helpdesk_engine: sa.engine.Engine | None, database_url: str) -> analytics.Sources:
        reasons: dict[str, str] = {}
        tracker_url: Any = self.tracker_url
        if tracker_url is None:
            tracker_url, why = analytics.find_tracker_url(self.endpoints)
            if why:
                reasons[TRACKER] = why
        urls = {TRACKER: tracker_url, HANDOFF: self.handoff_url or database_url}
        result = analytics.Sources()
        with self._lock:
            for name, url in urls.items():
                result.engines[name] = None
                if url is None:
                    result.missing[name] = reasons.get(name, "not configured")
                    continue
                result.urls[name] = analytics.shown_url(url)
                engine = self._engines.get(name)
                if engine is None:
                    engine, why = analytics.open_engine(url)
                    if engine is None:
                        result.missing[name] = why or "not configured"
                        continue
                    self._engines[name] = engine
                result.engines[name] = engine
        result.engines[HELPDESK] = helpdesk_engine
        if helpdesk_engine is None:
            result.missing[HELPDESK] = "the console's database is not open"
        return result

    def close(self) -> None:
        with self._lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()


REPORTS_KEY = web.AppKey("reports", ReportSources)

# pyplot keeps global state: one drawing at a time.
_PLOT_LOCK = threading.Lock()


def period_days(raw: str | None) -> int:
    """``?days=``: 7 or 30; anything else is the default, 7."""
    try:
        days = int(raw or PERIODS[0])
    except ValueError:
        return PERIODS[0]
    return days if days in PERIODS else PERIODS[0]


def build(sources: analytics.Sources, days: int) -> tuple[Report | None, dict[str, str], str | None]:
    """The report of the last ``days`` days (on the business clock), its plots as data URLs, or
    an error to show. Synchronous: run it in a worker thread."""
    try:
        report = analytics.compute_from(sources, Period.last_days(days, now=clock()))
    except sa.exc.SQLAlchemyError as exc:
        logger.exception("the report could not be computed")
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        return None, {}, f"A database could not be read: {first[0] if first else type(exc).__name__}"
    except RulesError as exc:
        return None, {}, f"handoff_rules.yml, which names the offers, cannot be read: {exc}"
    try:
        with _PLOT_LOCK:
            images = analytics.plots(report)
    except Exception:  # the tables are still worth showing
        logger.exception("the report's plots could not be drawn")
        images = {}
    urls = {name: "data:image/png;base64," + base64.b64encode(png).decode("ascii") for name, png in images.items()}
    return report, urls, None


def _helpdesk_engine(app: web.Application) -> sa.engine.Engine | None:
    from helpdesk.followups import FOLLOW_UPS_KEY

    store = app.get(FOLLOW_UPS_KEY)
    return None if store is None else store.session_factory.kw.get("bind")


async def reports_page(request: web.Request) -> web.Response:
    from helpdesk.keys import DATABASE_URL_KEY, SETTINGS_KEY
    from helpdesk.views import render

    days = period_days(request.query.get("days"))
    app = request.app
    sources = app[REPORTS_KEY].sources(_helpdesk_engine(app), app[SETTINGS_KEY].database_url)
    sources.urls.setdefault(HELPDESK, analytics.shown_url(app[DATABASE_URL_KEY]))
    report, images, error = await asyncio.to_thread(build, sources, days)
    sections: list[Section] = analytics.sections(report) if report is not None else []
    return render(
        request,
        "reports.html",
        days=days,
        periods=PERIODS,
        report=report,
        sections=sections,
        images=images,
        error=error,
        source_labels=analytics.SOURCE_LABELS,
    )


async def _close_engines(app: web.Application) -> None:
    app[REPORTS_KEY].close()


def setup(app: web.Application, sources: ReportSources | None = None) -> None:
    """Add the Reports page (signed-in agents only, like every other page); nothing when it is
    there already. ``sources`` says where the handoff database and tracker store are (default:
    the settings and endpoints.yml)."""
    if "reports" in app.router.named_resources():
        return
    app[REPORTS_KEY] = sources or ReportSources()
    app.router.add_get("/reports", reports_page, name="reports")
    app.on_cleanup.append(_close_engines)
