"""The "Review" page: training-data candidates (:mod:`handoff.review`, the same list as
``make review``) for a team lead to accept or reject, grouped by intent and language.

The candidates are read when the page is shown, from the handoff database (agents' wrap-ups,
handoff transcripts) and the tracker store named in endpoints.yml (:mod:`handoff.databases`).
Decisions are kept in the helpdesk's ``review_decisions`` table, one per candidate id (a hash of
intent, language and normalised text, so a decision holds for the same message however often it
comes back); ``make review`` leaves rejected candidates out and marks accepted ones.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import urlencode

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.orm import sessionmaker

from handoff import review as core
from helpdesk.db import Base, utcnow
from helpdesk.flash import FLASH_COOKIE, Flash

# helpdesk.keys and helpdesk.views are imported by the page's handlers when they run, not here
# (as helpdesk.followups does).

logger = logging.getLogger("helpdesk.review")

#: Flash notices of the Review page are filed under this (never a ticket id).
FLASH_PAGE = "/review"
#: The periods the page offers, in days.
PERIODS = (7, 30, 90)


class ReviewDecision(Base):
    """A team lead's decision on one training-data candidate."""

    __tablename__ = "review_decisions"

    id = sa.Column(sa.Integer, primary_key=True, autoincrement=True)
    candidate_id = sa.Column(sa.String(64), nullable=False, unique=True)
    decision = sa.Column(sa.String(16), nullable=False)  # accept | reject
    decided_by = sa.Column(sa.String(64), nullable=False)  # agent login
    decided_at = sa.Column(sa.DateTime, nullable=False, default=utcnow)  # naive UTC


@dataclass(frozen=True)
class Decision:
    candidate_id: str
    decision: str
    decided_by: str
    decided_at: datetime


class ReviewStore:
    """The decisions (synchronous; call through ``asyncio.to_thread``)."""

    def __init__(self, session_factory: sessionmaker) -> None:
        self._sessions = session_factory

    def decisions(self) -> dict[str, Decision]:
        with self._sessions() as session:
            rows = session.execute(sa.select(ReviewDecision)).scalars().all()
            return {
                r.candidate_id: Decision(r.candidate_id, r.decision, r.decided_by, r.decided_at) for r in rows
            }

    def decide(self, candidate_id: str, decision: str, login: str) -> Decision:
        """Record (or change) the decision on a candidate."""
        if decision not in core.DECISIONS:
            raise ValueError(f"decision must be accept or reject, not {decision!r}")
        with self._sessions() as session, session.begin():
            row = session.execute(
                sa.select(ReviewDecision).where(ReviewDecision.candidate_id == candidate_id)
            ).scalar_one_or_none()
            if row is None:
                row = ReviewDecision(candidate_id=candidate_id)
                session.add(row)
            row.decision, row.decided_by, row.decided_at = decision, login, utcnow()
            session.flush()
            return Decision(candidate_id, decision, login, row.decided_at)


def read_decisions(database_url: str) -> dict[str, str]:
    """Candidate id → ``accept`` or ``reject`` from a helpdesk database ({} before any decision)."""
    from handoff.store import create_db_engine

    engine = create_db_engine(database_url)
    try:
        if not sa.inspect(engine).has_table(ReviewDecision.__tablename__):
            return {}
        table = ReviewDecision.__table__
        with engine.connect() as connection:
            return dict(connection.execute(sa.select(table.c.candidate_id, table.c.decision)).all())
    finally:
        engine.dispose()


@dataclass
class ReviewSource:
    """Where the candidates come from."""

    handoff_url: str | None
    tracker_url: str | None
    nlu_dir: Path | None = core.DEFAULT_NLU_DIR
    threshold: float = core.DEFAULT_THRESHOLD
    notes: list[str] = field(default_factory=list)

    def collect(self, days: float) -> core.Review:
        """Every candidate of the last ``days`` (rejected ones included: the page shows them)."""
        from handoff.databases import missing_sqlite_file, shown
        from handoff.store import create_db_engine

        engines: dict[str, sa.engine.Engine | None] = {}
        notes = list(self.notes)
        for name, url in (("handoff database", self.handoff_url), ("tracker store", self.tracker_url)):
            if url is None or missing_sqlite_file(url):
                if url is not None:
                    notes.append(f"{name}: {shown(url)} does not exist yet")
                engines[name] = None
            else:
                engines[name] = create_db_engine(url)
        try:
            review = core.collect(
                engines["handoff database"],
                engines["tracker store"],
                days=days,
                threshold=self.threshold,
                nlu_dir=self.nlu_dir,
            )
        finally:
            for engine in engines.values():
                if engine is not None:
                    engine.dispose()
        review.notes[:0] = notes
        return review


REVIEW_KEY = web.AppKey("review", ReviewStore)
REVIEW_SOURCE_KEY = web.AppKey("review_source", ReviewSource)


def default_source(app: web.Application) -> ReviewSource:
    """The handoff database of the app's settings and the tracker store of endpoints.yml."""
    from handoff.databases import tracker_store_url
    from handoff.settings import SettingsError
    from helpdesk.keys import SETTINGS_KEY

    notes = []
    try:
        tracker_url = tracker_store_url()
        if tracker_url is None:
            notes.append("tracker store: endpoints.yml configures no SQL tracker store")
    except SettingsError as exc:
        tracker_url = None
        notes.append(f"tracker store: {exc}")
    return ReviewSource(handoff_url=app[SETTINGS_KEY].database_url, tracker_url=tracker_url, notes=notes)


def attach(app: web.Application, session_factory: sessionmaker, source: ReviewSource | None = None) -> None:
    """Put a :class:`ReviewStore` on ``app`` (under :data:`REVIEW_KEY`), creating its table if the
    database was made before it existed, and where the candidates come from (under
    :data:`REVIEW_SOURCE_KEY`; default :func:`default_source`)."""
    bind = session_factory.kw.get("bind")
    if bind is not None:
        ReviewDecision.__table__.create(bind=bind, checkfirst=True)
    app[REVIEW_KEY] = ReviewStore(session_factory)
    app[REVIEW_SOURCE_KEY] = source if source is not None else default_source(app)


# --- the page ------------------------------------------------------------------------------------


def _days(request: web.Request | dict[str, str], fallback: int = core.DEFAULT_DAYS) -> int:
    value = request.get("days", "") if isinstance(request, dict) else request.query.get("days", "")
    try:
        days = int(value)
    except (TypeError, ValueError):
        return fallback
    return days if 1 <= days <= 366 else fallback


def _page_url(days: int) -> str:
    return "/review" if days == core.DEFAULT_DAYS else f"/review?{urlencode({'days': days})}"


async def _candidates(request: web.Request, days: int) -> tuple[core.Review, dict[str, Decision]]:
    review = await asyncio.to_thread(request.app[REVIEW_SOURCE_KEY].collect, days)
    decisions = await asyncio.to_thread(request.app[REVIEW_KEY].decisions)
    for candidate in review.candidates:
        decision = decisions.get(candidate.id)
        candidate.decision = decision.decision if decision else None
    return review, decisions


async def review_page(request: web.Request) -> web.Response:
    from helpdesk.keys import FLASH_KEY
    from helpdesk.views import render

    days = _days(request)
    review, decisions = await _candidates(request, days)
    flash_key = request.cookies.get(FLASH_COOKIE)
    flash = request.app[FLASH_KEY].pop(flash_key, FLASH_PAGE)
    undecided = sum(1 for c in review.candidates if c.decision is None)
    response = render(
        request,
        "review.html",
        review=review,
        groups=review.groups(),
        decisions=decisions,
        undecided=undecided,
        days=days,
        periods=PERIODS,
        source_labels=core.SOURCE_LABELS,
        flash=flash,
    )
    if flash_key and flash is not None:
        response.del_cookie(FLASH_COOKIE, path="/")
    return response


def _back(request: web.Request, days: int, message: str | None = None, level: str = "error") -> web.HTTPSeeOther:
    from helpdesk.keys import FLASH_KEY

    response = web.HTTPSeeOther(location=_page_url(days))
    if message is not None:
        key = request.app[FLASH_KEY].put(Flash(FLASH_PAGE, level, message))
        response.set_cookie(FLASH_COOKIE, key, max_age=600, path="/", httponly=True, samesite="Lax")
    return response


async def decide(request: web.Request) -> web.Response:
    from helpdesk.views import check_same_origin, current_agent

    check_same_origin(request)
    form = await request.post()
    fields = {key: str(value) for key, value in form.items() if isinstance(value, str)}
    days = _days(fields)
    decision = fields.get("decision", "")
    candidate_id = request.match_info["candidate_id"]
    if decision not in core.DECISIONS:
        raise _back(request, days, "Choose Accept or Reject.")
    review, _ = await _candidates(request, days)
    candidate = review.get(candidate_id)
    if candidate is None:
        raise _back(request, days, "That candidate is no longer in the list; nothing was changed.")
    agent = current_agent(request)
    await asyncio.to_thread(request.app[REVIEW_KEY].decide, candidate_id, decision, agent.login)
    logger.info("%s: %s candidate %s (%s, %s)", agent.login, decision, candidate_id, candidate.intent, candidate.language)
    verb = "Accepted" if decision == core.ACCEPT else "Rejected"
    raise _back(request, days, f"{verb}: “{candidate.text}” as {candidate.intent} ({candidate.language}).", level="info")


def setup(app: web.Application) -> None:
    """Add the Review page and its action (signed-in agents only, like every other page); nothing
    when they are there already."""
    router = app.router
    if "review" in router.named_resources():
        return
    router.add_get("/review", review_page, name="review")
    router.add_post("/review/{candidate_id}", decide, name="review_decide")

